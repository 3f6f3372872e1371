"""Train/val/test splits: spatial blocks (verde) for presence-absence data, stratified for classes.

The spatial split follows the MIAM paper (its Fig. 7): sites are binned into
square blocks of ``spacing`` degrees with :func:`verde.block_split`, and whole
blocks are assigned to the test, val and train splits, so no block straddles two
splits. Blocks are shuffled with a seeded RNG; like verde's
``BlockShuffleSplit`` we try several shuffles and keep the one whose split
proportions (counted in sites) are closest to the targets.
"""

from __future__ import annotations

import numpy as np
import verde as vd

from miam_explain.errors import ConfigError, DataError

__all__ = ["block_labels", "spatial_split", "stratified_split"]


def block_labels(lon: np.ndarray, lat: np.ndarray, *, spacing: float = 1.0) -> np.ndarray:
    """Spatial block of every site, from :func:`verde.block_split`.

    Args:
        lon: ``float[N]`` longitudes in degrees.
        lat: ``float[N]`` latitudes in degrees.
        spacing: Block size in degrees.

    Returns:
        ``int64[N]`` block label per site.

    Raises:
        ConfigError: ``spacing`` is not a positive, finite number of degrees.

    Examples:
        >>> block_labels(np.array([0.2, 0.7, 1.5, 3.2]), np.array([45.1, 45.3, 45.2, 46.5]), spacing=1.0).tolist()
        [0, 0, 1, 2]
    """
    _check_spacing(spacing)
    _, labels = vd.block_split((np.asarray(lon, float), np.asarray(lat, float)), spacing=spacing)
    return np.asarray(labels, dtype=np.int64)


def _check_spacing(spacing: float) -> None:
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float, np.number)) or not 0 < spacing < np.inf:
        raise ConfigError(
            f"block size (--block-size-deg) {spacing!r} must be a positive number of degrees; the paper uses 1"
        )


def _check_fractions(val: float, test: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"split fractions val={val}, test={test} must be in [0, 1) and sum below 1")


def spatial_split(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    spacing: float = 1.0,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 42,
    n_shuffles: int = 20,
) -> np.ndarray:
    """Assign whole spatial blocks to ``train``, ``val`` and ``test``.

    Args:
        lon: ``float[N]`` longitudes in degrees.
        lat: ``float[N]`` latitudes in degrees.
        spacing: Block size in degrees (1 degree in the paper).
        val: Target fraction of sites in the validation split.
        test: Target fraction of sites in the test split.
        seed: Seed of the block shuffle.
        n_shuffles: Shuffles tried; the best-balanced one is kept.

    Returns:
        ``str[N]`` split name per site.

    Raises:
        DataError: no sites, or fractions out of range.
        ConfigError: ``spacing`` is not a positive number of degrees.
    """
    _check_fractions(val, test)
    n = len(lon)
    if n == 0:
        raise DataError("cannot split an empty set of sites; check the metadata file")
    labels = block_labels(lon, lat, spacing=spacing)
    blocks, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(seed)
    targets = np.array([test, val]) * n
    best_order, best_cost = None, np.inf
    for _ in range(max(1, n_shuffles)):
        order = rng.permutation(len(blocks))
        assign = _fill(counts[order], targets)
        cost = np.abs(np.array([counts[order][assign == k].sum() for k in (0, 1)]) - targets).sum()
        if cost < best_cost:
            best_order, best_cost, best_assign = order, cost, assign
    block_split = np.empty(len(blocks), dtype=object)
    names = np.array(["test", "val", "train"], dtype=object)
    block_split[best_order] = names[best_assign]
    lookup = dict(zip(blocks.tolist(), block_split.tolist()))
    return np.array([lookup[b] for b in labels.tolist()], dtype=str)


def _fill(counts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Greedy fill: give blocks (in order) to split 0 until its target, then split 1, rest to 2."""
    assign = np.full(len(counts), 2, dtype=np.int64)
    filled = np.zeros(2)
    for i, c in enumerate(counts):
        for k in (0, 1):
            if filled[k] + c / 2 <= targets[k]:
                assign[i] = k
                filled[k] += c
                break
    return assign


def stratified_split(
    label: np.ndarray, *, val: float = 0.15, test: float = 0.15, seed: int = 42
) -> np.ndarray:
    """Class-stratified random split for multi-class data.

    Args:
        label: ``int[N]`` class index per site.
        val: Target fraction of sites in the validation split.
        test: Target fraction of sites in the test split.
        seed: Seed of the permutation.

    Returns:
        ``str[N]`` split name per site; each class is spread over the splits in
        proportion (classes with very few members go to train first).
    """
    _check_fractions(val, test)
    label = np.asarray(label)
    if label.size == 0:
        raise DataError("cannot split an empty set of sites")
    rng = np.random.default_rng(seed)
    out = np.full(label.shape, "train", dtype="<U5")
    for cls in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == cls))
        n_test = int(np.floor(len(idx) * test + 0.5)) if len(idx) >= 3 else 0
        n_val = int(np.floor(len(idx) * val + 0.5)) if len(idx) >= 3 else 0
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
    return out
