"""Paper recipe: train every masking strategy on several seeds with the same protocol and compare them on subsets.

Each strategy is trained on the same data with the same config and the same
seeds (only the masking differs), then evaluated on the test split on token
subsets (the MIAM paper's Table 1 columns by default; ``--subsets paper`` gives
the earlier, shorter table). Written to ``--out``:

* ``runs.csv``: one row per (strategy, seed, subset);
* ``summary.csv`` and ``table.md``: mean ± SE over seeds per strategy and subset (plus each run's
  mean over subsets), and the paired test of ``--reference`` (MIAM) against every other strategy;
* ``paired.csv``: those paired differences (mean, SE, t, p, seeds);
* ``table.png``: the scores per subset with 95 % t-intervals (drawn like Table 1);
* ``masking.png`` and ``masking.csv``: MIAM's ρ_s and ρ_d per modality over the epochs (Fig. 6).

With ``--species`` each subset is scored by the mean AUC over those species only (for instance the
species of one planted driver, ``--species raw/truth.json:ndvi_species``); ``--tables`` writes the
tables elsewhere, so that the runs are shared.

Runs live in ``--out/<strategy>/seed<seed>``; a finished run is reused and an
interrupted one resumed, so a killed comparison continues where it stopped
(the runs are not checked against ``--data``: use one ``--out`` per dataset).
Every output is written atomically. The wall time is printed at the end.

Usage::

    python training/compare_strategies.py --data DATA.zarr --config training/configs/demo.toml --out compare/ \\
        --seeds 3 [--strategies miam,shared_uniform] [--subsets table1|paper|FILE.toml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from miam_explain.errors import ConfigError, MiamError
from miam_explain.masking import STRATEGIES
from miam_explain.plotting.compare import plot_masking_coefficients, plot_subset_intervals
from miam_explain.training.compare import (
    compare_runs,
    masking_history,
    paired_tests,
    run_folder,
    seed_range,
    summarize,
    summary_markdown,
    write_outputs,
)
from miam_explain.training.config import load_config


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="consolidated dataset")
    parser.add_argument("--config", type=Path, default=None, help="TOML config shared by every strategy")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs and the tables and figures")
    parser.add_argument("--strategies", default="all", help="comma-separated names, or 'all' (the eight)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: the config's)")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds: seed, seed+1, ... (default 1)")
    parser.add_argument("--subsets", default="table1", help="'table1' (default), 'paper' or a TOML [subsets] file")
    parser.add_argument("--reference", default="miam", help="strategy that the paired tests compare (default miam)")
    parser.add_argument("--species", default=None,
                        help="score the subsets by the mean AUC over these species only: comma-separated ids, or "
                             "FILE.json:KEY for a list in a JSON file (e.g. raw/truth.json:ndvi_species)")
    parser.add_argument("--tables", type=Path, default=None,
                        help="folder for the tables and figures (default --out; the runs stay in --out)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    strategies = list(STRATEGIES) if args.strategies == "all" else [s.strip() for s in args.strategies.split(",") if s.strip()]
    try:
        unknown = [s for s in strategies if s not in STRATEGIES]
        if unknown:
            raise ConfigError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
        config = load_config(args.config)
        seeds = seed_range(config, args.seed, args.seeds)
        species = None if args.species is None else read_species(args.species)
        long = compare_runs(args.data, config, args.out, strategies=strategies, seeds=seeds, subsets=args.subsets,
                            progress=not args.quiet, species=species)
        summary = summarize(long)
        paired = paired_tests(long, reference=args.reference) if args.reference in strategies else None
        history = (masking_history({s: run_folder(args.out, args.reference, s) for s in seeds})
                   if args.reference in strategies else None)
        wall = time.perf_counter() - started
        trained = long.drop_duplicates(["strategy", "seed"])
        note = (f"{len(trained)} runs ({len(strategies)} strategies x {len(seeds)} seeds {seeds}), "
                f"{int((~trained['reused']).sum())} trained in this call; training time in the logs "
                f"{trained['train_seconds'].sum() / 60:.1f} min; wall time of this call {wall / 60:.1f} min")
        outputs = {
            "runs.csv": lambda p: long.to_csv(p, index=False, float_format="%.6f"),
            "summary.csv": lambda p: summary.to_csv(p, index=False, float_format="%.6f"),
            "table.md": lambda p: p.write_text(f"Test-split {long['metric'].iloc[0]}; {note}.\n\n"
                                               + summary_markdown(summary, paired, reference=args.reference)),
            "table.png": lambda p: plot_subset_intervals(
                summary, metric="macro AUC" if species is None else f"mean AUC of the {len(species)} chosen species",
            ).savefig(p, format="png", dpi=130),
        }
        if paired is not None:
            outputs["paired.csv"] = lambda p: paired.to_csv(p, index=False, float_format="%.6g")
        if history is not None and not history.empty:
            outputs["masking.csv"] = lambda p: history.to_csv(p, index=False, float_format="%.6g")
            outputs["masking.png"] = lambda p: plot_masking_coefficients(history).savefig(p, format="png", dpi=130)
        write_outputs(args.out if args.tables is None else args.tables, outputs)
    except MiamError as exc:
        print(f"compare_strategies: error: {exc}", file=sys.stderr)
        return 2
    print(summary_markdown(summary, paired, reference=args.reference))
    print(f"{note}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0


def read_species(text: str) -> list[str]:
    """Species ids from ``A,B,...`` or from a list in a JSON file, ``FILE.json:KEY``."""
    import json

    if ".json:" in text:
        path, key = text.rsplit(":", 1)
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--species: cannot read {path!r} as JSON ({exc}); pass FILE.json:KEY or ids") from None
        if key not in document or not isinstance(document[key], list) or not document[key]:
            raise ConfigError(f"--species: {path!r} has no non-empty list under {key!r}")
        return [str(v) for v in document[key]]
    ids = [v.strip() for v in text.split(",") if v.strip()]
    if not ids:
        raise ConfigError("--species is empty; pass species ids, e.g. --species 101,102, or FILE.json:KEY")
    return ids


if __name__ == "__main__":
    sys.exit(main())
