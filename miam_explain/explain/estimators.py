"""Shapley-value estimators: exact, antithetic permutation sampling and paired KernelSHAP.

Every estimator is a small class whose constructor stores its options (and
creates its random generator from ``seed``) and whose one method
``estimate(game, budget)`` returns a :class:`ShapleyResult`. Estimators are
model-agnostic: they only call a :class:`~miam_explain.explain.game.Game` on
boolean coalition matrices (``True`` = player present) and do all the
arithmetic in vectorised numpy. Values may carry trailing dimensions
(``value_shape``, e.g. ``(n_sites, n_targets)``); all the math broadcasts over
them.

* :class:`ExactEstimator` evaluates all ``2^P`` coalitions and computes Shapley
  values, Banzhaf values and (optionally) pairwise Shapley interaction indices
  from the value table in ``O(P·2^P)`` (``O(P²·2^P)`` for interactions).
* :class:`PermutationEstimator` samples permutations paired with their reverse
  (antithetic sampling); it is exactly efficient and reports standard errors.
* :class:`KernelEstimator` is KernelSHAP with paired sampling and the efficiency
  constraint solved exactly (Covert & Lee 2021), with standard errors.
* :func:`choose_method` picks ``"exact"`` or ``"permutation"`` for ``method="auto"``.

Sampling estimators stop at ``budget`` game evaluations (coalition rows) or at
convergence, when the largest standard error is at most ``tol`` times the range
of the values (the rule of SAGE, Covert et al. 2020).

See ``docs/estimators.md`` for the math, the references and the comparison
with shap, captum and shapiq.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from miam_explain.errors import ConfigError
from miam_explain.explain.game import Game

__all__ = [
    "MAX_EXACT_PLAYERS",
    "ShapleyResult",
    "ExactEstimator",
    "PermutationEstimator",
    "KernelEstimator",
    "choose_method",
    "coalitions_from_bitmasks",
    "shapley_from_table",
    "banzhaf_from_table",
    "interactions_from_table",
]

#: Largest number of players :class:`ExactEstimator` accepts (``2^20`` coalitions).
MAX_EXACT_PLAYERS = 20
#: Cap on the number of float64 elements of per-sample temporaries (32 MiB).
_CHUNK_ELEMENTS = 2**22


@dataclasses.dataclass(frozen=True, eq=False)
class ShapleyResult:
    """Shapley values of a game with their uncertainty and provenance.

    Plain numpy; :mod:`miam_explain.explain` turns it into a labelled
    ``xarray.Dataset``. ``value_shape`` is the shape of one coalition's value
    (``()`` for a scalar game).

    Attributes:
        values: ``float64[P, *value_shape]`` Shapley values; they sum over
            players to ``v_full - v_empty``.
        se: ``float64[P, *value_shape]`` standard errors (0 for exact, NaN when a
            sampled estimate rests on fewer than two samples).
        v_empty: ``float64[*value_shape]`` value of the empty coalition.
        v_full: ``float64[*value_shape]`` value of the grand coalition.
        n_evaluations: Number of coalitions (game rows) evaluated.
        method: ``"exact"``, ``"permutation"`` or ``"kernel"``.
        budget: The budget the estimator was given (``None`` for none).
        converged: ``True`` for exact; for sampling, ``True`` when the stopping
            rule ``max(se) <= tol * (max(values) - min(values))`` held at the end.
        players: Names of the ``P`` players.
        interactions: ``float64[P, P, *value_shape]`` pairwise Shapley
            interaction index (symmetric, zero diagonal), or ``None``.
        banzhaf: ``float64[P, *value_shape]`` Banzhaf values, or ``None``.
        seed: Seed of the estimator's random generator (``None`` for exact).
    """

    values: np.ndarray
    se: np.ndarray
    v_empty: np.ndarray
    v_full: np.ndarray
    n_evaluations: int
    method: str
    budget: int | None
    converged: bool
    players: tuple[str, ...]
    interactions: np.ndarray | None = None
    banzhaf: np.ndarray | None = None
    seed: int | None = None

    @property
    def efficiency_gap(self) -> np.ndarray:
        """``float64[*value_shape]``: ``sum(values) - (v_full - v_empty)``, zero up to rounding."""
        return self.values.sum(axis=0) - (self.v_full - self.v_empty)


# ----------------------------------------------------------------------------------------------------------------------
# helpers shared by all estimators


def _n_players(game: Game) -> int:
    n_players = int(game.n_players)
    if n_players < 1:
        raise ConfigError("the game has no players; define at least one player to explain")
    return n_players


def _evaluate(game: Game, keep: np.ndarray, value_shape: tuple[int, ...] | None) -> np.ndarray:
    """Call the game and check the shape of what it returns.

    Args:
        game: The game.
        keep: ``bool[C, P]`` coalitions.
        value_shape: Expected shape of one value, or ``None`` to accept any.

    Returns:
        ``float64[C, *value_shape]``.
    """
    values = np.asarray(game(keep), dtype=np.float64)
    if values.ndim < 1 or values.shape[0] != keep.shape[0]:
        raise ValueError(f"the game returned shape {values.shape} for {keep.shape[0]} coalitions; expected (C, ...)")
    if value_shape is not None and values.shape[1:] != value_shape:
        raise ValueError(f"the game returned values of shape {values.shape[1:]}, earlier {value_shape}")
    return values


def _endpoints(game: Game, n_players: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the empty and the grand coalition in one call; returns ``(v_empty, v_full)``."""
    keep = np.zeros((2, n_players), dtype=bool)
    keep[1] = True
    values = _evaluate(game, keep, None)
    return values[0], values[1]


