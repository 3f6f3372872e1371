"""Shapley estimators at equal game evaluations: error against exact values, and interval coverage.

What it measures
----------------
Every method gets the same game and the same **budget of game evaluations** (coalitions), and is
run over fixed seeds. For each (game, budget) cell it reports:

* **RMSE** against the exact Shapley values, pooled over seeds and players
  (``sqrt(mean((estimate - exact)^2))``), shown relative to shap's ``PermutationExplainer``
  (a ratio below 1 is better than shap); the last column, ``shap / auto``, is the factor by
  which ``method="auto"`` beats shap, with a 90% bootstrap interval over seeds;
* **coverage** of the ``±1.96 SE`` intervals of the methods that report standard errors (ours):
  overall, and per player ``(min/median/max)``, over the players whose estimate has sampling
  error. Per-player coverage from ``n`` seeds is itself noisy: the ``calibrated`` column is the
  range that a perfectly calibrated 95% interval would give (2.5% quantile of the smallest, 97.5%
  quantile of the largest of the players' coverages, binomial, players independent);
* the evaluations each method really used (every game call is counted by a wrapper; no method
  ever exceeds the budget), and its time per run.

Methods: ours (``auto``, ``leverage``, ``stratified``, ``stratified`` antithetic, ``permutation``, ``kernel``);
shap 0.51 ``PermutationExplainer``; shapiq 1.4 ``PermutationSamplingSV``, ``KernelSHAP`` (pairing),
``SVARM``, ``StratifiedSamplingSV``, ``UnbiasedKernelSHAP`` (pairing); captum 0.9
``ShapleyValueSampling``. How each peer is driven, and the checks that it computes the Shapley
values of *our* game (its exact limit equals our exact values), are in ``peer_checks`` and are
printed first.

Games, each with exact values:

1. **redundant players** (closed form): ``v(S) = sum_g w_g (1 - exp(-a_g |S ∩ G_g|))`` plus small
   unique and pairwise parts; one group (years that each tell most of the same story) or three
   (correlated variables), at P = 12 and 19; and, at P = 19, one group whose members tell unequal
   shares of the story (with one group of equal members a marginal contribution depends, apart
   from the small pairwise part, on the arrival position alone, which position stratification
   averages exactly: that game flatters it);
2. **the model's own games**: the tiny model (width 16, one block; the demo model is too slow to
   tabulate 2^19 coalitions on a 2-core CPU), trained here on 800 synthetic sites: its test AUC
   with the first 12 climate years as players (the other years hidden), and its predicted
   richness at one test site with the 19 climate years, or the 19 WorldClim variables, as
   players. The value table (all 2^P coalitions) is computed once with the engine and cached
   under ``--cache``; the benchmark then plays the table, so every method sees exactly the same
   game;
3. **sums of unanimity games** (shapiq's ``SOUM``) with 64 players, where the Shapley values are
   known in closed form (``phi_i = sum_T w_T [i in T] / |T|``): 100 sets of sizes 1-8, and 50
   sets of shapiq's default sizes 0-64.

Budgets are counted in blocks of our stratified design (``P(P-1)`` coalitions): 10, 20 and 40
blocks for P <= 20 (31 for P = 12, where 40 would buy all 2^12 coalitions and ``auto`` would go
exact, and where leverage sampling has all but one complementary pair); 5, 10 and 20 at P = 64 (the
second unanimity game runs at 10 only). Every budget here buys ``auto`` leverage sampling (it needs
``2 + 16 P`` coalitions). Seeds are ``0 .. n-1`` for every method: ours and shap run
``--seeds`` per cell (shap a fifth at P = 64, where a run takes seconds), the other peers a fifth
(a tenth at P = 64); shapiq's SVARM runs at P = 64 only at 5 blocks, on 3 seeds (about 15 s a
run, a minute at 20 blocks). Reading the table: a ratio is only as good as its seeds, hence the
bootstrap interval; the ``Evaluations and time`` table shows that every method used (almost)
the whole budget (our antithetic stratified design buys whole blocks of ``2P(P-1)``, so it may
leave part unused).

The report ends with the project's acceptance bar, cell by cell (PASS/FAIL, with "within noise"
where the bootstrap interval reaches the bar): at equal evaluations ``auto``'s RMSE at least 3x
below shap's on games with redundant players (synthetic and model games), never above it on the
unanimity games, and ``auto``'s 95% intervals covering 90-98% overall.

Usage::

    python benchmarks/estimators.py [--seeds 50] [--quick] [--cache DIR] [--markdown FILE]

A full run takes about 12 minutes on 2 idle CPU cores (40 on a busy machine); the first one also trains the tiny model and
tabulates the model games (about 2 minutes more) into ``--cache`` (default: a folder in the
system's temporary directory), which later runs read. ``--quick`` is a 1-2 minute smoke run
(P = 12 and one unanimity game, one budget each, 6 seeds; model games only when already cached).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from miam_explain.explain import estimate
from miam_explain.explain.estimators import (
    ExactEstimator,
    StratifiedEstimator,
    coalitions_from_bitmasks,
    shapley_from_table,
)
from miam_explain.explain.game import FunctionGame

#: A value function: ``bool[C, P] -> float64[C]``.
ValueFn = Callable[[np.ndarray], np.ndarray]

#: Errors below this are float rounding, not Monte Carlo error.
ROUNDING = 1e-12


# ---------------------------------------------------------------------------------------------
# games
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One game of the benchmark with its exact Shapley values.

    Attributes:
        name: Label of the table rows.
        family: ``redundant`` (synthetic or model games with redundant players) or ``unanimity``.
        value: ``bool[C, P] -> float64[C]``.
        exact: ``float64[P]`` exact Shapley values.
        budgets: Budgets (coalitions) to run it at.
    """

    name: str
    family: str
    value: ValueFn
    exact: np.ndarray
    budgets: tuple[int, ...]

    @property
    def n_players(self) -> int:
        return int(self.exact.shape[0])


