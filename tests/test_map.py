"""Maps of per-site values (``site_map``) and the ``miam-explain map`` command."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure
from PIL import Image

from miam_explain.cli import main
from miam_explain.errors import ConfigError, DataError
from miam_explain.plotting import maps
from miam_explain.plotting.maps import default_basemap_path, site_map



def make_values(n: int = 300, *, seed: int = 0, shift: float = 0.0, nan_every: int = 0) -> xr.DataArray:
    """Random per-site values over western Europe, like a Shapley result's ``shapley.sel(...)``."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(42.0, 51.0, n)
    lon = rng.uniform(-4.0, 8.0, n)
    value = shift + 0.05 * np.sin(lon / 2.0) + rng.normal(0.0, 0.01, n)
    if nan_every:
        value[::nan_every] = np.nan
    return xr.DataArray(
        value, dims="site", name="shapley",
        coords={"site_id": ("site", np.arange(n) + 1000), "lat": ("site", lat), "lon": ("site", lon), "player": "nir"},
        attrs={"long_name": "Shapley value"},
    )


def data_collection(fig: Figure):
    """The collection drawn last (the sites or blocks; the base map comes first)."""
    return fig.axes[0].collections[-1]


# ---------------------------------------------------------------------------------------------
# site_map


def test_points_carry_the_values_and_positions_of_the_finite_sites():
    values = make_values(nan_every=7)
    fig = site_map(values, basemap="none")
    points = data_collection(fig)
    finite = np.isfinite(values.values)
    np.testing.assert_allclose(points.get_offsets(), np.c_[values["lon"].values[finite], values["lat"].values[finite]])
    np.testing.assert_allclose(points.get_array(), values.values[finite])
    assert f"{finite.sum():,} sites" in fig.axes[0].get_title()


@pytest.mark.parametrize("size", [1.0, 0.5])
def test_block_means_equal_a_pandas_groupby(size):
    values = make_values(n=500, seed=1, nan_every=11)
    fig = site_map(values, blocks=size, basemap="none")
    blocks = data_collection(fig)
    # Each drawn square: its south-west corner and its edge, read back from the paths.
    corners = np.array([path.vertices.min(axis=0) for path in blocks.get_paths()])
    edges = np.array([np.ptp(path.vertices, axis=0) for path in blocks.get_paths()])
    np.testing.assert_allclose(edges, size, atol=1e-9)
    drawn = pd.Series(np.asarray(blocks.get_array()), index=pd.MultiIndex.from_arrays([corners[:, 1].round(6), corners[:, 0].round(6)]))

    frame = values.to_dataframe().dropna(subset=["shapley"])
    expected = frame.groupby([(np.floor(frame["lat"] / size) * size).round(6), (np.floor(frame["lon"] / size) * size).round(6)])["shapley"].mean()
    assert len(drawn) == len(expected) > 20
    pd.testing.assert_series_equal(drawn.sort_index(), expected.sort_index(), check_names=False, rtol=1e-12)
    assert f"in {len(expected):,} blocks" in fig.axes[0].get_title()


@pytest.mark.parametrize("shift", [0.0, 0.3, -0.3])
def test_colour_scale_is_diverging_and_centred_on_zero(shift):
    values = make_values(seed=2, shift=shift)
    fig = site_map(values, basemap="none", units="Δ probability")
    norm = data_collection(fig).norm
    assert norm.vmin == pytest.approx(-norm.vmax)
    assert norm.vmax == pytest.approx(np.abs(values.values).max())
    assert norm(0.0) == pytest.approx(0.5)
    cmap = data_collection(fig).cmap
    low, mid, high = cmap(0.0), cmap(0.5), cmap(1.0)
    assert low[2] > low[0] and high[0] > high[2]  # blue for negative, red for positive
    assert min(mid[:3]) > 0.9  # white at 0
    colorbar_axes = [ax for ax in fig.axes if ax is not fig.axes[0]]
    assert len(colorbar_axes) == 1 and "[Δ probability]" in colorbar_axes[0].get_ylabel()


def test_default_base_map_is_natural_earth_from_pyogrio_and_the_extent_is_cropped():
    path = default_basemap_path()
    assert path is not None and path.name == "naturalearth_lowres.shp" and "pyogrio" in path.parts
    values = make_values(seed=3)
    fig = site_map(values, title="nir")
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # countries, then sites
    assert len(ax.collections[0].get_paths()) >= 100  # every Natural Earth country is drawn
    lon, lat = values["lon"].values, values["lat"].values
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert lon.min() - 1.0 < x0 < lon.min() and lon.max() < x1 < lon.max() + 1.0
    assert lat.min() - 1.0 < y0 < lat.min() and lat.max() < y1 < lat.max() + 1.0
    assert "°" in ax.get_xlabel() and "°" in ax.get_ylabel()
    assert ax.xaxis.get_major_formatter()(-4.0, 0) == "4°W" and ax.yaxis.get_major_formatter()(45.0, 0) == "45°N"
    assert ax.get_title().startswith("nir\n") and "no base map" not in ax.get_title()


