"""Leverage-score sampling for the KernelSHAP regression (Leverage SHAP; Musco & Witter, ICLR 2025).

The Shapley values solve a weighted least-squares problem over all coalitions: ``v(S) - v(∅) ≈ zᵀφ``
with the Shapley kernel weight ``w(s) = (P-1) / (C(P,s) s (P-s))`` on each coalition ``z`` of size
``s``, subject to ``1ᵀφ = v(N) - v(∅)``. The leverage scores of that regression are ``1/C(P,s)``:
every coalition *size* carries the same total leverage. Leverage SHAP samples rows accordingly:

* the coalitions come in complementary pairs ``(S, N∖S)``, and each size ``1 … P-1`` gets the same
  number of coalitions (a *stratum* ``h`` holds the pairs whose smaller side has ``h`` players;
  the middle stratum ``h = P/2`` of an even ``P`` gets half as many pairs, two coalitions each);
* inside a stratum the pairs are drawn uniformly **without replacement**;
* the *border trick*: a stratum whose every pair fits in its share of the budget is enumerated
  whole (weight ``w``, no sampling error), and its leftover share goes to the others (water
  filling, :func:`pairs_per_stratum`); with a budget of ``2^P`` every stratum is whole and the
  estimate is exact.

A sampled pair weighs ``w / π`` with ``π = m_h / N_h`` its inclusion probability (Horvitz–Thompson),
and the constrained problem is solved exactly on the sampled rows. The *size* allocation is fixed
(not drawn, as the paper's Bernoulli sampling does): the sampling is stratified by size.

Standard error: a stratified delete-a-group jackknife (Kott 2001). The sampled pairs are dealt in
turn into ``G`` groups; replicate ``g`` drops group ``g`` and re-weights the rest of each stratum,
and the spread of the ``G`` replicate estimates around the estimate is the variance. Two
corrections make it exact for a linear statistic: a finite-population factor ``sqrt(1 - m_h/N_h)``
on each stratum's re-weighting (Rust 1985: without-replacement draws near the border vary less,
and enumerated strata not at all), and a factor for unequal group sizes inside a stratum. The
standard error is scaled by the t factor :func:`~miam_explain.explain.estimators.base.small_sample_factor`
of the number of groups holding sampled pairs, and that number is the result's ``n_samples``,
unless fewer pairs of the sampled strata were left out: near enumeration the error is the residual
of those few pairs, not a normal variable (at 4,094 of 4,096 coalitions ±1.96 SE covered 0.84), so
``n_samples`` is then that count and the result flags its SE (``se_reliable``) below
:data:`~miam_explain.explain.estimators.base.MIN_SE_SAMPLES`.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from miam_explain.errors import ConfigError
from miam_explain.explain.checks import check_budget, check_positive, check_seed, check_tol
from miam_explain.explain.estimators.base import (
    MIN_SE_SAMPLES,
    CHUNK_ELEMENTS,
    ShapleyResult,
    check_players,
    endpoints,
    evaluate_game,
    is_converged,
    small_sample_factor,
)
from miam_explain.explain.estimators.sampling import sampling_run
from miam_explain.explain.game import Game

__all__ = ["AUTO_PAIRS_PER_PLAYER", "LeverageEstimator", "pairs_per_stratum"]

#: Rounds of a run that stops on ``tol`` grow by this factor (each round adds pairs to the last).
ROUND_GROWTH = 1.5
#: The smallest design: every sampled stratum gets at least this many pairs (two per middle
#: stratum), so that each stratum's jackknife has at least two pairs to compare.
MIN_KEY = 4
#: Fewest pairs per player for ``method="auto"`` to pick this design. At 4 pairs per player the jackknife
#: left some players under-covered (per-player coverage 0.83-0.985 over 600 seeds on the redundant games of
#: tests/test_estimator_calibration.py); at 8 it covers 0.925-0.972 (docs/estimators.md).
AUTO_PAIRS_PER_PLAYER = 8


def _strata(n_players: int) -> tuple[list[int], list[int]]:
    """``(units, step)`` of the strata ``h = 1 … P//2``: pairs in the stratum, and 2 for the middle stratum else 1."""
    units, step = [], []
    for size in range(1, n_players // 2 + 1):
        middle = 2 * size == n_players
        units.append(math.comb(n_players, size) // (2 if middle else 1))
        step.append(2 if middle else 1)
    return units, step


def pairs_per_stratum(n_players: int, n_pairs: int) -> np.ndarray:
    """How many complementary pairs each stratum ``h = 1 … P//2`` gets out of ``n_pairs`` (water filling).

    Every coalition size gets the same number of coalitions ``c``: a stratum ``h < P/2`` gets ``c``
    pairs (sizes ``h`` and ``P-h``), the middle stratum ``c/2``; a stratum with fewer pairs than its
    share is taken whole and the rest is shared among the others (the border trick). Pairs are
    handed out one at a time to the stratum furthest below its share (ties: the smaller size), so
    the allocation of ``n + 1`` pairs contains that of ``n``.

    Args:
        n_players: ``P >= 2``.
        n_pairs: Pairs to allocate; more than the ``2^(P-1) - 1`` that exist means all of them.

    Returns:
        ``int64[P // 2]``: pairs of stratum ``h`` at index ``h - 1``.

    Example:
        >>> pairs_per_stratum(6, 12)  # sizes 1|5 (6 pairs in all), 2|4 (15), 3|3 (10)
        array([5, 5, 2])
        >>> pairs_per_stratum(6, 31)  # every pair: the exact value table
        array([ 6, 15, 10])
    """
    units, step = _strata(n_players)
    if n_pairs >= sum(units):
        return np.array(units, dtype=np.int64)

    def count(key: int) -> int:
        return sum(min(u, key // s) for u, s in zip(units, step))

    low, high = 0, 2 * max(units)  # count(low) < n_pairs <= count(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < n_pairs else (low, mid)
    out = [min(u, (high - 1) // s) for u, s in zip(units, step)]
    left = n_pairs - sum(out)
    for h, (u, s) in enumerate(zip(units, step)):
        if left and high % s == 0 and high // s <= u:
            out[h] += 1
            left -= 1
    return np.array(out, dtype=np.int64)


def _min_pairs(n_players: int) -> int:
    units, step = _strata(n_players)
    return min(sum(units), sum(min(u, MIN_KEY // s) for u, s in zip(units, step)))


def _all_pairs(n_players: int, size: int) -> np.ndarray:
    """``bool[N_h, P]``: every pair of stratum ``size`` by its side of ``size`` players (holding player 0 in the middle stratum)."""
    first = 1 if 2 * size == n_players else 0
    combos = np.array(list(itertools.combinations(range(first, n_players), size - first)), dtype=np.intp)
    keep = np.zeros((combos.shape[0], n_players), dtype=bool)
    keep[np.arange(combos.shape[0])[:, None], combos.reshape(combos.shape[0], -1)] = True
    keep[:, 0] |= bool(first)
    return keep


def _codes(keep: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.packbits(keep, axis=1)]


class _Stratum:
    """The pairs drawn so far in one stratum (size ``h`` side), uniformly without replacement."""

    def __init__(self, n_players: int, size: int, units: int) -> None:
        self.n_players, self.size, self.units = n_players, size, units
        self.seen: set[bytes] = set()

    def draw(self, rng: np.random.Generator, n_new: int) -> np.ndarray:
        """``bool[n_new, P]``: ``n_new`` pairs not drawn before, by their side of ``size`` players."""
        n_players = self.n_players
        if n_new == 0:
            return np.zeros((0, n_players), dtype=bool)
        if self.units <= 4 * (len(self.seen) + n_new):  # dense: enumerate the unseen and choose among them
            candidates = _all_pairs(n_players, self.size)
            codes = _codes(candidates)
            unseen = np.flatnonzero([code not in self.seen for code in codes])
            chosen = unseen[rng.permutation(unseen.size)[:n_new]]
            self.seen.update(codes[i] for i in chosen)
            return candidates[chosen]
        rows: list[np.ndarray] = []
        while len(rows) < n_new:  # sparse: uniform subsets of the size, repeats dropped
            members = np.argsort(rng.random((n_new - len(rows) + 8, n_players)), axis=1)[:, : self.size]
            keep = np.zeros((members.shape[0], n_players), dtype=bool)
            keep[np.arange(members.shape[0])[:, None], members] = True
            if 2 * self.size == n_players:  # the middle stratum: a pair by its side that holds player 0
                keep[~keep[:, 0]] = ~keep[~keep[:, 0]]
            for row, code in zip(keep, _codes(keep)):
                if code not in self.seen and len(rows) < n_new:
                    self.seen.add(code)
                    rows.append(row)
        return np.stack(rows)


class LeverageEstimator:
    """Leverage SHAP: the KernelSHAP regression on complementary pairs sampled evenly over sizes, border enumerated.

    See the module docstring for the design and the jackknife standard error. A budget of ``B``
    game evaluations buys ``(B - 2) // 2`` pairs (the empty and the grand coalition are evaluated
    once); with ``tol`` the run grows in rounds (each ×1.5, adding pairs to the last round's) until
    ``max(se) <= tol * (max(values) - min(values))`` or the budget is spent. Coalitions are drawn
    before they are evaluated, ``batch_pairs`` pairs per game call, so ``batch_pairs`` does not
    change the result.

    Memory: the estimator keeps, per evaluated pair, its coalition and ``v(S) - v(N∖S)``
    (``float64[*value_shape]``), half the values it evaluated; the solve works in chunks of the
    value elements.

    Args:
        seed: Seed of the generator created here.
        tol: Stop when ``max(se) <= tol * (max(values) - min(values))``; ``None`` to run to the budget.
        groups: Jackknife groups ``G`` (the replicates the standard error rests on).
        batch_pairs: Pairs per game call (``2 * batch_pairs`` coalitions).
        progress: Show a progress bar.

    Example:
        >>> import numpy as np
        >>> from miam_explain.explain.game import FunctionGame
        >>> game = FunctionGame(lambda keep: keep @ np.arange(1.0, 9.0) + keep[:, 0] * keep[:, 1], [f"p{i}" for i in range(8)])
        >>> result = LeverageEstimator(seed=0, progress=False).estimate(game, budget=2**8)  # every pair: exact
        >>> result.values[:3], float(result.se.max()), result.n_samples
        (array([1.5, 2.5, 3. ]), 0.0, 0)
        >>> w = np.linspace(0.0, 0.1, 25)
        >>> redundant = FunctionGame(lambda keep: keep.any(axis=1) + keep @ w, [f"year{i}" for i in range(25)])
        >>> result = LeverageEstimator(seed=0, progress=False).estimate(redundant, budget=1000)  # of 2^25
        >>> bool(np.allclose(result.values, 1 / 25 + w)), bool(result.se.max() < 1e-12), result.n_samples
        (True, True, 20)
    """

    method: ClassVar[str] = "leverage"

    def __init__(
        self, seed: int = 0, tol: float | None = None, *, groups: int = MIN_SE_SAMPLES, batch_pairs: int = 512,
        progress: bool = True,
    ) -> None:
        self.seed = check_seed(seed)
        self.tol = check_tol(tol)
        self.groups = check_positive("groups", groups)
        if self.groups < 2:
            raise ConfigError(f"groups must be at least 2 for a jackknife standard error, got {groups}")
        self.batch_pairs = check_positive("batch_pairs", batch_pairs)
        self.progress = bool(progress)
        self._rng = np.random.default_rng(self.seed)

    @classmethod
    def fits(cls, n_players: int, n_sites: int, budget: int | None) -> bool:
        """Whether ``method="auto"`` may pick this design: the budget buys :data:`AUTO_PAIRS_PER_PLAYER` pairs per player.

        That is ``2 + 2 · 8 · P`` coalitions per site (306 for ``P = 19``, 1,026 for ``P = 64``),
        or no budget at all (``tol`` alone).
        """
        if budget is None:
            return True
        return budget // max(n_sites, 1) >= 2 + 2 * AUTO_PAIRS_PER_PLAYER * n_players

    @classmethod
    def for_run(
        cls, *, n_players: int, n_sites: int, budget: int | None, total: int | None, seed: int, tol: float | None,
        interactions: bool, progress: bool,
    ) -> tuple[LeverageEstimator, int | None]:
        """The estimator of a model run and its coalition budget, as for every sampler (:func:`sampling_run`)."""
        return cls(seed=seed, tol=tol, progress=progress), sampling_run(n_sites=n_sites, total=total, interactions=interactions)

    def min_budget(self, n_players: int, *, samples: int = 0) -> int:
        """The smallest budget: the endpoints and the smallest design (at least ``samples`` pairs), at most ``2^P``."""
        if n_players < 2:
            return 2
        pairs = max(_min_pairs(n_players), samples)
        return 2 + 2 * min(pairs, 2 ** (n_players - 1) - 1)

    def samples_in(self, n_players: int, n_evaluations: int) -> int:
        """The jackknife groups that hold sampled pairs in a one-round run of ``n_evaluations`` (0: exact)."""
        if n_players < 2:
            return 0
        allocation = pairs_per_stratum(n_players, max(0, (int(n_evaluations) - 2) // 2))
        units, _ = _strata(n_players)
        sampled = sum(int(m) for m, u in zip(allocation, units) if m < u)
        return min(self.groups, sampled)

    def estimate(self, game: Game, budget: int | None = None) -> ShapleyResult:
        """Sample pairs until the budget is spent or the stopping rule holds, then solve the regression.

        Args:
            game: The game to explain.
            budget: Maximum number of game evaluations (coalition rows), the empty and grand
                coalitions included; ``None`` to stop on ``tol`` alone.

        Returns:
            A :class:`ShapleyResult` with jackknife standard errors; ``se = 0`` and ``converged``
            when the budget bought every pair (exact values).

        Raises:
            ConfigError: neither a budget nor ``tol`` was given, or the budget is below the smallest design.
        """
        n_players = check_players(game)
        budget = check_budget(budget)
        if budget is None and self.tol is None:
            raise ConfigError("leverage sampling needs a stopping rule: give a budget, a tol, or both")
        minimum = self.min_budget(n_players)
        if budget is not None and budget < minimum:
            raise ConfigError(
                f"a budget of {budget} game evaluations is too small for leverage sampling with {n_players} players: "
                f"its smallest design (a few pairs of every size) needs {minimum}; use a budget of at least {minimum}, "
                "or method='permutation'"
            )
        v_empty, v_full = endpoints(game, n_players)
        result = functools.partial(
            ShapleyResult, v_empty=v_empty, v_full=v_full, budget=budget,
            players=tuple(game.players), seed=self.seed,
        )
        if n_players == 1:
            values = (v_full - v_empty)[None]
            return result(values=values, se=np.zeros_like(values), n_evaluations=2, converged=True, n_samples=0,
                          method=self.method)
        units, _ = _strata(n_players)
        last = sum(units) if budget is None else min(sum(units), (budget - 2) // 2)
        strata = [_Stratum(n_players, h + 1, u) for h, u in enumerate(units)]
        store = _Pairs(n_players, v_empty, v_full, self.groups, sides=self.keeps_sides)
        target = last if self.tol is None else min(last, max((self.min_budget(n_players) - 2) // 2, 2 * self.groups))
        with tqdm(total=budget, desc=self.method, unit="eval", disable=not self.progress, leave=False) as bar:
            bar.update(2)
            while True:
                allocation = pairs_per_stratum(n_players, target)
                drawn = [stratum.draw(self._rng, int(allocation[h]) - len(stratum.seen)) for h, stratum in enumerate(strata)]
                keep = np.concatenate(drawn)
                size = np.repeat(np.arange(1, len(strata) + 1), [d.shape[0] for d in drawn])
                for start in range(0, keep.shape[0], self.batch_pairs):
                    chunk = keep[start : start + self.batch_pairs]
                    both = evaluate_game(game, np.concatenate([chunk, ~chunk]), v_empty.shape)
                    store.add(chunk, size[start : start + self.batch_pairs], both[: chunk.shape[0]], both[chunk.shape[0] :])
                    bar.update(2 * chunk.shape[0])
                values, se, n_samples, method = self._solve(store, allocation, units)
                exact = n_samples == 0
                converged = exact or is_converged(values, se, self.tol)
                if converged or target >= last:
                    break
                target = min(last, math.ceil(target * ROUND_GROWTH))
        return result(values=values, se=se, n_evaluations=2 + 2 * store.n_pairs, converged=converged,
                      n_samples=n_samples, method=method)

    #: Whether the store keeps ``v(S)`` and ``v(N∖S)`` of every pair (not only their difference).
    keeps_sides: ClassVar[bool] = False

    def _solve(self, store: _Pairs, allocation: np.ndarray, units: list[int]) -> tuple[np.ndarray, np.ndarray, int, str]:
        """The estimate from the pairs so far: values, standard errors, replicates, and the method that ran."""
        return (*store.solve(allocation, units), self.method)


def _inverse(gram: np.ndarray) -> np.ndarray:
    """Inverses of symmetric ``[..., P, P]`` matrices: Cholesky-checked, else pseudo-inverses (a design short of rank)."""
    try:
        np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(gram, hermitian=True)
    return np.linalg.inv(gram)


class _Pairs:
    """The evaluated pairs: coalitions (side ``S``), strata, ``v(S) - v(N∖S)`` and, with ``sides``, both values.

    ``v_empty`` and ``v_full`` are ``float64[*value_shape]``; the pairs' values are kept flat,
    ``float64[n_pairs, n_values]``.
    """

    def __init__(self, n_players: int, v_empty: np.ndarray, v_full: np.ndarray, groups: int, *,
                 sides: bool = False) -> None:
        self.n_players, self.groups, self.sides = n_players, groups, sides
        self.v_empty, self.v_full = v_empty, v_full
        self.delta = (v_full - v_empty).reshape(-1)
        self.value_shape = v_empty.shape
        self.keep: list[np.ndarray] = []
        self.size: list[np.ndarray] = []
        self.diff: list[np.ndarray] = []
        self.first: list[np.ndarray] = []
        self.second: list[np.ndarray] = []
        self.n_pairs = 0

    def add(self, keep: np.ndarray, size: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
        """Add pairs: ``keep`` (``bool[n, P]``, side ``S``), their strata and ``v(S)``, ``v(N∖S)`` (``[n, *value_shape]``)."""
        first, second = first.reshape(keep.shape[0], -1), second.reshape(keep.shape[0], -1)
        self.keep.append(keep)
        self.size.append(size)
        self.diff.append(first - second)
        if self.sides:
            self.first.append(first)
            self.second.append(second)
        self.n_pairs += keep.shape[0]

    def solve(self, allocation: np.ndarray, units: list[int], *, drawn: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray, int]:
        """The estimate, its jackknife standard error and the groups it rests on (0: exact, se 0).

        ``drawn`` (``int64[H]``, default ``allocation``) are the pairs drawn from each stratum when these
        pairs are a random part of them (a fold of a cross-fitted estimate): the finite-population
        factor is then that of the whole draw, so that the folds' variances add up to the variance of
        the mean of the folds.

        Every sum of the normal equations runs over pairs whose weight depends only on the pair's
        stratum and group (its *cell*), so the pairs are summed cell by cell once, and the cell
        sums combined with the weights of each replicate.
        """
        n_players, n_groups, n_strata = self.n_players, self.groups, len(units)
        keep, size = np.concatenate(self.keep), np.concatenate(self.size)
        stratum = size - 1
        sizes = np.arange(1, n_strata + 1)
        m = allocation.astype(np.float64)
        sampled = np.array([int(c) < u for c, u in zip(allocation, units)])
        # groups: each stratum's pairs in draw order, dealt in turn; the sampled strata follow one another
        by_stratum = np.argsort(stratum, kind="stable")
        rank = np.empty_like(stratum)
        rank[by_stratum] = np.arange(self.n_pairs) - np.repeat(np.cumsum(allocation) - allocation, allocation)
        dealt = np.where(sampled, allocation, 0)
        group = (rank + (np.cumsum(dealt) - dealt)[stratum]) % n_groups
        per_group = np.zeros((n_strata, n_groups))
        np.add.at(per_group, (stratum, group), 1.0)
        # Horvitz-Thompson weight of a pair: its stratum's kernel mass over the pairs drawn from it
        mass = (n_players - 1) / (sizes * (n_players - sizes)) / np.where(2 * sizes == n_players, 2.0, 1.0)
        weight = mass / m
        # jackknife: dropping group g re-weights the rest of each stratum by m_h / (m_h - m_hg), damped by
        # sqrt(1 - m_h/N_h) (without replacement) and by the group sizes (exact for a linear statistic)
        whole = allocation if drawn is None else drawn  # the draw these pairs are (part of)
        fraction = np.array([float(c) / u for c, u in zip(whole, units)])
        unequal = (per_group / np.maximum(m[:, None] - per_group, 1.0)).sum(axis=1)
        damp = np.where(sampled, np.sqrt(np.clip(1.0 - fraction, 0.0, 1.0) / np.where(sampled, unequal, 1.0)), 0.0)
        kept = 1.0 + damp * (m / np.maximum(m - per_group.T, 1.0) - 1.0)  # [G, H]
        cell = stratum * n_groups + group
        by_cell = np.argsort(cell, kind="stable")
        present, starts = np.unique(cell[by_cell], return_index=True)
        cell_stratum, cell_group = present // n_groups, present % n_groups
        replicate = np.empty((n_groups + 1, present.size))  # [G + 1, cells]: 0 the estimate, g + 1 without group g
        replicate[0] = weight[cell_stratum]
        replicate[1:] = weight[cell_stratum] * kept[:, cell_stratum]
        replicate[1 + cell_group, np.arange(present.size)] = weight[cell_stratum] * (1.0 - damp[cell_stratum])
        # the fit has an intercept per stratum h < P/2 (the pair's two sizes): zero over all coalitions, it
        # takes out what depends on the size alone (a redundant group's shared part) from the sample
        intercept = (cell_stratum == np.arange(n_strata)[:, None]) & (2 * sizes[:, None] != n_players)
        by_stratum_weight = replicate[:, None, :] * intercept  # [G + 1, H, cells]
        shift = (size / n_players)[by_cell]
        design = keep[by_cell] - shift[:, None]  # [n_pairs, P]: the pairs' rows, by cell, projected off 1 (the constraint)
        count = np.diff(np.append(starts, self.n_pairs))  # pairs per cell
        row_cell = np.repeat(np.arange(present.size), count)
        total = np.maximum(np.tensordot(by_stratum_weight, count.astype(np.float64), axes=1), np.finfo(float).tiny)
        mean_x = np.tensordot(by_stratum_weight, np.add.reduceat(design, starts, axis=0), axes=1) / total[..., None]
        # one P x P Gram matrix per replicate (not per cell: cells x P x P is gigabytes at token level)
        gram = np.stack([design.T @ (design * replicate[r, row_cell][:, None]) for r in range(n_groups + 1)])
        gram -= np.einsum("rhi,rh,rhj->rij", mean_x, total, mean_x, optimize=True)
        gram += (np.trace(gram, axis1=1, axis2=2) / n_players**2)[:, None, None]  # + λ11ᵀ: invertible, same β on 1⊥
        inverse = _inverse(2.0 * gram)
        n_values = self.delta.size
        values, variance = np.empty((n_players, n_values)), np.empty((n_players, n_values))
        tilt = 2 * shift - 1.0
        chunk = max(1, CHUNK_ELEMENTS // max(self.n_pairs, present.size, (n_groups + 1) * n_players))
        for start in range(0, n_values, chunk):
            stop = min(start + chunk, n_values)
            target = np.concatenate([d[:, start:stop] for d in self.diff])[by_cell]
            target -= np.outer(tilt, self.delta[start:stop])  # r(S) - r(N∖S) with r = v - v(∅) - |S| Δ/P
            rhs = np.stack([design.T @ (target * replicate[r, row_cell][:, None]) for r in range(n_groups + 1)])
            sum_target = np.tensordot(by_stratum_weight, np.add.reduceat(target, starts, axis=0), axes=1)
            rhs -= np.einsum("rhi,rhk->rik", mean_x, sum_target, optimize=True)  # sum_target: [G + 1, H, k]
            beta = inverse @ rhs  # [G + 1, P, k]
            beta -= beta.mean(axis=1, keepdims=True)  # exactly on 1ᵀβ = 0: efficiency up to rounding
            phi = beta + self.delta[start:stop] / n_players
            values[:, start:stop] = phi[0]
            variance[:, start:stop] = np.square(phi[1:] - phi[0]).sum(axis=0)
        holding = int(np.count_nonzero(per_group[sampled].sum(axis=0)))
        shape = (n_players, *self.value_shape)
        if holding == 0:
            return values.reshape(shape), np.zeros(shape), 0
        # near enumeration the error is the residual of the few pairs left out, not a normal variable: report
        # that count when it is the smaller, so that the result flags its SE (se_reliable) below MIN_SE_SAMPLES
        left_out = sum(u - int(c) for c, u in zip(whole, units) if int(c) < u)
        se = (np.sqrt(variance) * small_sample_factor(holding)).reshape(shape)
        return values.reshape(shape), se, min(holding, left_out)
