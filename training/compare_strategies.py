"""Paper recipe: train every masking strategy with the same protocol and compare them on subsets.

Each strategy is trained on the same data with the same config and seed (only
the masking differs), then evaluated on the test split with the paper-style
subsets. The result is a table (rows = strategies, columns = subsets, plus the
mean) as CSV and Markdown, and a figure. Runs already finished in ``--out`` are
reused, so an interrupted comparison resumes where it stopped.

Usage::

    python training/compare_strategies.py --data DATA.zarr --config training/configs/demo.toml --out compare/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from miam_explain.files import atomic_path
from miam_explain.errors import MiamError
from miam_explain.masking import STRATEGIES
from miam_explain.runtime.subsets import evaluate
from miam_explain.training.config import load_config
from miam_explain.training.trainer import train


def compare(data: Path, config_path: Path | None, out: Path, strategies: list[str], *, seed: int | None, progress: bool) -> pd.DataFrame:
    """Train (or reuse) one run per strategy and return the strategies x subsets table."""
    base = load_config(config_path)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in strategies:
        run = out / name
        config = base.with_overrides(strategy=name, seed=seed)
        if not _finished(run, config.training.epochs, config.training.patience):
            print(f"== training {name}", flush=True)
            train(data, config, run, resume=(run / "last.safetensors").is_file(), progress=progress)
        table = evaluate(run, data=data, split="test", subsets="paper", device=config.training.device)
        metric = "auc" if "auc" in table else "top1"
        rows[name] = table.set_index("subset")[metric]
        print(f"   {name}: mean {rows[name].mean():.4f}", flush=True)
    frame = pd.DataFrame(rows).T
    frame["mean"] = frame.mean(axis=1)
    return frame


def _finished(run: Path, epochs: int, patience: int) -> bool:
    """True when the run's log shows it reached ``epochs`` or stopped early (``patience`` epochs without gain)."""
    log = run / "log.jsonl"
    if not (run / "best.safetensors").is_file() or not log.is_file():
        return False
    last = pd.read_json(log, lines=True).iloc[-1]
    return int(last["epoch"]) >= epochs or int(last["epoch"]) - int(last["best_epoch"]) >= patience


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table with three decimals."""
    header = "| strategy | " + " | ".join(table.columns) + " |"
    rule = "|---" * (table.shape[1] + 1) + "|"
    rows = [f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |" for name, values in table.iterrows()]
    return "\n".join([header, rule, *rows]) + "\n"


def figure(table: pd.DataFrame):
    """Heat map of the table, strategies as rows, subsets as columns, with the values printed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.0 + 0.85 * table.shape[1], 0.9 + 0.45 * table.shape[0]), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    best = table.to_numpy().argmax(axis=0)
    for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
        weight = "bold" if best[j] == i else "normal"
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8, color="white", fontweight=weight)
    ax.set_xlabel("token subset (test split)")
    ax.set_ylabel("masking strategy")
    ax.set_title("Macro AUC per subset; bold = best strategy for that subset")
    fig.colorbar(image, ax=ax, label="macro AUC")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="consolidated dataset")
    parser.add_argument("--config", type=Path, default=None, help="TOML config shared by every strategy")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs, table.csv, table.md and table.png")
    parser.add_argument("--strategies", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--seed", type=int, default=None, help="seed override")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    strategies = list(STRATEGIES) if args.strategies == "all" else [s.strip() for s in args.strategies.split(",")]
    try:
        table = compare(args.data, args.config, args.out, strategies, seed=args.seed, progress=not args.quiet)
        for name, writer in (("table.csv", lambda p: table.to_csv(p, float_format="%.4f")),
                             ("table.md", lambda p: p.write_text(to_markdown(table))),
                             ("table.png", lambda p: figure(table).savefig(p, format="png", dpi=130))):
            with atomic_path(args.out / name, overwrite=True) as tmp:
                writer(tmp)
    except MiamError as exc:
        print(f"compare_strategies: error: {exc}", file=sys.stderr)
        return 2
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
