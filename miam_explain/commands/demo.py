"""``miam-explain demo``: the whole pipeline on built-in synthetic data, in one command."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo", help="synthesise data, train a MIAM model, evaluate it and write the four reports",
        description="Synthesise GeoPlant-like data with planted effects, prepare it, train a MIAM model "
                    "(config demo), evaluate the paper subsets and write the modalities, ndvi and heatwave "
                    "reports. Run again with the same --out to continue an interrupted demo.",
    )
    parser.add_argument("--out", type=Path, default=Path("miam-demo"), help="demo folder (default miam-demo)")
    parser.add_argument("--sites", type=int, default=3000, help="synthetic sites (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, training and reports")
    parser.add_argument("--heatwave-year", type=int, default=2003, help="year of the planted heatwave (2000..2018)")
    parser.add_argument("--config", default="demo", help="training config: a TOML file or a shipped name (default demo)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--overwrite", action="store_true", help="delete --out first and start over")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    from miam_explain.demo import run_demo

    started = time.perf_counter()
    result = run_demo(args.out, sites=args.sites, seed=args.seed, heatwave_year=args.heatwave_year, config=args.config,
                      device=args.device, overwrite=args.overwrite, progress=not args.quiet)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Open the reports:")
    for kind, path in result.reports.items():
        print(f"  {kind:10s} {path.resolve()}")
    print(f"  subset table {result.evaluation.resolve()}")
