"""``miam-explain data synth|prepare|from-table|inspect``: make, consolidate and look at data."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


#: Realism options passed on to ``synthesize`` only when given (so its defaults are the only ones).
_REALISM: tuple[str, ...] = ("anomaly_sd", "standardize_anomalies", "landsat_echo", "modality_correlation",
                              "imbalance")


#: The recipe options of ``data prepare`` (GeoPlant only; ``None`` when not given).
_RECIPE: tuple[str, ...] = ("min_presences", "species_in_every_split", "tabular_columns")


def _column_list(text: str) -> tuple[str, ...]:
    """``"Bio1, soil"`` -> ``("Bio1", "soil")`` (the names are checked against the CSVs by ``prepare_geoplant``)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _effect_list(text: str) -> tuple[str, ...]:
    """``"heatwave,ndvi"`` -> ``("heatwave", "ndvi")`` (the names are checked by ``synthesize``)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its sub-commands."""
    parser = subparsers.add_parser("data", help="synthesise, prepare and inspect datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser("synth", help="write a synthetic GeoPlant raw folder (GLC25 layout) with planted effects")
    synth.add_argument("--out", required=True, type=Path, help="raw folder to create")
    synth.add_argument("--sites", type=int, default=2000, help="number of surveys (default 2000)")
    synth.add_argument("--species", type=int, default=24, help="number of species (default 24)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--heatwave-year", type=int, default=2003, help="year of the planted heatwave (default 2003)")
    realism = synth.add_argument_group(
        "realism settings", "left out, each takes the realistic default of synthesize (docs/synthetic.md says why)")
    realism.add_argument("--anomaly-sd", type=float, default=argparse.SUPPRESS,
                         help="size in degC of each year's climate anomaly around the normals")
    realism.add_argument("--standardize-anomalies", action="store_true", default=argparse.SUPPRESS,
                         help="give every year's anomaly field the same spread (as generator version 2 did)")
    realism.add_argument("--landsat-echo", type=float, default=argparse.SUPPRESS,
                         help="heatwave echo in Landsat quarter 3, log-factor per unit intensity; 0 = none")
    realism.add_argument("--modality-correlation", type=float, default=argparse.SUPPRESS,
                         help="correlation between drivers seen by different modalities; 0 = decorrelated")
    realism.add_argument("--null-effects", type=_effect_list, default=(), metavar="EFFECT[,EFFECT...]",
                         help="effects no species responds to (null mode), e.g. heatwave,ndvi; "
                         "the input files stay those of the planted run")
    realism.add_argument("--imbalance", type=float, default=argparse.SUPPRESS, metavar="R",
                         help="imbalance regime: one more tabular column (Vegetation-NDVI) correlated at R with the "
                         "NDVI field of the Sentinel-2 patch; 0 (default) = off, every file unchanged")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_synth)

    prepare = sub.add_parser(
        "prepare",
        help="consolidate a raw GeoPlant/GeoLifeCLEF folder (or an embeddings file) into one dataset",
    )
    prepare.add_argument("raw", type=Path, help="raw GLC24/GLC25 folder, or a .pt/.npz embeddings file")
    prepare.add_argument("--out", required=True, type=Path, help="output .zarr folder (streamed) or .nc file")
    prepare.add_argument(
        "--split",
        choices=("spatial", "given", "stratified"),
        default=None,
        help="spatial 1-degree verde blocks (default for GeoPlant), the metadata's train/test subset "
        "(given), or class-stratified (default for embeddings)",
    )
    prepare.add_argument("--labels", type=Path, default=None, help="CSV with scientific_name (embeddings only)")
    prepare.add_argument("--val", type=float, default=0.15, help="validation fraction (default 0.15)")
    prepare.add_argument("--test", type=float, default=0.15, help="test fraction (default 0.15)")
    prepare.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    prepare.add_argument("--block-size-deg", "--spacing", dest="spacing", type=float, default=1.0,
                         help="side of the spatial split's blocks in degrees (default 1, as in the paper)")
    recipe = prepare.add_argument_group(
        "recipe (GeoPlant)", "which species and tabular columns to keep; docs/data.md 'The paper's recipe'")
    recipe.add_argument("--min-presences", type=int, default=None, metavar="N",
                        help="keep species present in at least N surveys, counted over all splits "
                        "(21 = the paper's 'more than 20'); also turns on --species-in-every-split")
    recipe.add_argument("--species-in-every-split", action=argparse.BooleanOptionalAction, default=None,
                        help="keep only species present in train, val and test (default: on with --min-presences)")
    recipe.add_argument("--tabular-columns", type=_column_list, default=None, metavar="COL[,COL...]",
                        help="tabular columns or variable groups (worldclim, soil, elevation, human_footprint, "
                        "landcover) that become tokens (default: every numeric column)")
    prepare.add_argument("--chunk-size", type=int, default=512, help="sites per streamed chunk (default 512)")
    prepare.add_argument("--strict", action="store_true", help="fail on the first unreadable file instead of writing NaN")
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing output")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(func=_prepare)

    _add_from_table(sub)

    inspect = sub.add_parser("inspect", help="print sites, species, tokens per modality and missing fractions")
    inspect.add_argument("data", type=Path, help="consolidated dataset (.zarr or .nc)")
    inspect.set_defaults(func=_inspect)


