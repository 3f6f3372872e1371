"""``miam-explain map``: map one player's per-site Shapley values from a prediction-game result.

The result is a file written by ``miam-explain shapley --value prediction``
(netCDF ``.nc`` or zarr ``.zarr``). ``--player`` names one player, or several
joined by ``+`` (``red+nir``) whose values are summed: the joint contribution
of those groups. Sites are drawn as points, or as the means over ``--blocks``
degree squares, over the Natural Earth countries shipped in ``pyogrio`` (or a
``--basemap`` file, or ``--basemap none`` for a plain frame).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from miam_explain._io import atomic_path, check_output_path
from miam_explain._version import __version__
from miam_explain.data.format import text_values
from miam_explain.errors import ConfigError, DataError

__all__ = ["register", "run", "open_result", "select_values"]

DESCRIPTION = """\
Map one player's per-site Shapley values from a prediction-game result.

RESULT is a file written by 'miam-explain shapley --value prediction' (.nc or
.zarr). --player names one player, or several joined by '+' (e.g. red+nir),
whose values are summed. --target picks the output when the result has several
(a species id, richness ...). Sites are points, or the means over --blocks
degree squares, over the Natural Earth countries shipped inside pyogrio; pass
--basemap FILE for your own outlines (shapefile, GeoPackage, GeoJSON) or
--basemap none for a plain lat/lon frame. The colour scale is diverging and
centred on 0."""
#: How many valid names an error message lists before eliding the rest.
MAX_LISTED = 25


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``map`` sub-command."""
    parser = subparsers.add_parser(
        "map",
        help="map a player's per-site Shapley values (points or block means)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("result", type=Path, metavar="RESULT", help="prediction-game result (.nc or .zarr) from 'miam-explain shapley'")
    parser.add_argument("--player", required=True, metavar="NAME", help="player to map, or players joined by '+' (summed), e.g. red+nir")
    parser.add_argument("--target", default=None, metavar="T", help="output to map when the result has several (species id, richness ...)")
    parser.add_argument("--blocks", type=float, default=None, metavar="DEG", help="draw means over square blocks of DEG degrees (e.g. 1.0) instead of points")
    parser.add_argument("--basemap", default=None, metavar="FILE", help="outline file (shapefile, GeoPackage, GeoJSON) or 'none'; default: Natural Earth from pyogrio")
    parser.add_argument("--title", default=None, help="map title (default: player, target and game)")
    parser.add_argument("--dpi", type=int, default=130, help="PNG resolution (default 130)")
    parser.add_argument("--out", required=True, type=Path, metavar="MAP.png", help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Open the result, select the player (and target), draw the map and write the PNG."""
    from miam_explain.plotting.maps import site_map

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {str(args.out)!r}")
    check_output_path(args.out, overwrite=args.overwrite)
    if not 20 <= args.dpi <= 600:
        raise ConfigError(f"--dpi must be between 20 and 600, got {args.dpi}")
    ds = open_result(args.result)
    values = select_values(ds, player=args.player, target=args.target)
    metric = str(ds.attrs.get("metric", "")) or None
    fig = site_map(
        values,
        blocks=args.blocks,
        basemap=args.basemap,
        title=args.title if args.title is not None else _title(ds, values),
        units=f"Δ {metric}" if metric else None,
    )
    settings = {k: str(v) for k, v in vars(args).items() if k != "func"}
    metadata = {"Software": f"miam-explain {__version__}", "Description": json.dumps(settings)}
    with atomic_path(args.out, overwrite=args.overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=args.dpi, metadata=metadata)
    print(f"wrote {args.out}")


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Open a Shapley result written by :func:`miam_explain.explain.api.save_result`.

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


def _title(ds: xr.Dataset, values: xr.DataArray) -> str:
    player = str(values["player"].item())
    parts = [f"{player} ({ds.attrs.get('grouping', 'players')})"]
    if "target" in values.coords:
        parts.append(f"target {values['target'].item()}")
    split = ds.attrs.get("split")
    if split:
        parts.append(f"{split} split")
    return "Shapley value of " + ", ".join(parts)
