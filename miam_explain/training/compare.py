"""Masking strategies compared over several seeds: runs, subset tables, means with SEs, paired tests.

Every strategy is trained on the same data with the same config and the same
seeds; only the masking differs. Each run is evaluated on the test split on
token subsets (the paper's Table 1 by default), and the per-run values form a
long table (:func:`compare_runs`). From it come the mean and standard error
per strategy and subset over seeds (:func:`summarize`) and the paired test of
a reference strategy (MIAM) against each other one (:func:`paired_tests`):
per seed, the difference of the two runs trained with that seed. MIAM's
coefficients ρ_s and ρ_d per epoch come from the runs' ``log.jsonl``
(:func:`masking_history`). ``training/compare_strategies.py`` is the command.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain.errors import ConfigError
from miam_explain.files import atomic_path, remove_path
from miam_explain.runtime.subsets import evaluate
from miam_explain.training.config import RunConfig
from miam_explain.training.trainer import train

__all__ = [
    "MEAN",
    "compare_runs",
    "masking_history",
    "paired_tests",
    "run_finished",
    "run_folder",
    "seed_range",
    "summarize",
    "summary_markdown",
    "write_outputs",
]

#: Name of the pseudo-subset that holds each run's mean over the subsets.
MEAN = "mean"


def run_folder(out: str | os.PathLike, strategy: str, seed: int) -> Path:
    """The run folder of one strategy and seed: ``out/<strategy>/seed<seed>``."""
    return Path(out) / strategy / f"seed{seed}"


def run_finished(run: Path, epochs: int, patience: int) -> bool:
    """True when the run's log shows it reached ``epochs`` or stopped early (``patience`` epochs without gain)."""
    log = run / "log.jsonl"
    if not (run / "best.safetensors").is_file() or not log.is_file():
        return False
    last = pd.read_json(log, lines=True).iloc[-1]
    return int(last["epoch"]) >= epochs or int(last["epoch"]) - int(last["best_epoch"]) >= patience


def _train_seconds(run: Path) -> float:
    """Seconds of training that the run's log records (sum over its epochs)."""
    return float(sum(json.loads(line).get("seconds", 0.0) for line in (run / "log.jsonl").read_text().splitlines() if line))


