"""The explain engine: games over token groups, estimators, and labelled Shapley results.

Example:
    >>> import miam_explain
    >>> ds = miam_explain.shapley("run/", group="spectral_bands", value="performance")  # doctest: +SKIP
"""

from __future__ import annotations

from miam_explain.explain.api import explain_game, result_to_shap, save_result, shapley, to_dataset
from miam_explain.explain.engine import Engine
from miam_explain.explain.estimators import (
    ExactEstimator,
    KernelEstimator,
    PermutationEstimator,
    ShapleyResult,
    choose_method,
)
from miam_explain.explain.game import FunctionGame, Game
from miam_explain.explain.games import PerformanceGame, PredictionGame, performance_game, prediction_game

__all__ = [
    "shapley",
    "explain_game",
    "to_dataset",
    "result_to_shap",
    "save_result",
    "Engine",
    "Game",
    "FunctionGame",
    "PredictionGame",
    "PerformanceGame",
    "prediction_game",
    "performance_game",
    "ExactEstimator",
    "PermutationEstimator",
    "KernelEstimator",
    "ShapleyResult",
    "choose_method",
]