def _check_budget(budget: int | None) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise ConfigError(f"budget must be a whole number of game evaluations, got {budget!r}")
    return int(budget)


def _check_tol(tol: float | None) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise ConfigError(f"tol must be a positive number (e.g. 0.01), got {tol!r}")
    tol = float(tol)
    if not (math.isfinite(tol) and tol > 0):
        raise ConfigError(f"tol must be a positive number (e.g. 0.01), got {tol}")
    return tol


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative whole number (e.g. 0), got {seed!r}")
    return int(seed)


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _is_converged(values: np.ndarray, se: np.ndarray, tol: float | None) -> bool:
    """SAGE's rule: ``max(se) <= tol * (max(values) - min(values))``, over all players and outputs."""
    if tol is None or not np.all(np.isfinite(se)):
        return False
    spread = float(values.max() - values.min())
    return bool(se.max() <= tol * spread)


class _RunningMoments:
    """Running mean and sum of squared deviations of ``float64[n, *shape]`` samples (Chan et al.'s merge)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, samples: np.ndarray) -> None:
        n_batch = samples.shape[0]
        if n_batch == 0:
            return
        mean_batch = samples.mean(axis=0)
        m2_batch = np.square(samples - mean_batch).sum(axis=0)
        if self.mean is None or self.m2 is None:
            self.n, self.mean, self.m2 = n_batch, mean_batch, m2_batch
            return
        n_total = self.n + n_batch
        delta = mean_batch - self.mean
        self.mean = self.mean + delta * (n_batch / n_total)
        self.m2 = self.m2 + m2_batch + np.square(delta) * (self.n * n_batch / n_total)
        self.n = n_total

    def standard_error(self) -> np.ndarray:
        """``sqrt(sample variance / n)``; NaN while ``n < 2``."""
        assert self.m2 is not None  # internal invariant: called after an update
        if self.n < 2:
            return np.full_like(self.m2, np.nan)
        return np.sqrt(self.m2 / (self.n - 1) / self.n)


def _sample_chunk(n_players: int, value_shape: tuple[int, ...]) -> int:
    """Number of samples whose ``[n, P, *value_shape]`` temporaries fit in ``_CHUNK_ELEMENTS``."""
    return max(1, _CHUNK_ELEMENTS // (n_players * max(1, math.prod(value_shape))))


# ----------------------------------------------------------------------------------------------------------------------
# exact


def coalitions_from_bitmasks(bitmasks: np.ndarray, n_players: int) -> np.ndarray:
    """Turn coalition bitmasks into a coalition matrix.

    Args:
        bitmasks: ``int[C]``; bit ``i`` is set when player ``i`` is present.
        n_players: ``P``.

    Returns:
        ``bool[C, P]`` coalition matrix.
    """
    bitmasks = np.asarray(bitmasks, dtype=np.int64)
    return ((bitmasks[:, None] >> np.arange(n_players, dtype=np.int64)) & 1).astype(bool)


def _table_players(table: np.ndarray) -> int:
    n_players = int(table.shape[0]).bit_length() - 1
    if n_players < 1 or table.shape[0] != 1 << n_players:
        raise ValueError(f"a value table needs 2^P rows (P >= 1), got {table.shape[0]}")
    return n_players


def _coalition_sizes(n_players: int) -> np.ndarray:
    """``int64[2^P]``: number of players in each bitmask coalition."""
    index = np.arange(1 << n_players, dtype=np.int64)
    sizes = np.zeros(1 << n_players, dtype=np.int64)
    for i in range(n_players):
        sizes += (index >> i) & 1
    return sizes


def shapley_from_table(table: np.ndarray) -> np.ndarray:
    """Exact Shapley values from a complete value table, in ``O(P·2^P)``.

    ``phi_i = sum_{S ⊆ N∖{i}} |S|!(P-|S|-1)!/P! [v(S ∪ {i}) - v(S)]``, written as
    one weighted sum over the table per player: a coalition ``T`` enters with
    weight ``(|T|-1)!(P-|T|)!/P!`` when ``i ∈ T`` and ``-|T|!(P-|T|-1)!/P!`` when not.

    Args:
        table: ``float64[2^P, *value_shape]``; row ``k`` is the value of the
            coalition whose bitmask is ``k`` (bit ``i`` = player ``i``).

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = _table_players(table)
    # w_out[s] = s!(P-s-1)!/P! = 1 / (P * C(P-1, s)); w_in[s] = w_out[s-1].
    w_out = np.array([1.0 / (n_players * math.comb(n_players - 1, s)) for s in range(n_players)] + [0.0])
    w_in = np.concatenate([[0.0], w_out[:-1]])
    return _semivalue(table, w_in, w_out)


