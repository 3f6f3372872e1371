"""Shapley-value estimators, one family per module, and the registry that ``method="auto"`` consults.

Every estimator is a small class whose constructor stores its options (and creates its random
generator from ``seed``) and whose one method ``estimate(game, budget)`` returns a
:class:`ShapleyResult`. Besides, each class answers two questions for a model run:
``fits(n_players, n_sites, budget)`` (may ``auto`` pick it?) and ``for_run(...)`` (the estimator
and its coalition budget, refusing what it cannot do).

* :class:`ExactEstimator` (:mod:`.exact`) evaluates all ``2^P`` coalitions and computes Shapley
  values, Banzhaf values and (optionally) pairwise Shapley interaction indices from the value
  table (:mod:`.tables`).
* :class:`PermutationEstimator` (:mod:`.permutation`) samples permutations paired with their
  reverse (antithetic sampling); it is exactly efficient and reports standard errors.
* :class:`KernelEstimator` (:mod:`.kernel`) is KernelSHAP with paired sampling and the efficiency
  constraint solved exactly (Covert & Lee 2021), with standard errors.
* :class:`LeverageEstimator` (:mod:`.leverage`) is Leverage SHAP (Musco & Witter 2025): the KernelSHAP
  regression on complementary pairs drawn evenly over coalition sizes without replacement, the
  small sizes enumerated whole, with jackknife standard errors.
* :class:`AdjustedEstimator` (:mod:`.adjusted`) is Leverage SHAP with a regression adjustment: a
  cross-fitted boosted-tree surrogate whose Shapley values are exact, plus leverage sampling of
  the residual game. ``auto`` picks it after exact for a game with one value per coalition, then leverage.
* :class:`StratifiedEstimator` (:mod:`.stratified`) is position-stratified (Latin-square)
  permutation sampling with batch-means standard errors.

The sampling estimators share one loop (:mod:`.sampling`). See ``docs/estimators.md`` for the math
and ``docs/architecture.md`` for how to add an estimator: one new module plus one line in
:data:`ESTIMATORS`.

Example:
    >>> import numpy as np
    >>> from miam_explain.explain.game import FunctionGame
    >>> game = FunctionGame(lambda keep: keep @ np.array([1.0, 2.0, 3.0]), players=("a", "b", "c"))
    >>> choose_method(3, 1, budget=None)
    'exact'
    >>> ESTIMATORS["permutation"](seed=0, progress=False).estimate(game, budget=20).values
    array([1., 2., 3.])
"""

from __future__ import annotations

from miam_explain.explain.checks import check_budget, check_positive
from miam_explain.explain.estimators.adjusted import AdjustedEstimator
from miam_explain.explain.estimators.base import ShapleyResult
from miam_explain.explain.estimators.exact import MAX_EXACT_PLAYERS, ExactEstimator
from miam_explain.explain.estimators.kernel import KernelEstimator
from miam_explain.explain.estimators.leverage import LeverageEstimator
from miam_explain.explain.estimators.permutation import PermutationEstimator
from miam_explain.explain.estimators.sampling import SamplingEstimator
from miam_explain.explain.estimators.stratified import StratifiedEstimator
from miam_explain.explain.estimators.tables import (
    banzhaf_from_table,
    coalitions_from_bitmasks,
    interactions_from_table,
    shapley_from_table,
)

__all__ = [
    "ESTIMATORS",
    "AUTO_ORDER",
    "MAX_EXACT_PLAYERS",
    "ShapleyResult",
    "ExactEstimator",
    "SamplingEstimator",
    "PermutationEstimator",
    "StratifiedEstimator",
    "KernelEstimator",
    "LeverageEstimator",
    "AdjustedEstimator",
    "choose_method",
    "estimate",
    "coalitions_from_bitmasks",
    "shapley_from_table",
    "banzhaf_from_table",
    "interactions_from_table",
]

#: Every estimator, by method name.
ESTIMATORS: dict[str, type] = {
    "exact": ExactEstimator,
    "stratified": StratifiedEstimator,
    "permutation": PermutationEstimator,
    "kernel": KernelEstimator,
    "leverage": LeverageEstimator,
    "adjusted": AdjustedEstimator,
}
#: The estimators ``method="auto"`` tries, in order: it takes the first that fits.
AUTO_ORDER: tuple[str, ...] = ("exact", "adjusted", "leverage", "permutation")


