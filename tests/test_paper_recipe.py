"""The paper's data recipe of ``data prepare``: species kept by presence count and split, tabular columns, errors.

Every kept species set is checked against an independent pandas computation from the raw
presence-absence CSV: distinct surveys per species (groupby), intersected with the species present
in each split of the prepared dataset. The N of each case was measured so that the filter removes
species on that input (counts in the ``expected`` columns below).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.format import text_values
from miam_explain.data.glc import prepare_geoplant
from miam_explain.errors import ConfigError, DataError


def _raw_pairs(raw: Path) -> pd.DataFrame:
    """(surveyId, speciesId) presences read straight from the raw metadata CSV(s) with pandas."""
    files = [raw / "metadata.csv"] if (raw / "metadata.csv").is_file() else sorted(raw.glob("GLC2?_PA_metadata_*.csv"))
    meta = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).dropna(subset=["speciesId"])
    return meta.astype({"surveyId": np.int64, "speciesId": np.int64})[["surveyId", "speciesId"]]


def _expected_species(raw: Path, ds, n: int, every_split: bool) -> tuple[set[int], int, int]:
    """Independent computation: ``(kept species, species in the CSV, species with >= n presences)``."""
    pairs = _raw_pairs(raw)
    counts = pairs.groupby("speciesId")["surveyId"].nunique()
    often = set(counts.index[counts >= n].tolist())
    kept = set(often)
    if every_split:
        split_of = pd.Series(text_values(ds["split"].values), index=ds["site_id"].values)
        in_split = pairs.assign(split=split_of.loc[pairs["surveyId"]].to_numpy())
        for name in np.unique(split_of.to_numpy()):
            kept &= set(in_split.loc[in_split["split"] == name, "speciesId"].tolist())
    return kept, len(counts), len(often)


def _check_labels(raw: Path, ds) -> None:
    """Each kept species' label column is 1 exactly at the surveys where the CSV lists it."""
    pairs = _raw_pairs(raw)
    species = ds["species"].values.tolist()
    truth = pd.crosstab(pairs["surveyId"], pairs["speciesId"]).clip(upper=1)
    truth = truth.reindex(index=ds["site_id"].values, columns=species, fill_value=0)
    np.testing.assert_array_equal(ds["labels"].values, truth.to_numpy(np.uint8))


# layout, split, N, species_in_every_split, (kept, dropped as rare, dropped as absent from a split)
REAL_CASES = [
    ("glc25", "spatial", 2, None, (1, 66, 15)),
    ("glc24", "given", 2, None, (2, 75, 8)),
    ("glc24", "spatial", 2, False, (10, 75, 0)),
]


@pytest.mark.parametrize("layout, split, n, every, counts", REAL_CASES)
def test_kept_species_match_pandas_on_real_files(geoplant_fixtures, tmp_path, layout, split, n, every, counts):
    raw = geoplant_fixtures / f"{layout}_pre_extracted"
    report = prepare_geoplant(raw, tmp_path / "d.zarr", split=split, min_presences=n, species_in_every_split=every,
                              progress=False)
    ds = open_dataset(tmp_path / "d.zarr")
    expected, n_raw, n_often = _expected_species(raw, ds, n, every_split=every is not False)
    assert set(ds["species"].values.tolist()) == expected
    assert n_often < n_raw, "the presence filter must remove species here"
    assert (len(expected), n_raw - n_often, n_often - len(expected)) == counts
    assert report.n_species == len(expected) and ds.sizes["site"] == report.n_sites
    recipe = json.loads(ds.attrs["recipe"])
    assert recipe["min_presences"] == n and recipe["species_in_every_split"] is (every is not False)
    assert (recipe["n_species_dropped_rare"], recipe["n_species_dropped_not_in_every_split"]) == counts[1:]
    assert recipe["n_species_dropped"] == n_raw - len(expected) and recipe["block_size_deg"] == 1.0
    _check_labels(raw, ds)


@pytest.mark.parametrize("layout", ["glc25", "glc24"])
def test_paper_n21_on_real_files_keeps_nothing_and_says_so(geoplant_fixtures, tmp_path, layout):
    raw = geoplant_fixtures / f"{layout}_pre_extracted"
    counts = _raw_pairs(raw).groupby("speciesId")["surveyId"].nunique()
    assert counts.max() <= 20  # pandas: no species of the 100-row sample has more than 20 presences
    with pytest.raises(DataError, match="--min-presences 21 keeps none of the") as info:
        prepare_geoplant(raw, tmp_path / "d.zarr", min_presences=21, progress=False)
    assert "\n" not in str(info.value) and "lower --min-presences" in str(info.value)
    assert not (tmp_path / "d.zarr").exists()


@pytest.fixture(scope="module")
def synth_recipes(synth_raw, tmp_path_factory) -> dict[int, object]:
    """The synthetic data prepared with N = 21 (the paper) and N = 100 (plus two tabular columns/groups)."""
    folder = tmp_path_factory.mktemp("recipe")
    out = {}
    for n, columns in ((21, None), (100, ("Bio1", "soil"))):
        prepare_geoplant(synth_raw, folder / f"n{n}.zarr", min_presences=n, tabular_columns=columns, progress=False,
                         chunk_size=120)
        out[n] = open_dataset(folder / f"n{n}.zarr")
    return out