def _semivalue(table: np.ndarray, w_in: np.ndarray, w_out: np.ndarray) -> np.ndarray:
    """``phi_i = sum_T w_in[|T|] v(T) [i in T] - w_out[|T|] v(T) [i not in T]``, one weighted sum per player.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.
        w_in: ``float64[P + 1]`` weight of a coalition of each size that holds ``i``.
        w_out: ``float64[P + 1]`` weight of a coalition of each size that lacks ``i``.

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = _table_players(table)
    flat = table.reshape(table.shape[0], -1)
    sizes = _coalition_sizes(n_players)
    weight_in, weight_out = w_in[sizes], w_out[sizes]
    index = np.arange(table.shape[0], dtype=np.int64)
    out = np.empty((n_players, flat.shape[1]))
    for i in range(n_players):
        present = ((index >> i) & 1).astype(bool)
        out[i] = np.where(present, weight_in, -weight_out) @ flat
    return out.reshape((n_players, *table.shape[1:]))


def banzhaf_from_table(table: np.ndarray) -> np.ndarray:
    """Exact Banzhaf values: ``beta_i = 2^{1-P} sum_{S ⊆ N∖{i}} [v(S ∪ {i}) - v(S)]``.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = _table_players(table)
    scale = np.full(n_players + 1, 0.5 ** (n_players - 1))
    return _semivalue(table, scale, scale)


