"""Bring your own data (``data from-table``), and plain strings from ``open_dataset``.

The real table is elapid's ``ariolimax.gpkg``: 6,585 presence/background points of a banana slug,
in UTM zone 10N (EPSG:32610), with six covariates.
"""

from __future__ import annotations

import importlib.resources
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data import from_table
from miam_explain.data.table import sample_cube

COVARIATES = ["SurfaceTempMean", "SurfaceTempStdv", "LAIMean", "LAIStdv", "CloudCoverMean", "CloudCoverStdv"]


@pytest.fixture(scope="module")
def ariolimax():
    """elapid's GeoPackage (a dev dependency) and its rows read by geopandas."""
    pytest.importorskip("elapid")
    import geopandas as gpd

    path = importlib.resources.files("elapid") / "data" / "ariolimax.gpkg"
    return path, gpd.read_file(path)


def occurrences(seed: int = 0, n_sites: int = 80, species=tuple(range(101, 109))) -> pd.DataFrame:
    """A long-format table like GeoPlant's metadata: one row per (survey, present species), a few empty surveys."""
    rng = np.random.default_rng(seed)
    survey = rng.choice(np.arange(1000, 9000), n_sites, replace=False)
    lon, lat = rng.uniform(-5, 8, n_sites), rng.uniform(42, 51, n_sites)
    elevation, region = rng.uniform(0, 2000, n_sites).round(1), rng.choice(["ALP", "ATL", "MED"], n_sites)
    rows = []
    for i in range(n_sites):
        present = rng.choice(species, rng.integers(0, 4), replace=False).tolist() or [None]  # None: nothing found
        rows += [{"surveyId": survey[i], "lon": lon[i], "lat": lat[i], "elevation": elevation[i], "region": region[i],
                  "speciesId": s} for s in present]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def species_sets(ds: xr.Dataset) -> dict[int, set]:
    labels = ds["labels"].values
    species = ds["species"].values
    return {int(s): set(species[labels[i] == 1].tolist()) for i, s in enumerate(ds["site_id"].values)}


# ----------------------------------------------------------------------------- the GeoPackage
def test_projected_geopackage_is_reprojected_to_lon_lat(ariolimax, tmp_path):
    path, frame = ariolimax
    report = from_table(path, tmp_path / "slug.zarr", presence_column="presence")
    ds = open_dataset(tmp_path / "slug.zarr")
    assert report.coordinates == "geometry, EPSG:32610 -> EPSG:4326" and ds.attrs["layout"] == "table"
    np.testing.assert_array_equal(ds["site_id"].values, np.arange(len(frame)))  # one site per row, in order
    rows = [0, 1234, 4000, len(frame) - 1]
    expected = frame.geometry.iloc[rows].to_crs(4326)
    np.testing.assert_allclose(ds["lon"].values[rows], expected.x.to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds["lat"].values[rows], expected.y.to_numpy(), rtol=0, atol=1e-9)
    assert 32 < ds["lat"].min() and ds["lat"].max() < 43 and -125 < ds["lon"].min() and ds["lon"].max() < -114  # California
    assert ds["species"].values.tolist() == ["ariolimax"]  # named after the file
    np.testing.assert_array_equal(ds["labels"].values[:, 0], frame["presence"].to_numpy())
    assert ds["tabular_variable"].values.tolist() == COVARIATES  # every other numeric column
    np.testing.assert_array_equal(ds["x_tabular"].values, frame[COVARIATES].to_numpy(np.float32))
    fractions = pd.Series(ds["split"].values).value_counts(normalize=True)
    np.testing.assert_allclose(fractions[["train", "val", "test"]], [0.7, 0.15, 0.15], atol=0.05)


def test_geoparquet_and_plain_parquet_give_the_same_dataset_as_the_geopackage(ariolimax, tmp_path):
    """The same real table saved as GeoParquet (geometry and CRS kept) and as plain Parquet with lon/lat columns."""
    pytest.importorskip("pyarrow")
    path, frame = ariolimax
    from_table(path, tmp_path / "gpkg.zarr", presence_column="presence", species_name="ariolimax")
    frame.to_parquet(tmp_path / "slug.parquet")
    from_table(tmp_path / "slug.parquet", tmp_path / "geoparquet.zarr", presence_column="presence", species_name="ariolimax")
    lonlat = frame.to_crs(4326)
    plain = pd.DataFrame(lonlat.drop(columns="geometry")).assign(lon=lonlat.geometry.x, lat=lonlat.geometry.y)
    plain.to_parquet(tmp_path / "plain.parquet")
    from_table(tmp_path / "plain.parquet", tmp_path / "plain.zarr", presence_column="presence", species_name="ariolimax")
    reference = open_dataset(tmp_path / "gpkg.zarr")
    for name in ("geoparquet.zarr", "plain.zarr"):
        ds = open_dataset(tmp_path / name)
        for var in ("labels", "x_tabular", "site_id"):
            np.testing.assert_array_equal(ds[var].values, reference[var].values, err_msg=f"{name}: {var}")
        np.testing.assert_allclose(ds["lon"].values, reference["lon"].values, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ds["lat"].values, reference["lat"].values, rtol=0, atol=1e-9)
        assert ds["species"].values.tolist() == ["ariolimax"]