def _synth(args: argparse.Namespace) -> None:
    from miam_explain.data.synth import synthesize

    out = synthesize(
        args.out,
        n_sites=args.sites,
        n_species=args.species,
        seed=args.seed,
        heatwave_year=args.heatwave_year,
        null_effects=args.null_effects,
        overwrite=args.overwrite,
        progress=not args.quiet,
        **{name: getattr(args, name) for name in _REALISM if hasattr(args, name)},
    )
    nulls = f", null effects: {','.join(args.null_effects)}" if args.null_effects else ""
    print(f"wrote synthetic GeoPlant raw data ({args.sites} sites, {args.species} species{nulls}) to {out}")


def _prepare(args: argparse.Namespace) -> None:
    from miam_explain.errors import DataError

    if args.raw.is_file() and args.raw.suffix.lower() in (".pt", ".npz"):
        from miam_explain.data.embeddings import prepare_embeddings

        given = [f"--{name.replace('_', '-')}" for name in _RECIPE if getattr(args, name) is not None]
        if given:
            raise DataError(f"{', '.join(given)} only apply to a GeoPlant folder, not to an embeddings file; leave them out")

        labels = args.labels or args.raw.with_suffix(".csv")
        ds = prepare_embeddings(
            args.raw,
            labels,
            args.out,
            split=args.split or "stratified",
            val=args.val,
            test=args.test,
            seed=args.seed,
            overwrite=args.overwrite,
        )
        print(f"prepared {ds.sizes['site']} samples, {ds.sizes['species']} classes (embeddings) -> {args.out}")
        return
    if args.labels is not None:
        raise DataError("--labels is only for an embeddings file; a GeoPlant folder takes labels from its metadata")
    if args.split == "stratified":
        raise DataError("--split stratified is for multi-class data; use spatial or given for presence-absence")
    from miam_explain.data.glc import prepare_geoplant

    report = prepare_geoplant(
        args.raw,
        args.out,
        split=args.split or "spatial",
        spacing=args.spacing,
        val=args.val,
        test=args.test,
        seed=args.seed,
        min_presences=args.min_presences,
        species_in_every_split=args.species_in_every_split,
        tabular_columns=args.tabular_columns,
        chunk_size=args.chunk_size,
        strict=args.strict,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(report.summary())
    print(f"-> {args.out}")


def _inspect(args: argparse.Namespace) -> None:
    from miam_explain.data.format import open_dataset
    from miam_explain.data.inspect import format_summary, summarize

    ds = open_dataset(args.data)
    print(f"{args.data}")
    print(format_summary(*summarize(ds)))


def _cube_option(text: str) -> tuple[str, Path]:
    """``"climate=chelsa.nc"`` -> ``("climate", Path("chelsa.nc"))`` (the name is checked by ``from_table``)."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"--cube takes NAME=PATH, e.g. climate=chelsa.nc, not {text!r}")
    return name.strip(), Path(path.strip())


def _add_from_table(sub: argparse._SubParsersAction) -> None:
    """The ``data from-table`` sub-command (bring your own data; docs/data.md 'Your own data')."""
    table = sub.add_parser("from-table", help="make a dataset from your own table of sites and species (CSV, "
                           "GeoPackage, GeoParquet, shapefile), with optional gridded cubes")
    table.add_argument("table", type=Path, help="CSV/Parquet, or a vector file whose point geometry may be in any CRS")
    table.add_argument("--out", required=True, type=Path, help="output .zarr folder or .nc file")
    where = table.add_argument_group("sites", "default: the geometry, or lat/lon columns; one site per row")
    where.add_argument("--lat-column", default=None, help="latitude column in degrees")
    where.add_argument("--lon-column", default=None, help="longitude column in degrees")
    where.add_argument("--site-column", default=None, help="rows with the same value are one site (e.g. surveyId)")
    what = table.add_argument_group("species", "give one format")
    what.add_argument("--species-column", default=None,
                      help="long format: one row per site and present species (e.g. speciesId)")
    what.add_argument("--species-columns", type=_column_list, default=None, metavar="A,B,...",
                      help="wide format: one 0/1 column per species")
    what.add_argument("--presence-column", default=None,
                      help="one species: 0/1 presence vs absence or background (with --species-column: each row's 0/1)")
    what.add_argument("--species-name", default=None, help="name of the one species (default: the table's file name)")
    table.add_argument("--covariates", type=_column_list, default=None, metavar="COL,...",
                       help="numeric columns of the tabular modality (default: every other numeric column)")
    table.add_argument("--cube", type=_cube_option, action="append", default=[], metavar="NAME=PATH",
                       help="gridded series (NetCDF or zarr, time x lat x lon) sampled at the sites' nearest cells "
                       "into the time-series modality x_NAME; repeat for several")
    table.add_argument("--split", choices=("spatial", "given", "stratified"), default="spatial",
                       help="spatial blocks (default), the table's split column (given), or stratified by presence")
    table.add_argument("--block-size-deg", type=float, default=1.0, help="side of the spatial blocks in degrees (default 1)")
    table.add_argument("--val", type=float, default=0.15, help="validation fraction (default 0.15)")
    table.add_argument("--test", type=float, default=0.15, help="test fraction (default 0.15)")
    table.add_argument("--min-presences", type=int, default=None, metavar="N",
                       help="keep species present at N sites or more (and in every split, as data prepare does)")
    table.add_argument("--species-in-every-split", action=argparse.BooleanOptionalAction, default=None,
                       help="keep only species present in train, val and test (default: on with --min-presences)")
    table.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    table.add_argument("--overwrite", action="store_true", help="replace an existing output")
    table.set_defaults(func=_from_table)


def _from_table(args: argparse.Namespace) -> None:
    from miam_explain.data.table import from_table
    from miam_explain.errors import ConfigError

    cubes = dict(args.cube)
    if len(cubes) != len(args.cube):
        raise ConfigError("two --cube options share a name; give each cube its own NAME")
    report = from_table(
        args.table,
        args.out,
        lat_column=args.lat_column,
        lon_column=args.lon_column,
        site_column=args.site_column,
        species_column=args.species_column,
        species_columns=args.species_columns,
        presence_column=args.presence_column,
        species_name=args.species_name,
        covariates=args.covariates,
        cubes=cubes,
        split=args.split,
        block_size_deg=args.block_size_deg,
        val=args.val,
        test=args.test,
        min_presences=args.min_presences,
        species_in_every_split=args.species_in_every_split,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(report.summary())
