"""Figures of the ecological reports: free functions over arrays, each returning its figure.

Every function takes an optional ``ax`` (or draws its own figure), labels its axes with units
and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

__all__ = ["combination_bars", "interaction_heatmap", "interval_bars", "miam_history", "window_curve"]

_HIGHLIGHT, _PLAIN = "#c0392b", "#5b84b1"


def _axes(ax, size: tuple[float, float]):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    return ax.figure, ax


def interval_bars(names: Sequence[str], values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, xlabel: str,
                  title: str, highlight: Sequence[str] = (), ax=None):
    """Horizontal bars (largest on top) with interval whiskers; ``highlight`` names are drawn in red."""
    order = np.argsort(values)
    n = len(names)
    fig, ax = _axes(ax, (7.0, 1.2 + 0.42 * n))
    colors = [_HIGHLIGHT if names[i] in highlight else _PLAIN for i in order]
    y = np.arange(n)
    ax.barh(y, np.asarray(values)[order], color=colors)
    ax.errorbar(np.asarray(values)[order], y, xerr=[np.asarray(values)[order] - np.asarray(lo)[order],
                                                     np.asarray(hi)[order] - np.asarray(values)[order]],
                fmt="none", ecolor="#333", capsize=3, lw=1)
    ax.set_yticks(y, [names[i] for i in order])
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


def interaction_heatmap(matrix: np.ndarray, names: Sequence[str], *, units: str, title: str,
                        highlight: tuple[str, str] | None = None, ax=None):
    """Symmetric pairwise interaction matrix (diagonal blank), diverging colours centred on 0."""
    n = len(names)
    fig, ax = _axes(ax, (1.6 + 0.9 * n, 1.2 + 0.8 * n))
    shown = np.array(matrix, dtype=float)
    np.fill_diagonal(shown, np.nan)
    limit = float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0
    limit = limit or 1.0
    image = ax.imshow(shown, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit))
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            if i != j:
                ax.text(j, i, f"{shown[i, j]:+.3f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(shown[i, j]) > 0.6 * limit else "black")
    if highlight is not None and all(h in names for h in highlight):
        i, j = names.index(highlight[0]), names.index(highlight[1])
        for a, b in ((i, j), (j, i)):
            ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="black", lw=2.5))
    fig.colorbar(image, ax=ax, label=units, shrink=0.8)
    ax.set_title(title)
    return fig


def combination_bars(labels: Sequence[str], values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
                     highlight: Sequence[bool], ylabel: str, title: str, baseline: float | None = None, ax=None):
    """Ranked vertical bars, one per coalition (as in the MIAM paper's Fig. 5a); ``highlight`` marks bars in red."""
    order = np.argsort(values)[::-1]
    n = len(labels)
    fig, ax = _axes(ax, (max(6.0, 0.45 * n + 2), 4.2))
    x = np.arange(n)
    v = np.asarray(values)[order]
    ax.bar(x, v, color=[_HIGHLIGHT if highlight[i] else _PLAIN for i in order])
    ax.errorbar(x, v, yerr=[v - np.asarray(lo)[order], np.asarray(hi)[order] - v], fmt="none", ecolor="#333",
                capsize=2, lw=1)
    ax.set_xticks(x, [labels[i] for i in order], rotation=60, ha="right", fontsize=8)
    finite = np.concatenate([np.asarray(lo), np.asarray(hi)])
    low = min(float(np.nanmin(finite)), baseline if baseline is not None else np.inf)
    ax.set_ylim(low - 0.02, float(np.nanmax(finite)) + 0.02)
    if baseline is not None:
        ax.axhline(baseline, color="#888", lw=0.8, ls="--", label="no band visible")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def window_curve(starts: Sequence[int], values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, flagged: Sequence[int],
                 last_year: int, ylabel: str, title: str, ax=None):
    """Metric of expanding windows ``[start, last_year]`` against the window's first year (paper Fig. 5b)."""
    fig, ax = _axes(ax, (7.5, 4.0))
    starts = np.asarray(starts)
    ax.fill_between(starts, lo, hi, color=_PLAIN, alpha=0.25, lw=0, label="95% block-bootstrap interval")
    ax.plot(starts, values, "o-", color=_PLAIN, ms=4, label="metric of the window")
    for year in flagged:
        ax.axvline(year, color=_HIGHLIGHT, lw=1.2, ls="--")
        ax.annotate(f"{year}", (year, float(np.nanmax(hi))), color=_HIGHLIGHT, ha="center", va="bottom", fontsize=9)
    ax.invert_xaxis()
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"first year of the window (window ends in {last_year}; read left to right as the window grows back)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def miam_history(history: Sequence[dict], *, title: str = "MIAM coefficients during training", ax=None):
    """Per-epoch s_m, rho_s and rho_d of each modality (paper Fig. 4, right): three panels sharing the epoch axis."""
    if ax is not None:
        raise ValueError("miam_history draws three panels; it takes no ax")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained", sharex=True)
    epochs = [entry["epoch"] for entry in history]
    modalities = list(history[0]["s"]) if history else []
    for key, axis, label in (("s", axes[0], "validation score $s_m$ (AUC)"),
                             ("rho_s", axes[1], r"score ratio $\rho_s$"),
                             ("rho_d", axes[2], r"improvement ratio $\rho_d$")):
        for m in modalities:
            ys = [np.nan if entry.get(key) is None else entry[key][m] for entry in history]
            axis.plot(epochs, ys, "o-", ms=3, label=m)
        if key != "s":
            axis.axhline(1.0, color="#888", lw=0.8, ls="--")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig
