"""The GeoPlant/GeoLifeCLEF reader on the real GLC24 and GLC25 sample files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image

from miam_explain import open_dataset
from miam_explain.data.format import text_values
from miam_explain.data.glc import detect_layout, prepare_geoplant


@pytest.fixture(scope="module", params=["glc25", "glc24"])
def prepared(request, geoplant_fixtures, tmp_path_factory):
    raw = geoplant_fixtures / f"{request.param}_pre_extracted"
    out = tmp_path_factory.mktemp(request.param) / "data.zarr"
    report = prepare_geoplant(raw, out, progress=False, chunk_size=16)
    return request.param, raw, open_dataset(out), report


def _site(ds, survey_id: int):
    ids = ds["site_id"].values
    assert survey_id in ids, f"survey {survey_id} missing from the dataset"
    return int(np.flatnonzero(ids == survey_id)[0])


def test_layout_detected(geoplant_fixtures):
    assert detect_layout(geoplant_fixtures / "glc25_pre_extracted") == "glc25"
    assert detect_layout(geoplant_fixtures / "glc24_pre_extracted") == "glc24"


def test_cubes_land_in_the_right_dims(prepared):
    layout, raw, ds, _ = prepared
    for cube_path in raw.rglob("*_cube.pt"):
        survey_id = int(cube_path.name.split("_")[-2])
        i = _site(ds, survey_id)
        cube = torch.load(cube_path, weights_only=True).numpy()
        if "bioclimatic" in cube_path.name:
            assert cube.shape == (4, 19, 12)
            got = ds["x_climate"].isel(site=i).transpose("climate_channel", "climate_year", "climate_step").values
            np.testing.assert_array_equal(got, cube)
            assert ds["climate_year"].values[0] == 2000 and ds["climate_year"].values[-1] == 2018
        else:
            assert cube.shape == (6, 4, 21)  # band x quarter x year on disk
            got = ds["x_landsat"].isel(site=i).values  # channel x year x quarter in the dataset
            assert got.shape == (6, 21, 4)
            np.testing.assert_array_equal(got, np.transpose(cube, (0, 2, 1)))
            # one concrete cell, to pin the transpose: band nir, year 2005, quarter 3
            assert got[3, 5, 2] == cube[3, 2, 5]


def test_patch_bands_keep_their_order(prepared):
    layout, raw, ds, _ = prepared
    assert list(text_values(ds["sentinel2_band"].values)) == ["red", "green", "blue", "nir"]
    if layout == "glc25":
        for tif in raw.rglob("*.tiff"):
            i = _site(ds, int(tif.stem))
            array = tifffile.imread(tif)  # (64, 64, 4), bands red, green, blue, nir
            got = ds["x_sentinel2"].isel(site=i).values
            assert got.shape == (4, 64, 64)
            valid = array != -1  # GDAL_NODATA of these files
            for b in range(4):
                np.testing.assert_array_equal(got[b][valid[..., b]], array[..., b][valid[..., b]].astype(np.float32))
                assert np.isnan(got[b][~valid[..., b]]).all()
    else:
        for rgb_path in raw.rglob("*rgb/*/*/*.jpeg"):
            sid = int(rgb_path.stem)
            nir_path = next(raw.rglob(f"*nir/*/*/{sid}.jpeg"))
            i = _site(ds, sid)
            rgb = np.asarray(Image.open(rgb_path).convert("RGB"), dtype=np.float32)
            nir = np.asarray(Image.open(nir_path).convert("L"), dtype=np.float32)
            got = ds["x_sentinel2"].isel(site=i).values
            assert got.shape == (4, 128, 128)
            np.testing.assert_array_equal(got[0], rgb[..., 0])
            np.testing.assert_array_equal(got[2], rgb[..., 2])
            np.testing.assert_array_equal(got[3], nir)


def test_surveys_without_files_are_nan(prepared):
    layout, raw, ds, report = prepared
    with_files = {int(p.name.split("_")[-2]) for p in raw.rglob("*_cube.pt")}
    without = [i for i, s in enumerate(ds["site_id"].values) if s not in with_files]
    assert len(without) > 50
    for name in ("x_climate", "x_landsat", "x_sentinel2"):
        values = ds[name].isel(site=without).values
        assert np.isnan(values).all()
    assert report.missing["climate"] == len(without)


def test_labels_are_the_metadata_multi_hot(prepared):
    layout, raw, ds, _ = prepared
    meta = pd.read_csv(raw / "metadata.csv")
    assert ds["labels"].dims == ("site", "species")
    species = ds["species"].values
    labels = ds["labels"].values
    expected = set(zip(meta["surveyId"].astype(int), meta["speciesId"].astype(int)))
    got = {(int(ds["site_id"].values[i]), int(species[k])) for i, k in zip(*np.nonzero(labels))}
    assert got == expected
    assert ds.sizes["site"] == meta["surveyId"].nunique()


def test_coordinates_and_splits(prepared):
    _, raw, ds, report = prepared
    meta = pd.read_csv(raw / "metadata.csv").groupby("surveyId").first()
    lat = pd.Series(ds["lat"].values, index=ds["site_id"].values)
    np.testing.assert_allclose(lat[meta.index].values, meta["lat"].values)
    splits = set(text_values(ds["split"].values))
    assert splits <= {"train", "val", "test"} and "train" in splits
    assert sum(report.split_counts.values()) == ds.sizes["site"]