def interactions_from_table(table: np.ndarray) -> np.ndarray:
    """Exact pairwise Shapley interaction index (Grabisch & Roubens 1999), in ``O(P²·2^P)``.

    ``I_ij = sum_{S ⊆ N∖{i,j}} |S|!(P-|S|-2)!/(P-1)! [v(S∪{i,j}) - v(S∪{i}) - v(S∪{j}) + v(S)]``
    for ``i != j``. The diagonal, where the pairwise index is not defined, is 0.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.

    Returns:
        ``float64[P, P, *value_shape]``, symmetric in the first two axes.
    """
    n_players = _table_players(table)
    flat = table.reshape(table.shape[0], -1)
    out = np.zeros((n_players, n_players, flat.shape[1]))
    if n_players >= 2:
        sizes = _coalition_sizes(n_players)
        # padded[t + 2] = t!(P-t-2)!/(P-1)! = 1 / ((P-1) * C(P-2, t)) for 0 <= t <= P-2, else 0.
        padded = np.zeros(n_players + 3)
        padded[2 : n_players + 1] = [
            1.0 / ((n_players - 1) * math.comb(n_players - 2, t)) for t in range(n_players - 1)
        ]
        # A coalition T with |T| = s enters with S = T minus the pair members it holds.
        w_both, w_one, w_none = padded[sizes], -padded[sizes + 1], padded[sizes + 2]
        index = np.arange(table.shape[0], dtype=np.int64)
        for i in range(n_players):
            has_i = ((index >> i) & 1).astype(bool)
            for j in range(i + 1, n_players):
                has_j = ((index >> j) & 1).astype(bool)
                coef = np.where(has_i & has_j, w_both, np.where(has_i ^ has_j, w_one, w_none))
                out[i, j] = out[j, i] = coef @ flat
    return out.reshape((n_players, n_players, *table.shape[1:]))


class ExactEstimator:
    """Exact Shapley values from all ``2^P`` coalitions.

    The coalitions are evaluated in chunks of ``chunk_size`` rows (so that the
    game can batch them) into a value table indexed by the coalition's
    bitmask; Shapley and Banzhaf values, and optionally pairwise Shapley
    interaction indices, are then weighted sums over that table.

    Args:
        interactions: Also compute the pairwise Shapley interaction index.
        chunk_size: Coalitions per game call.
        progress: Show a progress bar over the chunks.

    Example:
        >>> import numpy as np
        >>> from miam_explain.explain.game import FunctionGame
        >>> game = FunctionGame(lambda keep: (keep[:, 0] & keep[:, 1]).astype(float), players=("a", "b", "c"))
        >>> ExactEstimator(progress=False).estimate(game).values
        array([0.5, 0.5, 0. ])
    """

    method: ClassVar[str] = "exact"

    def __init__(self, interactions: bool = False, *, chunk_size: int = 2**16, progress: bool = True) -> None:
        self.interactions = bool(interactions)
        self.chunk_size = _check_positive("chunk_size", chunk_size)
        self.progress = bool(progress)

    def estimate(self, game: Game, budget: int | None = None) -> ShapleyResult:
        """Evaluate every coalition and compute the exact values.

        Args:
            game: The game to explain.
            budget: Optional cap on game evaluations; it must be at least ``2^P``.

        Returns:
            A :class:`ShapleyResult` with ``se = 0`` and ``banzhaf`` (and
            ``interactions`` when asked for) filled in.

        Raises:
            ConfigError: more than :data:`MAX_EXACT_PLAYERS` players, or a budget below ``2^P``.
        """
        n_players = _n_players(game)
        budget = _check_budget(budget)
        if n_players > MAX_EXACT_PLAYERS:
            raise ConfigError(
                f"exact Shapley values for {n_players} players need all 2^{n_players} = {2**n_players:,} coalitions "
                f"(each one a forward pass per site), beyond the limit of {MAX_EXACT_PLAYERS} players; "
                "use sampling instead: method='permutation' or method='kernel' with a budget or tol"
            )
        n_coalitions = 1 << n_players
        if budget is not None and budget < n_coalitions:
            raise ConfigError(
                f"exact Shapley values for {n_players} players need 2^{n_players} = {n_coalitions:,} game evaluations, "
                f"but the budget is {budget:,}; raise the budget or use method='permutation' or 'kernel'"
            )
        table = self._value_table(game, n_players)
        return ShapleyResult(
            values=shapley_from_table(table),
            se=np.zeros((n_players, *table.shape[1:])),
            v_empty=table[0].copy(),
            v_full=table[-1].copy(),
            n_evaluations=n_coalitions,
            method=self.method,
            budget=budget,
            converged=True,
            players=tuple(game.players),
            interactions=interactions_from_table(table) if self.interactions else None,
            banzhaf=banzhaf_from_table(table),
        )

    def _value_table(self, game: Game, n_players: int) -> np.ndarray:
        """``float64[2^P, *value_shape]``: the game evaluated on every bitmask coalition."""
        n_coalitions = 1 << n_players
        table: np.ndarray | None = None
        starts = range(0, n_coalitions, self.chunk_size)
        for start in tqdm(starts, desc="exact", unit="chunk", disable=not self.progress, leave=False):
            stop = min(start + self.chunk_size, n_coalitions)
            keep = coalitions_from_bitmasks(np.arange(start, stop), n_players)
            values = _evaluate(game, keep, None if table is None else table.shape[1:])
            if table is None:
                table = np.empty((n_coalitions, *values.shape[1:]))
            table[start:stop] = values
        assert table is not None  # at least one chunk
        return table


