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
from pathlib import Path

import xarray as xr

from miam_explain.files import atomic_path, check_output_path
from miam_explain._version import __version__
from miam_explain.errors import ConfigError

__all__ = ["register", "run"]

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
    from miam_explain.explain.result import open_result, select_values
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


def _title(ds: xr.Dataset, values: xr.DataArray) -> str:
    player = str(values["player"].item())
    parts = [f"{player} ({ds.attrs.get('grouping', 'players')})"]
    if "target" in values.coords:
        parts.append(f"target {values['target'].item()}")
    split = ds.attrs.get("split")
    if split:
        parts.append(f"{split} split")
    return "Shapley value of " + ", ".join(parts)
