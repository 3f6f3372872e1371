"""The labelled result of a Shapley run: an ``xarray.Dataset`` with provenance; save, open, export to shap.

The result follows DESIGN §4:

* ``shapley(site?, player, target?)`` and ``shapley_se`` (0 when exact);
* ``v_empty(site?, target?)`` and ``v_full(site?, target?)``;
* optionally ``interaction(player, player_j, site?, target?)`` and ``banzhaf``;
* coords ``player`` with ``modality``, ``band``, ``channel``, ``variable``, ``year`` and ``patch``
  (:func:`~miam_explain.data.schema.player_coords`), ``site`` with ``site_id``, ``lat``, ``lon``, and ``target``;
* attrs game, metric, grouping, context, method, budget, n_evaluations, seed,
  model_sha256, data, split, version, created.

Efficiency holds: ``shapley.sum("player") == v_full - v_empty``.

Example:
    >>> import numpy as np
    >>> ds = result_dataset(shapley=np.array([0.2, 0.1]), shapley_se=np.zeros(2), v_empty=np.float64(0.5),
    ...                     v_full=np.float64(0.8), players=["red", "nir"], attrs={"game": "performance"})
    >>> ds["shapley"].sel(player="nir").item()
    0.1
    >>> float(ds["shapley"].sum("player") - (ds["v_full"] - ds["v_empty"])) == 0.0
    True
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from miam_explain.files import atomic_path
from miam_explain._version import __version__
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.estimators import ShapleyResult
from miam_explain.explain.estimators.base import MIN_SE_SAMPLES
from miam_explain.explain.games import PredictionGame
from miam_explain.explain.shap_export import result_to_shap
from miam_explain.data.format import text_values
from miam_explain.models.fusion import MiamModel

__all__ = [
    "select_values",
    "to_dataset",
    "result_dataset",
    "estimate_attrs",
    "provenance_attrs",
    "data_attr",
    "file_sha256",
    "save_result",
    "open_result",
    "result_to_shap",
]

#: How many valid names an error message lists before eliding the rest.
MAX_LISTED = 25


def file_sha256(path: str | os.PathLike | None) -> str:
    """The sha256 of a file (of a checkpoint, for provenance); ``""`` when there is no such file."""
    if not path or not Path(path).is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_dataset(result: ShapleyResult, game, *, attrs: dict, player_coords: Mapping[str, np.ndarray] | None = None,
               target_coords: Mapping[str, np.ndarray] | None = None) -> xr.Dataset:
    """Label a :class:`ShapleyResult` of a model game as an ``xarray.Dataset``.

    ``player_coords`` and ``target_coords``: see :func:`result_dataset`. A prediction game, and a
    per-species performance game (``game.per_target``), name their targets (``game.target_names``).
    """
    estimate = estimate_attrs(
        n_evaluations=result.n_evaluations, method=result.method, budget=result.budget, converged=result.converged,
        n_samples=result.n_samples,
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
            player_coords=player_coords,
            targets=game.target_names,
            target_coords=target_coords,
            sites=(game.data.site_id, game.data.lat, game.data.lon),
            attrs={**estimate, **attrs},
        )
    targets = game.target_names if getattr(game, "per_target", False) else None
    return result_dataset(
        shapley=result.values,
        shapley_se=result.se,
        v_empty=np.asarray(result.v_empty),
        v_full=np.asarray(result.v_full),
        banzhaf=result.banzhaf,
        interaction=result.interactions,
        players=result.players,
        player_coords=player_coords,
        targets=targets,
        target_coords=target_coords,
        attrs={**estimate, **attrs},
    )


def estimate_attrs(*, n_evaluations: int, method: str, budget: int | None, converged: bool, n_samples: int | None) -> dict:
    """The attrs a result takes from its estimate, plus the package version and the creation time.

    ``se_samples`` is the number of independent replicates the standard errors rest on (-1 for
    exact values) and ``se_reliable`` says whether that is at least
    :data:`~miam_explain.explain.estimators.base.MIN_SE_SAMPLES`.
    """
    return {
        "n_evaluations": int(n_evaluations),
        "method": method,
        "budget": -1 if budget is None else int(budget),
        "converged": int(bool(converged)),
        "se_samples": -1 if n_samples is None else int(n_samples),
        "se_reliable": int(n_samples is None or n_samples >= MIN_SE_SAMPLES),
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
    player_coords: Mapping[str, np.ndarray] | None = None,
    banzhaf=None,
    interaction=None,
    targets: Sequence[str] | None = None,
    target_coords: Mapping[str, np.ndarray] | None = None,
    sites: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    attrs: dict,
) -> xr.Dataset:
    """The result layout of DESIGN §4 from arrays already in it (numpy, or lazy dask arrays).

    Args:
        shapley: ``float64[N, P, K]`` (prediction game), ``float64[P, K]`` (per-species performance
            game) or ``float64[P]`` (performance game).
        shapley_se: Same shape as ``shapley``.
        v_empty: ``float64[N, K]``, ``float64[K]`` or ``float64[]``.
        v_full: Same shape as ``v_empty``.
        players: The ``P`` player names.
        player_coords: ``{name: array[P]}`` coordinates along ``player`` (``modality``, ``band``, …;
            :func:`~miam_explain.data.schema.player_coords`), or ``None``.
        banzhaf: Same shape as ``shapley``, or ``None``.
        interaction: ``float64[N, P, P, K]``, ``float64[P, P, K]`` or ``float64[P, P]``, or ``None``.
        targets: The ``K`` target names (prediction game, per-species performance game), else ``None``.
        target_coords: ``{name: array[K]}`` coordinates along ``target`` (``presences``,
            ``species_name``), or ``None``.
        sites: ``(site_id int64[N], lat float64[N], lon float64[N])`` (prediction game), else ``None``.
        attrs: Provenance attrs.

    Returns:
        The labelled result.
    """
    players = [str(p) for p in players]
    per_site = sites is not None
    per_target = per_site or targets is not None
    site_dims = ("site",) if per_site else ()
    target_dims = ("target",) if per_target else ()
    player_dims = (*site_dims, "player", *target_dims)
    value_dims = (*site_dims, *target_dims)
    coords: dict = {"player": players}
    coords.update({name: ("player", np.asarray(values)) for name, values in (player_coords or {}).items()})
    if per_target:
        coords["target"] = [str(t) for t in targets or ()]
        coords.update({name: ("target", np.asarray(values)) for name, values in (target_coords or {}).items()})
    if per_site:
        site_id, lat, lon = sites
        coords.update({"site_id": ("site", site_id), "lat": ("site", lat), "lon": ("site", lon)})
    data_vars = {
        "shapley": (player_dims, shapley),
        "shapley_se": (player_dims, shapley_se),
        "v_empty": (value_dims, v_empty),
        "v_full": (value_dims, v_full),
    }
    if banzhaf is not None:
        data_vars["banzhaf"] = (player_dims, banzhaf)
    if interaction is not None:
        data_vars["interaction"] = ((*site_dims, "player", "player_j", *target_dims), interaction)
        coords["player_j"] = players
    ds = xr.Dataset(data_vars, coords=coords)
    ds["shapley"].attrs["long_name"] = "Shapley value"
    ds["shapley_se"].attrs["long_name"] = "standard error of the Shapley value (0 when exact)"
    ds.attrs.update(attrs)
    return ds


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
    grouping_definition: str = "",
) -> dict:
    """The provenance attrs of a result (DESIGN §4), the same for in-memory and sharded runs.

    ``grouping_definition`` is a user grouping's definition as JSON (``Players.definition``), ``""``
    for a built-in grouping.
    """
    return {
        "game": value,
        "metric": metric,
        "grouping": group,
        "grouping_definition": grouping_definition,
        "context": context,
        "seed": int(seed),
        "model_sha256": file_sha256(checkpoint),
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


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Open a Shapley result written by :func:`save_result`.

    Args:
        path: A ``.nc`` file or a ``.zarr`` folder.

    Returns:
        The result, loaded into memory.

    Raises:
        DataError: the path is missing, unreadable, or not a Shapley result.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"result {str(path)!r} does not exist; write one with 'miam-explain shapley ... --out {path.name}'")
    try:
        if path.is_dir():
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = xr.open_zarr(path, consolidated=None).load()
        else:
            with xr.open_dataset(path, engine="h5netcdf") as handle:
                ds = handle.load()
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read result {str(path)!r} as netCDF or zarr ({reason}); pass a file written by 'miam-explain shapley'") from None
    if "shapley" not in ds or "player" not in ds["shapley"].dims:
        raise DataError(f"{str(path)!r} is not a miam-explain Shapley result (no 'shapley' variable over 'player'); pass a file written by 'miam-explain shapley'")
    return ds


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f", … ({len(names)} in all)" if len(names) > MAX_LISTED else "")


def select_values(ds: xr.Dataset, *, player: str, target: str | None = None) -> xr.DataArray:
    """One player's (or a ``+``-joined sum of players') Shapley values per site.

    Args:
        ds: A prediction-game result (``shapley(site, player, target)``).
        player: A player name, or names joined by ``+`` whose values are summed.
        target: The output to map; may be left out when the result has one target.

    Returns:
        ``float[site]`` with coords ``site_id``, ``lat``, ``lon``, named ``shapley``.

    Raises:
        DataError: the result has no site dim (a performance game).
        ConfigError: an unknown player or target, or a missing ``target`` where
            the result has several.
    """
    shap = ds["shapley"]
    if "site" not in shap.dims:
        raise DataError(
            f"this is a {ds.attrs.get('game', 'performance')}-game result with no per-site values; maps need a "
            "prediction-game result: run 'miam-explain shapley --value prediction ...'"
        )
    players = text_values(ds["player"].values).tolist()
    wanted = [player] if player in players else [p.strip() for p in player.split("+")]
    unknown = [p for p in wanted if p not in players]
    if unknown or not all(wanted):
        raise ConfigError(f"unknown player {player!r} (grouping {ds.attrs.get('grouping', '?')}); choose from {_listing(players)}")
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"player {player!r} names a player twice; name each player once")
    values = shap.isel(player=[players.index(p) for p in wanted]).sum("player")
    if "target" in values.dims:
        targets = text_values(ds["target"].values).tolist()
        if target is None:
            if len(targets) > 1:
                raise ConfigError(f"the result has {len(targets)} targets; pick one with --target from {_listing(targets)}")
            index = 0
        elif str(target) in targets:
            index = targets.index(str(target))
        else:
            raise ConfigError(f"unknown target {target!r}; choose from {_listing(targets)}")
        values = values.isel(target=index)
        values = values.assign_coords(target=targets[index])
    elif target is not None:
        raise ConfigError(f"the result has no target dim, so --target {target!r} does not apply; drop it")
    values = values.assign_coords(player="+".join(wanted))
    values.name = "shapley"
    values.attrs = {"long_name": "Shapley value", "units": f"Δ {ds.attrs['metric']}" if ds.attrs.get("metric") else ""}
    if not np.isfinite(values.values).any():
        raise DataError(f"player {player!r} has no finite value at any site; nothing to map")
    return values