def test_base_map_from_a_file_and_its_errors(tmp_path):
    import geopandas as gpd
    from shapely import box

    outline = tmp_path / "outline.geojson"
    gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[box(-5, 41, 2, 52), box(2, 41, 9, 52)], crs="EPSG:4326").to_file(outline)
    fig = site_map(make_values(seed=4), basemap=outline)
    assert len(fig.axes[0].collections) == 2 and len(fig.axes[0].collections[0].get_paths()) == 2

    with pytest.raises(DataError, match="does not exist"):
        site_map(make_values(), basemap=tmp_path / "missing.shp")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("not a vector file")
    with pytest.raises(DataError, match="cannot read base map"):
        site_map(make_values(), basemap=garbage)


def test_without_a_base_map_the_map_falls_back_to_a_plain_frame(monkeypatch, caplog):
    # Forced: basemap="none" draws only the sites, quietly.
    with caplog.at_level(logging.WARNING, logger=maps.__name__):
        fig = site_map(make_values(), basemap="none")
    assert len(fig.axes[0].collections) == 1 and not caplog.records
    assert fig.axes[0].xaxis.get_gridlines()[0].get_visible()
    # Unavailable: no Natural Earth copy in pyogrio -> plain frame, a warning and a note in the title.
    monkeypatch.setattr(maps, "default_basemap_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger=maps.__name__):
        fig = site_map(make_values())
    assert len(fig.axes[0].collections) == 1
    assert "no base map" in fig.axes[0].get_title()
    assert any("plain lat/lon frame" in record.getMessage() for record in caplog.records)


def test_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert site_map(make_values(), ax=ax, basemap="none") is fig
    assert len(ax.collections) == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (make_values().where(False), "all 300 values"),
        (make_values().isel(site=[]), "no sites"),
        (make_values().drop_vars("lat"), "no lat coord"),
        (make_values().drop_vars(["lat", "lon"]), "no lat and lon coord"),
        (make_values().expand_dims(target=["a", "b"]), "single dim 'site'"),
        (make_values().values, "xarray.DataArray"),
    ],
)
def test_bad_values_raise_one_line_errors(values, message):
    with pytest.raises(DataError, match=message) as info:
        site_map(values, basemap="none")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("blocks", [0, -1.0, float("nan"), 200.0, True, "1"])
def test_bad_block_size(blocks):
    with pytest.raises(ConfigError, match="blocks must be"):
        site_map(make_values(), blocks=blocks, basemap="none")


# ---------------------------------------------------------------------------------------------
# miam-explain map, on real Shapley results of a tiny trained model


@pytest.fixture(scope="module")
def results(tiny_run, synth_data, tmp_path_factory):
    """A prediction result (all 12 species, netCDF and zarr) and a performance result."""
    folder, run = tmp_path_factory.mktemp("map"), tiny_run
    common = ["--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--split", "all", "--device", "cpu", "--quiet"]
    paths = {"prediction": folder / "pred.nc", "zarr": folder / "pred.zarr", "performance": folder / "perf.nc"}
    assert main(["shapley", *common, "--target", "all", "--out", str(paths["prediction"])]) == 0
    assert main(["shapley", *common, "--target", "richness", "--out", str(paths["zarr"])]) == 0
    assert main(["shapley", *common, "--value", "performance", "--out", str(paths["performance"])]) == 0
    return paths


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("miam-explain: error: ") and "\n" not in err, err
    return err