# ----------------------------------------------------------------------------------------------------------------------
# sampling


class _SamplingEstimator(abc.ABC):
    """The loop shared by sampling estimators: draw a batch, update running moments, check the stop rule.

    A subclass defines the cost of one sample (game evaluations) and how a batch
    of samples turns into per-sample Shapley estimates, each of which is exactly
    efficient; the estimate is their mean and the standard error their standard
    deviation over ``sqrt(n)``.
    """

    method: ClassVar[str]

    def __init__(self, seed: int, tol: float | None, batch: int, progress: bool) -> None:
        self.seed = _check_seed(seed)
        self.tol = _check_tol(tol)
        self._batch = batch
        self.progress = bool(progress)
        self._rng = np.random.default_rng(self.seed)

    @abc.abstractmethod
    def _cost(self, n_players: int) -> int:
        """Game evaluations per sample."""

    @abc.abstractmethod
    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: _RunningMoments
    ) -> None:
        """Draw ``n_samples`` samples, evaluate them and feed their per-sample estimates to ``moments``."""

    def _min_budget(self, n_players: int) -> int:
        return 2 + self._cost(n_players)

    def estimate(self, game: Game, budget: int | None = None) -> ShapleyResult:
        """Sample until the budget is spent or the stopping rule holds.

        The generator created at construction advances with every call, so a
        second call on the same estimator draws new samples.

        Args:
            game: The game to explain.
            budget: Maximum number of game evaluations (coalition rows), the
                empty and grand coalitions included; ``None`` to stop on ``tol`` alone.

        Returns:
            A :class:`ShapleyResult` with standard errors.

        Raises:
            ConfigError: neither a budget nor ``tol`` was given, or the budget is
                too small for one sample.
        """
        n_players = _n_players(game)
        budget = _check_budget(budget)
        if budget is None and self.tol is None:
            raise ConfigError(f"{self.method} sampling needs a stopping rule: give a budget, a tol, or both")
        minimum = self._min_budget(n_players)
        if budget is not None and budget < minimum:
            raise ConfigError(
                f"a budget of {budget} game evaluations is too small for {self.method} sampling with {n_players} "
                f"players: one sample needs {minimum} (empty and full coalitions plus {self._cost(n_players)}); "
                f"use a budget of at least {minimum}, or method='exact' for a handful of players"
            )
        v_empty, v_full = _endpoints(game, n_players)
        n_evaluations = 2
        if n_players == 1:  # one player: phi = v_full - v_empty, no sampling needed
            values = (v_full - v_empty)[None]
            return ShapleyResult(
                values=values,
                se=np.zeros_like(values),
                v_empty=v_empty,
                v_full=v_full,
                n_evaluations=n_evaluations,
                method=self.method,
                budget=budget,
                converged=True,
                players=tuple(game.players),
                seed=self.seed,
            )
        cost = self._cost(n_players)
        moments = _RunningMoments()
        converged = False
        with tqdm(total=budget, desc=self.method, unit="eval", disable=not self.progress, leave=False) as bar:
            bar.update(n_evaluations)
            while True:
                n_samples = self._batch
                if budget is not None:
                    n_samples = min(n_samples, (budget - n_evaluations) // cost)
                if n_samples == 0:
                    break
                self._sample(game, n_samples, v_empty, v_full, moments)
                n_evaluations += n_samples * cost
                bar.update(n_samples * cost)
                assert moments.mean is not None  # updated above
                se = moments.standard_error()
                converged = _is_converged(moments.mean, se, self.tol)
                spread = float(moments.mean.max() - moments.mean.min())
                if np.all(np.isfinite(se)) and spread > 0:
                    bar.set_postfix(se_over_range=f"{float(se.max()) / spread:.3g}", refresh=False)
                if converged:
                    break
        assert moments.mean is not None  # the minimum budget allows one sample
        return ShapleyResult(
            values=moments.mean,
            se=moments.standard_error(),
            v_empty=v_empty,
            v_full=v_full,
            n_evaluations=n_evaluations,
            method=self.method,
            budget=budget,
            converged=converged,
            players=tuple(game.players),
            seed=self.seed,
        )


class PermutationEstimator(_SamplingEstimator):
    """Antithetic permutation sampling (Castro et al. 2009; antithetic pairs as in Mitchell et al. 2022).

    Each sample is a uniformly random permutation ``π`` paired with its reverse.
    The marginal contributions ``v(pre_π(i) ∪ {i}) - v(pre_π(i))`` along ``π``
    and along the reverse are averaged into one per-sample estimate. A batch of
    ``batch_permutations`` samples is evaluated in one game call: the interior
    prefixes of ``π`` and of its reverse, ``2(P-1)`` rows per sample; the empty
    and the grand coalition are evaluated once for the whole run. Every
    per-sample estimate sums to ``v_full - v_empty``, so the estimate is exactly
    efficient; the standard error is the standard deviation of the per-sample
    estimates over ``sqrt(n_samples)``. Permutations come from the argsort of
    uniforms drawn sample by sample, so the result does not depend on
    ``batch_permutations`` (when stopping on the budget).

    Args:
        seed: Seed of the generator created here.
        tol: Stop when ``max(se) <= tol * (max(values) - min(values))``; ``None`` to run to the budget.
        batch_permutations: Antithetic pairs per game call.
        progress: Show a progress bar.

    Example:
        >>> import numpy as np
        >>> from miam_explain.explain.game import FunctionGame
        >>> w = np.array([1.0, 2.0, 3.0])
        >>> game = FunctionGame(lambda keep: keep @ w, players=("a", "b", "c"))
        >>> PermutationEstimator(seed=0, progress=False).estimate(game, budget=20).values
        array([1., 2., 3.])
    """

    method: ClassVar[str] = "permutation"

    def __init__(
        self, seed: int = 0, tol: float | None = None, *, batch_permutations: int = 32, progress: bool = True
    ) -> None:
        super().__init__(seed, tol, _check_positive("batch_permutations", batch_permutations), progress)
        self.batch_permutations = self._batch

    def _cost(self, n_players: int) -> int:
        return 2 * (n_players - 1)

    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: _RunningMoments
    ) -> None:
        n_players = game.n_players
        order = np.argsort(self._rng.random((n_samples, n_players)), axis=1)  # order[s, k]: k-th player of π_s
        order = np.concatenate([order, order[:, ::-1]])  # π_s, then the reverse of π_s
        position = np.argsort(order, axis=1)  # position[s, i]: where player i stands in the order
        sizes = np.arange(1, n_players)
        keep = position[:, None, :] < sizes[None, :, None]  # [2n, P-1, P]: interior prefixes
        interior = _evaluate(game, keep.reshape(-1, n_players), v_empty.shape)
        value_shape = v_empty.shape
        interior = interior.reshape((2 * n_samples, n_players - 1, *value_shape))
        chunk = _sample_chunk(n_players, value_shape)
        for start in range(0, n_samples, chunk):
            rows = np.r_[start : min(start + chunk, n_samples)]
            both = np.concatenate([rows, rows + n_samples])
            m = rows.size
            prefix = np.concatenate(
                [
                    np.broadcast_to(v_empty, (2 * m, 1, *value_shape)),
                    interior[both],
                    np.broadcast_to(v_full, (2 * m, 1, *value_shape)),
                ],
                axis=1,
            )
            marginal = np.diff(prefix, axis=1)  # [2m, P, ...]: contribution of the k-th player of the order
            index = position[both].reshape((2 * m, n_players) + (1,) * len(value_shape))
            by_player = np.take_along_axis(marginal, index, axis=1)  # [2m, P, ...] per player
            moments.update(0.5 * (by_player[:m] + by_player[m:]))