@pytest.mark.slow
def test_table_dataset_trains_and_explains(ariolimax, tmp_path, capsys):
    """A subsample, still in EPSG:32610, through the CLI: from-table -> train (tiny) -> shapley over the variables."""
    from tiny import TINY

    from miam_explain.training.config import RunConfig
    from miam_explain.training.trainer import train

    _, frame = ariolimax
    frame.iloc[::5].to_file(tmp_path / "slug.gpkg", engine="pyogrio")
    data, run, result = tmp_path / "slug.zarr", tmp_path / "run", tmp_path / "shapley.nc"
    command = ["data", "from-table", str(tmp_path / "slug.gpkg"), "--out", str(data), "--presence-column", "presence",
               "--species-name", "Ariolimax buttoni"]
    assert main(command) == 0  # spatial blocks: here the test blocks hold no presence, and the summary says so
    printed = capsys.readouterr().out
    assert "EPSG:32610 -> EPSG:4326" in printed and "warning: species without presence in a split (1 from test)" in printed
    assert main([*command, "--split", "stratified", "--overwrite"]) == 0
    assert "warning" not in capsys.readouterr().out
    train(data, RunConfig.from_dict(TINY), run, progress=False)
    assert main(["shapley", "--model", str(run), "--data", str(data), "--group", "variables", "--value", "performance",
                 "--device", "cpu", "--quiet", "--out", str(result)]) == 0
    with xr.open_dataset(result, engine="h5netcdf") as res:
        assert res["player"].values.tolist() == COVARIATES and res.attrs["method"] == "exact"
        np.testing.assert_allclose(float(res["shapley"].sum()), float(res["v_full"] - res["v_empty"]), atol=1e-6)
        assert float(res["v_full"]) > 0.6  # the covariates do predict the slug


# ----------------------------------------------------------------------------- long and wide tables
@pytest.mark.parametrize("names", [False, True], ids=["species-ids", "species-names"])
def test_long_format_csv_gives_the_species_of_each_site(tmp_path, names):
    table = occurrences()
    if names:
        table["speciesId"] = table["speciesId"].map(lambda s: None if pd.isna(s) else f"Carabus sp. {int(s)}")
    table.to_csv(tmp_path / "occurrences.csv", index=False)
    out = tmp_path / "long.zarr"
    assert main(["data", "from-table", str(tmp_path / "occurrences.csv"), "--out", str(out), "--site-column",
                 "surveyId", "--species-column", "speciesId", "--split", "stratified"]) == 0
    ds = open_dataset(out)
    expected = table.groupby("surveyId")["speciesId"].apply(lambda s: set(s.dropna().tolist()))
    assert species_sets(ds) == expected.to_dict()
    per_site = table.drop_duplicates("surveyId").set_index("surveyId").loc[ds["site_id"].values]
    np.testing.assert_array_equal(ds["lat"].values, per_site["lat"].to_numpy())
    assert ds["tabular_variable"].values.tolist() == ["elevation"]  # region (text) is left out
    np.testing.assert_array_equal(ds["x_tabular"].values[:, 0], per_site["elevation"].to_numpy(np.float32))
    assert ds["species"].dtype == (object if names else np.int64)


def test_wide_table_gives_the_species_of_each_site(tmp_path):
    rng = np.random.default_rng(1)
    n, species = 90, ["Quercus robur", "Fagus sylvatica", "Pinus sylvestris"]
    table = pd.DataFrame({"plot": [f"P{i:03d}" for i in range(n)], "latitude": rng.uniform(44, 48, n),
                          "longitude": rng.uniform(1, 7, n), "slope": rng.normal(size=n), "aspect": rng.normal(size=n)})
    for name in species:
        table[name] = rng.integers(0, 2, n)
    table.to_csv(tmp_path / "plots.csv", index=False)
    out = tmp_path / "wide.nc"
    assert main(["data", "from-table", str(tmp_path / "plots.csv"), "--out", str(out), "--site-column", "plot",
                 "--species-columns", ",".join(species), "--covariates", "slope", "--block-size-deg", "0.5"]) == 0
    ds = open_dataset(out)
    assert ds["species"].values.tolist() == species and ds["tabular_variable"].values.tolist() == ["slope"]
    assert ds["site_key"].values.tolist() == table["plot"].tolist()  # text ids are kept beside the integer site_id
    expected = {i: {s for s in species if table.loc[i, s] == 1} for i in range(n)}
    assert species_sets(ds) == expected
    np.testing.assert_array_equal(ds["labels"].values, table[species].to_numpy())


