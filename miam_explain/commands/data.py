"""``miam-explain data synth|prepare|inspect``: make, consolidate and look at data."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


#: Realism options passed on to ``synthesize`` only when given (so its defaults are the only ones).
_REALISM: tuple[str, ...] = ("anomaly_sd", "standardize_anomalies", "landsat_echo", "modality_correlation")


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
    prepare.add_argument("--spacing", type=float, default=1.0, help="spatial block size in degrees (default 1)")
    prepare.add_argument("--chunk-size", type=int, default=512, help="sites per streamed chunk (default 512)")
    prepare.add_argument("--strict", action="store_true", help="fail on the first unreadable file instead of writing NaN")
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing output")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(func=_prepare)

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
