"""Loading never runs code, and the raw-data reader never reads outside the data folder.

* Checkpoints are safetensors (no pickle at all); GeoPlant ``.pt`` cubes and ``.pt``
  embeddings go through ``torch.load(..., weights_only=True)``; ``.npz`` through
  ``np.load(..., allow_pickle=False)``; a zarr store naming a pickle codec is refused
  before any chunk is decoded. Each test plants a pickle whose payload would create a
  marker file, shows the file is refused with a project error, and that the marker
  never appears.
* The reader finds files by walking the raw folder and matching names; it builds no
  path from metadata, and skips links that point outside the folder.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from miam_explain import load_model, open_dataset
from miam_explain.cli import main
from miam_explain.data.embeddings import prepare_embeddings, read_embedding_file
from miam_explain.data.glc import prepare_geoplant, read_cube
from miam_explain.errors import CheckpointError, DataError


class Payload:
    """Unpickling this creates ``marker`` (``open(marker, "w")``): proof that code ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("miam-explain") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _tiny_raw(root, ids=range(1000, 1006)):
    """A GLC25-like raw folder: metadata plus one climate cube per survey."""
    rng = np.random.default_rng(0)
    rows = [
        {"lon": 5 + rng.uniform(0, 3), "lat": 45 + rng.uniform(0, 3), "speciesId": float(k), "surveyId": sid}
        for sid in ids
        for k in rng.choice(4, 2, replace=False)
    ]
    root.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "GLC25_PA_metadata_train.csv", index=False)
    cubes = root / "BioclimTimeSeries" / "cubes" / "PA-train"
    cubes.mkdir(parents=True)
    for sid in ids:
        torch.save(torch.rand(4, 19, 12), cubes / f"GLC25-PA-train-bioclimatic_monthly_{sid}_cube.pt")
    (root / "SatelitePatches").mkdir()
    return root, cubes


# ------------------------------------------------------------------------------------ pickles


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dumps"])
def test_pickled_cube_is_refused_and_never_runs(tmp_path, capsys, writer):
    marker = tmp_path / "PAYLOAD_RAN"
    raw, cubes = _tiny_raw(tmp_path / "raw")
    cube = cubes / "GLC25-PA-train-bioclimatic_monthly_1003_cube.pt"
    if writer == "torch.save":
        torch.save({"cube": Payload(marker)}, cube)
    else:
        cube.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(DataError, match="corrupt or not a tensor") as info:
        read_cube(cube, (4, 19, 12))
    assert "\n" not in str(info.value)
    # strict: the command refuses the file in one line
    code = main(["data", "prepare", str(raw), "--out", str(tmp_path / "strict.zarr"), "--strict", "--quiet"])
    _one_line_error(capsys, code, "1003", "--strict")
    # lenient: the survey's climate becomes NaN and is counted as unreadable
    report = prepare_geoplant(raw, tmp_path / "d.zarr", progress=False)
    assert report.unreadable["climate"] == 1
    ds = open_dataset(tmp_path / "d.zarr")
    i = int(np.flatnonzero(ds["site_id"].values == 1003)[0])
    assert np.isnan(ds["x_climate"].isel(site=i).values).all()
    assert not marker.exists(), "the pickle payload ran"


def test_pickled_checkpoint_is_refused_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model.head.weight": Payload(marker)}, run / "best.safetensors")  # a torch pickle in disguise
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    for path in (run, run / "best.safetensors", tmp_path / "model.pt"):
        with pytest.raises(CheckpointError, match="corrupt, truncated or not a miam-explain checkpoint") as info:
            load_model(path)
        assert "\n" not in str(info.value)
    out = tmp_path / "r.nc"
    code = main(["shapley", "--model", str(run), "--group", "modalities", "--out", str(out), "--quiet", "--device", "cpu"])
    _one_line_error(capsys, code, "best.safetensors")
    code = main(["evaluate", "--model", str(tmp_path / "model.pt"), "--quiet", "--device", "cpu"])
    _one_line_error(capsys, code, "model.pt")
    assert not out.exists()
    assert not marker.exists(), "the pickle payload ran"