def block_cost(n_players: int) -> int:
    """Coalitions of one block of the stratified design: ``P(P-1)``."""
    return n_players * (n_players - 1)


def block_budgets(n_players: int, blocks: tuple[int, ...]) -> tuple[int, ...]:
    """``2 + k P(P-1)`` for each ``k``, keeping below ``2^P`` (where ``auto`` would go exact)."""
    out = []
    for k in blocks:
        budget = 2 + k * block_cost(n_players)
        if n_players <= 20 and budget >= 2**n_players:
            budget = 2 + ((2**n_players - 3) // block_cost(n_players)) * block_cost(n_players)
        if budget not in out:
            out.append(budget)
    return tuple(out)


def exact_values(value: ValueFn, n_players: int) -> np.ndarray:
    """Exact Shapley values from all ``2^P`` coalitions (our exact estimator)."""
    game = FunctionGame(value, [f"p{i}" for i in range(n_players)])
    return ExactEstimator(progress=False).estimate(game).values


def redundant_value(n_players: int, *, groups: int, seed: int, unequal: bool = False) -> ValueFn:
    """The closed-form redundant game of :func:`miam_explain.explain.reference_games.redundant_value` (the tests' game).

    Diminishing returns inside each group: the first members of a group to arrive get most of its
    worth. With ``unequal``, each member tells its own share of the story, so a marginal
    contribution depends on *which* members came before, not only on how many (with one group of
    equal members it depends, apart from the small pairwise part, on the position alone, which
    position stratification averages exactly).
    """
    from miam_explain.explain.reference_games import redundant_value as value

    return value(n_players, groups=groups, seed=seed, unequal=unequal)


def redundant_case(n_players: int, groups: int, blocks: tuple[int, ...], *, unequal: bool = False) -> Case:
    value = redundant_value(n_players, groups=groups, seed=100 + groups, unequal=unequal)
    label = ("one redundant group" if groups == 1 else f"{groups} redundant groups") + (", unequal" if unequal else "")
    return Case(f"synthetic, {label}", "redundant", value, exact_values(value, n_players),
                block_budgets(n_players, blocks))


def table_value(table: np.ndarray) -> ValueFn:
    """Play a value table: row ``k`` is the coalition with bitmask ``k`` (bit ``i`` = player ``i``)."""
    n_players = int(np.log2(table.shape[0]))
    bits = np.int64(1) << np.arange(n_players, dtype=np.int64)

    def value(keep: np.ndarray) -> np.ndarray:
        return table[keep.astype(np.int64) @ bits]

    return value


@dataclass(frozen=True)
class Soum:
    """A sum of unanimity games: ``v(S) = sum_T w_T [T ⊆ S]``, from shapiq's ``SOUM``."""

    members: np.ndarray  # bool[K, P]
    weights: np.ndarray  # float64[K]

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        inside = keep.astype(np.float64) @ self.members.T.astype(np.float64)
        return (inside == self.members.sum(axis=1)[None, :]).astype(np.float64) @ self.weights

    def shapley(self) -> np.ndarray:
        """``phi_i = sum_T w_T [i in T] / |T|`` (the empty set gives nothing)."""
        sizes = self.members.sum(axis=1)
        share = np.where(sizes > 0, self.weights / np.maximum(sizes, 1), 0.0)
        return self.members.T.astype(np.float64) @ share


def shapiq_soum(n_players: int, n_basis: int, sizes: tuple[int, int] | None, seed: int):
    from shapiq_games.synthetic import SOUM

    low, high = (None, None) if sizes is None else sizes
    game = SOUM(n_players, n_basis, min_interaction_size=low, max_interaction_size=high, random_state=seed)
    members = np.stack([g.interaction_binary for g in game.unanimity_games.values()]).astype(bool)
    return game, Soum(members, np.asarray(game.linear_coefficients, dtype=np.float64))


def soum_case(n_basis: int, sizes: tuple[int, int] | None, blocks: tuple[int, ...], seed: int) -> Case:
    _, soum = shapiq_soum(64, n_basis, sizes, seed)
    label = f"sizes {sizes[0]}-{sizes[1]}" if sizes else "sizes 0-64"
    return Case(f"unanimity (SOUM), {n_basis} sets, {label}", "unanimity", soum, soum.shapley(),
                tuple(2 + k * block_cost(64) for k in blocks))


# ---- the model's own games, tabulated once and cached ------------------------------------------

#: The model run the benchmark trains (cached; a change here rebuilds the cache).
MODEL_SETTINGS = {
    "version": 1,
    "synth": {"n_sites": 800, "seed": 0},
    "config": {
        "model": {"width": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0},
        "masking": {"strategy": "miam"},
        "training": {"epochs": 8, "batch_size": 64, "lr": 5e-3, "seed": 1, "collapse": True, "device": "cpu"},
    },
}

#: The model games: cache key -> (label, kind, grouping). ``first_12_climate_years`` and
#: ``worldclim_variables`` are user groupings added below; the other years stay hidden.
MODEL_GAMES = {
    "auc_12_years": ("model: test AUC, 12 climate years", "performance", "first_12_climate_years"),
    "site_19_years": ("model: richness at 1 site, 19 climate years", "prediction", "climate_years"),
    "site_19_worldclim": ("model: richness at 1 site, 19 WorldClim variables", "prediction", "worldclim_variables"),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _model_run(cache: Path) -> tuple[Path, Path]:
    """The trained tiny model and its data under ``cache/model`` (built when missing or stale)."""
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.synth import synthesize
    from miam_explain.training.config import RunConfig
    from miam_explain.training.trainer import train

    folder = cache / "model"
    stamp = folder / "settings.json"
    if stamp.exists() and json.loads(stamp.read_text()) == MODEL_SETTINGS:
        return folder / "run", folder / "data.zarr"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    _log(f"model cache: synthesising {MODEL_SETTINGS['synth']['n_sites']} sites and training the tiny model ...")
    raw = synthesize(folder / "raw", **MODEL_SETTINGS["synth"], progress=False)
    prepare_geoplant(raw, folder / "data.zarr", progress=False)
    train(folder / "data.zarr", RunConfig.from_dict(MODEL_SETTINGS["config"]), folder / "run", progress=False)
    stamp.write_text(json.dumps(MODEL_SETTINGS))
    _log(f"model cache: built in {time.perf_counter() - start:.0f} s")
    return folder / "run", folder / "data.zarr"


def _model_game(run: Path, data: Path, kind: str, group: str):
    """The engine's game (``bool[C, P] -> float64[C]``) and its players."""
    from miam_explain import open_dataset
    from miam_explain.data.format import text_values
    from miam_explain.explain import performance_game, prediction_game
    from miam_explain.models.checkpoint import load_model

    model = load_model(run, device="cpu")
    ds = open_dataset(data)
    schema = model.schema
    years = schema.members("climate_years")[:12]
    worldclim = set(schema.select("variable_groups:worldclim").tolist())
    variables = schema.players("variables")
    bio = [n for n, idx in zip(variables.names, variables.indices) if set(idx.tolist()) <= worldclim]
    model.schema = schema.with_groupings({
        "first_12_climate_years": {y: [f"climate_years:{y}"] for y in years},
        "worldclim_variables": {v: [f"variables:{v}"] for v in bio},
    })
    if kind == "performance":
        game = performance_game(model, ds, group=group, split="test", device="cpu")
    else:
        test = ds["site_id"].values[text_values(ds["split"].values) == "test"]
        game = prediction_game(model, ds, group=group, sites=[int(test[0])], target="richness", device="cpu")

    def value(keep: np.ndarray) -> np.ndarray:
        return np.asarray(game(keep), dtype=np.float64).reshape(keep.shape[0])

    return value, game.players


def model_table(cache: Path, key: str, *, build: bool) -> tuple[np.ndarray, tuple[str, ...], float] | None:
    """The cached value table of a model game (``float64[2^P]``), its players and a check.

    The check is ``max |table - game|`` over 32 random coalitions evaluated afresh by the engine
    (float32 forwards batched differently: about 1e-5 is expected).
    """
    _, kind, group = MODEL_GAMES[key]
    path = cache / "tables" / f"{key}.npz"
    settings = json.dumps({"model": MODEL_SETTINGS, "game": MODEL_GAMES[key]})
    fresh = path.exists() and str(np.load(path)["settings"]) == settings
    if not build:
        if not fresh:
            return None
        stored = np.load(path)
        return stored["table"], tuple(str(p) for p in stored["players"]), float("nan")
    run, data = _model_run(cache)
    value, players = _model_game(run, data, kind, group)
    n_players = len(players)
    if not fresh:
        start = time.perf_counter()
        chunk = 2**13
        parts = []
        for first in range(0, 2**n_players, chunk):
            bitmasks = np.arange(first, min(first + chunk, 2**n_players))
            parts.append(value(coalitions_from_bitmasks(bitmasks, n_players)))
            done = first + len(bitmasks)
            if done % 2**16 == 0 or done == 2**n_players:
                _log(f"  table {key}: {done}/{2**n_players} coalitions, {time.perf_counter() - start:.0f} s")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, table=np.concatenate(parts), players=np.array(players), settings=np.array(settings))
    table = np.load(path)["table"]
    probe = np.random.default_rng(0).integers(0, 2**n_players, 32)
    check = float(np.abs(value(coalitions_from_bitmasks(probe, n_players)) - table[probe]).max())
    return table, players, check


def model_cases(cache: Path, blocks: tuple[int, ...], *, build: bool) -> tuple[list[Case], list[str]]:
    cases, notes = [], []
    for key, (label, _, _) in MODEL_GAMES.items():
        found = model_table(cache, key, build=build)
        if found is None:
            notes.append(f"{label}: skipped (not cached; run once without --quick)")
            continue
        table, players, check = found
        n_players = len(players)
        exact = shapley_from_table(table)
        cases.append(Case(label, "redundant", table_value(table), exact, block_budgets(n_players, blocks)))
        spread = float(exact.max() - exact.min())
        notes.append(
            f"{label}: P = {n_players}, values in [{exact.min():.3g}, {exact.max():.3g}] (range {spread:.3g}), "
            f"v(N) - v(empty) = {table[-1] - table[0]:.3g}"
            + ("" if np.isnan(check) else f"; table vs fresh engine calls: max |diff| {check:.1e}")
        )
    return cases, notes


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------


class Counted:
    """A value function that counts the coalitions (rows) it evaluates."""

    def __init__(self, value: ValueFn, n_players: int) -> None:
        self.value, self.n_players, self.rows = value, n_players, 0

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        keep = np.asarray(keep)
        keep = (keep > 0.5) if keep.dtype != np.bool_ else keep
        keep = keep.reshape(-1, self.n_players)
        self.rows += keep.shape[0]
        return self.value(keep)


@dataclass(frozen=True)
class Outcome:
    values: np.ndarray
    se: np.ndarray | None = None
    picked: str = ""
    se_reliable: bool = True


@dataclass(frozen=True)
class Method:
    """A method: ``run(value, n_players, budget, seed) -> Outcome``, and how many seeds it gets.

    Attributes:
        share: Fraction of ``--seeds`` it runs at P <= 20 (at least 3 seeds).
        share_large: The same at P > 20.
        max_budget_large: At P > 20, budgets above this are skipped (too slow to repeat).
    """

    name: str
    run: Callable[[Counted, int, int, int], Outcome]
    reports_se: bool = False
    share: float = 1.0
    share_large: float = 1.0
    max_budget_large: int | None = None

    def seeds(self, n_seeds: int, n_players: int, budget: int) -> int:
        """Seeds to run on this cell (0: skipped)."""
        if n_players <= 20:
            return max(3, round(self.share * n_seeds))
        if self.max_budget_large is not None and budget > self.max_budget_large:
            return 0
        return max(3, round(self.share_large * n_seeds))


def _players(n: int) -> list[str]:
    return [f"p{i}" for i in range(n)]


def ours(method: str, **options) -> Callable[[Counted, int, int, int], Outcome]:
    """Our ``estimate`` (``method`` as ``auto`` picks it), or a ``StratifiedEstimator`` with ``options``."""

    def run(value: Counted, n_players: int, budget: int, seed: int) -> Outcome:
        game = FunctionGame(value, _players(n_players))
        if options:
            result = StratifiedEstimator(seed=seed, progress=False, **options).estimate(game, budget=budget)
        else:
            result = estimate(game, method=method, budget=budget, seed=seed)
        return Outcome(result.values, result.se, result.method, result.se_reliable)

    return run


def shap_permutation(value: Counted, n_players: int, budget: int, seed: int) -> Outcome:
    """shap's ``PermutationExplainer`` on ``f(X) = v(X > 0.5)``, explaining the all-ones row.

    The masker is ``Independent`` with one all-zeros background row, so a masked feature becomes 0:
    the player is absent. A permutation walks forward and back (``2P + 1`` rows, the empty
    coalition twice and the full one once), so ``max_evals = budget`` buys
    ``budget // (2P + 1)`` permutations.
    """
    import shap

    masker = shap.maskers.Independent(np.zeros((1, n_players)), max_samples=1)
    explainer = shap.explainers.Permutation(value, masker, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Outcome(explainer(np.ones((1, n_players)), max_evals=budget, silent=True).values[0])


def _shapiq_game(value: Counted, n_players: int):
    import shapiq

    class Wrapped(shapiq.Game):
        """Our value function as a shapiq game (no normalisation: values are v(S) itself)."""

        def __init__(self) -> None:
            super().__init__(n_players=n_players, normalize=False)

        def value_function(self, coalitions: np.ndarray) -> np.ndarray:
            return value(np.asarray(coalitions, dtype=bool))

    return Wrapped()


def shapiq_approximator(name: str, **options) -> Callable[[Counted, int, int, int], Outcome]:
    """shapiq's ``name`` approximator, ``approximate(budget, game)`` (shapiq counts coalitions too)."""

    def run(value: Counted, n_players: int, budget: int, seed: int) -> Outcome:
        import shapiq

        approximator = getattr(shapiq, name)(n=n_players, random_state=seed, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = approximator.approximate(budget, _shapiq_game(value, n_players))
        return Outcome(np.array([result[(i,)] for i in range(n_players)], dtype=np.float64))

    return run


def captum_sampling(value: Counted, n_players: int, budget: int, seed: int) -> Outcome:
    """captum's ``ShapleyValueSampling`` on a forward over a 0/1 tensor, input ones, baseline 0.

    One feature group per player; a permutation costs ``P`` rows (the baseline is evaluated once),
    so ``n_samples = (budget - 1) // P``. captum accumulates in float32 (about 1e-7 relative).
    """
    from captum.attr import ShapleyValueSampling

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(value(x.detach().cpu().numpy() > 0.5))

    torch.manual_seed(seed)
    attribution = ShapleyValueSampling(forward).attribute(
        torch.ones(1, n_players, dtype=torch.float64), baselines=0.0, feature_mask=torch.arange(n_players)[None],
        n_samples=(budget - 1) // n_players, perturbations_per_eval=n_players,
    )
    return Outcome(attribution[0].double().numpy())


#: Seed shares: ours and shap run every seed (shap: a fifth at P = 64, where a run takes seconds);
#: the other peers a fifth (a tenth at P = 64); shapiq's SVARM takes about a minute per run at
#: P = 64 and 80,000 coalitions, so there it runs only at budgets up to 5 blocks, on 3 seeds.
_PEER = {"share": 0.2, "share_large": 0.1}
METHODS: tuple[Method, ...] = (
    Method("auto", ours("auto"), reports_se=True, share_large=0.2),  # at P = 64 regression adjustment takes 7-24 s a run
    Method("leverage", ours("leverage"), reports_se=True),
    Method("stratified", ours("stratified"), reports_se=True),
    Method("stratified antithetic", ours("stratified", antithetic=True), reports_se=True),
    Method("permutation", ours("permutation"), reports_se=True),
    Method("kernel", ours("kernel"), reports_se=True),
    Method("shap Permutation", shap_permutation, share_large=0.2),
    Method("shapiq PermutationSamplingSV", shapiq_approximator("PermutationSamplingSV"), **_PEER),
    Method("shapiq KernelSHAP", shapiq_approximator("KernelSHAP", pairing_trick=True), **_PEER),
    Method("shapiq SVARM", shapiq_approximator("SVARM"), share=0.2, share_large=0.0,
           max_budget_large=2 + 5 * block_cost(64)),
    Method("shapiq StratifiedSamplingSV", shapiq_approximator("StratifiedSamplingSV"), **_PEER),
    Method("shapiq UnbiasedKernelSHAP", shapiq_approximator("UnbiasedKernelSHAP", pairing_trick=True), **_PEER),
    Method("captum ShapleyValueSampling", captum_sampling, **_PEER),
)
#: Short column names of the tables.
SHORT = {
    "auto": "auto", "leverage": "lev", "stratified": "strat", "stratified antithetic": "strat-anti", "permutation": "perm",
    "kernel": "kernel", "shap Permutation": "shap", "shapiq PermutationSamplingSV": "iq-perm",
    "shapiq KernelSHAP": "iq-kernel", "shapiq SVARM": "iq-SVARM", "shapiq StratifiedSamplingSV": "iq-strat",
    "shapiq UnbiasedKernelSHAP": "iq-UKS", "captum ShapleyValueSampling": "captum",
}
REFERENCE = "shap Permutation"


# ---------------------------------------------------------------------------------------------
# checks that each peer computes the Shapley values of our game
# ---------------------------------------------------------------------------------------------


def peer_checks() -> list[str]:
    """Drive every peer on small games with known values; raise if one disagrees.

    * shap: ``ExactExplainer`` with the same model and masker equals our exact values (so the
      masking hides exactly the absent players); ``PermutationExplainer`` is exact, with one
      permutation, on an additive game plus a pair term (its forward-and-back walk makes it so).
    * shapiq: every approximator at a large budget converges to our exact values of a
      redundant game with P = 6; ``SVARM`` and ``UnbiasedKernelSHAP`` are exact at ``2^P``.
    * captum: exact on an additive game with one permutation; converges on the redundant game.
    * SOUM: our closed form equals shapiq's ``exact_values("SV", 1)`` and its value function.
    """
    import shap

    lines = []
    n = 6
    redundant = redundant_value(n, groups=2, seed=5)
    exact = exact_values(redundant, n)
    w = np.random.default_rng(0).normal(size=n)

    def pair(keep: np.ndarray) -> np.ndarray:
        z = keep.astype(float)
        return z @ w + 0.7 * z[:, 0] * z[:, 1]

    exact_pair = exact_values(pair, n)
    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap_exact = shap.explainers.Exact(Counted(redundant, n), masker)(np.ones((1, n)), silent=True).values[0]
    counted = Counted(pair, n)
    one_perm = shap_permutation(counted, n, 2 * n + 1, seed=0).values
    checks = [
        ("shap ExactExplainer vs our exact (redundant game, P=6)", np.abs(shap_exact - exact).max(), 1e-12),
        (f"shap PermutationExplainer, 1 permutation ({counted.rows} rows), additive + pair game",
         np.abs(one_perm - exact_pair).max(), 1e-12),
    ]
    for method in METHODS:
        if method.name.startswith("shapiq"):
            err = np.abs(method.run(Counted(redundant, n), n, 20_000, 0).values - exact).max()
            checks.append((f"{method.name} at 20,000 coalitions (redundant game, P=6)", err, 0.02))
    for name in ("SVARM", "UnbiasedKernelSHAP"):
        err = np.abs(shapiq_approximator(name)(Counted(redundant, n), n, 2**n, 0).values - exact).max()
        checks.append((f"shapiq {name} at 2^P coalitions", err, 1e-10))

    def additive(keep: np.ndarray) -> np.ndarray:
        return keep.astype(float) @ w

    checks.append(("captum, 1 permutation, additive game",
                   np.abs(captum_sampling(Counted(additive, n), n, n + 1, 0).values - w).max(), 1e-6))
    checks.append(("captum at 20,000 coalitions (redundant game, P=6)",
                   np.abs(captum_sampling(Counted(redundant, n), n, 20_000, 0).values - exact).max(), 0.02))
    game, soum = shapiq_soum(64, 30, (1, 8), 0)
    reference = game.exact_values("SV", 1)
    probe = np.random.default_rng(1).random((16, 64)) < 0.6
    checks.append(("SOUM closed form vs shapiq exact_values",
                   np.abs(soum.shapley() - np.array([reference[(i,)] for i in range(64)])).max(), 1e-12))
    checks.append(("SOUM value vs shapiq's value function",
                   np.abs(soum(probe) - game.value_function(probe.astype(int))).max(), 1e-12))
    for label, err, tolerance in checks:
        status = "ok" if err <= tolerance else "FAILED"
        lines.append(f"{label}: max |diff| {err:.1e} (tolerance {tolerance:g}) {status}")
        if err > tolerance:
            raise RuntimeError(f"peer check failed: {label}: {err:.3g} > {tolerance:g}")
    return lines


# ---------------------------------------------------------------------------------------------
# the measurement
# ---------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """All runs of one method on one (game, budget): ``errors[seed, player]`` and friends."""

    errors: np.ndarray
    se: np.ndarray | None
    rows: np.ndarray
    seconds: np.ndarray
    picked: set[str] = field(default_factory=set)
    flagged: int = 0  # runs whose result said its SE is not to be trusted (se_reliable False)

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(self.errors**2)))


def run_cell(case: Case, budget: int, methods: tuple[Method, ...], seeds: int) -> dict[str, Cell]:
    """Every method on one (game, budget), over seeds ``0 .. n-1``; a skipped method is absent."""
    out = {}
    for method in methods:
        n_seeds = method.seeds(seeds, case.n_players, budget)
        if n_seeds == 0:
            continue
        errors, ses, rows, seconds, picked, flagged = [], [], [], [], set(), 0
        for seed in range(n_seeds):
            value = Counted(case.value, case.n_players)
            start = time.perf_counter()
            outcome = method.run(value, case.n_players, budget, seed)
            seconds.append(time.perf_counter() - start)
            if value.rows > budget:
                raise RuntimeError(f"{method.name} evaluated {value.rows} coalitions over the budget {budget}")
            errors.append(np.asarray(outcome.values, dtype=np.float64) - case.exact)
            rows.append(value.rows)
            if outcome.se is not None:
                ses.append(outcome.se)
            if outcome.picked:
                picked.add(outcome.picked)
            flagged += not outcome.se_reliable
        out[method.name] = Cell(np.array(errors), np.array(ses) if ses else None, np.array(rows),
                                np.array(seconds), picked, flagged)
    return out


def coverage(cell: Cell) -> dict | None:
    """Coverage of ``±1.96 SE`` over the players with sampling error (se above rounding in some seed)."""
    if cell.se is None:
        return None
    sampled = np.any(cell.se > ROUNDING, axis=0)
    covered = np.abs(cell.errors) <= 1.96 * np.nan_to_num(cell.se, nan=-1.0) + ROUNDING
    if not sampled.any():
        return {"n_players": 0, "exact_players": int((~sampled).sum())}
    per_player = covered[:, sampled].mean(axis=0)
    rms_se = float(np.sqrt(np.mean(np.nan_to_num(cell.se[:, sampled], nan=np.inf) ** 2)))
    rmse = float(np.sqrt(np.mean(cell.errors[:, sampled] ** 2)))
    return {
        "overall": float(covered[:, sampled].mean()), "min": float(per_player.min()),
        "median": float(np.median(per_player)), "max": float(per_player.max()),
        "n_players": int(sampled.sum()), "exact_players": int((~sampled).sum()),
        "se_over_rmse": rms_se / rmse if rmse > 0 else float("nan"), "n_seeds": int(cell.errors.shape[0]),
        "exact_ok": bool(np.all(np.abs(cell.errors[:, ~sampled]) <= ROUNDING * 100)),
    }


def calibrated_band(n_seeds: int, n_players: int, *, reps: int = 4000) -> tuple[float, float]:
    """Per-player coverage range of a perfectly calibrated 95% interval (binomial, players independent)."""
    rng = np.random.default_rng(0)
    draws = rng.binomial(n_seeds, 0.95, size=(reps, n_players)) / n_seeds
    return float(np.quantile(draws.min(axis=1), 0.025)), float(np.quantile(draws.max(axis=1), 0.975))


def ratio_interval(numerator: Cell, denominator: Cell, *, reps: int = 2000) -> tuple[float, float]:
    """90% bootstrap interval over seeds of ``RMSE(numerator) / RMSE(denominator)``."""
    rng = np.random.default_rng(0)
    a, b = np.mean(numerator.errors**2, axis=1), np.mean(denominator.errors**2, axis=1)
    ia = rng.integers(0, len(a), (reps, len(a)))
    ib = rng.integers(0, len(b), (reps, len(b)))
    ratios = np.sqrt(a[ia].mean(axis=1) / b[ib].mean(axis=1))
    return float(np.quantile(ratios, 0.05)), float(np.quantile(ratios, 0.95))


# ---------------------------------------------------------------------------------------------
# tables (computed once, rendered as text and markdown)
# ---------------------------------------------------------------------------------------------


def _g(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if abs(x) < 10 else f"{x:.0f}"


def _budget(case: Case, budget: int) -> str:
    return f"{budget:,} ({(budget - 2) / block_cost(case.n_players):.0f})"


def build_tables(results: list[tuple[Case, int, dict[str, Cell]]], methods: tuple[Method, ...]) -> dict:
    names = [m.name for m in methods]
    rmse_header = ["game", "P", "budget (blocks)", "auto is", f"{SHORT[REFERENCE]} RMSE"] + [
        SHORT[n] for n in names if n != REFERENCE] + ["shap / auto (90% CI)"]
    rmse_rows, cover_rows, verdicts = [], [], []
    se_methods = [m.name for m in methods if m.reports_se]
    cover_header = ["game", "budget (blocks)", "auto is"] + [SHORT[n] for n in se_methods] + ["calibrated", "seeds"]
    for case, budget, cells in results:
        ref = cells[REFERENCE]
        auto = cells["auto"]
        picked = ",".join(sorted(auto.picked))
        lo, hi = ratio_interval(ref, auto)
        gain = ref.rmse / auto.rmse if auto.rmse > 0 else float("inf")
        rmse_rows.append([case.name, str(case.n_players), _budget(case, budget), picked, f"{ref.rmse:.2e}"]
                         + [_g(cells[n].rmse / ref.rmse) if n in cells else "n/a" for n in names if n != REFERENCE]
                         + [f"{_g(gain)} ({_g(lo)}-{_g(hi)})"])
        row = [case.name, _budget(case, budget), picked]
        band_players, band_seeds = 0, 0
        cover_auto = None
        for n in se_methods:
            c = coverage(cells[n])
            if c is None or c["n_players"] == 0:
                row.append("exact")
                continue
            band_players, band_seeds = max(band_players, c["n_players"]), c["n_seeds"]
            row.append(f"{c['overall']:.3f} ({c['min']:.2f}/{c['median']:.2f}/{c['max']:.2f})"
                       + (f" SE flagged {cells[n].flagged}/{c['n_seeds']}" if cells[n].flagged else ""))
            if n == "auto":
                cover_auto = c
        band = calibrated_band(band_seeds, band_players) if band_players else (float("nan"), float("nan"))
        cover_rows.append(row + [f"{band[0]:.2f}-{band[1]:.2f}", str(band_seeds)])
        bar = 3.0 if case.family == "redundant" else 1.0
        noise = "" if gain >= bar or hi < bar else " (within noise: the 90% CI reaches the bar)"
        if case.family == "redundant":
            text = f"shap / auto RMSE {_g(gain)} (90% CI {_g(lo)}-{_g(hi)}), bar >= 3"
        else:
            text = f"auto / shap RMSE {_g(1 / gain)} (90% CI {_g(1 / hi)}-{_g(1 / lo)}), bar <= 1"
        verdicts.append((f"{case.name}, {_budget(case, budget)}: {text}{noise}", gain >= bar))
        if cover_auto is not None:
            ok = 0.90 <= cover_auto["overall"] <= 0.98
            text = (f"{case.name}, {_budget(case, budget)}: auto coverage {cover_auto['overall']:.3f} "
                    f"(per player {cover_auto['min']:.2f}-{cover_auto['max']:.2f}), bar 0.90-0.98")
            verdicts.append((text, ok))
    usage_header = ["method", "seeds per cell", "evaluations used / budget", "s per run (median)", "(max)"]
    usage_rows = []
    for n in names:
        ran = [(budget, cells[n]) for _, budget, cells in results if n in cells]
        used = np.concatenate([cell.rows / budget for budget, cell in ran])
        seconds = np.concatenate([cell.seconds for _, cell in ran])
        n_seeds = sorted({len(cell.rows) for _, cell in ran})
        usage_rows.append([n, "/".join(map(str, n_seeds)), f"{used.min():.3f}-{used.max():.3f}",
                           f"{np.median(seconds):.3f}", f"{seconds.max():.2f}"])
    return {"rmse": (rmse_header, rmse_rows), "coverage": (cover_header, cover_rows),
            "usage": (usage_header, usage_rows), "verdicts": verdicts}


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


LEGEND = (
    "RMSE against exact values, pooled over seeds and players, at equal game evaluations, relative to shap's "
    "PermutationExplainer (below 1 = better than shap). Columns: auto = `method=\"auto\"`; lev, strat, strat-anti, "
    "perm, kernel = our leverage, stratified, stratified antithetic, antithetic permutation and paired kernel "
    "estimators; "
    "iq-* = shapiq PermutationSamplingSV, KernelSHAP (pairing), SVARM, StratifiedSamplingSV, UnbiasedKernelSHAP "
    "(pairing); captum = ShapleyValueSampling. Budget in coalitions (stratified blocks of P(P-1))."
)
COVER_LEGEND = (
    "Coverage of ±1.96 SE: overall (per player min/median/max), over the players with sampling error. "
    "`calibrated`: the per-player min-max range a perfectly calibrated 95% interval gives with this many seeds."
)


def machine() -> str:
    """The CPU model (from ``/proc/cpuinfo`` where there is one) and the threads torch uses."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if models:
            name = f"{models[0]}, {len(models)} cores"
    return f"{name}, torch {torch.get_num_threads()} threads"


def report(results, methods, *, header_lines: list[str], checks: list[str], notes: list[str], elapsed: float,
           markdown: bool) -> str:
    """The whole report as text (aligned columns) or markdown."""
    tables = build_tables(results, methods)
    render = render_markdown if markdown else render_text
    out = list(header_lines)
    out += ["", "Peer checks (each peer on our game; its exact limit against our exact values)" if not markdown
            else "**Peer checks** (each peer on our game; its exact limit against our exact values)", ""]
    out += [f"- {line}" for line in checks]
    out += ["", "RMSE at equal evaluations" if not markdown else "**RMSE at equal evaluations**", "",
            LEGEND, "", render(*tables["rmse"]), ""]
    out += ["Coverage of the 95% intervals" if not markdown else "**Coverage of the 95% intervals**", "",
            COVER_LEGEND, "", render(*tables["coverage"]), ""]
    out += ["Evaluations and time" if not markdown else "**Evaluations and time**", "", render(*tables["usage"]), ""]
    out += ["Acceptance bar" if not markdown else "**Acceptance bar**", ""]
    out += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in tables["verdicts"]]
    if notes:
        out += ["", "Notes" if not markdown else "**Notes**", ""] + [f"- {n}" for n in notes]
    out += ["", f"Total time {elapsed / 60:.1f} min."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50,
                        help="seeds per cell for ours and shap (other peers: a fifth; at P = 64 fewer, see METHODS)")
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "miam_explain_bench_estimators",
                        help="folder for the trained model and the model games' value tables")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as markdown here")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2")
    start = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seeds = 6 if args.quick else args.seeds
    small, large = ((20,), (5,)) if args.quick else ((10, 20, 40), (5, 10, 20))

    checks = peer_checks()
    _log("peer checks: all ok")
    cases = [redundant_case(12, 1, small), redundant_case(12, 3, small)]
    if not args.quick:
        cases += [redundant_case(19, 1, small), redundant_case(19, 1, small, unequal=True),
                  redundant_case(19, 3, small)]
    args.cache.mkdir(parents=True, exist_ok=True)
    found, notes = model_cases(args.cache, small, build=not args.quick)
    cases += found
    cases.append(soum_case(100, (1, 8), large, seed=0))
    if not args.quick:
        cases.append(soum_case(50, None, large[1:2], seed=1))
    results = []
    for case in cases:
        for budget in case.budgets:
            cell_start = time.perf_counter()
            cells = run_cell(case, budget, METHODS, seeds)
            results.append((case, budget, cells))
            auto, ref = cells["auto"], cells[REFERENCE]
            _log(f"{case.name} P={case.n_players} budget {budget}: auto {auto.rmse:.2e} shap {ref.rmse:.2e} "
                 f"({time.perf_counter() - cell_start:.0f} s)")
    elapsed = time.perf_counter() - start
    header = [
        f"Shapley estimators at equal evaluations, {datetime.date.today().isoformat()}, {machine()}; "
        f"{seeds} seeds per cell for ours" + (" (--quick)" if args.quick else ""),
    ]
    for markdown, write in ((False, print), (True, args.markdown.write_text if args.markdown else None)):
        if write is not None:
            write(report(results, METHODS, header_lines=header, checks=checks, notes=notes, elapsed=elapsed,
                         markdown=markdown))


if __name__ == "__main__":
    main()
