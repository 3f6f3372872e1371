"""The loop every sampling estimator shares: draw a batch, update running moments, check the stop rule.

Sampling estimators stop at ``budget`` game evaluations (coalition rows) or at convergence, when
the largest standard error is at most ``tol`` times the range of the values (the rule of SAGE,
Covert et al. 2020).
"""

from __future__ import annotations

import abc
import functools
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from miam_explain.errors import ConfigError
from miam_explain.explain.checks import check_budget, check_seed, check_tol
from miam_explain.explain.estimators.base import RunningMoments, ShapleyResult, check_players, endpoints, is_converged
from miam_explain.explain.game import Game

__all__ = ["SamplingEstimator", "sampling_run"]


def sampling_run(*, n_sites: int, total: int | None, interactions: bool) -> int | None:
    """The coalition budget of a sampling estimator in a model run: ``total // n_sites`` (``None``: stop on ``tol``).

    Raises:
        ConfigError: interactions were asked for (they need every coalition).
    """
    if interactions:
        raise ConfigError("--interactions needs the exact method (all coalitions); use --method exact with fewer players")
    return None if total is None else max(1, total // max(n_sites, 1))


class SamplingEstimator(abc.ABC):
    """The loop shared by sampling estimators: draw a batch, update running moments, check the stop rule.

    A subclass defines the cost of one sample (game evaluations) and how a batch
    of samples turns into per-sample Shapley estimates, each of which is exactly
    efficient; the estimate is their mean and the standard error their standard
    deviation over ``sqrt(n)``.
    """

    method: ClassVar[str]

    def __init__(self, seed: int, tol: float | None, batch: int, progress: bool) -> None:
        self.seed = check_seed(seed)
        self.tol = check_tol(tol)
        self._batch = batch
        self.progress = bool(progress)
        self._rng = np.random.default_rng(self.seed)

    @abc.abstractmethod
    def _cost(self, n_players: int) -> int:
        """Game evaluations per sample."""

    @abc.abstractmethod
    def _sample(
        self, game: Game, n_samples: int, v_empty: np.ndarray, v_full: np.ndarray, moments: RunningMoments
    ) -> None:
        """Draw ``n_samples`` samples, evaluate them and feed their per-sample estimates to ``moments``."""

    def min_budget(self, n_players: int, *, samples: int = 1) -> int:
        """Game evaluations of ``samples`` samples, the empty and the grand coalition included."""
        return 2 + samples * self._cost(n_players)

    def samples_in(self, n_players: int, n_evaluations: int) -> int:
        """The samples a run of ``n_evaluations`` game evaluations drew (the replicates its standard errors rest on)."""
        cost = self._cost(n_players)
        return 0 if n_players < 2 or cost == 0 else max(0, (int(n_evaluations) - 2) // cost)

    @classmethod
    def fits(cls, n_players: int, n_sites: int, budget: int | None) -> bool:
        """Sampling fits any game (``method="auto"`` falls back to it)."""
        return True

    @classmethod
    def for_run(
        cls, *, n_players: int, n_sites: int, budget: int | None, total: int | None, seed: int, tol: float | None,
        interactions: bool, progress: bool,
    ) -> tuple[SamplingEstimator, int | None]:
        """The estimator of a model run and its coalition budget: ``total // n_sites`` coalitions per site.

        Args:
            n_players: ``P``.
            n_sites: Sites each coalition is evaluated on.
            budget: Model evaluations the user allowed, or ``None``.
            total: ``budget`` or the run's default (``None``: no cap, stop on ``tol``).
            seed: Seed of the sampler.
            tol: Stopping tolerance.
            interactions: Must be False (interaction indices need every coalition).
            progress: Show a progress bar.

        Raises:
            ConfigError: interactions were asked for.
        """
        return cls(seed=seed, tol=tol, progress=progress), sampling_run(n_sites=n_sites, total=total, interactions=interactions)

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
        n_players = check_players(game)
        budget = check_budget(budget)
        if budget is None and self.tol is None:
            raise ConfigError(f"{self.method} sampling needs a stopping rule: give a budget, a tol, or both")
        minimum = self.min_budget(n_players)
        if budget is not None and budget < minimum:
            raise ConfigError(
                f"a budget of {budget} game evaluations is too small for {self.method} sampling with {n_players} "
                f"players: one sample needs {minimum} (empty and full coalitions plus {self._cost(n_players)}); "
                f"use a budget of at least {minimum}, or method='exact' for a handful of players"
            )
        v_empty, v_full = endpoints(game, n_players)
        n_evaluations = 2
        result = functools.partial(
            ShapleyResult, v_empty=v_empty, v_full=v_full, method=self.method, budget=budget,
            players=tuple(game.players), seed=self.seed,
        )
        if n_players == 1:  # one player: phi = v_full - v_empty, no sampling needed
            values = (v_full - v_empty)[None]
            return result(values=values, se=np.zeros_like(values), n_evaluations=n_evaluations, converged=True, n_samples=0)
        cost = self._cost(n_players)
        moments = RunningMoments()
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
                converged = is_converged(moments.mean, se, self.tol)
                spread = float(moments.mean.max() - moments.mean.min())
                if np.all(np.isfinite(se)) and spread > 0:
                    bar.set_postfix(se_over_range=f"{float(se.max()) / spread:.3g}", refresh=False)
                if converged:
                    break
        assert moments.mean is not None  # the minimum budget allows one sample
        return result(
            values=moments.mean, se=moments.standard_error(), n_evaluations=n_evaluations, converged=converged,
            n_samples=moments.n,
        )

