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
    _check_budget,
    _check_seed,
    _check_tol,
    choose_method,
)
from miam_explain.explain.games import PerformanceGame, PredictionGame, performance_game, prediction_game
from miam_explain.models.fusion import MiamModel

__all__ = [
    "shapley",
    "explain_game",
    "plan_estimator",
    "to_dataset",
    "result_dataset",
    "estimate_attrs",
    "provenance_attrs",
    "data_attr",
    "result_to_shap",
    "save_result",
    "DEFAULT_BUDGET",
    "METHODS",
]

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


def plan_estimator(
    n_players: int,
    n_sites: int,
    *,
    method: str = "auto",
    budget: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    interactions: bool = False,
    progress: bool = False,
) -> tuple[ExactEstimator | PermutationEstimator | KernelEstimator, int | None]:
    """The estimator ``method`` resolves to, and the coalition budget to give its ``estimate``.

    ``budget`` counts model evaluations, one per (coalition, site); a sampling
    estimator gets ``budget // n_sites`` coalitions. A sharded run calls this
    once per chunk with the run's total ``n_sites``, so every chunk gets the
    estimator (and the seed) of the single-process run.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on (all sites of the run; 1 is not special).
        method: ``auto``, ``exact``, ``permutation`` or ``kernel``.
        budget: Model evaluations allowed; ``None`` for :data:`DEFAULT_BUDGET`.
        tol: Stopping tolerance of the sampling estimators.
        seed: Seed of the sampling estimators.
        interactions: Pairwise interaction indices (exact only).
        progress: Show the estimator's progress bar.

    Returns:
        ``(estimator, coalitions)``: ``coalitions`` is ``None`` for exact.

    Raises:
        ConfigError: an unknown method, a bad budget, tol or seed, exact over its limits,
            or interactions with a sampling method.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    budget, tol, seed = _check_budget(budget), _check_tol(tol), _check_seed(seed)
    total = DEFAULT_BUDGET if budget is None else budget
    if total < 1:
        raise ConfigError(f"budget must be a positive number of model evaluations, got {budget}")
    if method == "auto":
        method = choose_method(n_players, n_sites, total)
    if method == "exact":
        if n_players > MAX_EXACT_PLAYERS:
            raise ConfigError(
                f"--method exact with {n_players} players needs 2^{n_players} = {2**n_players:,} coalitions "
                f"x {n_sites} sites; use --method permutation or kernel with a --budget"
            )
        cost = 2**n_players * n_sites
        if budget is not None and cost > total:
            raise ConfigError(
                f"--method exact needs 2^{n_players} coalitions x {n_sites} sites = {cost:,} model evaluations, "
                f"over the budget of {total:,}; raise --budget, use fewer --sites, or use --method permutation"
            )
        return ExactEstimator(interactions=interactions, progress=progress), None
    if interactions:
        raise ConfigError("--interactions needs the exact method (all coalitions); use --method exact with fewer players")
    coalitions = max(1, total // max(n_sites, 1))
    estimator = PermutationEstimator(seed=seed, tol=tol, progress=progress) if method == "permutation" else KernelEstimator(seed=seed, tol=tol, progress=progress)
    return estimator, coalitions


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
    estimator gets ``budget // n_sites`` coalitions (see :func:`plan_estimator`).
    """
    estimator, coalitions = plan_estimator(
        game.n_players, game.engine.n_sites, method=method, budget=budget, tol=tol, seed=seed,
        interactions=interactions, progress=progress,
    )
    return estimator.estimate(game, budget=coalitions)


def to_dataset(result: ShapleyResult, game: PredictionGame | PerformanceGame, *, attrs: dict) -> xr.Dataset:
    """Label a :class:`ShapleyResult` of a model game as an ``xarray.Dataset``."""
    estimate = estimate_attrs(
        n_evaluations=result.n_evaluations, method=result.method, budget=result.budget, converged=result.converged
    )
    if isinstance(game, PredictionGame):
        # estimator arrays are (P, N, K) -> (site, player, target)
        return result_dataset(
            shapley=np.moveaxis(result.values, 0, 1),
            shapley_se=np.moveaxis(result.se, 0, 1),
            v_empty=np.asarray(result.v_empty),
            v_full=np.asarray(result.v_full),
            banzhaf=None if result.banzhaf is None else np.moveaxis(result.banzhaf, 0, 1),
            interaction=None if result.interactions is None else np.moveaxis(result.interactions, 2, 0),
            players=result.players,
            targets=game.target_names,
            sites=(game.data.site_id, game.data.lat, game.data.lon),
            attrs={**estimate, **attrs},
        )
    return result_dataset(
        shapley=result.values,
        shapley_se=result.se,
        v_empty=np.asarray(result.v_empty),
        v_full=np.asarray(result.v_full),
        banzhaf=result.banzhaf,
        interaction=result.interactions,
        players=result.players,
        attrs={**estimate, **attrs},
    )