class KernelEstimator(_SamplingEstimator):
    """KernelSHAP with paired sampling and an exact efficiency constraint (Covert & Lee 2021).

    Shapley values solve ``min_phi E[(v(z) - v(0) - zᵀphi)²]`` subject to
    ``1ᵀphi = v(1) - v(0)``, with ``z`` drawn from the Shapley kernel
    distribution (a size ``k ∈ {1, …, P-1}`` with probability ``∝ 1/(k(P-k))``,
    then a uniform subset of that size). The solution is

        ``phi = A⁻¹(b - 1 (1ᵀA⁻¹b - (v(1) - v(0))) / (1ᵀA⁻¹1))``,

    with ``A = E[zzᵀ]`` and ``b = E[z (v(z) - v(0))]``. ``A`` is known in closed
    form (``A_ii = 1/2``, ``A_ij = E[k(k-1)] / (P(P-1))``) and used exactly, the
    "unbiased KernelSHAP" of Covert & Lee; ``b`` is estimated by its sample mean.
    With paired sampling each sample is a subset ``z`` and its complement, and
    contributes ``b_s = (z (v(z) - v(0)) + (1-z)(v(1-z) - v(0))) / 2``.

    The estimate is then linear in ``b``: ``phi = C b + d`` with
    ``C = A⁻¹ - A⁻¹11ᵀA⁻¹ / (1ᵀA⁻¹1)``. Each per-sample estimate ``C b_s + d``
    sums exactly to ``v(1) - v(0)`` (efficiency holds by construction), and the
    standard error is the square root of ``diag(C Cov(b̂) Cᵀ)`` with ``Cov(b̂)``
    the sample covariance of the per-sample ``b_s`` over ``n`` (computed as the
    standard deviation of ``C b_s`` over ``sqrt(n)``; no batch means needed
    since ``A`` is exact). Sizes and subsets come from uniforms drawn sample by
    sample, so the result does not depend on ``batch_samples``.

    Args:
        seed: Seed of the generator created here.
        tol: Stop when ``max(se) <= tol * (max(values) - min(values))``; ``None`` to run to the budget.
        paired: Pair every subset with its complement (2 evaluations per sample).
        batch_samples: Samples per game call.
        progress: Show a progress bar.
    """

    method: ClassVar[str] = "kernel"

    def __init__(
        self,
        seed: int = 0,
        tol: float | None = None,
        paired: bool = True,
        *,
        batch_samples: int = 128,
        progress: bool = True,
    ) -> None:
        super().__init__(seed, tol, _check_positive("batch_samples", batch_samples), progress)
        self.paired = bool(paired)
        self.batch_samples = self._batch

    def _cost(self, n_players: int) -> int:
        return 2 if self.paired else 1

    @staticmethod
    def _kernel(n_players: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's constants for ``P`` players.

        Returns:
            The CDF ``float64[P-1]`` of the coalition size ``k = 1..P-1``, the
            matrix ``C float64[P, P]`` and the vector ``a float64[P]`` with
            ``d = a (v(1) - v(0))``.
        """
        sizes = np.arange(1, n_players)
        weights = 1.0 / (sizes * (n_players - sizes))
        probability = weights / weights.sum()
        off_diagonal = float(probability @ (sizes * (sizes - 1))) / (n_players * (n_players - 1))
        a_matrix = np.full((n_players, n_players), off_diagonal)
        np.fill_diagonal(a_matrix, 0.5)
        a_inverse = np.linalg.inv(a_matrix)
        a_inverse_one = a_inverse.sum(axis=1)
        total = a_inverse_one.sum()
        c_matrix = a_inverse - np.outer(a_inverse_one, a_inverse_one) / total
        return np.cumsum(probability), c_matrix, a_inverse_one / total

    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: _RunningMoments
    ) -> None:
        n_players = game.n_players
        cdf, c_matrix, offset_weights = self._kernel(n_players)
        uniforms = self._rng.random((n_samples, n_players + 1))
        size = 1 + np.minimum(np.searchsorted(cdf, uniforms[:, 0], side="right"), n_players - 2)
        rank = np.argsort(np.argsort(uniforms[:, 1:], axis=1), axis=1)
        subset = rank < size[:, None]  # [n, P], a uniform subset of the drawn size
        keep = np.concatenate([subset, ~subset]) if self.paired else subset
        value_shape = v_empty.shape
        gain = (_evaluate(game, keep, value_shape) - v_empty).reshape(keep.shape[0], -1)  # v(z) - v(0)
        offset = np.multiply.outer(offset_weights, v_full - v_empty).reshape(n_players, -1)
        # C b_s for b_s = z_s gain_s (rank one per subset): (C z_s) gain_sᵀ.
        projected = subset @ c_matrix.T  # [n, P]
        projected_complement = (~subset) @ c_matrix.T
        chunk = _sample_chunk(n_players, value_shape)
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            estimate = projected[start:stop, :, None] * gain[start:stop, None, :]
            if self.paired:
                complement_gain = gain[n_samples + start : n_samples + stop, None, :]
                complement = projected_complement[start:stop, :, None] * complement_gain
                estimate = 0.5 * (estimate + complement)
            moments.update((estimate + offset).reshape((stop - start, n_players, *value_shape)))


# ----------------------------------------------------------------------------------------------------------------------
# method="auto"


def choose_method(n_players: int, n_sites: int, budget: int | None) -> Literal["exact", "permutation"]:
    """The estimator ``method="auto"`` uses.

    Exact when its cost, ``2^P × n_sites`` model evaluations, fits the budget
    (and ``P <= MAX_EXACT_PLAYERS``); antithetic permutation sampling otherwise.
    Without a budget, exact whenever ``P <= MAX_EXACT_PLAYERS``.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on (1 for a global game).
        budget: Model evaluations allowed, counted per (coalition, site); ``None`` for no limit.

    Returns:
        ``"exact"`` or ``"permutation"``.

    Raises:
        ConfigError: a count that is not positive.
    """
    _check_positive("n_players", n_players)
    _check_positive("n_sites", n_sites)
    budget = _check_budget(budget)
    if n_players > MAX_EXACT_PLAYERS:
        return "permutation"
    if budget is None or 2**n_players * n_sites <= budget:
        return "exact"
    return "permutation"
