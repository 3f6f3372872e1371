"""KernelSHAP with paired sampling and an exact efficiency constraint (Covert & Lee 2021)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from miam_explain.explain.checks import check_positive
from miam_explain.explain.estimators.base import RunningMoments, evaluate_game, sample_chunk
from miam_explain.explain.estimators.sampling import SamplingEstimator
from miam_explain.explain.game import Game

__all__ = ["KernelEstimator"]


class KernelEstimator(SamplingEstimator):
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
        super().__init__(seed, tol, check_positive("batch_samples", batch_samples), progress)
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
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: RunningMoments
    ) -> None:
        n_players = game.n_players
        cdf, c_matrix, offset_weights = self._kernel(n_players)
        uniforms = self._rng.random((n_samples, n_players + 1))
        size = 1 + np.minimum(np.searchsorted(cdf, uniforms[:, 0], side="right"), n_players - 2)
        rank = np.argsort(np.argsort(uniforms[:, 1:], axis=1), axis=1)
        subset = rank < size[:, None]  # [n, P], a uniform subset of the drawn size
        keep = np.concatenate([subset, ~subset]) if self.paired else subset
        value_shape = v_empty.shape
        gain = (evaluate_game(game, keep, value_shape) - v_empty).reshape(keep.shape[0], -1)  # v(z) - v(0)
        offset = np.multiply.outer(offset_weights, v_full - v_empty).reshape(n_players, -1)
        # C b_s for b_s = z_s gain_s (rank one per subset): (C z_s) gain_sᵀ.
        projected = subset @ c_matrix.T  # [n, P]
        projected_complement = (~subset) @ c_matrix.T
        chunk = sample_chunk(n_players, value_shape)
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            estimate = projected[start:stop, :, None] * gain[start:stop, None, :]
            if self.paired:
                complement_gain = gain[n_samples + start : n_samples + stop, None, :]
                complement = projected_complement[start:stop, :, None] * complement_gain
                estimate = 0.5 * (estimate + complement)
            moments.update((estimate + offset).reshape((stop - start, n_players, *value_shape)))

