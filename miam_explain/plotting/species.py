"""Figures of the species report: how many species each player leads, and the species-by-player map of Shapley values.

Free functions over arrays, each returning its figure (no ``plt.show()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

__all__ = ["leading_counts", "species_heatmap"]

#: Species labelled on the heat map's axis up to this many (beyond, the rows are unlabelled).
MAX_LABELLED = 60


def leading_counts(players: Sequence[str], leading: Sequence[str], resolved: Sequence[bool], *, title: str, ax=None):
    """Horizontal bars: for each player, the species it leads, split into resolved and not told apart.

    Args:
        players: The ``P`` player names.
        leading: The leading player of each counted species.
        resolved: Whether the bootstrap told each species' leader apart from its runner-up.
        title: Axes title.
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    players = list(players)
    leading, resolved = np.asarray(leading, dtype=object), np.asarray(resolved, dtype=bool)
    sure = np.array([int(((leading == p) & resolved).sum()) for p in players])
    unsure = np.array([int(((leading == p) & ~resolved).sum()) for p in players])
    order = np.argsort(sure + unsure, kind="stable")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, max(2.6, 1.2 + 0.4 * len(players))), layout="constrained")
    else:
        fig = ax.figure
    y = np.arange(len(players))
    ax.barh(y, sure[order], color="#3b6ea5", label="resolved (95% bootstrap margin > 0)")
    ax.barh(y, unsure[order], left=sure[order], color="#b8c9de", label="not told apart from the runner-up")
    ax.set_yticks(y, [players[i] for i in order])
    ax.set_xlabel("species")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


def species_heatmap(phi: np.ndarray, players: Sequence[str], species: Sequence[str], leading: Sequence[str], *,
                    units: str, keep: np.ndarray | None = None, ax=None):
    """Shapley value of every player (columns) for every species (rows), rows grouped by leading player.

    Args:
        phi: ``float[P, K]`` Shapley values.
        players: The ``P`` player names.
        species: The ``K`` species names.
        leading: The leading player of each species.
        units: Colour-bar label.
        keep: ``bool[K]`` species to draw (default all).
        ax: Axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    phi = np.asarray(phi, dtype=float)
    players, species, leading = list(players), np.asarray(species, dtype=object), np.asarray(leading, dtype=object)
    keep = np.ones(phi.shape[1], dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    columns = np.flatnonzero(keep)
    rank = {p: i for i, p in enumerate(players)}
    columns = sorted(columns, key=lambda k: (rank.get(leading[k], len(players)), -phi[rank.get(leading[k], 0), k]))
    shown = phi[:, columns].T if columns else np.zeros((0, len(players)))
    n = len(columns)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.8 + 1.0 * len(players), min(14.0, 1.6 + 0.22 * max(n, 4))), layout="constrained")
    else:
        fig = ax.figure
    limit = float(np.nanmax(np.abs(shown))) if shown.size and np.isfinite(shown).any() else 1.0
    image = ax.imshow(shown if n else np.full((1, len(players)), np.nan), aspect="auto", cmap="RdBu_r",
                      norm=TwoSlopeNorm(0.0, -(limit or 1.0), limit or 1.0), interpolation="nearest")
    ax.set_xticks(range(len(players)), players, rotation=30, ha="right")
    if 0 < n <= MAX_LABELLED:
        ax.set_yticks(range(n), [str(species[k]) for k in columns], fontsize=7)
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{n} species")
    for boundary in np.flatnonzero(np.diff([rank.get(leading[k], -1) for k in columns])):
        ax.axhline(boundary + 0.5, color="black", lw=0.8)
    fig.colorbar(image, ax=ax, label=units, shrink=0.8)
    ax.set_title("Shapley value of each player per species, grouped by leading player")
    return fig
