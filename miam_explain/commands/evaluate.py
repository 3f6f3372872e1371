"""``miam-explain evaluate``: the metric of one model on many token subsets (paper Table 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser("evaluate", help="evaluate a model on token subsets")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors) or run folder")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the one recorded in the checkpoint)")
    parser.add_argument("--split", default="test", help="train, val, test or all (default test)")
    parser.add_argument("--subsets", default="paper",
                        help="'paper', 'table1' (the MIAM paper's Table 1 columns) or a TOML file with a [subsets] table")
    parser.add_argument("--groupings", type=Path, default=None, metavar="FILE.toml",
                        help="user groupings ([groupings.NAME] tables; docs/schema.md) that the subsets may name")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    parser.add_argument("--batch-size", type=int, default=512, help="sites per batch")
    parser.add_argument("--out", type=Path, default=None, help="CSV table to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--per-species", action="store_true",
                        help="one AUC per (subset, species) instead of the macro AUC (multi-label data); --out gets the long table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

#: Species rows printed by --per-species (the --out table holds them all).
SHOWN_SPECIES = 30


def _run(args: argparse.Namespace) -> None:
    from miam_explain.files import atomic_path, check_output_path
    from miam_explain.runtime.subsets import evaluate

    if args.out is not None:
        check_output_path(args.out, overwrite=args.overwrite)
    table = evaluate(args.model, data=args.data, split=args.split, subsets=args.subsets, groupings=args.groupings,
                     device=args.device, batch_size=args.batch_size, progress=not args.quiet, per_species=args.per_species)
    if args.per_species:
        wide = table.pivot(index="species", columns="subset", values="auc")[list(dict.fromkeys(table["subset"]))]
        shown = wide.head(SHOWN_SPECIES)
        print(shown.to_string(float_format=lambda v: f"{v:.4f}"))
        if len(wide) > len(shown):
            print(f"... {len(wide) - len(shown)} more species" + ("" if args.out else "; pass --out FILE.csv for all of them"))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        with atomic_path(args.out, overwrite=args.overwrite) as tmp:
            table.to_csv(tmp, index=False)
        print(f"-> {args.out}")
