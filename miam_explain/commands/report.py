"""``miam-explain report``: the ndvi, heatwave, modalities and species reports (one self-contained HTML page each)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]

KINDS = ("ndvi", "heatwave", "modalities", "species")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser("report", help="write an ecological report (ndvi, heatwave, modalities or species)")
    parser.add_argument("kind", choices=KINDS, help="ndvi: spectral bands; heatwave: climate years; modalities: modalities; "
                                                    "species: each species' AUC by modality (or --group) and its leading one")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors) or run folder")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the one recorded in the checkpoint)")
    parser.add_argument("--split", default="test", help="train, val, test or all (default test)")
    parser.add_argument("--target", default="richness", help="target of the maps: richness or a species id")
    parser.add_argument("--n-boot", type=int, default=200, help="spatial-block bootstrap resamples (default 200)")
    parser.add_argument("--budget", type=int, default=None,
                        help="model evaluations (coalition x site): heatwave's sampling budget (default 400 coalitions per site); "
                             "ndvi and modalities evaluate every combination and refuse a smaller cap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group", default=None,
                        help="grouping whose members are the players instead of the report's own (spectral_bands, "
                             "climate_years, modalities), e.g. one of --groupings")
    parser.add_argument("--groupings", type=Path, default=None, metavar="FILE.toml",
                        help="user groupings ([groupings.NAME] tables of selectors; docs/schema.md)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", required=True, type=Path, help="report folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    from miam_explain.reports import run_report

    folder = run_report(args.kind, args.model, args.data, out=args.out, split=args.split, target=args.target,
                        n_boot=args.n_boot, budget=args.budget, seed=args.seed, device=args.device,
                        overwrite=args.overwrite, progress=not args.quiet, group=args.group, groupings=args.groupings)
    summary = json.loads((folder / "summary.json").read_text())
    for sentence in summary.get("findings", []):
        print(sentence)
    print(f"-> {(folder / 'report.html').resolve()}")
