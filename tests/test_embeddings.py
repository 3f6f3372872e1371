"""The TaxaBench-style reader of pre-computed per-modality embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.format import text_values


@pytest.fixture()
def embedding_files(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    arrays = {"image": rng.normal(size=(n, 8)).astype(np.float32), "dna": rng.normal(size=(n, 5)).astype(np.float32)}
    names = rng.choice(["Quercus robur", "Fagus sylvatica", "Pinus sylvestris"], n)
    pd.DataFrame({"scientific_name": names, "lat": rng.uniform(40, 50, n), "lon": rng.uniform(0, 10, n)}).to_csv(
        tmp_path / "meta.csv", index=False
    )
    return tmp_path, arrays, names


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_embeddings_round_trip(embedding_files, suffix, capsys):
    folder, arrays, names = embedding_files
    path = folder / f"emb{suffix}"
    if suffix == ".pt":
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, path)
    else:
        np.savez(path, **arrays)
    out = folder / f"data{suffix}.nc"
    assert main(["data", "prepare", str(path), "--labels", str(folder / "meta.csv"), "--out", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.attrs["task"] == "multiclass"
    assert list(text_values(ds["species"].values)) == sorted(set(names))
    np.testing.assert_array_equal(text_values(ds["species"].values)[ds["label"].values], names)
    for key, array in arrays.items():
        assert ds[f"x_{key}"].dims == ("site", f"{key}_dim")
        assert ds[f"x_{key}"].attrs["kind"] == "embedding"
        np.testing.assert_array_equal(ds[f"x_{key}"].values, array)
    split = text_values(ds["split"].values)
    for cls in set(names):  # stratified by default: every class in every split
        assert {"train", "val", "test"} <= set(split[names == cls])


def test_corrupt_embeddings_file(embedding_files, capsys):
    folder, _, _ = embedding_files
    bad = folder / "emb.pt"
    bad.write_bytes(b"\x80\x04garbage")
    code = main(["data", "prepare", str(bad), "--labels", str(folder / "meta.csv"), "--out", str(folder / "d.nc")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "corrupt" in err
    assert not (folder / "d.nc").exists()


def test_labels_must_match_rows(embedding_files, capsys):
    folder, arrays, _ = embedding_files
    np.savez(folder / "emb.npz", **{k: v[:10] for k, v in arrays.items()})
    code = main(["data", "prepare", str(folder / "emb.npz"), "--labels", str(folder / "meta.csv"), "--out", str(folder / "d.nc")])
    err = capsys.readouterr().err
    assert code == 2 and "rows" in err and "match" in err