def estimate_attrs(*, n_evaluations: int, method: str, budget: int | None, converged: bool) -> dict:
    """The attrs a result takes from its estimate, plus the package version and the creation time."""
    return {
        "n_evaluations": int(n_evaluations),
        "method": method,
        "budget": -1 if budget is None else int(budget),
        "converged": int(bool(converged)),
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def result_dataset(
    *,
    shapley,
    shapley_se,
    v_empty,
    v_full,
    players: Sequence[str],
    banzhaf=None,
    interaction=None,
    targets: Sequence[str] | None = None,
    sites: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    attrs: dict,
) -> xr.Dataset:
    """The result layout of DESIGN §4 from arrays already in it (numpy, or lazy dask arrays).

    Args:
        shapley: ``float64[N, P, K]`` (prediction game) or ``float64[P]`` (performance game).
        shapley_se: Same shape as ``shapley``.
        v_empty: ``float64[N, K]`` or ``float64[]``.
        v_full: Same shape as ``v_empty``.
        players: The ``P`` player names.
        banzhaf: Same shape as ``shapley``, or ``None``.
        interaction: ``float64[N, P, P, K]`` or ``float64[P, P]``, or ``None``.
        targets: The ``K`` target names (prediction game), else ``None``.
        sites: ``(site_id int64[N], lat float64[N], lon float64[N])`` (prediction game), else ``None``.
        attrs: Provenance attrs.

    Returns:
        The labelled result.
    """
    players = [str(p) for p in players]
    per_site = sites is not None
    player_dims = ("site", "player", "target") if per_site else ("player",)
    value_dims = ("site", "target") if per_site else ()
    coords: dict = {"player": players}
    if per_site:
        site_id, lat, lon = sites
        coords.update({"target": [str(t) for t in targets or ()], "site_id": ("site", site_id), "lat": ("site", lat), "lon": ("site", lon)})
    data_vars = {
        "shapley": (player_dims, shapley),
        "shapley_se": (player_dims, shapley_se),
        "v_empty": (value_dims, v_empty),
        "v_full": (value_dims, v_full),
    }
    if banzhaf is not None:
        data_vars["banzhaf"] = (player_dims, banzhaf)
    if interaction is not None:
        data_vars["interaction"] = (("site", "player", "player_j", "target") if per_site else ("player", "player_j"), interaction)
        coords["player_j"] = players
    ds = xr.Dataset(data_vars, coords=coords)
    ds["shapley"].attrs["long_name"] = "Shapley value"
    ds["shapley_se"].attrs["long_name"] = "standard error of the Shapley value (0 when exact)"
    ds.attrs.update(attrs)
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
    scheduler: str | None = None,
    workers: int | None = None,
    store: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    overwrite: bool = False,
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
        device: ``auto``, ``cpu`` or ``cuda`` (sharded runs: resolved on each worker).
        progress: Show progress bars.
        scheduler: Address of a running Dask scheduler (``tcp://HOST:PORT``) to shard the work over.
        workers: Start a local Dask cluster of this many single-threaded worker processes instead.
        store: A resumable ``.zarr`` store the chunks stream into; a rerun with the same
            configuration reuses every chunk already written (see ``docs/scaling.md``).
            Sharded runs without a store use a temporary one.
        chunk_size: Sites per chunk (prediction game) or coalitions per chunk (performance
            game) of a sharded or stored run; default 2,048 sites or 32 coalitions.
        overwrite: Start a stored run afresh instead of resuming (or refusing) an existing store.

    Returns:
        The labelled result (see the module docstring). A stored run returns it backed by the
        store (lazy; ``.load()`` brings it into memory).

    Example:
        >>> ds = shapley("run/", group="spectral_bands", value="performance")  # doctest: +SKIP
        >>> ds["shapley"].to_series().sort_values()  # doctest: +SKIP
        >>> big = shapley("run/", group="years", split="all", workers=4, store="years.zarr")  # doctest: +SKIP
    """
    if value not in ("prediction", "performance"):
        raise ConfigError(f"value {value!r} must be 'prediction' or 'performance'")
    if scheduler is not None or workers is not None or store is not None:
        from miam_explain.explain.scale import sharded_shapley

        return sharded_shapley(
            model, data, group=group, value=value, method=method, budget=budget, tol=tol, seed=seed, context=context,
            target=target, output=output, metric=metric, interactions=interactions, split=split, sites=sites,
            collapse=collapse, device=device, progress=progress, scheduler=scheduler, workers=workers, store=store,
            chunk_size=chunk_size, overwrite=overwrite,
        )
    if chunk_size is not None or overwrite:
        raise ConfigError("chunk_size and overwrite apply to stored or sharded runs; pass store=, workers= or scheduler=")
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
    attrs = provenance_attrs(
        value=value, metric=metric_name, group=group, context=context, seed=seed,
        checkpoint=getattr(model_obj, "checkpoint_path", None), data=data_attr(data, model_obj), split=split, tol=tol,
        n_sites=game.engine.n_sites,
    )
    return to_dataset(result, game, attrs=attrs)


def data_attr(data: xr.Dataset | str | os.PathLike | None, model: MiamModel) -> str:
    """The ``data`` attr of a result: the dataset path as given, the checkpoint's, or ``in-memory dataset``."""
    if isinstance(data, xr.Dataset):
        return "in-memory dataset"
    if data is None:
        return str(getattr(model, "meta", {}).get("data", {}).get("path", ""))
    return str(data)


def provenance_attrs(
    *,
    value: str,
    metric: str,
    group: str,
    context: str,
    seed: int,
    checkpoint: str | None,
    data: str,
    split: str,
    tol: float | None,
    n_sites: int,
) -> dict:
    """The provenance attrs of a result (DESIGN §4), the same for in-memory and sharded runs."""
    return {
        "game": value,
        "metric": metric,
        "grouping": group,
        "context": context,
        "seed": int(seed),
        "model_sha256": _sha256(checkpoint),
        "model": str(checkpoint or ""),
        "data": data,
        "split": str(split),
        "tol": -1.0 if tol is None else float(tol),
        "n_sites": int(n_sites),
    }


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
