"""MIAM's sensitivity to kappa and lambda: where does its gain over a baseline strategy come from, and where does it vanish?

Trains MIAM with each (kappa, lambda) of a grid on the same data, config and seeds as a
finished ``compare_strategies.py`` run (``--baseline``: its folder), evaluates each on the test
split's subsets, and compares each setting with the baseline strategy's runs of the same seeds
(paired over seeds). The config's own (kappa, lambda) is read from the baseline folder's ``miam``
runs instead of being trained again. Written to ``--out``:

* ``runs.csv``: one row per (kappa, lambda, seed, subset);
* ``paired.csv``: per setting and subset, MIAM minus the baseline strategy (mean, SE, t, p, seeds);
* ``table.md``: the paired differences on the satellite-only, all-modality and mean columns;
* ``sensitivity.png``: those differences over the grid, with 95 % t-intervals.

Runs live in ``--out/k<kappa>_l<lambda>/miam/seed<seed>``; finished runs are reused and an
interrupted one resumed. Every output is written atomically; the wall time is printed.

Usage::

    python training/miam_sensitivity.py --data DATA.zarr --config training/configs/demo.toml --baseline cmp09/ \\
        --out sens09/ --kappa 3,10,30 --lam 1,3,6 --seeds 2 [--grid cross|full]

``--grid cross`` (default) varies one parameter at a time around the config's values (a
one-dimensional sweep of each); ``full`` trains every pair.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd

from miam_explain.errors import ConfigError, MiamError
from miam_explain.training.compare import compare_runs, paired_tests, seed_range, write_outputs
from miam_explain.training.config import load_config

#: The columns the table and the figure show.
COLUMNS = ("Satellite", "Sentinel-2", "All", "mean")


def _numbers(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r} must be comma-separated numbers, e.g. 1,3,6") from None
    if not values:
        raise ConfigError(f"--{name} is empty; give at least one value, e.g. 1,3,6")
    return values


def grid(kappas: list[float], lams: list[float], default: tuple[float, float], kind: str) -> list[tuple[float, float]]:
    """The (kappa, lambda) settings: every pair (``full``) or one parameter at a time around ``default`` (``cross``)."""
    if kind == "full":
        return [(k, lam) for k in kappas for lam in lams]
    if kind != "cross":
        raise ConfigError(f"--grid {kind!r} must be cross or full")
    points = [(k, default[1]) for k in kappas] + [(default[0], lam) for lam in lams]
    return list(dict.fromkeys(points + [default]))


def _tag(kappa: float, lam: float) -> str:
    return f"k{kappa:g}_l{lam:g}"


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="consolidated dataset (the baseline's)")
    parser.add_argument("--config", type=Path, default=None, help="TOML config (the baseline's)")
    parser.add_argument("--baseline", required=True, type=Path, help="folder of a compare_strategies.py run on the same data")
    parser.add_argument("--baseline-strategy", default="shared_uniform", help="strategy MIAM is compared with (default shared_uniform)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs, tables and figure")
    parser.add_argument("--kappa", default="3,10,30", help="comma-separated kappa values (default 3,10,30)")
    parser.add_argument("--lam", default="1,3,6", help="comma-separated lambda values (default 1,3,6)")
    parser.add_argument("--grid", default="cross", help="cross (one parameter at a time, default) or full")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: the config's)")
    parser.add_argument("--seeds", type=int, default=2, help="number of seeds (default 2)")
    parser.add_argument("--subsets", default="table1", help="the baseline's subsets (default table1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if config.strategy != "miam":
            raise ConfigError(f"the config's strategy is {config.strategy!r}; the sensitivity is MIAM's, use a miam config")
        seeds = seed_range(config, args.seed, args.seeds)
        default = (float(config.masking.get("kappa", 10.0)), float(config.masking.get("lam", 3.0)))
        settings = grid(_numbers(args.kappa, "kappa"), _numbers(args.lam, "lam"), default, args.grid)
        frames = []
        baseline = compare_runs(args.data, config, args.baseline, strategies=[args.baseline_strategy, "miam"], seeds=seeds,
                                subsets=args.subsets, progress=False)
        frames.append(baseline)
        for kappa, lam in settings:
            if (kappa, lam) == default:
                continue  # the baseline folder's miam runs
            setting = dataclasses.replace(config, masking={**dict(config.masking), "kappa": kappa, "lam": lam})
            long = compare_runs(args.data, setting, args.out / _tag(kappa, lam), strategies=["miam"], seeds=seeds,
                                subsets=args.subsets, progress=not args.quiet)
            frames.append(long.assign(strategy=f"miam {_tag(kappa, lam)}"))
        long = pd.concat(frames, ignore_index=True)
        long["strategy"] = long["strategy"].replace({"miam": f"miam {_tag(*default)}"})
        paired = paired_tests(long, reference=args.baseline_strategy)
        # paired_tests gives reference minus other: turn it into MIAM setting minus the baseline strategy
        paired = paired.assign(diff=-paired["diff"], t=-paired["t"]).rename(columns={"strategy": "setting"})
        paired[["kappa", "lam"]] = paired["setting"].str.extract(r"k([\d.]+)_l([\d.]+)").astype(float)
        wall = time.perf_counter() - started
        table = _table(paired, args.baseline_strategy, default)
        note = (f"{len(settings)} settings x {len(seeds)} seeds {seeds}; MIAM minus {args.baseline_strategy}, paired over "
                f"seeds; wall time of this call {wall / 60:.1f} min")
        outputs = {
            "runs.csv": lambda p: long.to_csv(p, index=False, float_format="%.6f"),
            "paired.csv": lambda p: paired.to_csv(p, index=False, float_format="%.6g"),
            "table.md": lambda p: p.write_text(note + "\n\n" + table),
            "sensitivity.png": lambda p: _figure(paired, args.baseline_strategy, default).savefig(p, format="png", dpi=130),
        }
        write_outputs(args.out, outputs)
    except MiamError as exc:
        print(f"miam_sensitivity: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(note)
    return 0


def _table(paired: pd.DataFrame, baseline: str, default: tuple[float, float]) -> str:
    """Markdown: one row per setting, MIAM minus the baseline on :data:`COLUMNS` (mean ± SE, p)."""
    shown = paired[paired["subset"].isin(COLUMNS)]
    header = "| kappa | lambda | " + " | ".join(f"{c}: MIAM − {baseline}" for c in COLUMNS) + " |"
    lines = [header, "|---|---|" + "---|" * len(COLUMNS)]
    for (kappa, lam), rows in shown.groupby(["kappa", "lam"], sort=True):
        cells = []
        for column in COLUMNS:
            row = rows[rows["subset"] == column]
            cells.append("" if row.empty else f"{row['diff'].iloc[0]:+.3f} ± {row['se'].iloc[0]:.3f} (p={row['p'].iloc[0]:.2g})")
        mark = " (config)" if (kappa, lam) == default else ""
        lines.append(f"| {kappa:g}{mark} | {lam:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure(paired: pd.DataFrame, baseline: str, default: tuple[float, float]):
    """MIAM minus the baseline per setting, one panel per column of :data:`COLUMNS`, with 95 % t-intervals."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy import stats

    shown = paired[paired["subset"].isin(COLUMNS)].sort_values(["kappa", "lam"])
    labels = [f"κ={k:g}, λ={lam:g}" for k, lam in shown.drop_duplicates(["kappa", "lam"])[["kappa", "lam"]].to_numpy()]
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(3.2 * len(COLUMNS), 0.9 + 0.45 * len(labels)), sharey=True,
                             layout="constrained")
    for ax, column in zip(axes, COLUMNS):
        rows = shown[shown["subset"] == column]
        half = rows["se"].to_numpy() * stats.t.ppf(0.975, (rows["n"] - 1).clip(lower=1).to_numpy())
        y = range(len(rows))
        ax.errorbar(rows["diff"], y, xerr=half, fmt="o", color="#3b6ea5", ecolor="#333", capsize=3)
        ax.axvline(0, color="#888", lw=0.8)
        ax.set_title(column)
        ax.set_xlabel(f"AUC, MIAM − {baseline}")
    axes[0].set_yticks(range(len(labels)), labels)
    fig.suptitle(f"MIAM's gain over {baseline} by (κ, λ); the config's is κ={default[0]:g}, λ={default[1]:g}")
    return fig


if __name__ == "__main__":
    sys.exit(main())