def test_pickled_embeddings_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    pd.DataFrame({"scientific_name": ["a", "b", "a", "b"]}).to_csv(tmp_path / "labels.csv", index=False)
    torch.save({"image": Payload(marker)}, tmp_path / "emb.pt")
    np.savez(tmp_path / "emb.npz", image=np.array([Payload(marker)] * 4, dtype=object))
    for name in ("emb.pt", "emb.npz"):
        with pytest.raises(DataError, match="pickled objects"):
            read_embedding_file(tmp_path / name)
        with pytest.raises(DataError, match="pickled objects"):
            prepare_embeddings(tmp_path / name, tmp_path / "labels.csv", tmp_path / f"{name}.zarr")
    assert not marker.exists(), "the pickle payload ran"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_store_with_a_pickle_codec_is_refused_and_never_runs(tmp_path, zarr_format, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    store = tmp_path / "evil.zarr"
    ds = xr.Dataset({"a": ("x", np.arange(3))}, coords={"s": ("x", np.arange(3))})
    ds.to_zarr(store, zarr_format=zarr_format, consolidated=zarr_format == 2)
    meta_name = ".zarray" if zarr_format == 2 else "zarr.json"
    meta = json.loads((store / "a" / meta_name).read_text())
    if zarr_format == 2:
        meta["compressor"] = {"id": "pickle", "protocol": 5}
        consolidated = json.loads((store / ".zmetadata").read_text())
        consolidated["metadata"]["a/.zarray"] = meta
        (store / ".zmetadata").write_text(json.dumps(consolidated))
    else:
        meta["codecs"] = [meta["codecs"][0], {"name": "numcodecs.pickle", "configuration": {"protocol": 5}}]
    (store / "a" / meta_name).write_text(json.dumps(meta))
    for chunk in [p for p in (store / "a").rglob("*") if p.is_file() and p.name not in (".zarray", ".zattrs", "zarr.json")]:
        chunk.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(DataError, match="pickle") as info:
        open_dataset(store)
    assert "\n" not in str(info.value)
    _one_line_error(capsys, main(["data", "inspect", str(store)]), "pickle")
    assert not marker.exists(), "the pickle payload ran"


# ------------------------------------------------------------------------- paths from metadata


def test_survey_ids_that_look_like_paths_name_no_file(tmp_path):
    raw, cubes = _tiny_raw(tmp_path / "raw")
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv")
    evil = ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "1000/../../1001", "~/.ssh/id_rsa", "file:///etc/shadow"]
    extra = pd.DataFrame([{"lon": 6.0, "lat": 46.0, "speciesId": 1.0, "surveyId": s} for s in evil])
    pd.concat([meta, extra]).to_csv(raw / "GLC25_PA_metadata_train.csv", index=False)
    # a cube outside the folder, named like the cube of an id that one could try to inject
    outside = tmp_path / "outside"
    outside.mkdir()
    torch.save(torch.full((4, 19, 12), 777.0), outside / "GLC25-PA-train-bioclimatic_monthly_1000_cube.pt")
    report = prepare_geoplant(raw, tmp_path / "d.zarr", progress=False)
    ds = open_dataset(tmp_path / "d.zarr")
    assert sorted(ds["site_id"].values.tolist()) == list(range(1000, 1006))  # the path-like ids are no surveys
    assert report.n_sites == 6
    assert not (np.asarray(ds["x_climate"].values) == 777.0).any()


@pytest.mark.parametrize("bad", ["1e30", "12.5", "-3"])
def test_survey_ids_that_are_not_whole_numbers_are_refused(tmp_path, bad):
    raw, _ = _tiny_raw(tmp_path / "raw")
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv")
    meta["surveyId"] = meta["surveyId"].astype(object)
    meta.loc[0, "surveyId"] = bad
    meta.to_csv(raw / "GLC25_PA_metadata_train.csv", index=False)
    with pytest.raises(DataError, match="not a non-negative whole number") as info:
        prepare_geoplant(raw, tmp_path / "d.zarr", progress=False)
    message = str(info.value)
    assert (bad in message or str(float(bad)) in message) and "\n" not in message


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_out_of_the_data_folder_are_never_followed(tmp_path, capsys):
    raw, cubes = _tiny_raw(tmp_path / "raw", ids=range(1000, 1004))
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv")
    extra = pd.DataFrame([{"lon": 6.0, "lat": 46.0, "speciesId": 1.0, "surveyId": s} for s in (1004, 1005, 1006)])
    pd.concat([meta, extra]).to_csv(raw / "GLC25_PA_metadata_train.csv", index=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    for sid in (1004, 1005):
        torch.save(torch.full((4, 19, 12), 777.0), outside / f"GLC25-PA-train-bioclimatic_monthly_{sid}_cube.pt")
    # 1004: a file link out of the folder; 1005: a folder link out of the folder
    os.symlink(outside / "GLC25-PA-train-bioclimatic_monthly_1004_cube.pt", cubes / "GLC25-PA-train-bioclimatic_monthly_1004_cube.pt")
    os.symlink(outside, cubes / "more")
    # 1006: a link that stays inside the folder is fine
    torch.save(torch.full((4, 19, 12), 5.0), raw / "spare.pt")
    os.symlink(raw / "spare.pt", cubes / "GLC25-PA-train-bioclimatic_monthly_1006_cube.pt")
    # a tabular CSV that links out of the folder is not read either
    env = raw / "EnvironmentalValues"
    env.mkdir()
    pd.DataFrame({"surveyId": list(range(1000, 1007)), "Bio1": [777.0] * 7}).to_csv(outside / "secret.csv", index=False)
    os.symlink(outside / "secret.csv", env / "GLC25-PA-train-bioclimatic.csv")
    report = prepare_geoplant(raw, tmp_path / "d.zarr", progress=False)
    ds = open_dataset(tmp_path / "d.zarr")
    assert "x_tabular" not in ds  # the only tabular CSV pointed outside
    climate = np.asarray(ds["x_climate"].values)
    assert not (climate == 777.0).any()
    by_id = {int(s): i for i, s in enumerate(ds["site_id"].values)}
    assert np.isnan(climate[by_id[1004]]).all() and np.isnan(climate[by_id[1005]]).all()
    assert (climate[by_id[1006]] == 5.0).all()
    assert report.missing["climate"] == 2
    # a metadata file that links out of the folder is refused in one line
    (raw / "GLC25_PA_metadata_train.csv").rename(outside / "meta.csv")
    os.symlink(outside / "meta.csv", raw / "GLC25_PA_metadata_train.csv")
    code = main(["data", "prepare", str(raw), "--out", str(tmp_path / "e.zarr"), "--quiet"])
    _one_line_error(capsys, code, "outside", "copy the file")
    assert not (tmp_path / "e.zarr").exists()
