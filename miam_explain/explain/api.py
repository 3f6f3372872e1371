"""Front door of the explain engine: :func:`shapley` returns a labelled ``xarray.Dataset``.

The result follows DESIGN §4:

* ``shapley(site?, player, target?)`` and ``shapley_se`` (0 when exact);
* ``v_empty(site?, target?)`` and ``v_full(site?, target?)``;
* optionally ``interaction(player, player_j, site?, target?)`` and ``banzhaf``;
* coords ``player``, ``site`` with ``site_id``, ``lat``, ``lon``, and ``target``;
* attrs game, metric, grouping, context, method, budget, n_evaluations, seed,
  model_sha256, data, split, version, created.

Efficiency holds: ``shapley.sum("player") == v_full - v_empty``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from miam_explain._io import atomic_path
from miam_explain._version import __version__
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.estimators import (
    MAX_EXACT_PLAYERS,
    ExactEstimator,
    KernelEstimator,
    PermutationEstimator,
    ShapleyResult,
    choose_method,
)
from miam_explain.explain.games import PerformanceGame, PredictionGame, performance_game, prediction_game
from miam_explain.models.fusion import MiamModel

__all__ = ["shapley", "explain_game", "to_dataset", "result_to_shap", "save_result", "DEFAULT_BUDGET", "METHODS"]

#: Default budget in model evaluations, counted per (coalition, site).
DEFAULT_BUDGET = 2_000_000
METHODS = ("auto", "exact", "permutation", "kernel")


def _sha256(path: str | None) -> str:
    if not path or not Path(path).is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def explain_game(
    game: PredictionGame | PerformanceGame,
    *,
    method: str = "auto",
    budget: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    interactions: bool = False,
    progress: bool = False,
) -> ShapleyResult:
    """Run the estimator chosen by ``method`` on a model game.

    ``budget`` counts model evaluations, one per (coalition, site); a sampling
    estimator gets ``budget // n_sites`` coalitions.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    n_sites = game.engine.n_sites
    total = DEFAULT_BUDGET if budget is None else int(budget)
    if total < 1:
        raise ConfigError(f"budget must be a positive number of model evaluations, got {budget}")
    if method == "auto":
        method = choose_method(game.n_players, n_sites, total)
    if method == "exact":
        if game.n_players > MAX_EXACT_PLAYERS:
            raise ConfigError(
                f"--method exact with {game.n_players} players needs 2^{game.n_players} = {2**game.n_players:,} coalitions "
                f"x {n_sites} sites; use --method permutation or kernel with a --budget"
            )
        cost = 2**game.n_players * n_sites
        if budget is not None and cost > total:
            raise ConfigError(
                f"--method exact needs 2^{game.n_players} coalitions x {n_sites} sites = {cost:,} model evaluations, "
                f"over the budget of {total:,}; raise --budget, use fewer --sites, or use --method permutation"
            )
        return ExactEstimator(interactions=interactions, progress=progress).estimate(game)
    if interactions:
        raise ConfigError("--interactions needs the exact method (all coalitions); use --method exact with fewer players")
    coalitions = max(1, total // max(n_sites, 1))
    estimator = PermutationEstimator(seed=seed, tol=tol, progress=progress) if method == "permutation" else KernelEstimator(seed=seed, tol=tol, progress=progress)
    return estimator.estimate(game, budget=coalitions)


def to_dataset(result: ShapleyResult, game: PredictionGame | PerformanceGame, *, attrs: dict) -> xr.Dataset:
    """Label a :class:`ShapleyResult` of a model game as an ``xarray.Dataset``."""
    players = list(result.players)
    if isinstance(game, PredictionGame):
        targets = list(game.target_names)
        # estimator arrays are (P, N, K) -> (site, player, target)
        def per_player(array: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            return ("site", "player", "target"), np.moveaxis(array, 0, 1)

        def per_value(array: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            return ("site", "target"), array

        coords = {
            "player": players,
            "target": targets,
            "site_id": ("site", game.data.site_id),
            "lat": ("site", game.data.lat),
            "lon": ("site", game.data.lon),
        }
    else:
        def per_player(array: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            return ("player",), array

        def per_value(array: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            return (), array

        coords = {"player": players}
    data_vars = {
        "shapley": per_player(result.values),
        "shapley_se": per_player(result.se),
        "v_empty": per_value(np.asarray(result.v_empty)),
        "v_full": per_value(np.asarray(result.v_full)),
    }
    if result.banzhaf is not None:
        data_vars["banzhaf"] = per_player(result.banzhaf)
    if result.interactions is not None:
        inter = result.interactions  # (P, P, *value_shape)
        if isinstance(game, PredictionGame):
            data_vars["interaction"] = (("site", "player", "player_j", "target"), np.moveaxis(inter, 2, 0))
        else:
            data_vars["interaction"] = (("player", "player_j"), inter)
        coords["player_j"] = players
    ds = xr.Dataset(data_vars, coords=coords)
    ds["shapley"].attrs["long_name"] = "Shapley value"
    ds["shapley_se"].attrs["long_name"] = "standard error of the Shapley value (0 when exact)"
    ds.attrs.update(
        {
            "n_evaluations": int(result.n_evaluations),
            "method": result.method,
            "budget": -1 if result.budget is None else int(result.budget),
            "converged": int(bool(result.converged)),
            "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **attrs,
        }
    )
    return ds


def shapley(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    value: str = "prediction",
    method: str = "auto",
    budget: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    context: str = "none",
    target: str | Sequence[str] = "auto",
    output: str = "probability",
    metric: str = "auto",
    interactions: bool = False,
    split: str = "test",
    sites: Sequence[int] | None = None,
    collapse: bool = True,
    device: str = "auto",
    progress: bool = False,
) -> xr.Dataset:
    """Shapley values of the token groups of a grouping, for predictions or for performance.

    Args:
        model: Trained model or checkpoint path (a run folder means its best checkpoint).
        data: Dataset or path; default the one recorded in the checkpoint.
        group: Grouping whose members are the players (``spectral_bands``, ``years``,
            ``modalities``, ``patches``, ``variables`` …).
        value: ``prediction`` (per site and target) or ``performance`` (a metric over the split).
        method: ``auto``, ``exact``, ``permutation`` (antithetic) or ``kernel`` (paired KernelSHAP).
        budget: Model evaluations allowed, one per (coalition, site); default 2,000,000.
            ``auto`` is exact when ``2^P x n_sites`` fits it.
        tol: Stop sampling when the largest standard error is below ``tol`` times the range
            of the values.
        seed: Seed of the sampling estimators.
        context: ``none`` (tokens outside the players hidden) or ``all`` (visible).
        target: Prediction game: species ids, ``richness``, ``all`` or ``auto``.
        output: Prediction game: ``probability`` or ``logit``.
        metric: Performance game: ``auto``, ``auc``, ``accuracy``, ``top5`` or ``neg_loss``.
        interactions: Also compute pairwise Shapley interaction indices (exact only).
        split: Sites of this split (``all`` for every site).
        sites: Prediction game: ``site_id`` values to restrict to.
        collapse: Use the exact collapsed forward.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: Show progress bars.

    Returns:
        The labelled result (see the module docstring).

    Example:
        >>> ds = shapley("run/", group="spectral_bands", value="performance")  # doctest: +SKIP
        >>> ds["shapley"].to_series().sort_values()  # doctest: +SKIP
    """
    if value not in ("prediction", "performance"):
        raise ConfigError(f"value {value!r} must be 'prediction' or 'performance'")
    if value == "prediction":
        game = prediction_game(
            model, data, group=group, split=split, sites=sites, target=target, output=output,
            context=context, collapse=collapse, device=device, progress=progress,
        )
        metric_name = output
    else:
        if sites is not None:
            raise ConfigError("--sites applies to the prediction game; the performance game uses every site of the split")
        game = performance_game(
            model, data, group=group, split=split, metric=metric, context=context, collapse=collapse, device=device, progress=progress,
        )
        metric_name = game.metric
    result = explain_game(game, method=method, budget=budget, tol=tol, seed=seed, interactions=interactions, progress=progress)
    model_obj = game.engine.model
    checkpoint = getattr(model_obj, "checkpoint_path", None)
    data_path = data if isinstance(data, (str, os.PathLike)) else getattr(model_obj, "meta", {}).get("data", {}).get("path", "")
    attrs = {
        "game": value,
        "metric": metric_name,
        "grouping": group,
        "context": context,
        "seed": int(seed),
        "model_sha256": _sha256(checkpoint),
        "model": str(checkpoint or ""),
        "data": str(data_path) if data is None or isinstance(data, (str, os.PathLike)) else "in-memory dataset",
        "split": str(split),
        "tol": -1.0 if tol is None else float(tol),
        "n_sites": int(game.engine.n_sites),
    }
    return to_dataset(result, game, attrs=attrs)


def save_result(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a result atomically: netCDF (``.nc``) or zarr (``.zarr``)."""
    path = Path(path)
    if path.suffix not in (".nc", ".zarr"):
        raise ConfigError(f"result path {str(path)!r} must end in .nc or .zarr")
    with atomic_path(path, overwrite=overwrite) as tmp:
        if path.suffix == ".zarr":
            ds.to_zarr(tmp, zarr_format=2, consolidated=True)
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")


def result_to_shap(ds: xr.Dataset, *, target: str | None = None):
    """A ``shap.Explanation`` of a result, so shap's bar, beeswarm and waterfall plots work.

    Prediction results give one row per site (``values[site, player]``,
    ``base_values = v_empty``); pick the output with ``target`` when there are
    several. Performance results give one row.
    """
    import shap

    if "shapley" not in ds:
        raise DataError("not a miam-explain Shapley result (no 'shapley' variable)")
    values = ds["shapley"]
    base = ds["v_empty"]
    if "target" in values.dims:
        targets = [str(t) for t in ds["target"].values]
        if target is None:
            if len(targets) > 1:
                raise ConfigError(f"the result has {len(targets)} targets; pick one with target= from {targets[:10]}")
            target = targets[0]
        if str(target) not in targets:
            raise ConfigError(f"target {target!r} is not in the result; choose from {targets[:10]}")
        values = values.sel(target=ds["target"].values[targets.index(str(target))])
        base = base.sel(target=ds["target"].values[targets.index(str(target))])
    if "site" in values.dims:
        array = values.transpose("site", "player").values
        base_values = np.asarray(base.values, dtype=float)
        data = np.ones_like(array)
    else:
        array = values.values[None, :]
        base_values = np.asarray([float(base.values)])
        data = np.ones_like(array)
    return shap.Explanation(
        values=array,
        base_values=base_values,
        data=data,
        feature_names=[str(p) for p in ds["player"].values],
    )
