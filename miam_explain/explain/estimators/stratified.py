"""Position-stratified permutation sampling: every player in every position equally often.

Players that share information (years of a climate series, patches of an image, correlated
variables) make a game whose marginal contributions depend mostly on *where* a player arrives:
the first of a redundant group to arrive gets the shared part, the later ones almost nothing.
Plain permutation sampling then estimates each player's value by how often it happened to come
early, and its error is dominated by that lottery. This estimator removes the lottery: a sample
is a *block* of ``P`` orders ``π_j(c) = σ((j + τ(c)) mod P)``, for uniformly random
permutations ``σ`` of the players and ``τ`` of the positions, so that in every block each player
stands exactly once in each position (a Latin square; position stratification as in Mitchell et
al., JMLR 2022, and the strata of Castro et al. 2017). ``τ`` makes the players that precede a
given player vary from order to order; plain cyclic shifts of ``σ`` (``τ`` the identity) keep
them in one arc of ``σ`` and measured worse on games with several groups of redundant players
(docs/estimators.md). Each order is marginally uniform, so the block mean of the
marginal contributions is unbiased; the part of the contribution that depends only on the
position is averaged exactly, and the first and last positions give ``v({i}) - v({})`` and
``v(N) - v(N \\ {i})`` exactly in every block. With ``antithetic=True`` a block also walks the
reverses of its ``P`` orders.

Blocks are independent replicates, so the standard error is the standard deviation of the block
estimates over ``sqrt(n_blocks)`` (batch means): it rests on the number of blocks, which the
result records (``n_samples``). Every block estimate is exactly efficient.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from miam_explain.explain.estimators.base import RunningMoments, evaluate_game, sample_chunk
from miam_explain.explain.estimators.orders import interior_prefixes, marginals_by_player
from miam_explain.explain.estimators.sampling import SamplingEstimator
from miam_explain.explain.game import Game

__all__ = ["StratifiedEstimator", "latin_orders", "MIN_BLOCKS"]

#: Fewest blocks ``method="auto"`` accepts for this design: its standard errors rest on the blocks (the
#: same count as :data:`~miam_explain.explain.estimators.base.MIN_SE_SAMPLES`).
MIN_BLOCKS = 20


def latin_orders(sigma: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``P`` orders in which each player stands once in each position (a Latin square).

    Order ``j`` puts player ``sigma[(j + tau[c]) mod P]`` at position ``c``. With ``sigma`` and
    ``tau`` uniformly random, every order is a uniformly random permutation, every player takes
    every position once in the ``P`` orders, and (through ``tau``) the players that precede a
    given player change from order to order, unlike in plain cyclic shifts of one permutation.

    Args:
        sigma: ``int[P]``, a permutation of the players.
        tau: ``int[P]``, a permutation of the positions.

    Returns:
        ``int[P, P]``: row ``j`` is an order (``row[c]`` is the player at position ``c``).

    Example:
        >>> latin_orders(np.array([2, 0, 1]), np.array([0, 1, 2]))  # tau = identity: cyclic shifts
        array([[2, 0, 1],
               [0, 1, 2],
               [1, 2, 0]])
        >>> np.sort(latin_orders(np.array([2, 0, 1]), np.array([1, 0, 2])), axis=0)  # every column holds every player
        array([[0, 0, 0],
               [1, 1, 1],
               [2, 2, 2]])
    """
    n_players = sigma.shape[0]
    return sigma[(np.arange(n_players)[:, None] + tau[None, :]) % n_players]


class StratifiedEstimator(SamplingEstimator):
    """Position-stratified (Latin-square) permutation sampling with batch-means standard errors.

    A sample is a block of ``P`` orders (``2P`` with ``antithetic``) in which every player takes
    every position once; it costs ``P(P-1)`` game evaluations (``2P(P-1)``), the empty and the
    grand coalition being evaluated once for the run. A block's estimate is the mean, over its
    orders, of each player's marginal contribution; the estimate is the mean over blocks and its
    standard error their standard deviation over ``sqrt(n_blocks)``.

    Args:
        seed: Seed of the generator created here.
        tol: Stop when ``max(se) <= tol * (max(values) - min(values))``; ``None`` to run to the budget.
        antithetic: Also walk the reverse of every order of a block.
        batch_blocks: Blocks per game call.
        progress: Show a progress bar.

    Example:
        >>> import numpy as np
        >>> from miam_explain.explain.game import FunctionGame
        >>> redundant = FunctionGame(lambda keep: keep.any(axis=1) + keep @ np.array([0.0, 0.5, 1.0]), ("a", "b", "c"))
        >>> result = StratifiedEstimator(seed=0, progress=False).estimate(redundant, budget=2 + 3 * 6)
        >>> result.values, result.se, result.n_samples  # exact: the shared 1 is split in three
        (array([0.33333333, 0.83333333, 1.33333333]), array([0., 0., 0.]), 3)
    """

    method: ClassVar[str] = "stratified"

    def __init__(
        self, seed: int = 0, tol: float | None = None, *, antithetic: bool = False, batch_blocks: int = 4,
        progress: bool = True,
    ) -> None:
        from miam_explain.explain.checks import check_positive

        super().__init__(seed, tol, check_positive("batch_blocks", batch_blocks), progress)
        self.antithetic = bool(antithetic)
        self.batch_blocks = self._batch

    @classmethod
    def fits(cls, n_players: int, n_sites: int, budget: int | None) -> bool:
        """Whether the budget buys :data:`MIN_BLOCKS` blocks (or there is none); ``auto`` no longer tries this design (``AUTO_ORDER``)."""
        if budget is None:
            return True
        return budget // max(n_sites, 1) >= 2 + MIN_BLOCKS * n_players * (n_players - 1)

    def _cost(self, n_players: int) -> int:
        return (2 if self.antithetic else 1) * n_players * (n_players - 1)

    def _block_orders(self, n_blocks: int, n_players: int) -> np.ndarray:
        """``int[n_blocks, R, P]``: the orders of each block (``R = P``, or ``2P`` with antithetic)."""
        draws = np.argsort(self._rng.random((n_blocks, 2, n_players)), axis=2)  # sigma and tau of each block
        orders = np.stack([latin_orders(sigma, tau) for sigma, tau in draws])
        if self.antithetic:
            orders = np.concatenate([orders, orders[:, :, ::-1]], axis=1)
        return orders

    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: RunningMoments
    ) -> None:
        n_players = game.n_players
        orders = self._block_orders(n_samples, n_players)
        per_block = orders.shape[1]
        position, keep = interior_prefixes(orders.reshape(-1, n_players))
        value_shape = v_empty.shape
        interior = evaluate_game(game, keep.reshape(-1, n_players), value_shape)
        interior = interior.reshape((n_samples, per_block, n_players - 1, *value_shape))
        position = position.reshape(n_samples, per_block, n_players)
        chunk = max(1, sample_chunk(n_players, value_shape) // per_block)
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            m = stop - start
            by_player = marginals_by_player(
                position[start:stop].reshape(m * per_block, n_players),
                interior[start:stop].reshape((m * per_block, n_players - 1, *value_shape)), v_empty, v_full,
            )
            moments.update(by_player.reshape((m, per_block, n_players, *value_shape)).mean(axis=1))