@pytest.mark.parametrize("n, removed", [(21, 0), (100, 6)])
def test_kept_species_match_pandas_on_synthetic_data(synth_raw, synth_data, synth_recipes, n, removed):
    ds = synth_recipes[n]
    expected, n_raw, n_often = _expected_species(synth_raw, ds, n, every_split=True)
    assert set(ds["species"].values.tolist()) == expected
    assert n_raw - len(expected) == removed  # measured: presences per species run from 49 to 118
    plain = open_dataset(synth_data)  # the recipe keeps every site and the split
    np.testing.assert_array_equal(ds["site_id"].values, plain["site_id"].values)
    np.testing.assert_array_equal(text_values(ds["split"].values), text_values(plain["split"].values))
    assert json.loads(ds.attrs["recipe"])["n_species_dropped"] == removed
    _check_labels(synth_raw, ds)


def test_tabular_columns_keep_the_named_columns_and_groups(synth_raw, synth_recipes):
    ds = synth_recipes[100]
    soil = [f"Soilgrid-{v}" for v in ("bdod", "cec", "clay", "nitrogen", "phh2o", "sand", "silt", "soc")]
    assert list(text_values(ds["tabular_variable"].values)) == ["Bio1", *soil]
    assert json.loads(ds["x_tabular"].attrs["groups"]) == {"worldclim": ["Bio1"], "soil": soil}
    assert json.loads(ds.attrs["recipe"])["tabular_columns"] == ["Bio1", "soil"]
    bio = pd.read_csv(next(synth_raw.rglob("*bioclimatic.csv"))).set_index("surveyId")["Bio1"]
    np.testing.assert_allclose(ds["x_tabular"].sel(tabular_variable="Bio1").values,
                               bio.loc[ds["site_id"].values].to_numpy(np.float32), rtol=1e-6)
    assert len(text_values(synth_recipes[21]["tabular_variable"].values)) == 40  # no selection: every column


@pytest.mark.parametrize(
    "options, message",
    [
        (["--min-presences", "0"], "--min-presences must be a whole number >= 1, got 0"),
        (["--min-presences", "-3"], "--min-presences must be a whole number >= 1, got -3"),
        (["--block-size-deg", "0"], "block size (--block-size-deg) 0.0 must be a positive number of degrees"),
        (["--block-size-deg", "-1"], "block size (--block-size-deg) -1.0 must be a positive number of degrees"),
        (["--spacing", "nan"], "block size (--block-size-deg) nan must be a positive number of degrees"),
        (["--min-presences", "200"], "--min-presences 200 keeps none of the 12 species (the most frequent has 118"),
        (["--tabular-columns", "Bio1,Bio99"], "unknown tabular column 'Bio99'; available columns: Bio1, Bio2,"),
        (["--tabular-columns", ","], "--tabular-columns names no column"),
    ],
)
def test_bad_recipe_is_a_one_line_error(synth_raw, tmp_path, one_line_error, options, message):
    out = tmp_path / "d.zarr"
    assert main(["data", "prepare", str(synth_raw), "--out", str(out), "--quiet", *options]) == 2
    assert message in one_line_error()
    assert not out.exists()


def test_no_species_in_every_split_is_a_one_line_error(geoplant_fixtures, tmp_path, one_line_error):
    raw = geoplant_fixtures / "glc24_pre_extracted"  # 10 species with >= 2 presences, none in all three splits
    assert main(["data", "prepare", str(raw), "--out", str(tmp_path / "d.zarr"), "--quiet", "--min-presences", "2"]) == 2
    line = one_line_error()
    assert "no species is present in every split" in line and "--no-species-in-every-split" in line


def test_recipe_options_are_refused_for_embeddings(tmp_path, one_line_error):
    embeddings = tmp_path / "e.npz"
    embeddings.write_bytes(b"")  # refused before the file is read
    argv = ["data", "prepare", str(embeddings), "--out", str(tmp_path / "d.nc"), "--min-presences", "21",
            "--tabular-columns", "Bio1"]
    assert main(argv) == 2
    assert "--min-presences, --tabular-columns only apply to a GeoPlant folder" in one_line_error()


def test_python_api_validates_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="--min-presences must be a whole number"):
        prepare_geoplant(tmp_path / "missing", tmp_path / "d.zarr", min_presences=1.5)
    with pytest.raises(ConfigError, match="block size"):
        from miam_explain.data.splits import spatial_split

        spatial_split(np.zeros(3), np.zeros(3), spacing=float("inf"))


def test_paper_gpu_config_is_geoplant_on_cuda():
    from dataclasses import replace

    from miam_explain.training.config import load_config

    gpu, paper = load_config("paper_gpu"), load_config("geoplant")
    assert gpu.training.device == "cuda" and gpu.training.eval_batch_size == 1024
    assert replace(gpu, training=replace(gpu.training, device="auto", eval_batch_size=512)) == paper
    assert dict(gpu.model) == {"width": 192, "depth": 3, "heads": 8, "mlp_ratio": 4.0, "dropout": 0.1}
