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
from miam_explain.explain.estimators.base import ShapleyResult
from miam_explain.explain.estimators.exact import MAX_EXACT_PLAYERS, ExactEstimator
from miam_explain.explain.estimators.kernel import KernelEstimator
from miam_explain.explain.estimators.permutation import PermutationEstimator
from miam_explain.explain.estimators.sampling import SamplingEstimator
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
    "KernelEstimator",
    "choose_method",
    "coalitions_from_bitmasks",
    "shapley_from_table",
    "banzhaf_from_table",
    "interactions_from_table",
]

#: Every estimator, by method name.
ESTIMATORS: dict[str, type] = {
    "exact": ExactEstimator,
    "permutation": PermutationEstimator,
    "kernel": KernelEstimator,
}
#: The estimators ``method="auto"`` tries, in order: it takes the first that fits.
AUTO_ORDER: tuple[str, ...] = ("exact", "permutation")


def choose_method(n_players: int, n_sites: int, budget: int | None) -> str:
    """The estimator ``method="auto"`` uses: the first of :data:`AUTO_ORDER` that fits.

    Exact when its cost, ``2^P × n_sites`` model evaluations, fits the budget
    (and ``P <= MAX_EXACT_PLAYERS``); antithetic permutation sampling otherwise.
    Without a budget, exact whenever ``P <= MAX_EXACT_PLAYERS``.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on (1 for a global game).
        budget: Model evaluations allowed, counted per (coalition, site); ``None`` for no limit.

    Returns:
        A key of :data:`ESTIMATORS`.

    Raises:
        ConfigError: a count that is not positive.
    """
    check_positive("n_players", n_players)
    check_positive("n_sites", n_sites)
    budget = check_budget(budget)
    return next(name for name in AUTO_ORDER if ESTIMATORS[name].fits(n_players, n_sites, budget))
