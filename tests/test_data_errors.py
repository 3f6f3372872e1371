"""Bad input to the data commands: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.format import select_split
from miam_explain.data.glc import prepare_geoplant, read_cube
from miam_explain.errors import DataError


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("miam-explain: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _tiny_raw(root, *, n: int = 12):
    """A minimal GLC25-like raw folder: metadata plus one climate cube per survey."""
    root.mkdir()
    rng = np.random.default_rng(0)
    ids = np.arange(1000, 1000 + n)
    rows = [
        {"lon": 5 + rng.uniform(0, 4), "lat": 45 + rng.uniform(0, 4), "speciesId": float(k), "surveyId": sid}
        for sid in ids
        for k in rng.choice(5, 2, replace=False)
    ]
    pd.DataFrame(rows).to_csv(root / "GLC25_PA_metadata_train.csv", index=False)
    cubes = root / "BioclimTimeSeries" / "cubes" / "PA-train"
    cubes.mkdir(parents=True)
    for sid in ids:
        torch.save(torch.rand(4, 19, 12), cubes / f"GLC25-PA-train-bioclimatic_monthly_{sid}_cube.pt")
    (root / "SatelitePatches").mkdir()
    return root, ids


def test_missing_folder(tmp_path, capsys):
    code, err = _run(capsys, "data", "prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d.zarr"))
    _one_line_error(code, err, "does not exist")
    assert not (tmp_path / "d.zarr").exists()


def test_metadata_without_survey_id(tmp_path, capsys):
    raw, _ = _tiny_raw(tmp_path / "raw")
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv").drop(columns="surveyId")
    meta.to_csv(raw / "GLC25_PA_metadata_train.csv", index=False)
    code, err = _run(capsys, "data", "prepare", str(raw), "--out", str(tmp_path / "d.zarr"))
    _one_line_error(code, err, "surveyId")
    assert not (tmp_path / "d.zarr").exists()


def test_tabular_csv_without_survey_id(tmp_path, capsys):
    raw, ids = _tiny_raw(tmp_path / "raw")
    env = raw / "EnvironmentalValues" / "Elevation"
    env.mkdir(parents=True)
    pd.DataFrame({"id": ids, "Elevation": 1.0}).to_csv(env / "GLC25-PA-train-elevation.csv", index=False)
    code, err = _run(capsys, "data", "prepare", str(raw), "--out", str(tmp_path / "d.zarr"))
    _one_line_error(code, err, "surveyId", "GLC25-PA-train-elevation.csv")


def test_corrupt_cube_becomes_nan_and_is_counted(tmp_path, capsys):
    raw, ids = _tiny_raw(tmp_path / "raw")
    bad = next(raw.rglob(f"*_{ids[3]}_cube.pt"))
    bad.write_bytes(b"this is not a torch file")
    out = tmp_path / "d.zarr"
    report = prepare_geoplant(raw, out, progress=False)
    assert report.unreadable["climate"] == 1
    ds = open_dataset(out)
    i = int(np.flatnonzero(ds["site_id"].values == ids[3])[0])
    assert np.isnan(ds["x_climate"].isel(site=i).values).all()
    assert np.isfinite(ds["x_climate"].isel(site=(i + 1) % len(ids)).values).all()
    # --strict turns the same file into a one-line error, and writes nothing
    code, err = _run(capsys, "data", "prepare", str(raw), "--out", str(tmp_path / "e.zarr"), "--strict", "--quiet")
    _one_line_error(code, err, str(ids[3]), "corrupt")
    assert not (tmp_path / "e.zarr").exists()


def test_truncated_tiff_becomes_nan_and_is_counted(tmp_path, geoplant_fixtures, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(geoplant_fixtures / "glc25_pre_extracted", raw)  # a temporary copy, outside the project
    tiff = next(raw.rglob("1027998.tiff"))
    data = tiff.read_bytes()
    tiff.chmod(0o644)
    tiff.write_bytes(data[: len(data) // 3])
    assert main(["data", "prepare", str(raw), "--out", str(tmp_path / "d.zarr"), "--quiet"]) == 0
    assert "sentinel2: 95 files missing, 1 unreadable -> NaN" in capsys.readouterr().out  # 97 surveys, 2 patches
    ds = open_dataset(tmp_path / "d.zarr")
    i = int(np.flatnonzero(ds["site_id"].values == 1027998)[0])
    assert np.isnan(ds["x_sentinel2"].isel(site=i).values).all()
    # the other survey's patch is still read
    j = int(np.flatnonzero(ds["site_id"].values == 5000108)[0])
    assert np.isfinite(ds["x_sentinel2"].isel(site=j).values).any()
    assert ds.attrs["reader_unreadable"] == '{"sentinel2": 1}'


def test_pickle_payload_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("payload executed",))

    path = tmp_path / "GLC25-PA-train-bioclimatic_monthly_1_cube.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(DataError, match="corrupt or not a tensor"):
        read_cube(path, (4, 19, 12))


def test_output_exists_is_refused_unless_overwrite(tmp_path, capsys):
    raw, _ = _tiny_raw(tmp_path / "raw")
    out = tmp_path / "d.zarr"
    assert _run(capsys, "data", "prepare", str(raw), "--out", str(out), "--quiet")[0] == 0
    stamp = (out / ".zattrs").read_text()
    code, err = _run(capsys, "data", "prepare", str(raw), "--out", str(out), "--quiet")
    _one_line_error(code, err, "already exists", "--overwrite")
    assert (out / ".zattrs").read_text() == stamp  # untouched
    assert _run(capsys, "data", "prepare", str(raw), "--out", str(out), "--quiet", "--overwrite")[0] == 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary folders left behind


def test_empty_split(tmp_path):
    raw, _ = _tiny_raw(tmp_path / "raw", n=12)
    out = tmp_path / "d.zarr"
    prepare_geoplant(raw, out, progress=False, val=0.0, test=0.2)
    ds = open_dataset(out)
    with pytest.raises(DataError, match="split 'val' has no sites"):
        select_split(ds, "val")
    with pytest.raises(DataError, match="unknown split"):
        select_split(ds, "validation")
    assert select_split(ds, "train").sizes["site"] > 0


def test_metadata_without_labelled_surveys(tmp_path, capsys):
    raw, _ = _tiny_raw(tmp_path / "raw")
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv").drop(columns="speciesId")
    meta.to_csv(raw / "GLC25_PA_metadata_train.csv", index=False)
    code, err = _run(capsys, "data", "prepare", str(raw), "--out", str(tmp_path / "d.zarr"))
    _one_line_error(code, err, "speciesId")


@pytest.mark.parametrize("kind", ["text", "foreign_zarr", "missing"])
def test_open_dataset_refuses_what_is_not_consolidated(tmp_path, kind, capsys):
    path = tmp_path / ("x.nc" if kind != "foreign_zarr" else "x.zarr")
    if kind == "text":
        path.write_text("hello")
    elif kind == "foreign_zarr":
        xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(path, zarr_format=2)
    with pytest.raises(DataError) as info:
        open_dataset(path)
    message = str(info.value)
    assert "\n" not in message
    assert "miam-explain data prepare" in message
    code, err = _run(capsys, "data", "inspect", str(path))
    _one_line_error(code, err)


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from miam_explain.files import atomic_path

    with atomic_path(tmp_path / "f.bin") as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # a writer that creates a private file
        os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
