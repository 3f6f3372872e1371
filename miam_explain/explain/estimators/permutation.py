"""Antithetic permutation sampling (Castro et al. 2009; antithetic pairs as in Mitchell et al. 2022)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from miam_explain.explain.checks import check_positive
from miam_explain.explain.estimators.base import RunningMoments, evaluate_game, sample_chunk
from miam_explain.explain.estimators.orders import interior_prefixes, marginals_by_player
from miam_explain.explain.estimators.sampling import SamplingEstimator
from miam_explain.explain.game import Game

__all__ = ["PermutationEstimator"]


class PermutationEstimator(SamplingEstimator):
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
        super().__init__(seed, tol, check_positive("batch_permutations", batch_permutations), progress)
        self.batch_permutations = self._batch

    def _cost(self, n_players: int) -> int:
        return 2 * (n_players - 1)

    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: RunningMoments
    ) -> None:
        n_players = game.n_players
        order = np.argsort(self._rng.random((n_samples, n_players)), axis=1)  # order[s, k]: k-th player of π_s
        order = np.concatenate([order, order[:, ::-1]])  # π_s, then the reverse of π_s
        position, keep = interior_prefixes(order)  # keep: [2n, P-1, P]
        value_shape = v_empty.shape
        interior = evaluate_game(game, keep.reshape(-1, n_players), value_shape)
        interior = interior.reshape((2 * n_samples, n_players - 1, *value_shape))
        chunk = sample_chunk(n_players, value_shape)
        for start in range(0, n_samples, chunk):
            rows = np.r_[start : min(start + chunk, n_samples)]
            both = np.concatenate([rows, rows + n_samples])
            by_player = marginals_by_player(position[both], interior[both], v_empty, v_full)  # [2m, P, ...]
            m = rows.size
            moments.update(0.5 * (by_player[:m] + by_player[m:]))