def _subsets_tag(subsets: str | os.PathLike) -> str:
    """A file-name-safe tag for a subsets spec (``table1``, ``paper`` or a TOML file's stem)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(str(subsets)).stem)


def compare_runs(
    data: str | os.PathLike,
    config: RunConfig,
    out: str | os.PathLike,
    *,
    strategies: Sequence[str],
    seeds: Sequence[int],
    subsets: str | os.PathLike = "table1",
    progress: bool = True,
    log: Callable[[str], None] = print,
    species: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Train (or reuse) one run per strategy and seed, and evaluate each on the test split's subsets.

    A finished run (:func:`run_finished`) is reused, an interrupted one is resumed from its last
    checkpoint, and each run's subset table is kept in its folder (``subsets-<tag>.csv``, written
    atomically), so a second call trains and evaluates only what is missing.

    Args:
        data: Consolidated dataset with train, val and test splits.
        config: Shared config; each run overrides its strategy and seed.
        out: Folder of the runs (``out/<strategy>/seed<seed>``).
        strategies: Masking strategies (names of :data:`~miam_explain.masking.STRATEGIES`).
        seeds: Training seeds; every strategy runs with each of them.
        subsets: ``"table1"``, ``"paper"`` or a TOML file (see :func:`~miam_explain.runtime.subsets.load_subsets`).
        progress: Show a progress bar over the runs.
        log: Where the one-line run messages go.
        species: Score each subset by the mean AUC over these species only (e.g. the species of one
            planted driver) instead of over every species; the per-species table of each run is kept
            in its folder (``subsets-<tag>-species.csv``). Multi-label data.

    Returns:
        Long table, one row per (strategy, seed, subset): ``strategy``, ``seed``, ``subset``,
        ``value`` (macro AUC, or top-1 accuracy for multi-class data), ``metric``,
        ``train_seconds`` (the run's training time from its log) and ``reused`` (trained before
        this call). The subsets keep their table order.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tag = _subsets_tag(subsets)
    tc = config.training
    frames = []
    pairs = [(s, seed) for s in strategies for seed in seeds]
    with tqdm(total=len(pairs), desc="strategy x seed runs", unit="run", disable=not progress) as bar:
        for name, seed in pairs:
            run = run_folder(out, name, seed)
            reused = run_finished(run, tc.epochs, tc.patience)
            if not reused:
                resume = (run / "last.safetensors").is_file()
                if run.exists() and not resume:
                    remove_path(run)  # killed before its first checkpoint: nothing to resume
                run.parent.mkdir(parents=True, exist_ok=True)
                started = time.perf_counter()
                train(data, config.with_overrides(strategy=name, seed=seed), run, resume=resume, progress=False)
                log(f"trained {name} seed {seed} in {time.perf_counter() - started:.0f} s")
            table = _cached_table(run / f"subsets-{tag}.csv",
                                  lambda: evaluate(run, data=data, split="test", subsets=subsets, device=tc.device))
            metric = "auc" if "auc" in table else "top1"
            column = metric
            if species is not None:
                table, column, metric = _species_table(run, data, subsets, tag, species, device=tc.device), "auc", "auc (species)"
            frames.append(pd.DataFrame({
                "strategy": name, "seed": seed, "subset": table["subset"].astype(str), "value": table[column],
                "metric": metric, "train_seconds": _train_seconds(run), "reused": reused,
            }))
            bar.update(1)
    return pd.concat(frames, ignore_index=True)


def seed_range(config: RunConfig, first: int | None, count: int) -> list[int]:
    """The seeds of a comparison: ``count`` of them from ``first`` (default: the config's seed).

    Raises:
        ConfigError: ``count`` below 1.
    """
    if count < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {count})")
    start = config.training.seed if first is None else first
    return list(range(start, start + count))


def write_outputs(folder: Path, outputs: dict[str, Callable[[Path], None]]) -> None:
    """Write each output of a comparison script atomically: ``{file name: write(temporary path)}`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in outputs.items():
        with atomic_path(folder / name, overwrite=True) as tmp:
            write(tmp)


def _cached_table(path: Path, compute: Callable[[], pd.DataFrame], **read) -> pd.DataFrame:
    """A run's evaluation table: read from ``path``, or computed once and written there atomically."""
    if not path.is_file():
        table = compute()
        with atomic_path(path, overwrite=True) as tmp:
            table.to_csv(tmp, index=False)
    return pd.read_csv(path, **read)


def _species_table(run: Path, data, subsets, tag: str, species: Sequence[str], *, device: str) -> pd.DataFrame:
    """Each subset's mean AUC over ``species`` (those with an AUC on the test split), from the run's per-species table."""
    table = _cached_table(run / f"subsets-{tag}-species.csv",
                          lambda: evaluate(run, data=data, split="test", subsets=subsets, device=device, per_species=True),
                          dtype={"species": str})
    wanted = [str(s) for s in species]
    unknown = sorted(set(wanted) - set(table["species"]))
    if unknown:
        raise ConfigError(f"species {unknown[:5]} are not in the data; pass species ids of the dataset's species coordinate")
    chosen = table[table["species"].isin(wanted)]
    order = list(dict.fromkeys(table["subset"]))
    return chosen.groupby("subset", sort=False)["auc"].mean().reindex(order).reset_index()


def _with_mean(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` plus one row per run for the :data:`MEAN` pseudo-subset (the run's mean over its subsets)."""
    means = long.groupby(["strategy", "seed"], sort=False)["value"].mean().reset_index().assign(subset=MEAN)
    return pd.concat([long[["strategy", "seed", "subset", "value"]], means], ignore_index=True)


def _order(long: pd.DataFrame) -> tuple[list[str], list[str]]:
    strategies = list(dict.fromkeys(long["strategy"]))
    subsets = list(dict.fromkeys(long["subset"]))
    return strategies, subsets + ([MEAN] if MEAN not in subsets else [])


def summarize(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per strategy and subset (plus the runs' mean over subsets).

    Args:
        long: One row per (strategy, seed, subset) with a ``value`` column (:func:`compare_runs`).

    Returns:
        One row per (strategy, subset), in the input's order with :data:`MEAN` last: ``strategy``,
        ``subset``, ``mean``, ``se`` (sample sd / sqrt(n); NaN with one seed) and ``n`` (seeds).

    Example:
        >>> long = pd.DataFrame({"strategy": ["a", "a"], "seed": [0, 1], "subset": ["All", "All"], "value": [0.7, 0.8]})
        >>> summarize(long).round(4).to_dict("records")[0]
        {'strategy': 'a', 'subset': 'All', 'mean': 0.75, 'se': 0.05, 'n': 2}
    """
    strategies, subsets = _order(long)
    grouped = _with_mean(long).groupby(["strategy", "subset"])["value"]
    table = grouped.agg(mean="mean", se="sem", n="count").reset_index()
    table["strategy"] = pd.Categorical(table["strategy"], strategies, ordered=True)
    table["subset"] = pd.Categorical(table["subset"], subsets, ordered=True)
    table = table.sort_values(["strategy", "subset"]).reset_index(drop=True)
    return table.astype({"strategy": str, "subset": str, "n": int})


def paired_tests(long: pd.DataFrame, *, reference: str = "miam") -> pd.DataFrame:
    """Paired comparison of ``reference`` with every other strategy, per subset, over common seeds.

    For each seed both strategies were trained with, ``d = value(reference) - value(other)``.
    The table gives the mean of ``d``, its standard error, and the two-sided paired t-test
    (``scipy.stats.ttest_rel``, n - 1 degrees of freedom).

    Args:
        long: One row per (strategy, seed, subset) with a ``value`` column (:func:`compare_runs`).
        reference: The strategy compared with the others.

    Returns:
        One row per (other strategy, subset): ``strategy``, ``subset``, ``diff`` (mean of ``d``),
        ``se``, ``t``, ``p`` and ``n`` (common seeds); ``se``, ``t`` and ``p`` are NaN with fewer than
        two seeds or when every ``d`` is the same.

    Raises:
        ValueError: ``reference`` is not in the table.

    Example:
        >>> long = pd.DataFrame({"strategy": ["miam"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
        ...                      "subset": ["All"] * 6, "value": [0.8, 0.82, 0.81, 0.7, 0.74, 0.7]})
        >>> row = paired_tests(long).iloc[0]
        >>> row["subset"], round(float(row["diff"]), 3), round(float(row["se"]), 3), int(row["n"])
        ('All', 0.097, 0.009, 3)
    """
    from scipy import stats

    if reference not in set(long["strategy"]):
        raise ValueError(f"reference strategy {reference!r} is not among the runs; pass one of "
                         f"{', '.join(dict.fromkeys(long['strategy']))}")
    strategies, subsets = _order(long)
    wide = _with_mean(long).pivot_table(index=["subset", "seed"], columns="strategy", values="value")
    rows = []
    for other in (s for s in strategies if s != reference):
        for subset in subsets:
            pair = wide.loc[subset, [reference, other]].dropna() if subset in wide.index.get_level_values(0) else None
            if pair is None or pair.empty:
                continue
            d = (pair[reference] - pair[other]).to_numpy()
            n = len(d)
            se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
            t = p = float("nan")
            if n > 1 and se > 0:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    t, p = (float(v) for v in stats.ttest_rel(pair[reference], pair[other]))
            rows.append({"strategy": other, "subset": subset, "diff": float(d.mean()), "se": se, "t": t, "p": p, "n": n})
    return pd.DataFrame(rows, columns=["strategy", "subset", "diff", "se", "t", "p", "n"])


def masking_history(runs: dict[int, Path]) -> pd.DataFrame:
    """MIAM's coefficients per epoch and modality, read from the runs' ``log.jsonl`` (paper Fig. 6).

    Args:
        runs: Seed -> run folder (runs of a strategy that records ``rho_s`` and ``rho_d``, i.e. MIAM).

    Returns:
        One row per (seed, epoch, modality): ``seed``, ``epoch``, ``modality``, ``s`` (the
        modality's validation score alone), ``rho_s``, ``rho_d`` (NaN in the first epoch) and ``r``.
        Empty when no log records them.
    """
    rows = []
    for seed, run in runs.items():
        log = run / "log.jsonl"
        if not log.is_file():
            continue
        for line in filter(str.strip, log.read_text().splitlines()):
            entry = json.loads(line).get("masking") or {}
            if "rho_s" not in entry:
                continue
            for modality, rho_s in entry["rho_s"].items():
                rho_d = (entry.get("rho_d") or {}).get(modality)
                rows.append({"seed": seed, "epoch": int(entry["epoch"]), "modality": modality,
                             "s": entry["s"][modality], "rho_s": rho_s,
                             "rho_d": float("nan") if rho_d is None else rho_d, "r": entry["r"][modality]})
    return pd.DataFrame(rows, columns=["seed", "epoch", "modality", "s", "rho_s", "rho_d", "r"])


def summary_markdown(summary: pd.DataFrame, paired: pd.DataFrame | None = None, *, reference: str = "miam",
                     digits: int = 3) -> str:
    """Markdown tables: mean ± SE per strategy (rows) and subset (columns); then, if given, the paired tests.

    Example:
        >>> summary = pd.DataFrame({"strategy": ["a"], "subset": ["All"], "mean": [0.75], "se": [0.05], "n": [2]})
        >>> print(summary_markdown(summary).strip())
        | strategy (n seeds) | All |
        |---|---|
        | a (2) | 0.750 ± 0.050 |
    """
    def cell(mean: float, se: float) -> str:
        return f"{mean:.{digits}f}" + ("" if np.isnan(se) else f" ± {se:.{digits}f}")

    subsets = list(dict.fromkeys(summary["subset"]))
    lines = ["| strategy (n seeds) | " + " | ".join(subsets) + " |", "|---" * (len(subsets) + 1) + "|"]
    for strategy, rows in summary.groupby("strategy", sort=False):
        by = rows.set_index("subset")
        lines.append(f"| {strategy} ({int(by['n'].max())}) | "
                     + " | ".join(cell(by.at[s, "mean"], by.at[s, "se"]) if s in by.index else "" for s in subsets) + " |")
    if paired is not None and not paired.empty:
        lines += ["", f"Paired differences {reference} − strategy over common seeds: mean ± SE (two-sided paired "
                  "t-test p-value).", "", "| strategy (n seeds) | " + " | ".join(subsets) + " |",
                  "|---" * (len(subsets) + 1) + "|"]
        for strategy, rows in paired.groupby("strategy", sort=False):
            by = rows.set_index("subset")
            cells = []
            for s in subsets:
                if s not in by.index:
                    cells.append("")
                    continue
                diff, se, p = by.at[s, "diff"], by.at[s, "se"], by.at[s, "p"]
                cells.append(f"{diff:+.{digits}f}" + ("" if np.isnan(se) else f" ± {se:.{digits}f}")
                             + ("" if np.isnan(p) else f" (p={p:.2g})"))
            lines.append(f"| {strategy} ({int(by['n'].max())}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
