"""``miam-explain map``: map one player's per-site Shapley values from a prediction-game result.

The result is a file written by ``miam-explain shapley --value prediction``
(netCDF ``.nc`` or zarr ``.zarr``). ``--player`` names one player, or several
joined by ``+`` (``red+nir``) whose values are summed: the joint contribution
of those groups. Sites are drawn as points, or as the means over ``--blocks``
degree squares, over the Natural Earth countries shipped in ``pyogrio`` (or a
``--basemap`` file, or ``--basemap none`` for a plain frame). The title and the
PNG's metadata report Moran's I of the per-site values (k nearest neighbours,
permutation p-value); ``--against NAME`` draws the values against a covariate
(``lat``, ``lon`` or a tabular variable of the dataset) next to the map.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import xarray as xr
from matplotlib.figure import Figure

from miam_explain.files import atomic_path, check_output_path
from miam_explain._version import __version__
from miam_explain.errors import ConfigError, DataError
from miam_explain.spatial.autocorrelation import DEFAULT_K, DEFAULT_PERMUTATIONS

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
centred on 0.

Moran's I of the per-site values, on the --neighbours nearest sites
(great-circle distance), with a p-value from --permutations random
permutations (seeded by --seed), is printed, added to the title and stored in
the PNG's metadata ('Moran', JSON). --against NAME draws the values against a
covariate next to the map, with a local linear trend and its 95 % bootstrap
band: NAME is lat, lon, or a tabular variable of the dataset (Bio1, Elevation
...; the dataset is the result's own, or --data)."""


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
    parser.add_argument("--against", default=None, metavar="NAME", help="also draw the values against NAME: lat, lon or a tabular variable (Bio1, Elevation ...)")
    parser.add_argument("--data", type=Path, default=None, metavar="DATA", help="dataset holding the --against variable (default: the one recorded in the result)")
    parser.add_argument("--neighbours", type=int, default=DEFAULT_K, metavar="K", help=f"nearest sites that are neighbours in Moran's I (default {DEFAULT_K})")
    parser.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS, metavar="N", help=f"permutations of Moran's I test (default {DEFAULT_PERMUTATIONS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations and of the trend's bootstrap (default 0)")
    parser.add_argument("--title", default=None, help="map title (default: player, target and game)")
    parser.add_argument("--dpi", type=int, default=130, help="PNG resolution (default 130)")
    parser.add_argument("--out", required=True, type=Path, metavar="MAP.png", help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Open the result, select the player (and target), compute Moran's I, draw the map (and gradient), write the PNG."""
    from miam_explain.explain.result import open_result, select_values
    from miam_explain.plotting.gradients import gradient_plot
    from miam_explain.plotting.maps import site_map
    from miam_explain.spatial import moran, site_covariate

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {str(args.out)!r}")
    check_output_path(args.out, overwrite=args.overwrite)
    if not 20 <= args.dpi <= 600:
        raise ConfigError(f"--dpi must be between 20 and 600, got {args.dpi}")
    ds = open_result(args.result)
    values = select_values(ds, player=args.player, target=args.target)
    covariate = None
    if args.against is not None:
        data = _dataset(ds, args, values)
        covariate = site_covariate(values, args.against, data=data)
    try:
        autocorrelation = moran(values, k=args.neighbours, n_permutations=args.permutations, seed=args.seed)
        moran_line = f"Moran's I = {autocorrelation.i:.2f}, p = {autocorrelation.p_value:.3g} ({autocorrelation.k} neighbours, {autocorrelation.n_permutations} permutations)"
        moran_json = json.dumps(autocorrelation.to_dict())
    except DataError as exc:  # too few sites, or constant values: the map is still drawn
        autocorrelation, moran_line, moran_json = None, "Moran's I not computed", json.dumps({"error": str(exc)})
        print(f"Moran's I not computed: {exc}")

    metric = str(ds.attrs.get("metric", "")) or None
    units = f"Δ {metric}" if metric else None
    title = (args.title if args.title is not None else _title(ds, values)) + "\n" + moran_line
    ax_map = ax_gradient = None
    if covariate is not None:
        fig = Figure(figsize=(13.0, 5.4), layout="constrained")
        ax_map, ax_gradient = fig.subplots(1, 2, width_ratios=[1.25, 1.0])
    fig = site_map(values, blocks=args.blocks, basemap=args.basemap, ax=ax_map, title=title, units=units)
    if covariate is not None:
        heading = f"{values['player'].item()} against {covariate.attrs.get('long_name') or args.against}"
        gradient_plot(values, covariate, ax=ax_gradient, seed=args.seed, units=units, title=heading)
    settings = {k: str(v) for k, v in vars(args).items() if k != "func"}
    metadata = {"Software": f"miam-explain {__version__}", "Description": json.dumps(settings), "Moran": moran_json}
    with atomic_path(args.out, overwrite=args.overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=args.dpi, metadata=metadata)
    if autocorrelation is not None:
        print(autocorrelation.summary())
    print(f"wrote {args.out}")


def _dataset(ds: xr.Dataset, args: argparse.Namespace, values: xr.DataArray) -> Path | None:
    """The dataset for ``--against``: ``--data``, else the result's ``data`` attr if it exists here, else ``None``."""
    if args.data is not None:
        return args.data
    recorded = str(ds.attrs.get("data", ""))
    if recorded and Path(recorded).exists():
        return Path(recorded)
    if args.against not in values.coords:
        raise ConfigError(
            f"--against {args.against!r} is not a coord of the result (lat, lon); for a tabular variable pass --data DATA "
            f"(the dataset recorded in the result, {recorded or 'none'!r}, is not here)"
        )
    return None


def _title(ds: xr.Dataset, values: xr.DataArray) -> str:
    player = str(values["player"].item())
    parts = [f"{player} ({ds.attrs.get('grouping', 'players')})"]
    if "target" in values.coords:
        parts.append(f"target {values['target'].item()}")
    split = ds.attrs.get("split")
    if split:
        parts.append(f"{split} split")
    return "Shapley value of " + ", ".join(parts)
