"""The exact estimator: all ``2^P`` coalitions, then Shapley, Banzhaf and interaction values from the table."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from miam_explain.errors import ConfigError
from miam_explain.explain.checks import check_budget, check_positive
from miam_explain.explain.estimators.base import ShapleyResult, check_players, evaluate_game
from miam_explain.explain.estimators.tables import (
    banzhaf_from_table,
    coalitions_from_bitmasks,
    interactions_from_table,
    shapley_from_table,
)
from miam_explain.explain.game import Game

__all__ = ["MAX_EXACT_PLAYERS", "ExactEstimator"]

#: Largest number of players :class:`ExactEstimator` accepts (``2^20`` coalitions).
MAX_EXACT_PLAYERS = 20


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
        self.chunk_size = check_positive("chunk_size", chunk_size)
        self.progress = bool(progress)

    @staticmethod
    def check(
        n_players: int,
        budget: int | None,
        *,
        n_sites: int = 1,
        lead: str = "",
        players_fix: str = "use sampling instead: method='permutation' or 'kernel' (--method) with a budget or tol",
        budget_fix: str = "raise the budget (--budget), use fewer sites (--sites), or use method='permutation' or 'kernel'",
    ) -> None:
        """Refuse what exact values cannot do: too many players, or a budget below their cost.

        Args:
            n_players: ``P``.
            budget: Evaluations allowed, or ``None`` for no cap.
            n_sites: Evaluations per coalition (sites of a model game; 1 for a plain game).
            lead: Words that open the message (what asked for exact values), e.g. a report's name.
            players_fix: The fix the message names for too many players.
            budget_fix: The fix the message names for a budget below the cost.

        Raises:
            ConfigError: ``P > MAX_EXACT_PLAYERS``, or ``2^P x n_sites > budget``.
        """
        if n_players > MAX_EXACT_PLAYERS:
            raise ConfigError(
                f"{lead}exact Shapley values for {n_players} players need all 2^{n_players} = {2**n_players:,} "
                f"coalitions (each one a forward pass per site), beyond the limit of {MAX_EXACT_PLAYERS} players; "
                f"{players_fix}"
            )
        cost = (1 << n_players) * n_sites
        if budget is not None and cost > budget:
            need = f"2^{n_players} = {1 << n_players:,} coalitions"
            need += f" x {n_sites} sites = {cost:,} model evaluations" if n_sites > 1 else " (game evaluations)"
            raise ConfigError(
                f"{lead}exact Shapley values for {n_players} players need {need}, over the budget of {budget:,}; "
                f"{budget_fix}"
            )

    @classmethod
    def fits(cls, n_players: int, n_sites: int, budget: int | None) -> bool:
        """Whether ``method="auto"`` may pick exact values: ``P <= MAX_EXACT_PLAYERS`` and ``2^P x n_sites <= budget``."""
        return n_players <= MAX_EXACT_PLAYERS and (budget is None or (1 << n_players) * n_sites <= budget)

    @classmethod
    def for_run(
        cls, *, n_players: int, n_sites: int, budget: int | None, total: int, seed: int, tol: float | None,
        interactions: bool, progress: bool,
    ) -> tuple[ExactEstimator, None]:
        """The estimator of a model run and its coalition budget (``None``: all ``2^P``).

        Args:
            n_players: ``P``.
            n_sites: Sites each coalition is evaluated on.
            budget: Model evaluations the user allowed, or ``None``.
            total: ``budget`` or the run's default (unused: exact values are not capped by a default).
            seed: Unused (nothing is random).
            tol: Unused.
            interactions: Also compute pairwise interaction indices.
            progress: Show a progress bar.

        Raises:
            ConfigError: see :meth:`check`.
        """
        cls.check(n_players, budget, n_sites=n_sites)
        return cls(interactions=interactions, progress=progress), None

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
        n_players = check_players(game)
        budget = check_budget(budget)
        self.check(n_players, budget)
        n_coalitions = 1 << n_players
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
            values = evaluate_game(game, keep, None if table is None else table.shape[1:])
            if table is None:
                table = np.empty((n_coalitions, *values.shape[1:]))
            table[start:stop] = values
        assert table is not None  # at least one chunk
        return table

