"""``miam-explain shapley``: Shapley values of token groups for predictions or performance."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``shapley`` command."""
    parser = subparsers.add_parser("shapley", help="Shapley values of token groups (exact or sampled)")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors) or run folder")
    parser.add_argument("--group", required=True, help="grouping whose members are the players, e.g. spectral_bands, years, modalities")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the one recorded in the checkpoint)")
    parser.add_argument("--split", default="test", help="train, val, test or all (default test)")
    parser.add_argument("--value", choices=("prediction", "performance"), default="prediction",
                        help="per-site predictions (default) or a metric over the split")
    parser.add_argument("--method", choices=("auto", "exact", "permutation", "kernel"), default="auto")
    parser.add_argument("--budget", type=int, default=None, help="model evaluations, one per (coalition, site); default 2,000,000")
    parser.add_argument("--tol", type=float, default=None, help="stop sampling when max SE < tol x value range")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--context", choices=("none", "all"), default="none",
                        help="tokens outside the players: hidden (none, default) or visible (all)")
    parser.add_argument("--target", default="auto", help="prediction game: species ids (comma-separated), richness, all or auto")
    parser.add_argument("--output", choices=("probability", "logit"), default="probability")
    parser.add_argument("--metric", default="auto", help="performance game: auto, auc, accuracy, top5, neg_loss")
    parser.add_argument("--sites", default=None, help="prediction game: comma-separated site ids")
    parser.add_argument("--interactions", action="store_true", help="pairwise Shapley interaction indices (exact)")
    parser.add_argument("--no-collapse", action="store_true", help="run all tokens instead of the collapsed forward")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", required=True, type=Path, help="result file (.nc or .zarr)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    from miam_explain._io import check_output_path
    from miam_explain.errors import ConfigError
    from miam_explain.explain.api import save_result, shapley

    if args.out.suffix not in (".nc", ".zarr"):
        raise ConfigError(f"--out {str(args.out)!r} must end in .nc or .zarr")
    check_output_path(args.out, overwrite=args.overwrite)
    target = args.target if args.target in ("auto", "all", "richness") else [t.strip() for t in args.target.split(",")]
    sites = None
    if args.sites is not None:
        try:
            sites = [int(s) for s in args.sites.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--sites {args.sites!r} must be comma-separated integer site ids") from None
    ds = shapley(
        args.model, args.data, group=args.group, value=args.value, method=args.method, budget=args.budget,
        tol=args.tol, seed=args.seed, context=args.context, target=target, output=args.output, metric=args.metric,
        interactions=args.interactions, split=args.split, sites=sites, collapse=not args.no_collapse,
        device=args.device, progress=not args.quiet,
    )
    save_result(ds, args.out, overwrite=args.overwrite)
    print(summary_table(ds))
    print(f"-> {args.out}")


def summary_table(ds) -> str:
    """Players ranked by mean Shapley value (over sites and targets), with standard errors."""
    import numpy as np
    import pandas as pd

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
    return head + "\n" + table.to_string(float_format=lambda v: f"{v:.5f}")
