"""The explain engine: games over token groups, estimators, and labelled Shapley results.

One path (:mod:`~miam_explain.explain.run`): a frozen :class:`ShapleyRequest` (every option
validated once) -> :func:`~miam_explain.explain.plan.plan` (players, sites, targets, estimator,
chunks) -> an executor (in-process or Dask) -> a store (memory or zarr) -> a labelled
``xarray.Dataset`` (:mod:`~miam_explain.explain.result`).

Example:
    >>> ds = shapley(run_folder, group="modalities", value="performance", device="cpu")
    >>> sorted(ds["player"].values.tolist())
    ['climate', 'landsat', 'sentinel2', 'tabular']
"""

from __future__ import annotations

from miam_explain.explain.estimators import (
    ESTIMATORS,
    ExactEstimator,
    KernelEstimator,
    PermutationEstimator,
    ShapleyResult,
    StratifiedEstimator,
    choose_method,
    estimate,
)
from miam_explain.explain.game import FunctionGame, Game
from miam_explain.explain.games import PerformanceGame, PredictionGame, performance_game, prediction_game
from miam_explain.explain.plan import plan
from miam_explain.explain.request import ShapleyRequest
from miam_explain.explain.result import open_result, result_to_shap, save_result, to_dataset
from miam_explain.explain.run import explain_game, run, shapley
from miam_explain.runtime.engine import Engine

__all__ = [
    "shapley",
    "run",
    "plan",
    "ShapleyRequest",
    "explain_game",
    "to_dataset",
    "result_to_shap",
    "save_result",
    "open_result",
    "Engine",
    "Game",
    "FunctionGame",
    "PredictionGame",
    "PerformanceGame",
    "prediction_game",
    "performance_game",
    "estimate",
    "ESTIMATORS",
    "StratifiedEstimator",
    "ExactEstimator",
    "PermutationEstimator",
    "KernelEstimator",
    "ShapleyResult",
    "choose_method",
]
