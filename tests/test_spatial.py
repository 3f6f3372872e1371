"""Moran's I of per-site values (``miam_explain.spatial.moran``): against a direct computation, and its null."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from miam_explain.errors import ConfigError, DataError
from miam_explain.spatial import MoranResult, knn_weights, moran


def sites(value: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    """Per-site values with lat/lon coords, like ``select_values(result, ...)``."""
    return xr.DataArray(
        value, dims="site", name="shapley",
        coords={"site_id": ("site", np.arange(len(value))), "lat": ("site", lat), "lon": ("site", lon)},
    )


def random_sites(n: int, seed: int, *, lat=(42.0, 51.0), lon=(-4.0, 8.0)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(*lat, n), rng.uniform(*lon, n)


def direct_knn(lat: np.ndarray, lon: np.ndarray, k: int) -> np.ndarray:
    """Row-standardised kNN weights ``float[n, n]`` from a brute-force haversine distance matrix."""
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    hav = np.sin((la[:, None] - la) / 2) ** 2 + np.cos(la[:, None]) * np.cos(la) * np.sin((lo[:, None] - lo) / 2) ** 2
    np.fill_diagonal(hav, np.inf)
    nearest = np.argsort(hav, axis=1)[:, :k]
    w = np.zeros_like(hav)
    np.put_along_axis(w, nearest, 1.0 / k, axis=1)
    return w


def direct_moran(y: np.ndarray, w: np.ndarray) -> float:
    """I = n / S0 · zᵀWz / zᵀz, z the centred values."""
    z = y - y.mean()
    return len(y) / w.sum() * (z @ w @ z) / (z @ z)


# ---------------------------------------------------------------------------------------------
# Against a direct computation


@pytest.mark.parametrize("k", [1, 4, 8])
def test_morans_i_equals_a_direct_computation_on_great_circle_knn(k):
    # High latitudes, where a degree of longitude is half a degree of latitude or less.
    lat, lon = random_sites(300, seed=k, lat=(55.0, 72.0), lon=(-30.0, 40.0))
    rng = np.random.default_rng(10 + k)
    y = np.sin(lon / 8.0) + 0.5 * np.cos(lat / 3.0) + rng.normal(0.0, 0.3, 300)
    result = moran(sites(y, lat, lon), k=k, n_permutations=99, seed=0)

    w = direct_knn(lat, lon, k)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert result.i == pytest.approx(direct_moran(y, w), rel=1e-10, abs=1e-12)
    assert result.expected_i == pytest.approx(-1.0 / 299)
    assert (result.k, result.n_permutations, result.seed, result.n_sites) == (k, 99, 0, 300)

    # The test has teeth: neighbours found on raw lon/lat degrees give another I.
    flat = direct_knn_degrees(lat, lon, k)
    assert abs(direct_moran(y, flat) - result.i) > 1e-3


def direct_knn_degrees(lat: np.ndarray, lon: np.ndarray, k: int) -> np.ndarray:
    d = (lat[:, None] - lat) ** 2 + (lon[:, None] - lon) ** 2
    np.fill_diagonal(d, np.inf)
    w = np.zeros_like(d)
    np.put_along_axis(w, np.argsort(d, axis=1)[:, :k], 1.0 / k, axis=1)
    return w


def test_weights_wrap_longitude_and_keep_k_neighbours_for_sites_at_one_place():
    # 179.9°E and 179.9°W are 0.2° apart across the antimeridian; 0..360 longitudes are the same places.
    w = knn_weights(np.array([179.9, -179.9, 170.0, 160.0]), np.array([0.0, 0.0, 0.0, 0.0]), k=1)
    assert [int(w.neighbors[i][0]) for i in range(4)] == [1, 0, 0, 2]
    w360 = knn_weights(np.array([179.9, 180.1, 170.0, 160.0]), np.zeros(4), k=1)
    assert [int(w360.neighbors[i][0]) for i in range(4)] == [1, 0, 0, 2]
    # Repeated surveys at one position: still exactly k neighbours each, twins first.
    lat, lon = random_sites(50, seed=3)
    lat, lon = np.r_[lat, lat[:5]], np.r_[lon, lon[:5]]
    w = knn_weights(lon, lat, k=4)
    assert set(w.cardinalities.values()) == {4}
    assert all(i + 50 in w.neighbors[i] for i in range(5))
    assert w.transform == "R"


def test_sites_without_a_value_or_position_are_left_out():
    lat, lon = random_sites(200, seed=4)
    y = np.sin(lon / 2.0)
    full = moran(sites(y, lat, lon), seed=0)
    y_nan, lat_nan = np.r_[y, np.nan, 1.0], np.r_[lat, 45.0, np.nan]
    partial = moran(sites(y_nan, lat_nan, np.r_[lon, 2.0, 2.0]), seed=0)
    assert partial.n_sites == full.n_sites == 200
    assert partial.i == pytest.approx(full.i, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# The permutation test: a planted smooth field, and the null


def test_a_smooth_field_is_clustered_and_iid_noise_is_not():
    # A spatially smooth field: every seed gives the smallest p the permutations allow, 1 / (999 + 1).
    for seed in range(5):
        lat, lon = random_sites(200, seed=seed)
        rng = np.random.default_rng(100 + seed)
        smooth = np.sin(lon / 2.0) + np.cos(lat / 2.0) + rng.normal(0.0, 0.2, 200)
        result = moran(sites(smooth, lat, lon), seed=seed)
        assert result.p_value == pytest.approx(0.001) and result.z > 5 and result.pattern == "clustered"

    # iid noise: esda's p is one-sided in the direction of the observed I, so under the null it is
    # uniform on (0, 0.5] and P(p <= 0.05) is about 0.10. Over 20 seeds we expect ~2 such p;
    # Binomial(20, 0.1) gives 6 or more with probability ~1 %.
    p = []
    for seed in range(20):
        lat, lon = random_sites(200, seed=1000 + seed)
        noise = np.random.default_rng(seed).normal(size=200)
        result = moran(sites(noise, lat, lon), seed=seed)
        assert abs(result.i - result.expected_i) < 0.1
        p.append(result.p_value)
    p = np.array(p)
    assert (p <= 0.05).sum() <= 5
    assert 0.15 < p.mean() < 0.35 and p.max() <= 0.5 + 1e-9


def test_the_seed_is_injected_and_global_numpy_state_is_left_alone():
    lat, lon = random_sites(150, seed=7)
    values = sites(np.random.default_rng(7).normal(size=150), lat, lon)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = moran(values, n_permutations=199, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)
    b = moran(values, n_permutations=199, seed=5)
    c = moran(values, n_permutations=199, seed=6)
    assert a == b
    assert a.i == c.i and (a.z, a.p_value) != (c.z, c.p_value)
    assert a.p_value >= 1 / 200


def test_result_reads_as_one_line_and_as_json():
    lat, lon = random_sites(100, seed=8)
    result = moran(sites(np.sin(lon), lat, lon), k=6, n_permutations=99, seed=2)
    assert isinstance(result, MoranResult)
    line = result.summary()
    assert line.startswith("Moran's I = ") and "6 neighbours" in line and "99 permutations" in line and "\n" not in line
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_input_raises_one_line_errors():
    lat, lon = random_sites(20, seed=9)
    values = sites(np.arange(20.0), lat, lon)
    with pytest.raises(DataError, match="constant"):
        moran(sites(np.full(20, 0.3), lat, lon))
    with pytest.raises(DataError, match="more than 8 sites"):
        moran(values.isel(site=slice(0, 8)))
    with pytest.raises(DataError, match="no lat coord"):
        moran(values.drop_vars("lat"))
    with pytest.raises(DataError, match="single dim 'site'"):
        moran(values.expand_dims(target=["a"]))
    with pytest.raises(DataError, match="not in degrees"):
        moran(values.assign_coords(lat=("site", lat * 100)))
    for kwargs, message in [
        ({"k": 0}, "k \\(neighbours"), ({"k": 2.5}, "k \\(neighbours"), ({"n_permutations": 10}, "permutations"),
        ({"seed": -1}, "seed"), ({"seed": True}, "seed"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            moran(values, **kwargs)
        assert "\n" not in str(info.value)
