"""What every report shares: the model and split, its games, and one pass over the engine per batch of coalitions.

A report asks the model once per coalition for every site of the split (through the runtime's
:class:`~miam_explain.runtime.engine.Engine`). Each group of logits the engine yields goes to two
games that share its token cache:

* a :class:`~miam_explain.explain.games.PerformanceGame` weighted by ``float64[1 + B, N]`` site
  multiplicities: row 0 is all ones (the data itself), rows ``1..B`` are the spatial-block
  bootstrap resamples (:mod:`miam_explain.reports.bootstrap`);
* when the report maps a target, a :class:`~miam_explain.explain.games.PredictionGame` giving the
  per-site prediction of that target.

The logits are then dropped: intervals and maps come from these numbers, and the bootstrap
never calls the model again.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.format import text_values
from miam_explain.data.splits import block_labels
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.estimators import ExactEstimator, coalitions_from_bitmasks
from miam_explain.explain.games import (
    PerformanceGame,
    PredictionGame,
    performance_game,
    resolve_targets,
)
from miam_explain.reports.bootstrap import block_resamples, resample_weights
from miam_explain.reports.options import ReportOptions
from miam_explain.runtime.engine import Engine
from miam_explain.runtime.loading import model_and_data

__all__ = ["BLOCK_DEGREES", "CoalitionTable", "ReportContext", "SplitFacts", "open_context"]

#: Edge of the bootstrap blocks in degrees (the blocks of the spatial split).
BLOCK_DEGREES = 1.0
#: Fewest sites a report accepts in its split.
MIN_SITES = 10


@dataclass(frozen=True)
class CoalitionTable:
    """What a report keeps of ``C`` coalitions evaluated on the ``N`` sites of a split.

    Attributes:
        metric: ``float64[C]`` metric on the split.
        boot: ``float64[C, B]`` metric on each block-bootstrap resample.
        sites: ``float64[C, N]`` per-site prediction of the report's target, or ``None``
            when the report has no target.
    """

    metric: np.ndarray
    boot: np.ndarray
    sites: np.ndarray | None


@dataclass(frozen=True)
class SplitFacts:
    """The facts about a report's split and metric that every result carries into its page and summary.

    Attributes:
        metric: Metric key (``auc``, ``accuracy``).
        metric_name: The metric as printed (``AUC``, ``accuracy``).
        split: The split.
        n_sites: Sites in the split.
        n_blocks: Distinct 1° blocks among the sites.
        n_boot: Bootstrap resamples.
        target: The mapped target (``richness`` or a species id), or ``None``.
        target_units: Units of the per-site target.
    """

    metric: str
    metric_name: str
    split: str
    n_sites: int
    n_blocks: int
    n_boot: int
    target: str | None
    target_units: str

    def summary(self) -> dict:
        """The first keys of every ``summary.json``."""
        return {"metric": self.metric, "split": self.split, "n_sites": self.n_sites, "n_blocks": self.n_blocks,
                "n_boot": self.n_boot}

    def map_summary(self, sites: xr.DataArray, definition: str) -> dict:
        """The ``map`` entry of a summary: the target, its units, what the map shows and its range."""
        return {"target": self.target, "units": self.target_units, "definition": definition,
                "mean": float(sites.mean()), "min": float(sites.min()), "max": float(sites.max())}


@dataclass
class ReportContext:
    """The games of one split, the block bootstrap of their metric and the map target.

    Attributes:
        game: The plain performance game (its engine holds the token cache of every site).
        resampled: The same game weighted by ``float64[1 + B, N]`` site multiplicities (the data, then each resample).
        target_game: The per-site prediction game of the mapped target, or ``None``.
        ds: The consolidated dataset.
        blocks: ``int64[N]`` 1° block of every site.
        model_path: Checkpoint path (for provenance), or ``""`` for an in-memory model.
        data_path: Dataset path.
        split: The split.
        seed: Seed of the bootstrap and of the samplers.
        progress: Show progress bars.
    """

    game: PerformanceGame
    resampled: PerformanceGame
    target_game: PredictionGame | None
    ds: xr.Dataset
    blocks: np.ndarray
    model_path: str
    data_path: str
    split: str
    seed: int
    progress: bool

    @property
    def engine(self) -> Engine:
        """The engine every game of the report shares."""
        return self.game.engine

    @property
    def group(self) -> str:
        """The grouping whose members are the players."""
        return self.game.players_spec.grouping

    @property
    def model(self):
        """The model (in eval mode)."""
        return self.engine.model

    @property
    def n_sites(self) -> int:
        """Sites in the split ``N``."""
        return self.engine.n_sites

    @property
    def n_boot(self) -> int:
        """Bootstrap resamples ``B``."""
        return self.resampled.weights.shape[0] - 1

    def resampled_game(self, n_boot: int) -> PerformanceGame:
        """The performance game weighted by the data and its first ``n_boot`` resamples (rows ``0 .. n_boot``)."""
        game = self.resampled
        return PerformanceGame(game.engine, game.players_spec, game.context, game.data, metric=game.metric,
                               weights=game.weights[: 1 + n_boot])

    @cached_property
    def facts(self) -> SplitFacts:
        """The split, metric and target as the results record them."""
        target = None if self.target_game is None else self.target_game.target_names[0]
        return SplitFacts(
            metric=self.game.metric.name, metric_name=self.game.metric.label, split=self.split, n_sites=self.n_sites,
            n_blocks=int(np.unique(self.blocks).size), n_boot=self.n_boot, target=target,
            target_units="expected species" if target == "richness" else "probability",
        )

    def evaluate(self, coalitions: np.ndarray, *, desc: str = "coalitions") -> CoalitionTable:
        """Ask the model once about each coalition of players; keep the metrics and the per-site target.

        Args:
            coalitions: ``bool[C, P]`` coalitions of the game's players.
            desc: Progress-bar label.
        """
        return self.evaluate_tokens(self.resampled.token_keep(np.asarray(coalitions, dtype=bool)), desc=desc)

    def evaluate_all(self, *, report: str, noun: str, budget: int | None) -> tuple[np.ndarray, CoalitionTable]:
        """Evaluate every coalition of the players, as the exact reports do, after :meth:`check_exact`.

        Args:
            report: The report's name, for messages.
            noun: What the players are, plural (``bands``, ``modalities``), for messages.
            budget: Cap on model evaluations (coalition x site), or ``None``.

        Returns:
            ``(masks bool[2^P, P], table)``: the coalitions in bitmask order (row ``b`` holds player ``i``
            when bit ``i`` of ``b`` is set) and their :class:`CoalitionTable`.

        Raises:
            ConfigError: see :meth:`check_exact`.
        """
        self.check_exact(report=report, noun=noun, budget=budget)
        p = self.game.n_players
        masks = coalitions_from_bitmasks(np.arange(2**p), p)
        return masks, self.evaluate(masks, desc=f"combinations of the {noun}")

    def check_exact(self, *, report: str, noun: str, budget: int | None) -> None:
        """Refuse an exact report over too many players, or over a budget below ``2^P x sites`` (one-line fix).

        Raises:
            ConfigError: from :meth:`ExactEstimator.check <miam_explain.explain.estimators.ExactEstimator.check>`,
                with the report's own fix.
        """
        ExactEstimator.check(
            self.game.n_players, budget, n_sites=self.n_sites,
            lead=f"the {report} report evaluates every combination of the {noun}: ",
            players_fix="sample them with miam-explain shapley --method permutation instead",
            budget_fix="raise --budget or leave it out",
        )

    def each_logits(self, keep: torch.Tensor, *, desc: str) -> Iterator[torch.Tensor]:
        """The logits ``float[c, N, K]`` of each group of token keep-masks ``bool[C, T]``: one pass over the engine,
        with a progress bar over the coalitions."""
        with tqdm(total=len(keep), desc=desc, unit="coal", disable=not self.progress, leave=False) as bar:
            for _, logits in self.engine.iter_logits(keep):
                yield logits
                bar.update(len(logits))

    def evaluate_tokens(self, keep: torch.Tensor, *, desc: str = "subsets") -> CoalitionTable:
        """:meth:`evaluate` for token keep-masks ``bool[C, T]`` (AND-ed with each site's observed tokens).

        One pass over the engine: each group of logits goes to the weighted performance game
        (row 0: the plain metric, rows ``1..B``: the resamples) and to the target's prediction game.
        """
        values, sites = [], []
        for logits in self.each_logits(keep, desc=desc):
            values.append(self.resampled.reduce(logits))
            if self.target_game is not None:
                sites.append(self.target_game.reduce(logits)[..., 0])
        table = np.concatenate(values) if values else np.empty((0, 1 + self.n_boot))
        return CoalitionTable(
            metric=table[:, 0].copy(), boot=np.ascontiguousarray(table[:, 1:]),
            sites=None if self.target_game is None else (np.concatenate(sites) if sites else np.empty((0, self.n_sites))),
        )

    def site_values(self, values: np.ndarray, name: str, long_name: str) -> xr.DataArray:
        """``float[N]`` per-site values of the target as a ``DataArray`` over ``site`` with ``site_id``, ``lat``, ``lon``."""
        data, facts = self.game.data, self.facts
        return xr.DataArray(
            np.asarray(values, dtype=np.float64), dims="site", name=name,
            coords={"site": np.arange(len(values)), "site_id": ("site", np.asarray(data.site_id)),
                    "lat": ("site", np.asarray(data.lat, float)), "lon": ("site", np.asarray(data.lon, float))},
            attrs={"units": facts.target_units, "long_name": long_name, "target": str(facts.target)},
        )

    def provenance(self, report: str) -> dict:
        """Attributes recorded with every table and dataset of a report."""
        from miam_explain._version import __version__

        facts = self.facts
        return {
            "report": report, "grouping": self.group, "grouping_definition": self.game.players_spec.definition,
            "metric": facts.metric, "split": self.split, "n_sites": self.n_sites,
            "n_blocks": facts.n_blocks, "n_boot": self.n_boot,
            "bootstrap": f"{self.n_boot} resamples of whole {BLOCK_DEGREES:g} degree blocks (verde), percentile 95% intervals",
            "seed": self.seed, "model": self.model_path, "data": self.data_path, "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def open_context(model, data, *, group: str, options: ReportOptions, maps_target: bool) -> ReportContext:
    """Load the model and split behind a report, resolve the target and draw the block-bootstrap resamples.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset or path (``None``: the one recorded in the checkpoint).
        group: Grouping whose members are the players (built-in, or one of ``options.groupings``).
        options: The report's options.
        maps_target: The report maps ``options.target`` per site.

    Raises:
        ConfigError: an unknown target, or none for a report that maps one.
        SchemaError: an unknown grouping, user groupings that are not valid, or players that overlap.
        DataError: a split with under 10 sites, or with all its sites in one block.
    """
    model_path = "" if not isinstance(model, (str, os.PathLike)) else str(Path(model))
    loaded, ds = model_and_data(model, data, device=options.device)
    data_path = str(data) if isinstance(data, (str, os.PathLike)) else str(loaded.meta.get("data", {}).get("path", ""))
    game = performance_game(loaded, ds, group=group, groupings=options.groupings, split=options.split,
                            device=options.device, progress=False)
    split_data = game.data
    if len(split_data) < MIN_SITES:
        raise DataError(f"split {options.split!r} has only {len(split_data)} sites; a report needs at least "
                        f"{MIN_SITES}, pass --split all")
    target_game = None
    if maps_target:
        if options.target is None:
            raise ConfigError("this report maps a target per site; pass target='richness' or one species id")
        names, index = resolve_targets(str(options.target), list(text_values(ds["species"].values)), split_data.task,
                                       "probability")
        target_game = PredictionGame(game.engine, game.players_spec, game.context, split_data, target_names=names,
                                     target_index=index)
    blocks = block_labels(np.asarray(split_data.lon, float), np.asarray(split_data.lat, float), spacing=BLOCK_DEGREES)
    if np.unique(blocks).size < 2:
        raise DataError(f"the {len(split_data)} sites of split {options.split!r} lie in one {BLOCK_DEGREES:g} degree "
                        "block; the spatial-block bootstrap needs several, pass --split all")
    weights = resample_weights(block_resamples(blocks, options.n_boot, np.random.default_rng(options.seed)), len(split_data))
    resampled = PerformanceGame(game.engine, game.players_spec, game.context, split_data, metric=game.metric, weights=weights)
    return ReportContext(
        game=game, resampled=resampled, target_game=target_game, ds=ds, blocks=blocks, model_path=model_path,
        data_path=data_path, split=options.split, seed=options.seed, progress=options.progress,
    )
