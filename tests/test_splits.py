"""Spatial block and stratified splits."""

from __future__ import annotations

import numpy as np
import pytest

from miam_explain.data.splits import block_labels, spatial_split, stratified_split
from miam_explain.errors import DataError


@pytest.fixture(scope="module")
def sites():
    rng = np.random.default_rng(0)
    # clustered sites, as in real survey data: some blocks are dense, many sparse
    centers = rng.uniform([-5, 40], [20, 55], size=(60, 2))
    pick = rng.integers(0, 60, 3000)
    xy = centers[pick] + rng.normal(0, 0.6, size=(3000, 2))
    return xy[:, 0], xy[:, 1]


def test_no_block_straddles_two_splits(sites):
    lon, lat = sites
    split = spatial_split(lon, lat, spacing=1.0, seed=42)
    blocks = block_labels(lon, lat, spacing=1.0)
    for block in np.unique(blocks):
        assert len(set(split[blocks == block])) == 1, f"block {block} is in several splits"


def test_proportions_near_targets(sites):
    lon, lat = sites
    split = spatial_split(lon, lat, val=0.15, test=0.15, seed=42)
    n = len(split)
    for name, target in (("test", 0.15), ("val", 0.15), ("train", 0.70)):
        assert abs((split == name).sum() / n - target) < 0.02, name


def test_seed_is_deterministic_and_matters(sites):
    lon, lat = sites
    a = spatial_split(lon, lat, seed=42)
    np.testing.assert_array_equal(a, spatial_split(lon, lat, seed=42))
    assert (a != spatial_split(lon, lat, seed=7)).any()


def test_stratified_split_spreads_every_class():
    rng = np.random.default_rng(1)
    label = rng.integers(0, 5, 2000)
    split = stratified_split(label, val=0.15, test=0.15, seed=42)
    for cls in range(5):
        members = split[label == cls]
        for name, target in (("test", 0.15), ("val", 0.15)):
            assert abs((members == name).mean() - target) < 0.01


def test_bad_fractions_and_empty_input():
    with pytest.raises(DataError, match="fractions"):
        spatial_split(np.zeros(3), np.zeros(3), val=0.6, test=0.5)
    with pytest.raises(DataError, match="empty"):
        spatial_split(np.zeros(0), np.zeros(0))
