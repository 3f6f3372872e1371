"""Spatial-block bootstrap: resample whole blocks of sites, never single sites.

Nearby sites share their environment (spatial autocorrelation), so resampling sites one by one
would give intervals that are too narrow. Each resample here draws as many blocks as there are,
with replacement, and takes every site of each drawn block. A resample is stored as site
*multiplicities* (``weights[b, i]``: how many times site ``i`` is in resample ``b``), so that a
metric over a resample is a weighted metric over the original sites
(:func:`miam_explain.runtime.metrics.weighted_macro_auc`): the model is never called again.

The blocks of the reports are the 1° squares of the spatial split
(:func:`miam_explain.data.splits.block_labels`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEVEL", "block_resamples", "percentile_interval", "resample_weights"]

#: Two-sided level of every interval in the reports.
LEVEL = 0.95


def block_resamples(blocks: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Spatial-block bootstrap resamples: whole blocks drawn with replacement.

    Args:
        blocks: ``int[N]`` block label of every site (any hashable labels).
        n_boot: Number of resamples.
        rng: Random generator (the only source of randomness).

    Returns:
        ``n_boot`` arrays of site indices: each the concatenated sites of as many blocks as
        there are distinct blocks, drawn with replacement.

    Example:
        >>> blocks = np.array([0, 0, 1, 2, 2, 2])
        >>> index = block_resamples(blocks, 1, np.random.default_rng(0))[0]
        >>> all(len(set(np.bincount(index, minlength=6)[blocks == b])) == 1 for b in range(3))
        True
    """
    _, inverse = np.unique(np.asarray(blocks), return_inverse=True)
    inverse = inverse.reshape(-1)
    n_blocks = int(inverse.max()) + 1 if inverse.size else 0
    members = [np.flatnonzero(inverse == b) for b in range(n_blocks)]
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, n_blocks, size=n_blocks)
        out.append(np.concatenate([members[b] for b in drawn]))
    return out


def resample_weights(resamples: list[np.ndarray], n_sites: int) -> np.ndarray:
    """Site multiplicities of each resample, with the original data first.

    Args:
        resamples: ``B`` arrays of site indices (from :func:`block_resamples`).
        n_sites: ``N``.

    Returns:
        ``float64[1 + B, N]``: row 0 is all ones (the data itself), row ``b + 1`` counts how
        many times each site is in resample ``b``.
    """
    weights = np.ones((1 + len(resamples), n_sites))
    for b, index in enumerate(resamples):
        weights[b + 1] = np.bincount(index, minlength=n_sites)
    return weights


def percentile_interval(samples: np.ndarray, *, level: float = LEVEL, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along ``axis``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.

    Args:
        samples: Bootstrap replicates, resamples along ``axis``.
        level: Two-sided level.
        axis: Axis of the resamples.

    Returns:
        ``(lo, hi)``, each ``samples`` without ``axis``.
    """
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return lo, hi