def test_cli_maps_a_prediction_result(results, tmp_path, capsys):
    from miam_explain.explain.result import open_result, select_values

    ds = open_result(results["prediction"])
    species = str(ds["target"].values[3])
    out = tmp_path / "nir.png"
    assert main(["map", str(results["prediction"]), "--player", "nir", "--target", species, "--dpi", "60", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) > 150
        assert "nir" in image.info["Description"]

    # red+nir is the sum of the two players, per site, and keeps the sites' coords.
    joint = select_values(ds, player="red+nir", target=species)
    expected = ds["shapley"].sel(player=["red", "nir"]).isel(target=3).sum("player")
    np.testing.assert_allclose(joint.values, expected.values)
    np.testing.assert_allclose(joint["lat"].values, ds["lat"].values)
    assert joint.sizes["site"] == ds.sizes["site"] == 240
    fig = site_map(joint, blocks=1.0, basemap="none")
    frame = pd.DataFrame({"lat": ds["lat"].values, "lon": ds["lon"].values, "value": expected.values})
    assert len(data_collection(fig).get_array()) == frame.groupby([np.floor(frame["lat"]), np.floor(frame["lon"])]).ngroups

    # A zarr result with one target needs no --target; block means and an explicit base-map switch.
    out2 = tmp_path / "blocks.png"
    assert main(["map", str(results["zarr"]), "--player", "red+nir", "--blocks", "1", "--basemap", "none", "--out", str(out2)]) == 0
    assert out2.stat().st_size > 0
    # An existing output is replaced only with --overwrite.
    assert main(["map", str(results["zarr"]), "--player", "red", "--out", str(out2)]) == 2
    assert "--overwrite" in one_error_line(capsys)
    before = out2.read_bytes()
    assert main(["map", str(results["zarr"]), "--player", "red", "--out", str(out2), "--overwrite"]) == 0
    assert out2.read_bytes() != before


def test_cli_reports_morans_i_and_draws_the_values_against_a_covariate(results, tmp_path, capsys):
    import json

    from miam_explain.explain.result import open_result, select_values
    from miam_explain.spatial import moran

    ds = open_result(results["prediction"])
    species = str(ds["target"].values[2])
    values = select_values(ds, player="red+nir", target=species)
    expected = moran(values, k=5, n_permutations=199, seed=3)

    out = tmp_path / "gradient.png"
    args = ["map", str(results["prediction"]), "--player", "red+nir", "--target", species, "--basemap", "none", "--dpi", "50"]
    assert main([*args, "--against", "Bio1", "--neighbours", "5", "--permutations", "199", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert expected.summary() in printed and f"wrote {out}" in printed
    with Image.open(out) as image:
        assert json.loads(image.info["Moran"]) == expected.to_dict()
        assert json.loads(image.info["Description"])["against"] == "Bio1"
        wide = image.size
    # Without --against: the map alone (narrower), Moran's I with the defaults (8 neighbours, 999 permutations).
    alone = tmp_path / "alone.png"
    assert main([*args, "--out", str(alone)]) == 0
    with Image.open(alone) as image:
        assert json.loads(image.info["Moran"]) == moran(values).to_dict()
        assert image.size[0] < wide[0]
    # A coordinate of the result needs no dataset.
    assert main([*args, "--against", "lat", "--data", str(tmp_path / "nowhere.zarr"), "--out", str(tmp_path / "lat.png")]) == 0

    # Constant values: no Moran's I (said so), but the map is still drawn.
    from miam_explain.explain import save_result

    flat = ds.copy(deep=True)
    flat["shapley"].loc[{"player": "red"}] = 0.25
    save_result(flat, tmp_path / "flat.nc")
    capsys.readouterr()
    assert main(["map", str(tmp_path / "flat.nc"), "--player", "red", "--target", species, "--basemap", "none", "--out", str(tmp_path / "flat.png")]) == 0
    assert "Moran's I not computed" in capsys.readouterr().out
    with Image.open(tmp_path / "flat.png") as image:
        assert "constant" in json.loads(image.info["Moran"])["error"]


def test_cli_gradient_and_moran_errors_are_one_line(results, tmp_path, capsys):
    pred, out = str(results["prediction"]), str(tmp_path / "map.png")
    species = open_result_targets(results["prediction"])[0]
    base = ["map", pred, "--player", "nir", "--target", species, "--basemap", "none", "--out", out]

    assert main([*base, "--against", "Bio99"]) == 2
    err = one_error_line(capsys)
    assert "unknown covariate 'Bio99'" in err and "Bio1" in err and "lat" in err
    assert main([*base, "--against", "Bio1", "--data", str(tmp_path / "missing.zarr")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main([*base, "--neighbours", "0"]) == 2
    assert "neighbours" in one_error_line(capsys)
    assert main([*base, "--permutations", "9"]) == 2
    assert "permutations" in one_error_line(capsys)
    assert not (tmp_path / "map.png").exists()


def test_cli_errors_are_one_line(results, tmp_path, capsys):
    out = str(tmp_path / "map.png")
    pred, perf = str(results["prediction"]), str(results["performance"])
    species = open_result_targets(results["prediction"])[0]

    assert main(["map", pred, "--player", "swir", "--target", "richness", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "unknown player 'swir'" in err and all(band in err for band in ("red", "green", "blue", "nir"))

    assert main(["map", pred, "--player", "nir", "--out", out]) == 2
    assert "12 targets; pick one with --target" in one_error_line(capsys)

    assert main(["map", pred, "--player", "nir", "--target", "no-such-species", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "unknown target 'no-such-species'" in err and species in err

    assert main(["map", perf, "--player", "nir", "--out", out]) == 2
    assert "prediction-game result" in one_error_line(capsys)

    assert main(["map", str(tmp_path / "missing.nc"), "--player", "nir", "--out", out]) == 2
    assert "does not exist" in one_error_line(capsys)

    not_a_result = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(not_a_result, engine="h5netcdf")
    assert main(["map", str(not_a_result), "--player", "nir", "--out", out]) == 2
    assert "not a miam-explain Shapley result" in one_error_line(capsys)

    assert main(["map", pred, "--player", "nir", "--target", species, "--basemap", str(tmp_path / "none.shp"), "--out", out]) == 2
    assert "base map" in one_error_line(capsys)

    assert main(["map", pred, "--player", "nir", "--out", str(tmp_path / "map.jpg")]) == 2
    assert ".png" in one_error_line(capsys)

    assert main(["map", pred, "--player", "nir", "--target", species, "--blocks", "-1", "--out", out]) == 2
    assert "blocks must be" in one_error_line(capsys)
    assert not (tmp_path / "map.png").exists()


def open_result_targets(path) -> list[str]:
    from miam_explain.explain.result import open_result
    from miam_explain.data.format import text_values

    return text_values(open_result(path)["target"].values).tolist()
