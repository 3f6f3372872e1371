"""``miam-explain shapley``: Shapley values of token groups for predictions or performance."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``shapley`` command."""
    parser = subparsers.add_parser("shapley", help="Shapley values of token groups (exact or sampled)")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors) or run folder")
    parser.add_argument("--group", required=True,
                        help="grouping whose members are the players, e.g. spectral_bands, years, modalities, or one of --groupings")
    parser.add_argument("--groupings", type=Path, default=None, metavar="FILE.toml",
                        help="user groupings ([groupings.NAME] tables of selectors, ranges such as climate_years:2000..2004 "
                             "included; docs/schema.md); their names become valid for --group")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the one recorded in the checkpoint)")
    parser.add_argument("--split", default="test", help="train, val, test or all (default test)")
    parser.add_argument("--value", choices=("prediction", "performance"), default="prediction",
                        help="per-site predictions (default) or a metric over the split")
    parser.add_argument("--method", default="auto",
                        help="auto (exact when 2^P x sites fits the budget, else leverage or permutation sampling) or an "
                             "estimator: exact, adjusted, leverage, stratified, permutation, kernel (docs/estimators.md)")
    parser.add_argument("--budget", type=int, default=None,
                        help="model evaluations, one per (coalition, site); default max(2,000,000, (2 + 16 x players) x sites)")
    parser.add_argument("--budget-per-site", type=int, default=None, metavar="N",
                        help="coalitions per site instead of --budget (N x sites model evaluations)")
    parser.add_argument("--tol", type=float, default=None, help="stop sampling when max SE < tol x value range")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--context", choices=("none", "all"), default="none",
                        help="tokens outside the players: hidden (none, default) or visible (all)")
    parser.add_argument("--target", default="auto",
                        help="prediction game: species ids (comma-separated), richness, all or auto; performance game: "
                             "all or species ids for one metric per species (default: one metric over every species)")
    parser.add_argument("--output", choices=("probability", "logit"), default="probability")
    parser.add_argument("--metric", default="auto", help="performance game: auto, auc, accuracy, top5, neg_loss")
    parser.add_argument("--sites", default=None, help="prediction game: comma-separated site ids")
    parser.add_argument("--interactions", action="store_true", help="pairwise Shapley interaction indices (exact)")
    parser.add_argument("--no-collapse", action="store_true", help="run all tokens instead of the collapsed forward")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to compute (with --scheduler/--workers: resolved on each worker)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", default=None, metavar="ADDR",
                         help="shard the work over an existing Dask cluster, e.g. tcp://HOST:8786")
    cluster.add_argument("--workers", type=int, default=None, metavar="N",
                         help="shard the work over a local Dask cluster of N worker processes (one thread each)")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N",
                        help="sites (prediction) or coalitions (performance) per chunk of a stored or sharded run; "
                             "default 2048 sites or 32 coalitions")
    parser.add_argument("--store", type=Path, default=None,
                        help="resumable .zarr store for a .nc --out (default with --scheduler/--workers: "
                             "OUT.store.zarr, removed once OUT is written); a .zarr --out is its own store")
    parser.add_argument("--out", required=True, type=Path,
                        help="result file (.nc or .zarr); a .zarr result is written chunk by chunk and a rerun resumes it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out (and start a stored run again)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    from miam_explain.files import check_output_path, remove_path
    from miam_explain.errors import ConfigError
    from miam_explain.explain import save_result, shapley
    from miam_explain.files import output_errors

    if args.out.suffix not in (".nc", ".zarr"):
        raise ConfigError(f"--out {str(args.out)!r} must end in .nc or .zarr")
    sharded = args.scheduler is not None or args.workers is not None
    if args.out.suffix == ".zarr":
        if args.store is not None:
            raise ConfigError("--store is for a .nc --out; a .zarr --out is itself the resumable store")
        store, scratch = args.out, False  # resumed or refused by the store itself
    else:
        check_output_path(args.out, overwrite=args.overwrite)
        scratch = args.store is None and sharded
        store = args.out.with_suffix(".store.zarr") if scratch else args.store
    if store is None and args.chunk_size is not None:
        raise ConfigError("--chunk-size applies to stored or sharded runs: use a .zarr --out, --store, --scheduler or --workers")
    target = args.target if args.target in ("auto", "all", "richness") else [t.strip() for t in args.target.split(",")]
    sites = None
    if args.sites is not None:
        try:
            sites = [int(s) for s in args.sites.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--sites {args.sites!r} must be comma-separated integer site ids") from None
    stored = {} if store is None else {
        "scheduler": args.scheduler, "workers": args.workers, "store": store, "chunk_size": args.chunk_size,
        "overwrite": args.overwrite,
    }
    with _log_to_stderr(not args.quiet):
        ds = shapley(
            args.model, args.data, group=args.group, groupings=args.groupings, value=args.value, method=args.method, budget=args.budget,
            budget_per_site=args.budget_per_site,
            tol=args.tol, seed=args.seed, context=args.context, target=target, output=args.output, metric=args.metric,
            interactions=args.interactions, split=args.split, sites=sites, collapse=not args.no_collapse,
            device=args.device, progress=not args.quiet, **stored,
        )
    table = summary_table(ds)
    if args.out.suffix == ".nc":
        with output_errors(args.out, ", or choose another --out"):
            save_result(ds, args.out, overwrite=args.overwrite)
            if scratch:  # the store next to a .nc was only the way there
                ds.close()
                remove_path(store)
    print(table)
    print(f"-> {args.out}")


@contextlib.contextmanager
def _log_to_stderr(enabled: bool) -> Iterator[None]:
    """Print the explain engine's progress notes (chunks reused and computed) on stderr while running."""
    logger = logging.getLogger("miam_explain.explain")
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("miam-explain: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def summary_table(ds) -> str:
    """Players ranked by mean Shapley value (over sites and targets), with standard errors."""
    import numpy as np
    import pandas as pd

    from miam_explain.explain.estimators.base import MIN_SE_SAMPLES

    other = [d for d in ds["shapley"].dims if d != "player"]
    mean = ds["shapley"].mean(other).to_series() if other else ds["shapley"].to_series()
    mean_abs = abs(ds["shapley"]).mean(other).to_series() if other else mean.abs()
    se = ds["shapley_se"].mean(other).to_series() if other else ds["shapley_se"].to_series()
    table = pd.DataFrame({"shapley": mean, "se": se, "mean |shapley|": mean_abs}).sort_values("shapley", ascending=False)
    head = (
        f"{ds.attrs['game']} game, {ds.attrs['metric']}, grouping {ds.attrs['grouping']}, context {ds.attrs['context']}, "
        f"method {ds.attrs['method']} ({ds.attrs['n_evaluations']} coalitions); "
        f"v_empty {float(np.mean(ds['v_empty'])):.4f} -> v_full {float(np.mean(ds['v_full'])):.4f}"
    )
    if "target" in ds["shapley"].dims and "site" not in ds["shapley"].dims:
        head += f"\none {ds.attrs['metric']} per species ({ds.sizes['target']} species); the table averages over them"
    text = head + "\n" + table.to_string(float_format=lambda v: f"{v:.5f}")
    if not int(ds.attrs.get("se_reliable", 1)):
        text += (f"\nnote: the standard errors rest on {ds.attrs.get('se_samples')} samples, too few to trust "
                 f"(raise --budget; {MIN_SE_SAMPLES} or more samples make them reliable)")
    return text
