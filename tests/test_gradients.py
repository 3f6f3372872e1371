"""Per-site values along a covariate: the trend (``smooth_trend``), the covariate (``site_covariate``) and the plot."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from miam_explain.errors import ConfigError, DataError
from miam_explain.plotting.gradients import gradient_plot
from miam_explain.spatial import site_covariate, smooth_trend


def gentle(x: np.ndarray) -> np.ndarray:
    return 0.3 * np.sin(x / 3.0)


def values_along(x: np.ndarray, y: np.ndarray, site_id=None) -> xr.DataArray:
    n = len(y)
    rng = np.random.default_rng(0)
    return xr.DataArray(
        y, dims="site", name="shapley", attrs={"long_name": "Shapley value", "units": "Δ probability"},
        coords={"site_id": ("site", np.arange(n) if site_id is None else site_id),
                "lat": ("site", rng.uniform(42, 51, n)), "lon": ("site", rng.uniform(-4, 8, n))},
    )


# ---------------------------------------------------------------------------------------------
# smooth_trend


def test_a_linear_gradient_is_recovered_exactly_to_the_ends():
    x = np.random.default_rng(1).uniform(-3.0, 40.0, 150)
    trend = smooth_trend(x, 0.02 * x - 0.1, frac=0.2, n_boot=30, seed=0)
    np.testing.assert_allclose(trend.fit, 0.02 * trend.x - 0.1, atol=1e-10)
    np.testing.assert_allclose(trend.high - trend.low, 0.0, atol=1e-10)
    assert trend.x[0] == pytest.approx(x.min()) and trend.x[-1] == pytest.approx(x.max())


def test_the_band_covers_the_smoothed_truth_at_about_its_level():
    # The bootstrap band is for the smoother's expectation (the truth smoothed the same way): over
    # 10 seeds it holds that curve at ~94 % of grid points (nominal 95 %); we ask for 88 %.
    coverage, error = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.0, 10.0, 400)
        trend = smooth_trend(x, gentle(x) + rng.normal(0.0, 0.3, 400), seed=seed)
        target = smooth_trend(x, gentle(x), n_boot=20).fit
        coverage.append(np.mean((trend.low <= target) & (target <= trend.high)))
        error.append(np.abs(trend.fit - gentle(trend.x)).mean())
    assert np.mean(coverage) >= 0.88
    assert max(error) < 0.06, error  # noise sd 0.3: on average the trend is far closer to the truth than one site


def test_more_sites_narrow_the_band_and_the_seed_makes_it_reproducible():
    widths = []
    for n in (200, 3200):
        rng = np.random.default_rng(n)
        x = rng.uniform(0.0, 10.0, n)
        y = gentle(x) + rng.normal(0.0, 0.3, n)
        a, b = smooth_trend(x, y, seed=3), smooth_trend(x, y, seed=3)
        np.testing.assert_array_equal(a.low, b.low)
        assert not np.array_equal(a.low, smooth_trend(x, y, seed=4).low)
        widths.append(np.median(a.high - a.low))
    assert widths[1] < 0.5 * widths[0]  # 16× the sites: about a quarter of the width


def test_nan_sites_are_left_out_and_ties_fall_back_to_a_local_mean():
    x = np.r_[np.repeat([1.0, 2.0, 3.0], 20), np.nan]
    y = np.r_[np.repeat([0.0, 1.0, 4.0], 20), 7.0]
    trend = smooth_trend(x, y, frac=0.1, n_grid=3, n_boot=20)
    assert trend.n_sites == 60
    np.testing.assert_allclose(trend.fit, [0.0, 1.0, 4.0], atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"frac": 0.0}, ConfigError, "frac"), ({"frac": 1.5}, ConfigError, "frac"),
        ({"n_boot": 5}, ConfigError, "n_boot"), ({"level": 1.0}, ConfigError, "level"),
        ({"n_grid": 1}, ConfigError, "n_grid"), ({"seed": -2}, ConfigError, "seed"),
        ({"x": np.ones(50)}, DataError, "constant"), ({"x": np.arange(5.0), "y": np.arange(5.0)}, DataError, "at least 10"),
        ({"x": np.arange(50.0), "y": np.arange(49.0)}, DataError, "one covariate value per site"),
    ],
)
def test_bad_settings(kwargs, error, message):
    args = {"x": np.arange(50.0), "y": np.sin(np.arange(50.0)), **kwargs}
    with pytest.raises(error, match=message):
        smooth_trend(args.pop("x"), args.pop("y"), **args)


# ---------------------------------------------------------------------------------------------
# site_covariate


def consolidated(site_id: np.ndarray) -> xr.Dataset:
    """A minimal consolidated-like dataset: a tabular modality (Bio1, Elevation) and a numeric site coord."""
    table = np.c_[10.0 + site_id % 7, 100.0 * site_id]
    table[3, 0] = np.nan
    return xr.Dataset(
        {"x_tabular": (("site", "tabular_variable"), table.astype(np.float32), {"kind": "tabular", "roles": "variable"})},
        coords={"site_id": ("site", site_id), "tabular_variable": ["Bio1", "Elevation"], "survey_year": ("site", 2000 + site_id % 5)},
        attrs={"layout": "glc25"},
    )


def test_covariates_come_from_the_values_coords_or_the_datasets_table_by_site_id():
    data = consolidated(np.arange(100, 140))
    picked = np.random.default_rng(2).permutation(np.arange(100, 140))[:25]  # a result on a shuffled subset of sites
    values = values_along(np.zeros(25), np.zeros(25), site_id=picked)

    lat = site_covariate(values, "lat")
    np.testing.assert_array_equal(lat.values, values["lat"].values)
    assert lat.attrs == {"long_name": "latitude", "units": "°N"}

    bio1 = site_covariate(values, "Bio1", data=data)
    expected = data["x_tabular"].sel(tabular_variable="Bio1").set_index(site="site_id").sel(site=picked).values
    np.testing.assert_array_equal(bio1.values, expected)
    np.testing.assert_array_equal(bio1["site_id"].values, picked)
    assert bio1.attrs == {"long_name": "Bio1, annual mean temperature", "units": "°C"}
    assert site_covariate(values, "Elevation", data=data).attrs["units"] == "m"
    np.testing.assert_array_equal(site_covariate(values, "survey_year", data=data).values, 2000 + picked % 5)
    # Units are only named for the GeoPlant layouts.
    assert site_covariate(values, "Bio1", data=data.assign_attrs(layout="embeddings")).attrs == {"long_name": "Bio1", "units": ""}


def test_covariate_errors_name_the_fix():
    data = consolidated(np.arange(100, 140))
    values = values_along(np.zeros(5), np.zeros(5), site_id=np.array([100, 101, 102, 999, 998]))
    with pytest.raises(ConfigError, match="pass the dataset"):
        site_covariate(values, "Bio1")
    with pytest.raises(ConfigError, match="unknown covariate 'Bio99'.*lat, lon, survey_year, Bio1, Elevation"):
        site_covariate(values, "Bio99", data=data)
    with pytest.raises(DataError, match="2 of 5 sites of the result are not in the dataset"):
        site_covariate(values, "Bio1", data=data)


# ---------------------------------------------------------------------------------------------
# gradient_plot


def test_the_plot_draws_every_finite_site_the_trend_and_its_band():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 10.0, 300)
    y = gentle(x) + rng.normal(0.0, 0.1, 300)
    y[::10] = np.nan
    covariate = xr.DataArray(x, dims="site", attrs={"long_name": "Bio1, annual mean temperature", "units": "°C"})
    fig = gradient_plot(values_along(x, y), covariate, seed=1, n_boot=50)
    ax = fig.axes[0]
    keep = np.isfinite(y)
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), np.c_[x[keep], y[keep]])
    trend = smooth_trend(x, y, seed=1, n_boot=50)
    line = next(l for l in ax.get_lines() if len(l.get_xdata()) == len(trend.x))
    np.testing.assert_allclose(line.get_ydata(), trend.fit)
    band = next(c for c in ax.collections if isinstance(c, PolyCollection) and c is not points)
    vertices = band.get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(np.nanmin(trend.low)) and vertices[:, 1].max() == pytest.approx(np.nanmax(trend.high))
    assert ax.get_xlabel() == "Bio1, annual mean temperature [°C]"
    assert ax.get_ylabel() == "Shapley value [Δ probability]"
    assert ax.get_title().endswith(f"\n{keep.sum()} sites")
    assert any(l.get_ydata()[0] == 0.0 and len(l.get_ydata()) == 2 for l in ax.get_lines())  # the zero line


def test_many_sites_are_drawn_as_a_hexbin_into_a_given_axes():
    rng = np.random.default_rng(6)
    x = rng.uniform(0.0, 10.0, 600)
    fig = Figure()
    ax = fig.add_subplot()
    assert gradient_plot(values_along(x, gentle(x)), x, ax=ax, hexbin_above=500, n_boot=20) is fig
    assert int(np.asarray(ax.collections[0].get_array()).sum()) == 600  # every site counted in a hexagon
    assert len(fig.axes) == 2  # the plot and its count colourbar
    assert ax.get_xlabel() == "covariate"


def test_plot_errors():
    x = np.arange(30.0)
    values = values_along(x, np.sin(x))
    with pytest.raises(DataError, match="one value per site"):
        gradient_plot(values, x[:-1])
    shuffled = xr.DataArray(x, dims="site", coords={"site_id": ("site", np.arange(30)[::-1])})
    with pytest.raises(DataError, match="site_id differ"):
        gradient_plot(values, shuffled)
    with pytest.raises(DataError, match="single dim 'site'"):
        gradient_plot(values.values, x)
    with pytest.raises(ConfigError, match="hexbin_above"):
        gradient_plot(values, x, hexbin_above=-1)
