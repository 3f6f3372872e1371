"""Pictures of a multi-seed strategy comparison: subset scores with intervals (paper Table 1) and MIAM's ρ (Fig. 6).

Free functions that take the tables of :mod:`miam_explain.training.compare`
(plain data frames) and an optional axes, and return the
:class:`~matplotlib.figure.Figure`; they never touch pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_masking_coefficients", "plot_subset_intervals"]

#: Colours of the strategies / modalities, in order.
COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def plot_subset_intervals(summary: pd.DataFrame, *, level: float = 0.95, metric: str = "macro AUC",
                          ax: Axes | None = None) -> Figure:
    """Mean score per subset (x) and strategy (one marker each), with t-intervals over the seeds.

    Args:
        summary: One row per (strategy, subset) with ``mean``, ``se`` and ``n``
            (:func:`~miam_explain.training.compare.summarize`); subsets are drawn in its order.
        level: Coverage of the interval ``mean ± t_{(1+level)/2, n-1} · se`` (no bar with one seed).
        metric: Name of the score, for the axis label.
        ax: Axes to draw on (default: a new figure).

    Returns:
        The figure.

    Example:
        >>> table = pd.DataFrame({"strategy": ["a", "a", "b", "b"], "subset": ["x", "y"] * 2,
        ...                       "mean": [0.6, 0.7, 0.62, 0.71], "se": [0.01, 0.02, 0.01, 0.01], "n": [3] * 4})
        >>> len(plot_subset_intervals(table).axes[0].get_xticklabels())
        2
    """
    from scipy import stats

    subsets = list(dict.fromkeys(summary["subset"]))
    strategies = list(dict.fromkeys(summary["strategy"]))
    if ax is None:
        fig = Figure(figsize=(1.6 + 0.75 * len(subsets), 4.2), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    width = 0.8 / max(len(strategies), 1)
    for k, strategy in enumerate(strategies):
        rows = summary[summary["strategy"] == strategy].set_index("subset").reindex(subsets)
        x = np.arange(len(subsets)) - 0.4 + width * (k + 0.5)
        n = rows["n"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            half = np.where(n > 1, stats.t.ppf((1 + level) / 2, np.maximum(n - 1, 1)) * rows["se"].to_numpy(), np.nan)
        ax.errorbar(x, rows["mean"], yerr=np.nan_to_num(half), fmt="o", ms=4, capsize=2, lw=1,
                    color=COLORS[k % len(COLORS)], label=f"{strategy} (n={int(np.nanmax(n)) if len(n) else 0})")
    ax.set_xticks(range(len(subsets)), subsets, rotation=35, ha="right")
    for edge in np.arange(len(subsets) - 1) + 0.5:
        ax.axvline(edge, color="0.9", lw=0.8, zorder=0)
    ax.set_ylabel(f"{metric} (test split)")
    ax.set_title(f"Mean over seeds per token subset, {level:.0%} t-interval")
    ax.legend(fontsize=8, ncols=min(len(strategies), 4), loc="best")
    return fig


def plot_masking_coefficients(history: pd.DataFrame, *, modalities: Sequence[str] | None = None,
                              axes: Sequence[Axes] | None = None) -> Figure:
    """MIAM's ρ_s and ρ_d per modality over the epochs: one thin line per seed, the mean over seeds thick.

    Args:
        history: One row per (seed, epoch, modality) with ``rho_s`` and ``rho_d``
            (:func:`~miam_explain.training.compare.masking_history`).
        modalities: Modalities to draw, in this order (default: all, in the table's order).
        axes: Two axes to draw on (default: a new figure with two panels).

    Returns:
        The figure.

    Example:
        >>> h = pd.DataFrame({"seed": 0, "epoch": [1, 1, 2, 2], "modality": ["a", "b"] * 2,
        ...                   "rho_s": [1.1, 0.9, 1.2, 0.8], "rho_d": [np.nan, np.nan, 0.5, 2.0]})
        >>> [ax.get_ylabel() for ax in plot_masking_coefficients(h).axes]
        ['ρ_s (score / geometric mean)', 'ρ_d (learning speed / geometric mean)']
    """
    if axes is None:
        fig = Figure(figsize=(10, 3.8), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    names = list(modalities) if modalities is not None else list(dict.fromkeys(history["modality"]))
    labels = {"rho_s": "ρ_s (score / geometric mean)", "rho_d": "ρ_d (learning speed / geometric mean)"}
    for ax, column in zip(axes, ("rho_s", "rho_d")):
        for k, modality in enumerate(names):
            color = COLORS[k % len(COLORS)]
            rows = history[history["modality"] == modality]
            for _, seed_rows in rows.groupby("seed"):
                ax.plot(seed_rows["epoch"], seed_rows[column], color=color, lw=0.7, alpha=0.35)
            mean = rows.groupby("epoch")[column].mean()
            ax.plot(mean.index, mean.to_numpy(), color=color, lw=2, marker="o", ms=3, label=modality)
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(labels[column])
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("MIAM's imbalance coefficients per modality (thin: one seed; thick: mean over seeds)")
    return fig
