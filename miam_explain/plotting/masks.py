"""Pictures of masking-strategy distributions (MIAM paper Fig. 3 and Fig. 9).

Free functions that take samples of **p** and an optional axes, and return the
:class:`~matplotlib.figure.Figure`. They never call ``plt.show()`` and never
touch pyplot's global state: figures are built with
:class:`matplotlib.figure.Figure` directly (Agg rendering on ``savefig``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_mask_cube", "plot_mask_marginals", "plot_masking_overview"]

#: One colour per modality in the marginal plots.
MODALITY_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
#: A sample with at most this many distinct rows is drawn as weighted atoms.
MAX_ATOMS = 16


def _as_numpy(p: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().numpy()
    p = np.asarray(p, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"p must have shape (n, M), got {p.shape}")
    return p


def _names(modality_names: Sequence[str] | None, num: int) -> list[str]:
    if modality_names is None:
        return [f"modality {i + 1}" for i in range(num)]
    if len(modality_names) != num:
        raise ValueError(f"got {len(modality_names)} modality names for {num} columns of p")
    return list(modality_names)


def plot_mask_cube(
    p: np.ndarray | torch.Tensor,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    modality_names: Sequence[str] | None = None,
    color: str = "#2c7fb8",
) -> Figure:
    """Scatter draws of **p** for three modalities in the unit cube (paper Fig. 3).

    Args:
        p: ``float[n, 3]`` masking probabilities. When it holds at most 16 distinct rows
            (a discrete strategy), each distinct row is drawn once, sized and labelled by
            its share of the draws.
        ax: A 3-D axes (``projection="3d"``) to draw into; a new figure when ``None``.
        title: Panel title.
        modality_names: Three names for the axis labels (default ``modality 1..3``).
        color: Marker colour.

    Returns:
        The figure holding the axes.
    """
    p = _as_numpy(p)
    if p.shape[1] != 3:
        raise ValueError(f"the cube needs exactly 3 modalities, p has {p.shape[1]}")
    names = _names(modality_names, 3)
    if ax is None:
        fig = Figure(figsize=(5, 5), layout="constrained")
        ax = fig.add_subplot(projection="3d")
    if getattr(ax, "name", "") != "3d":
        raise ValueError("plot_mask_cube needs a 3-D axes: add_subplot(projection='3d')")
    rows, counts = np.unique(p, axis=0, return_counts=True)
    if len(rows) <= MAX_ATOMS:
        # A discrete distribution (constant, modality_dropout, opm, ...): one marker per atom,
        # its area proportional to the atom's probability, labelled with that probability.
        share = counts / counts.sum()
        ax.scatter(*rows.T, s=20 + 400 * share, color=color, alpha=0.8, depthshade=False)
        for row, f in zip(rows, share):
            # Labels sit a little inside the cube, clear of the tick labels on its edges.
            ax.text(*(0.1 + 0.8 * row), f"{f:.0%}" if f >= 0.01 else f"{f:.1%}", fontsize=8, color="0.15")
    else:
        ax.scatter(*p.T, s=2, alpha=0.3, color=color, depthshade=False, rasterized=True)
    # The cube's edges make the corners readable.
    for a in (0, 1):
        for b in (0, 1):
            ax.plot([0, 1], [a, a], [b, b], color="0.75", lw=0.6)
            ax.plot([a, a], [0, 1], [b, b], color="0.75", lw=0.6)
            ax.plot([a, a], [b, b], [0, 1], color="0.75", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_zlim(0, 1)
    ticks = [0, 0.5, 1]
    ax.set_xticks(ticks, ["0", "0.5", "1"])
    ax.set_yticks(ticks, ["", "0.5", "1"])  # y = 0 shares its corner with x = 1
    ax.set_zticks(ticks, ["0", "0.5", "1"])
    ax.tick_params(labelsize=8, pad=0)
    ax.set_xlabel(f"p ({names[0]})", fontsize=9, labelpad=-2)
    ax.set_ylabel(f"p ({names[1]})", fontsize=9, labelpad=-2)
    ax.set_zlabel(f"p ({names[2]})", fontsize=9, labelpad=-4)
    ax.view_init(elev=22, azim=-55)
    ax.set_box_aspect((1, 1, 1), zoom=0.85)
    if title:
        ax.set_title(title, fontsize=11, pad=0)
    return ax.figure


def plot_mask_marginals(
    p: np.ndarray | torch.Tensor,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    modality_names: Sequence[str] | None = None,
    bins: int = 40,
) -> Figure:
    """Marginal density of each ``p_m`` as step histograms on a log scale (paper Fig. 9).

    A point mass (e.g. ``constant``) shows as one tall bin of height ``bins``.

    Args:
        p: ``float[n, M]`` masking probabilities.
        ax: Axes to draw into; a new figure when ``None``.
        title: Panel title.
        modality_names: ``M`` legend labels (default ``modality 1..M``).
        bins: Number of equal-width bins on ``[0, 1]``.

    Returns:
        The figure holding the axes.
    """
    p = _as_numpy(p)
    names = _names(modality_names, p.shape[1])
    if ax is None:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
    edges = np.linspace(0.0, 1.0, bins + 1)
    floor = 1.0 / (len(p) * (edges[1] - edges[0])) if len(p) else 1e-3  # density of a single draw
    for m, name in enumerate(names):
        counts, _ = np.histogram(p[:, m], bins=edges)
        density = counts / max(len(p), 1) / (edges[1] - edges[0])
        color = MODALITY_COLORS[m % len(MODALITY_COLORS)]
        ax.stairs(np.maximum(density, floor / 2), edges, color=color, lw=1.8, label=name, baseline=None)
        ax.axvline(float(p[:, m].mean()) if len(p) else 0.0, color=color, lw=1, ls="--")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, bins * 1.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("masking probability p", fontsize=10)
    ax.set_ylabel("density (log scale)", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(True, which="major", color="0.9", lw=0.6)
    ax.legend(fontsize=9, title="dashed: mean", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=11)
    return ax.figure


def plot_masking_overview(
    samples: Mapping[str, np.ndarray | torch.Tensor],
    *,
    marginals: Sequence[str] = (),
    titles: Mapping[str, str] | None = None,
    modality_names: Sequence[str] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """One figure: a unit-cube panel per strategy (Fig. 3), then marginal panels (Fig. 9).

    With one strategy the cube and its marginals sit side by side. With several,
    the cubes fill rows of four and the marginal panels share one row below.

    Args:
        samples: ``{strategy name: float[n, 3]}`` draws of **p**, in panel order.
        marginals: Names (keys of ``samples``) whose marginal densities get a panel.
        titles: Panel title per strategy name (default: the name).
        modality_names: Three modality names for the labels.
        suptitle: Figure title.

    Returns:
        The figure.
    """
    unknown = [name for name in marginals if name not in samples]
    if unknown:
        raise ValueError(f"marginals {unknown} have no samples; choose among {list(samples)}")
    titles = dict(titles or {})
    names = list(samples)
    if len(names) == 1:
        ncols, cube_rows = 1 + len(marginals), 1
        fig = Figure(figsize=(5.2 * ncols, 5.0), layout="constrained")
        grid = fig.add_gridspec(1, ncols)
        cube_slots = [grid[0, 0]]
        marginal_slots = [grid[0, 1 + i] for i in range(len(marginals))]
    else:
        ncols = min(4, len(names))
        cube_rows = math.ceil(len(names) / ncols)
        rows = cube_rows + (1 if marginals else 0)
        heights = [1.0] * cube_rows + ([0.85] if marginals else [])
        fig = Figure(figsize=(4.2 * ncols, 4.2 * sum(heights)), layout="constrained")
        grid = fig.add_gridspec(rows, ncols, height_ratios=heights)
        cube_slots = [grid[i // ncols, i % ncols] for i in range(len(names))]
        width = ncols // len(marginals) if marginals else 0
        marginal_slots = [grid[cube_rows, i * width : (i + 1) * width] for i in range(len(marginals))]
    for slot, name in zip(cube_slots, names):
        ax = fig.add_subplot(slot, projection="3d")
        plot_mask_cube(samples[name], ax=ax, title=titles.get(name, name), modality_names=modality_names)
    for slot, name in zip(marginal_slots, marginals):
        ax = fig.add_subplot(slot)
        title = f"marginal densities: {titles.get(name, name)}"
        plot_mask_marginals(samples[name], ax=ax, title=title, modality_names=modality_names)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    return fig