def test_given_split_rows_without_site_ids_and_min_presences(tmp_path):
    table = occurrences(seed=3, n_sites=120).drop(columns="surveyId")  # long format: a site per coordinate pair
    sites = table.drop_duplicates(["lon", "lat"])[["lon", "lat"]].reset_index(drop=True)
    sites["split"] = np.where(np.arange(len(sites)) % 5 == 0, "Test", "train")  # no val: drawn from train blocks
    table = table.merge(sites, on=["lon", "lat"])
    report = from_table(table, tmp_path / "given.zarr", species_column="speciesId", split="given", min_presences=12)
    ds = open_dataset(tmp_path / "given.zarr")
    assert ds.sizes["site"] == len(sites) and report.split_counts["val"] > 0
    by_site = dict(zip(zip(sites["lon"], sites["lat"]), sites["split"].str.lower()))
    given = np.array([by_site[key] for key in zip(ds["lon"].values, ds["lat"].values)])
    split = ds["split"].values.astype(str)
    assert (split[given == "test"] == "test").all() and set(split[given == "train"]) == {"train", "val"}
    counts = table.dropna(subset="speciesId").groupby("speciesId")["lon"].size()
    assert set(ds["species"].values.tolist()) <= set(counts.index[counts >= 12].astype(int))
    assert ds["labels"].values.sum(axis=0).min() >= 12 and report.species_note.startswith("kept")


# ----------------------------------------------------------------------------- cubes
@pytest.mark.parametrize("store", ["nc", "zarr"])
def test_cube_is_sampled_at_the_nearest_cell(tmp_path, store):
    rng = np.random.default_rng(2)
    if store == "nc":  # monthly, latitudes north to south (as many NetCDF files), lon -180..180
        time, lat, lon = pd.date_range("2000-01-01", periods=36, freq="MS"), np.arange(48.0, 43.9, -0.5), np.arange(0, 5.1, 0.5)
    else:  # quarterly, longitudes 0..360
        time, lat, lon = pd.date_range("2000-01-01", periods=12, freq="QS"), np.arange(44.0, 48.1, 0.5), np.arange(350, 359.6, 0.5)
    shape = (len(time), len(lat), len(lon))
    tas = rng.normal(10, 5, shape)
    tas[0, 0, :] = np.nan  # missing values stay NaN
    cube = xr.Dataset({"tas": (("time", "lat", "lon"), tas), "pr": (("time", "lat", "lon"), rng.gamma(2, 30, shape))},
                      coords={"time": time, "lat": lat, "lon": lon})
    path = tmp_path / f"cube.{store}"
    cube.to_netcdf(path, engine="h5netcdf") if store == "nc" else cube.to_zarr(path, zarr_format=2)
    n = 50
    site_lon = rng.uniform(0.1, 4.9, n) if store == "nc" else rng.uniform(-9.8, -0.6, n)
    table = pd.DataFrame({"lon": site_lon, "lat": rng.uniform(44.1, 47.9, n), "presence": rng.integers(0, 2, n)})
    from_table(table, tmp_path / "data.zarr", presence_column="presence", cubes={"climate": path}, split="stratified")
    ds = open_dataset(tmp_path / "data.zarr")
    x = ds["x_climate"]
    assert x.dims == ("site", "climate_channel", "climate_year", "climate_step") and "x_tabular" not in ds
    assert x.attrs["step_unit"] == ("month" if store == "nc" else "quarter")
    channels = x["climate_channel"].values.tolist()  # the cube's variable order (zarr lists them by name)
    assert sorted(channels) == ["pr", "tas"] and x["climate_year"].values.tolist() == [2000, 2001, 2002]
    with (xr.open_dataset(path, engine="h5netcdf") if store == "nc" else xr.open_zarr(path)) as original:
        nearest = original.sel(lat=xr.DataArray(table["lat"], dims="site"),
                               lon=xr.DataArray(table["lon"] % 360, dims="site"), method="nearest")
        for c, name in enumerate(channels):
            expected = nearest[name].transpose("site", "time").values.reshape(n, 3, -1).astype(np.float32)
            np.testing.assert_array_equal(x.values[:, c], expected)
    x_only = sample_cube(cube, table["lon"].to_numpy() % 360, table["lat"].to_numpy(), name="climate")
    np.testing.assert_array_equal(x_only.sel(climate_channel=channels).values, x.values)