def choose_method(n_players: int, n_sites: int, budget: int | None) -> str:
    """The estimator ``method="auto"`` uses: the first of :data:`AUTO_ORDER` that fits.

    Exact when its cost, ``2^P × n_sites`` model evaluations, fits the budget
    (and ``P <= MAX_EXACT_PLAYERS``); else, for one value per coalition (``n_sites == 1``),
    regression-adjusted leverage sampling when the budget buys
    :data:`~miam_explain.explain.estimators.leverage.AUTO_PAIRS_PER_PLAYER` complementary pairs per
    player in each of its :data:`~miam_explain.explain.estimators.adjusted.ADJUSTED_FOLDS` folds
    (``2 + 80 P`` coalitions) and at most half of all pairs; else leverage sampling when the budget
    buys 8 pairs per player (``2 + 16 P`` coalitions per site); else antithetic permutation
    sampling. Without a budget, exact whenever ``P <= MAX_EXACT_PLAYERS``, else leverage.
    Position-stratified permutation sampling is not in the order: at equal evaluations leverage
    sampling was at least as accurate on every game of ``benchmarks/estimators.py``.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on (1 for a global game).
        budget: Model evaluations allowed, counted per (coalition, site); ``None`` for no limit.

    Returns:
        A key of :data:`ESTIMATORS`.

    Example:
        >>> choose_method(19, 1, budget=2**19), choose_method(19, 1, budget=2 + 80 * 19), choose_method(19, 1, budget=2 + 16 * 19)
        ('exact', 'adjusted', 'leverage')
        >>> choose_method(19, 1, budget=300), choose_method(19, 1000, budget=1000 * (2 + 80 * 19))
        ('permutation', 'leverage')

    Raises:
        ConfigError: a count that is not positive.
    """
    check_positive("n_players", n_players)
    check_positive("n_sites", n_sites)
    budget = check_budget(budget)
    return next(name for name in AUTO_ORDER if ESTIMATORS[name].fits(n_players, n_sites, budget))


def estimate(
    game,
    *,
    method: str = "auto",
    budget: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    interactions: bool = False,
    progress: bool = False,
) -> ShapleyResult:
    """Shapley values of any game (a :class:`~miam_explain.explain.game.FunctionGame` included).

    Args:
        game: The game: ``bool[C, P] -> float64[C, *value_shape]``.
        method: ``auto`` (see :func:`choose_method`) or a key of :data:`ESTIMATORS`.
        budget: Most coalitions to evaluate (never exceeded), or ``None`` for no cap (sampling then
            stops on ``tol``).
        tol: Stop sampling when ``max(se) <= tol * (max(values) - min(values))``.
        seed: Seed of the sampling estimators.
        interactions: Pairwise Shapley interaction indices (exact only).
        progress: Show a progress bar.

    Returns:
        The :class:`ShapleyResult`: ``values``, ``se``, ``n_evaluations``, ``n_samples`` (the
        replicates the standard errors rest on) …

    Raises:
        ConfigError: an unknown method, a budget below what the method needs, or no stopping rule.

    Example:
        >>> import numpy as np
        >>> from miam_explain.explain.game import FunctionGame
        >>> players = [f"year{i}" for i in range(25)]
        >>> weights = np.linspace(0.0, 0.1, 25)
        >>> redundant = FunctionGame(lambda keep: keep.any(axis=1) + keep @ weights, players)  # any year tells most
        >>> result = estimate(redundant, budget=20_000, seed=0)
        >>> result.method, result.n_evaluations <= 20_000, bool(np.allclose(result.values, 1 / 25 + weights))
        ('adjusted', True, True)
    """
    from miam_explain.errors import ConfigError
    from miam_explain.explain.estimators.base import check_players

    n_players = check_players(game)
    budget = check_budget(budget)
    if budget is not None and budget < 1:
        raise ConfigError(f"budget must be a positive number of coalitions, got {budget}")
    name = choose_method(n_players, 1, budget) if method == "auto" else method
    if name not in ESTIMATORS:
        raise ConfigError(f"unknown method {method!r}; use one of auto, {', '.join(ESTIMATORS)}")
    estimator, coalitions = ESTIMATORS[name].for_run(
        n_players=n_players, n_sites=1, budget=budget, total=budget, seed=seed, tol=tol, interactions=interactions,
        progress=progress,
    )
    return estimator.estimate(game, budget=coalitions)
