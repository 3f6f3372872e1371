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

__all__ = ["combination_bars", "interaction_heatmap", "interval_bars", "miam_history", "window_curve", "year_jumps"]

_HIGHLIGHT, _PLAIN = "#c0392b", "#5b84b1"


def _axes(ax, size: tuple[float, float]):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    return ax.figure, ax


def interval_bars(names: Sequence[str], values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, xlabel: str,
                  title: str, highlight: Sequence[str] = (), highlight_label: str = "highlighted", sort: bool = True,
                  ax=None):
    """Horizontal bars with interval whiskers; ``highlight`` names are drawn in red.

    Args:
        names: ``P`` bar labels.
        values: ``float[P]`` bar lengths.
        lo: ``float[P]`` lower ends of the whiskers.
        hi: ``float[P]`` upper ends of the whiskers.
        xlabel: Axis label, with units.
        title: Axes title.
        highlight: Names drawn in red.
        highlight_label: Legend entry of the red bars (no legend when none is red).
        sort: Largest on top; otherwise ``names`` top to bottom in the given order.
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    values, lo, hi = (np.asarray(a, dtype=float) for a in (values, lo, hi))
    n = len(names)
    order = np.argsort(values, kind="stable") if sort else np.arange(n)[::-1]
    fig, ax = _axes(ax, (7.0, max(2.8, 1.2 + 0.32 * n)))
    colors = [_HIGHLIGHT if names[i] in highlight else _PLAIN for i in order]
    y = np.arange(n)
    v = values[order]
    ax.barh(y, v, color=colors)
    ax.errorbar(v, y, xerr=[np.clip(v - lo[order], 0, None), np.clip(hi[order] - v, 0, None)],
                fmt="none", ecolor="#333", capsize=3, lw=1)
    ax.set_yticks(y, [names[i] for i in order])
    ax.set_ylim(-0.6, n - 0.4)
    ax.axvline(0, color="#888", lw=0.8)
    if any(names[i] in highlight for i in order):
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=_HIGHLIGHT, label=highlight_label)], loc="best", fontsize=8)
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
                     highlight: Sequence[bool], ylabel: str, title: str, highlight_label: str = "highlighted",
                     baseline: float | None = None, baseline_label: str = "baseline", ax=None):
    """Ranked vertical bars, one per coalition, as in the MIAM paper's Fig. 5a.

    Args:
        labels: ``C`` coalition labels.
        values: ``float[C]`` metric of each coalition.
        lo: ``float[C]`` lower interval ends.
        hi: ``float[C]`` upper interval ends.
        highlight: ``bool[C]``: bars drawn in red (named ``highlight_label`` in the legend).
        ylabel: Axis label, with units.
        title: Axes title.
        highlight_label: Legend entry of the red bars.
        baseline: A reference value drawn as a dashed line (e.g. no player visible).
        baseline_label: Legend entry of the baseline.
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    from matplotlib.patches import Patch

    values, lo, hi = (np.asarray(a, dtype=float) for a in (values, lo, hi))
    highlight = np.asarray(highlight, dtype=bool)
    order = np.argsort(-values, kind="stable")
    n = len(labels)
    longest = max((len(str(label)) for label in labels), default=1)
    fig, ax = _axes(ax, (max(6.0, 0.42 * n + 2), 3.4 + 0.07 * longest))
    x = np.arange(n)
    v = values[order]
    ax.bar(x, v, color=[_HIGHLIGHT if highlight[i] else _PLAIN for i in order])
    ax.errorbar(x, v, yerr=[np.clip(v - lo[order], 0, None), np.clip(hi[order] - v, 0, None)], fmt="none",
                ecolor="#333", capsize=2, lw=1)
    ax.set_xticks(x, [labels[i] for i in order], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.6, n - 0.4)
    finite = np.concatenate([lo, hi, values] + ([np.array([baseline])] if baseline is not None else []))
    finite = finite[np.isfinite(finite)]
    span = float(finite.max() - finite.min()) or 0.01
    ax.set_ylim(float(finite.min()) - 0.08 * span, float(finite.max()) + 0.12 * span)
    handles = [Patch(color=_HIGHLIGHT, label=highlight_label)] if highlight.any() else []
    if baseline is not None:
        handles.append(ax.axhline(baseline, color="#888", lw=0.9, ls="--", label=baseline_label))
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def window_curve(starts: Sequence[int], values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, flagged: Sequence[int],
                 last_year: int, ylabel: str, title: str, ax=None):
    """Metric of expanding windows ``[start, last_year]`` against the window's first year (paper Fig. 5b).

    Args:
        starts: ``W`` first years of the windows, from the last year backwards.
        values: ``float[W]`` metric of each window.
        lo: ``float[W]`` lower interval ends.
        hi: ``float[W]`` upper interval ends.
        flagged: Years marked with a dashed red line.
        last_year: Last year of every window (for the axis label).
        ylabel: Axis label, with units.
        title: Axes title.
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    fig, ax = _axes(ax, (7.5, 4.0))
    starts = np.asarray(starts)
    ax.fill_between(starts, lo, hi, color=_PLAIN, alpha=0.25, lw=0, label="95% block-bootstrap interval")
    ax.plot(starts, values, "o-", color=_PLAIN, ms=4, label="metric of the window")
    for k, year in enumerate(flagged):
        ax.axvline(year, color=_HIGHLIGHT, lw=1.2, ls="--", label="flagged year" if k == 0 else None)
        ax.text(year, 0.97, f" {year}", transform=ax.get_xaxis_transform(), color=_HIGHLIGHT, ha="left", va="top",
                fontsize=9)
    ax.set_xlim(starts.max() + 0.5, starts.min() - 0.5)  # inverted: the window grows to the right
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"first year of the window (window ends in {last_year})")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def year_jumps(years: Sequence[int], jumps: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, flagged: Sequence[int],
               typical: float, ylabel: str, title: str, typical_label: str = "median jump",
               xlabel: str = "year added to the window (the window grows back from the last year)", ax=None):
    """Per-year bars with 95% intervals and the median dashed: what each year adds (to a window, or beyond the others).

    Args:
        years: ``J`` years (in the order drawn, left to right).
        jumps: ``float[J]`` jump of each year.
        lo: ``float[J]`` lower interval ends.
        hi: ``float[J]`` upper interval ends.
        flagged: Years drawn in red.
        typical: The median jump (dashed line).
        ylabel: Axis label, with units.
        title: Axes title.
        typical_label: Legend entry of the dashed line.
        xlabel: Axis label under the years.
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    from matplotlib.patches import Patch

    fig, ax = _axes(ax, (7.5, 3.6))
    jumps, lo, hi = (np.asarray(a, dtype=float) for a in (jumps, lo, hi))
    x = np.arange(len(years))
    ax.bar(x, jumps, color=[_HIGHLIGHT if y in flagged else _PLAIN for y in years])
    ax.errorbar(x, jumps, yerr=[np.clip(jumps - lo, 0, None), np.clip(hi - jumps, 0, None)], fmt="none", ecolor="#333",
                capsize=2, lw=1)
    ax.axhline(0, color="#888", lw=0.8)
    handles = [ax.axhline(typical, color="black", lw=0.9, ls="--", label=typical_label)]
    if len(flagged):
        handles.append(Patch(color=_HIGHLIGHT, label="flagged"))
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_xticks(x, [str(y) for y in years], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(years) - 0.4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def miam_history(history: Sequence[dict], *, score_label: str = "AUC", title: str = "MIAM coefficients during training",
                 ax=None):
    """Per-epoch s_m, rho_s and rho_d of each modality (paper Fig. 4, right): three panels sharing the epoch axis.

    Args:
        history: One dict per epoch with ``epoch`` and, each as ``{modality: float}`` (or ``None``
            before two epochs of scores exist), ``s``, ``rho_s`` and ``rho_d``.
        score_label: What the validation score is (``AUC``, ``accuracy``, ``1/loss``).
        title: Figure title.
        ax: Not accepted: the figure has three panels.

    Returns:
        The figure.
    """
    if ax is not None:
        raise ValueError("miam_history draws three panels; it takes no ax")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained", sharex=True)
    epochs = [entry["epoch"] for entry in history]
    modalities = list(history[0]["s"]) if history else []
    for key, axis, label in (("s", axes[0], f"validation score $s_m$ ({score_label})"),
                             ("rho_s", axes[1], r"score ratio $\rho_s$"),
                             ("rho_d", axes[2], r"improvement ratio $\rho_d$ (log scale)")):
        for m in modalities:
            ys = [np.nan if entry.get(key) is None else entry[key][m] for entry in history]
            axis.plot(epochs, ys, "o-", ms=3, label=m)
        if key != "s":
            axis.axhline(1.0, color="#888", lw=0.8, ls="--")
        if key == "rho_d":
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_ylabel(label)
    if modalities:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=9, title="modality")
    fig.suptitle(title)
    return fig