# ----------------------------------------------------------------------------- bad input: one line each
def _table(tmp_path, change=None, suffix=".csv"):
    table = occurrences(n_sites=30)
    if change is not None:
        table = change(table)
    path = tmp_path / f"occurrences{suffix}"
    table.to_csv(path, index=False)
    return path


def _conflict(t):
    t.loc[t.index[t["surveyId"] == t["surveyId"].iloc[0]][:1], "elevation"] = -1.0
    return t.sort_values("surveyId")


def _off_grid_cube(tmp_path):
    cube = xr.Dataset({"tas": (("time", "lat", "lon"), np.zeros((12, 3, 3)))},
                      coords={"time": pd.date_range("2000-01-01", periods=12, freq="MS"), "lat": [0.0, 1.0, 2.0],
                              "lon": [100.0, 101.0, 102.0]})
    cube.to_netcdf(tmp_path / "asia.nc", engine="h5netcdf")
    return ["--cube", f"climate={tmp_path / 'asia.nc'}"]


def _degrees_as_metres(tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"presence": [1, 0]}, geometry=gpd.points_from_xy([432272.0, 643607.0], [4348049.0, 4427302.0]),
                             crs=4326)  # projected numbers labelled as lon/lat
    frame.to_file(tmp_path / "wrong.gpkg", engine="pyogrio")
    return tmp_path / "wrong.gpkg"


LONG = ["--site-column", "surveyId", "--species-column", "speciesId"]
BAD = {
    "missing column": (lambda p: [str(_table(p)), "--site-column", "surveyid", "--species-column", "speciesId"],
                       r"has no column 'surveyid' \(--site-column\); did you mean 'surveyId'\? available columns: "),
    "text covariate": (lambda p: [str(_table(p)), *LONG, "--covariates", "elevation,region"],
                       r"covariate column 'region' is not numeric"),
    "latitude out of range": (lambda p: [str(_table(p, lambda t: t.assign(lat=t["lat"] * 1e5))), *LONG],
                              r"lat of data row \d+ is .* outside \[-90, 90\] degrees"),
    "swapped coordinates": (lambda p: [str(_table(p, lambda t: t.assign(lon=t["lon"] + 110))), *LONG,
                                       "--lat-column", "lon", "--lon-column", "lat"],
                            r"outside \[-90, 90\] degrees .*swapped"),
    "not lon/lat in its CRS": (lambda p: [str(_degrees_as_metres(p)), "--presence-column", "presence"],
                               r"lat of data row 1 is 4348049.0, outside \[-90, 90\] degrees .*do not fit the file's CRS"),
    "conflicting covariates": (lambda p: [str(_table(p, _conflict)), *LONG],
                               r"rows of site \d+ disagree on 'elevation'"),
    "cube off the sites": (lambda p: [str(_table(p)), *LONG, *_off_grid_cube(p)],
                           r"cube 'climate' \(asia.nc\) does not cover 30 of 30 sites"),
    "NaN coordinates": (lambda p: [str(_table(p, lambda t: t.assign(lon=t["lon"].where(t.index != 3)))), *LONG],
                        r"data row 4 has no coordinates \(NaN lat/lon"),
    "empty table": (lambda p: [str(_table(p, lambda t: t.iloc[:0])), *LONG], r"has no rows"),
    "no species column": (lambda p: [str(_table(p)), "--site-column", "surveyId"], r"no species column given"),
    "not 0/1": (lambda p: [str(_table(p, lambda t: t.assign(n=2))), "--presence-column", "n"],
                r"0/1 column 'n' holds 2"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_line(case, tmp_path, one_line_error):
    make_args, message = BAD[case]
    out = tmp_path / "out.zarr"
    assert main(["data", "from-table", *make_args(tmp_path), "--out", str(out)]) == 2
    line = one_line_error()
    assert re.search(message, line), line
    assert not out.exists()


def test_existing_output_is_refused(tmp_path, one_line_error):
    (tmp_path / "out.zarr").mkdir()
    assert main(["data", "from-table", str(_table(tmp_path)), *LONG, "--out", str(tmp_path / "out.zarr")]) == 2
    assert "already exists" in one_line_error()


# ----------------------------------------------------------------------------- plain strings (issue 14, item 4)
def test_string_coordinates_load_as_plain_strings(synth_data):
    ds = open_dataset(synth_data)
    split = ds["split"].values.astype(str)  # numpy StringDType would raise TypeError here
    assert split.dtype.kind == "U" and set(split) == {"train", "val", "test"}
    text = [name for name, var in ds.variables.items() if var.dtype.kind in "OTU"]
    assert {"split", "region", "sentinel2_band", "tabular_variable"} <= set(text)
    for name in text:
        assert ds[name].dtype == object and all(type(v) is str for v in ds[name].values.ravel()), name
    assert pd.Series(ds["split"].values).value_counts().sum() == ds.sizes["site"]
