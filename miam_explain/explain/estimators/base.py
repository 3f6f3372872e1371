"""What every estimator shares: the result, game calls with shape checks, the stopping rule, running moments.

Estimators are model-agnostic: they only call a :class:`~miam_explain.explain.game.Game` on
boolean coalition matrices (``True`` = player present) and do all the arithmetic in vectorised
numpy. Values may carry trailing dimensions (``value_shape``, e.g. ``(n_sites, n_targets)``); all
the math broadcasts over them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from miam_explain.errors import ConfigError
from miam_explain.explain.game import Game

__all__ = [
    "CHUNK_ELEMENTS",
    "MIN_SE_SAMPLES",
    "ShapleyResult",
    "RunningMoments",
    "check_players",
    "evaluate_game",
    "endpoints",
    "is_converged",
    "sample_chunk",
    "small_sample_factor",
]

#: Cap on the number of float64 elements of per-sample temporaries (32 MiB).
CHUNK_ELEMENTS = 2**22
#: Fewest independent replicates behind a standard error that a result calls reliable: with fewer,
#: the SE itself is too noisy for ±1.96 SE to hold its coverage, even scaled to a t interval
#: (benchmarks/estimators.py measured 0.85-0.95 at 10 stratified blocks on the model's games).
MIN_SE_SAMPLES = 20


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
        n_samples: Independent replicates the standard errors rest on (permutation pairs, kernel
            samples, Latin blocks); ``None`` for exact values.
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
    n_samples: int | None = None

    @property
    def se_reliable(self) -> bool:
        """Exact values, or standard errors that rest on at least :data:`MIN_SE_SAMPLES` replicates."""
        return self.n_samples is None or self.n_samples >= MIN_SE_SAMPLES or not np.any(self.se > 0)

    @property
    def efficiency_gap(self) -> np.ndarray:
        """``float64[*value_shape]``: ``sum(values) - (v_full - v_empty)``, zero up to rounding."""
        return self.values.sum(axis=0) - (self.v_full - self.v_empty)


def check_players(game: Game) -> int:
    n_players = int(game.n_players)
    if n_players < 1:
        raise ConfigError("the game has no players; define at least one player to explain")
    return n_players


def evaluate_game(game: Game, keep: np.ndarray, value_shape: tuple[int, ...] | None) -> np.ndarray:
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


def endpoints(game: Game, n_players: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the empty and the grand coalition in one call; returns ``(v_empty, v_full)``."""
    keep = np.zeros((2, n_players), dtype=bool)
    keep[1] = True
    values = evaluate_game(game, keep, None)
    return values[0], values[1]



def is_converged(values: np.ndarray, se: np.ndarray, tol: float | None) -> bool:
    """SAGE's rule: ``max(se) <= tol * (max(values) - min(values))``, over all players and outputs."""
    if tol is None or not np.all(np.isfinite(se)):
        return False
    spread = float(values.max() - values.min())
    return bool(se.max() <= tol * spread)


class RunningMoments:
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
        """``sqrt(sample variance / n)``, scaled by :func:`small_sample_factor`; NaN while ``n < 2``."""
        assert self.m2 is not None  # internal invariant: called after an update
        if self.n < 2:
            return np.full_like(self.m2, np.nan)
        return np.sqrt(self.m2 / (self.n - 1) / self.n) * small_sample_factor(self.n)


def small_sample_factor(n: int) -> float:
    """``t(0.975, n - 1) / z(0.975)``: the factor that makes ±1.96 SE the Student-t 95% interval of ``n`` replicates.

    The standard error of a mean of ``n`` replicates is itself estimated from them; with few, it is
    often too small, and ±1.96 SE covers the truth less than 95% of the time (measured 0.85-0.93
    with 10 stratified blocks). Scaling it by this factor (1.15 at n = 10, 1.07 at 20, 1.01 at 100)
    makes ±1.96 SE the t interval, which keeps its coverage for normal replicates.

    Example:
        >>> round(small_sample_factor(10), 3), round(small_sample_factor(1000), 4)
        (1.154, 1.0012)
    """
    from scipy.stats import norm, t

    return float(t.ppf(0.975, n - 1) / norm.ppf(0.975))


def sample_chunk(n_players: int, value_shape: tuple[int, ...]) -> int:
    """Number of samples whose ``[n, P, *value_shape]`` temporaries fit in ``CHUNK_ELEMENTS``."""
    return max(1, CHUNK_ELEMENTS // (n_players * max(1, math.prod(value_shape))))

