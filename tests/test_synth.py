"""The synthetic GeoPlant generator: layout, formats, determinism, atomicity, planted effects, settings and nulls."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from miam_explain.cli import main
from miam_explain.data import synth
from miam_explain.data.synth import fields, generate, survey_paths, synthesize
from miam_explain.data.synth.settings import SynthSettings
from miam_explain.data.synth.species import build_species
from miam_explain.errors import ConfigError, MiamError

TABULAR = {
    "EnvironmentalValues/Climate/Average 1981-2010/GLC25-PA-train-bioclimatic.csv": [f"Bio{i}" for i in range(1, 20)],
    "EnvironmentalValues/Elevation/GLC25-PA-train-elevation.csv": ["Elevation"],
    "EnvironmentalValues/SoilGrids/GLC25-PA-train-soilgrids.csv": [
        f"Soilgrid-{v}" for v in ("bdod", "cec", "clay", "nitrogen", "phh2o", "sand", "silt", "soc")
    ],
    "EnvironmentalValues/HumanFootprint/GLC25-PA-train-human_footprint.csv": [
        "HumanFootprint-Built1994", "HumanFootprint-Built2009", "HumanFootprint-Popdensity2009", "HumanFootprint-Roads",
    ],
    "EnvironmentalValues/LandCover/GLC25-PA-train-landcover.csv": [f"LandCover-{k}" for k in range(1, 9)],
}
METADATA_COLUMNS = ["lon", "lat", "year", "geoUncertaintyInM", "areaInM2", "region", "country", "speciesId", "surveyId"]
#: The other end of every realism range (and standardised years, as in version 2), on the data of ``raw``.
OTHER_END = {"anomaly_sd": 2.1, "standardize_anomalies": True, "landsat_echo": 0.0, "modality_correlation": 0.0}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth") / "raw", n_sites=200, n_species=12, seed=7, progress=False)


@pytest.fixture(scope="module")
def loaded(raw):
    return _load(raw)


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """``raw``'s arguments at the other end of each realism setting, read back."""
    return _load(synthesize(tmp_path_factory.mktemp("synth") / "other", n_sites=200, n_species=12, seed=7,
                            progress=False, **OTHER_END))


@pytest.fixture(scope="module")
def null_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A planted run and the null run (heatwave and NDVI) with the same arguments, 400 sites."""
    root = tmp_path_factory.mktemp("null")
    args = {"n_sites": 400, "n_species": 12, "seed": 11, "progress": False}
    return synthesize(root / "planted", **args), synthesize(root / "null", **args, null_effects=("heatwave", "ndvi"))


def _load(raw: Path) -> dict:
    """Everything the tests read back: truth, per-site truth, presence matrix, cube and patch readouts."""
    truth = json.loads((raw / "truth.json").read_text())
    sites = pd.read_csv(raw / "truth_sites.csv")
    ids = sites["surveyId"].to_numpy()
    meta = pd.read_csv(raw / "GLC25_PA_metadata_train.csv")
    presence = (
        pd.crosstab(meta["surveyId"], meta["speciesId"].astype(int))
        .reindex(index=ids, columns=truth["species_ids"], fill_value=0)
        .clip(upper=1)
    )
    climate, landsat, patches = [], [], []
    for sid in ids:
        tiff, climate_path, landsat_path = survey_paths(raw, int(sid))
        climate.append(torch.load(climate_path, weights_only=True).numpy())
        landsat.append(torch.load(landsat_path, weights_only=True).numpy() if landsat_path.exists()
                       else np.full((6, 4, 21), np.nan, np.float32))
        patches.append(tifffile.imread(tiff) if tiff.exists() else None)
    bio = pd.read_csv(raw / next(iter(TABULAR))).set_index("surveyId").reindex(ids)
    return {
        "truth": truth, "sites": sites, "meta": meta, "presence": presence, "bio": bio, "raw": raw,
        "climate": np.stack(climate), "landsat": np.stack(landsat), "patches": patches,
    }


def _summer_anomaly(climate: np.ndarray, year_index: int, heatwave_index: int) -> np.ndarray:
    """Summer (JJA) tas of one year minus the mean summer tas of the other non-heatwave years, in K; shape (n,)."""
    tas = climate[:, 1, :, 5:8].astype(np.float64) / 10.0
    others = np.delete(tas, sorted({year_index, heatwave_index}), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of a gap
        return np.nanmean(tas[:, year_index], axis=1) - np.nanmean(others.reshape(len(tas), -1), axis=1)


def _patch_readouts(patches: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean NDVI, mean red and mean NIR over non-nodata pixels (NaN for missing or fully cloudy patches)."""
    ndvi, red, nir = (np.full(len(patches), np.nan) for _ in range(3))
    for i, patch in enumerate(patches):
        if patch is None:
            continue
        valid = (patch != 0).all(axis=-1)
        if valid.any():
            r, n = patch[..., 0][valid].astype(float), patch[..., 3][valid].astype(float)
            ndvi[i], red[i], nir[i] = ((n - r) / (n + r)).mean(), r.mean(), n.mean()
    return ndvi, red, nir


# --------------------------------------------------------------------- layout
def test_layout_and_file_counts(raw, loaded):
    truth, sites = loaded["truth"], loaded["sites"]
    ids = sites["surveyId"].to_numpy()
    assert len(ids) == 200 and len(set(ids)) == 200
    assert all(1_000_000 <= i <= 9_999_999 for i in ids)
    tiffs = sorted(raw.glob("SatelitePatches/PA-train/*/*/*.tiff"))
    climate = sorted(raw.glob("BioclimTimeSeries/cubes/PA-train/GLC25-PA-train-bioclimatic_monthly_*_cube.pt"))
    landsat = sorted(raw.glob("SateliteTimeSeries-Landsat/cubes/PA-train/GLC25-PA-train-landsat-time-series_*_cube.pt"))
    assert len(climate) == 200
    assert len(tiffs) == 200 - truth["missing"]["tiff_missing"] == 200 - sites["tiff_missing"].sum()
    assert len(landsat) == 200 - truth["missing"]["landsat_missing"]
    assert truth["missing"]["tiff_missing"] >= 1  # ~2% of 200 sites
    for tiff in tiffs:  # CD/AB = last two digits / the two before
        sid = int(tiff.stem)
        assert tiff.parent.name == f"{sid // 100 % 100:02d}" and tiff.parent.parent.name == f"{sid % 100:02d}"
    assert survey_paths(Path("R"), 1027998)[0] == Path("R/SatelitePatches/PA-train/98/79/1027998.tiff")


def test_tiff_format(loaded, raw):
    tiffs = sorted(raw.glob("SatelitePatches/PA-train/*/*/*.tiff"))
    with tifffile.TiffFile(tiffs[0]) as tif:
        page = tif.pages[0]
        array = page.asarray()
        assert array.shape == (64, 64, 4) and array.dtype == np.uint16
        assert page.compression == tifffile.COMPRESSION.LZW
        assert page.planarconfig == tifffile.PLANARCONFIG.CONTIG
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK
        assert page.tags[42113].value == "0"
        meta = page.tags[42112].value
        assert meta.startswith("<GDALMetadata>") and meta.rstrip().endswith("</GDALMetadata>")
        positions = [meta.index(f'sample="{k}" role="description">{b}<') for k, b in enumerate(["red", "green", "blue", "nir"])]
        assert positions == sorted(positions)
    patches = [p for p in loaded["patches"] if p is not None]
    values = np.concatenate([p[p != 0] for p in patches])
    assert values.min() >= 1 and values.max() <= 10000
    assert 200 < np.median(values) < 5000  # reflectance-like
    nodata = [(p == 0).all(axis=-1).mean() for p in patches]
    assert sum(0 < f < 1 for f in nodata) >= 5  # cloud blobs
    assert sum(f == 1 for f in nodata) >= 1  # fully cloudy
    assert all(((p == 0).any(axis=-1) == (p == 0).all(axis=-1)).all() for p in patches)  # clouds hit all bands


def test_cube_format_and_gaps(loaded, raw):
    sid = int(loaded["sites"]["surveyId"].iloc[0])
    _, climate_path, _ = survey_paths(raw, sid)
    cube = torch.load(climate_path, weights_only=True)
    assert cube.dtype == torch.float32 and tuple(cube.shape) == (4, 19, 12)
    landsat_path = next(raw.glob("SateliteTimeSeries-Landsat/cubes/PA-train/*.pt"))
    cube = torch.load(landsat_path, weights_only=True)
    assert cube.dtype == torch.float32 and tuple(cube.shape) == (6, 4, 21)
    climate, landsat = loaded["climate"], loaded["landsat"]
    tas_c = climate[:, 1] / 10.0 - 273.15  # 0.1 K in the cubes
    assert -25 < np.nanmin(tas_c) and np.nanmax(tas_c) < 45
    assert np.all(np.nanmin(climate[:, 0], axis=(1, 2)) > 0)  # precipitation
    both = np.isfinite(climate[:, 2]) & np.isfinite(climate[:, 3])
    assert (climate[:, 3][both] > climate[:, 2][both]).all()  # tasmax > tasmin
    climate_gaps = np.isnan(climate).any(axis=(1, 2, 3))
    present = ~np.isnan(landsat).all(axis=(1, 2, 3))
    landsat_gaps = np.isnan(landsat[present]).any(axis=(1, 2, 3))
    assert 1 <= climate_gaps.sum() <= 40 and 1 <= landsat_gaps.sum() <= 40  # ~5% of sites
    assert np.isnan(climate).mean() < 0.01


def test_metadata(loaded):
    meta, sites = loaded["meta"], loaded["sites"]
    assert list(meta.columns) == METADATA_COLUMNS
    assert meta["speciesId"].dtype == np.float64 and (meta["speciesId"] % 1 == 0).all()
    assert meta["surveyId"].dtype == np.int64
    assert set(meta["surveyId"]) == set(sites["surveyId"])  # every survey has >= 1 present species
    assert not meta.duplicated(["surveyId", "speciesId"]).any()
    assert meta["lon"].between(-5, 20).all() and meta["lat"].between(40, 55).all()
    per_site = meta.groupby("surveyId")[["lon", "lat", "year", "region", "country"]].nunique()
    assert (per_site == 1).all().all()


def test_metadata_float_species_text(raw):
    first = (raw / "GLC25_PA_metadata_train.csv").read_text().splitlines()[:2]
    assert first[0] == ",".join(METADATA_COLUMNS)
    assert first[1].split(",")[7].endswith(".0")


def test_tabular_csvs(raw, loaded):
    ids = set(loaded["sites"]["surveyId"])
    n_nan = 0
    for rel, columns in TABULAR.items():
        frame = pd.read_csv(raw / rel)
        assert list(frame.columns) == ["surveyId", *columns], rel
        assert set(frame["surveyId"]) == ids
        n_nan += int(frame[columns].isna().to_numpy().sum())
    assert n_nan >= 1
    lc = pd.read_csv(raw / "EnvironmentalValues/LandCover/GLC25-PA-train-landcover.csv").drop(columns="surveyId")
    full = lc.dropna().to_numpy()
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-6)
    assert (full.max(axis=1) >= 0.5).all() and (np.sort(full, axis=1)[:, -2] < 0.5).all()
    bio = pd.read_csv(raw / next(iter(TABULAR))).set_index("surveyId")
    assert bio["Bio1"].dropna().between(-10, 25).all()
    assert (bio["Bio5"] - bio["Bio6"]).dropna().gt(0).all()
    assert bio["Bio12"].dropna().gt(0).all()


# ---------------------------------------------------------------------- truth
def test_truth_contents_match_labels(loaded):
    truth, presence = loaded["truth"], loaded["presence"]
    for key in ("seed", "n_sites", "n_species", "heatwave_year", "heatwave_months", "layout", "species",
                "ndvi_species", "heatwave_species", "bio1_species", "soil_species", "soil_variable",
                "landcover_species", "landcover_class", "moisture_species", "moisture", "sentinel2_bands",
                "landsat_bands", "modality_signal", "modality_ranking", "generator_version", "settings",
                "null_effects", "null_species", "modality_correlation", "visibility"):
        assert key in truth, key
    assert truth["layout"] == "glc25" and truth["seed"] == 7 and truth["n_sites"] == 200 and truth["n_species"] == 12
    assert truth["heatwave_year"] == 2003 and truth["heatwave_months"] == [6, 7, 8]
    assert truth["sentinel2_bands"] == ["red", "green", "blue", "nir"]
    assert truth["generator_version"] == synth.GENERATOR_VERSION == 3
    assert truth["null_effects"] == [] and truth["null_species"] == []
    assert truth["effect_modalities"] == {k: list(v) for k, v in synth.EFFECT_MODALITIES.items()}
    groups = [truth[f"{k}_species"] for k in synth.EFFECT_MODALITIES]
    assert all(groups) and sorted(sum(groups, [])) == sorted(truth["species_ids"])
    assert set(truth["soil_variable"]) == {str(s) for s in truth["soil_species"]}
    assert set(truth["landcover_class"]) == {str(s) for s in truth["landcover_species"]}
    prevalence = presence.mean(axis=0)
    for sp in truth["species"]:
        assert sp["prevalence"] == pytest.approx(prevalence[sp["speciesId"]], abs=1e-6)
        assert 0.08 <= sp["prevalence"] <= 0.65
        assert isinstance(sp["intercept"], float) and sp["effects"] and all("coef" in e for e in sp["effects"])
    signal = truth["modality_signal"]
    assert set(signal) == {"tabular", "climate", "landsat", "sentinel2"}
    assert truth["modality_ranking"] == sorted(signal, key=lambda m: -signal[m])
    assert truth["modality_ranking"][0] == "climate" and signal["sentinel2"] > 0
    assert (presence.sum(axis=1) >= 1).all()


@pytest.mark.parametrize("n_species", [6, 7, 24])
def test_climate_dominates_for_any_species_count(n_species):
    rng = np.random.default_rng(0)
    species = build_species(rng, n_species)
    roles = [sp["role"] for sp in species]
    assert set(roles) == {"bio1", "heatwave", "ndvi", "soil", "landcover", "moisture"}
    # Var through climate minus tabular: heatwave (unit-sd driver) vs soil (unit sd) and landcover (p(1-p) <= 0.25).
    hw = sum(e["coef"] ** 2 for sp in species for e in sp["effects"] if e["type"] == "heatwave")
    soil = sum(e["coef"] ** 2 for sp in species for e in sp["effects"] if e["type"] == "soil")
    lc = sum(0.15 * e["coef"] ** 2 for sp in species for e in sp["effects"] if e["type"] == "landcover")
    assert hw > soil + lc


# ------------------------------------------------------------ planted effects
def test_heatwave_anomaly_only_in_its_year(loaded):
    truth, h = loaded["truth"], loaded["sites"]["heatwave_h"].to_numpy()
    y = truth["heatwave_year"] - 2000
    for year in range(19):
        anomaly = _summer_anomaly(loaded["climate"], year, y)
        ok = np.isfinite(anomaly)
        slope = np.polyfit(h[ok], anomaly[ok], 1)[0]
        if year == y:
            assert _corr(anomaly, h) > 0.8
            assert slope == pytest.approx(truth["heatwave"]["tas_degC_per_h"], rel=0.15)
        else:
            assert abs(_corr(anomaly, h)) < 0.3 and abs(slope) < 0.3, year
    # Landsat: NIR drops in quarter 3 of the heatwave year only (r = -0.76 at the default echo, 200 sites).
    nir = np.log(loaded["landsat"][:, 3, 2, :].astype(float))
    corrs = []
    for year in range(21):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            anomaly = nir[:, year] - np.nanmean(np.delete(nir, sorted({year, y}), axis=1), axis=1)
        corrs.append(_corr(anomaly, h))
    assert corrs[y] < -0.5 and int(np.argmin(corrs)) == y, corrs
    assert all(abs(c) < 0.3 for k, c in enumerate(corrs) if k != y), corrs


def _years(data: dict) -> tuple[np.ndarray, float]:
    """Per year but the heatwave's: sd over sites of (annual mean tas - Bio1) in K; mean correlation between years."""
    y = data["truth"]["heatwave_year"] - 2000
    tas = data["climate"][:, 1].astype(np.float64) / 10.0 - 273.15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of a gap
        annual = np.delete(np.nanmean(tas, axis=2), y, axis=1)  # (n, 18)
    ok = np.isfinite(annual).all(axis=1)
    anomaly = annual[ok] - data["sites"]["bio1"].to_numpy()[ok, None]
    corr = np.corrcoef(annual[ok].T)[np.triu_indices(annual.shape[1], 1)]
    return anomaly.std(axis=0), float(corr.mean())


def test_years_share_their_normals_with_anomalies_of_the_set_size(loaded, other):
    """Each year is the normals plus an anomaly of anomaly_sd degC; standardised, every year's is exactly that big."""
    spreads, corr = _years(loaded)  # default: 0.7 degC, not standardised
    assert corr > 0.9, corr  # 0.95 measured: the years are near copies of the normals (sd of Bio1 about 3.4 K)
    assert 0.2 < spreads.mean() < 0.7, spreads  # a smooth field over a finite region spreads less than its nominal sd
    assert spreads.max() / spreads.min() > 1.4, spreads  # as in real series, some years are more anomalous than others
    spreads, corr_wide = _years(other)  # 2.1 degC, standardised (version 2's choice, at another size)
    np.testing.assert_allclose(spreads, np.hypot(2.1, 0.45 / np.sqrt(12)), rtol=0.05)  # plus the monthly site noise
    assert corr_wide < corr - 0.2, (corr_wide, corr)


def test_landsat_echo_follows_its_setting(loaded, other):
    """Quarter-3 NDVI of the heatwave year drops by (1 - NDVI^2) * landsat_echo per unit h; at 0 it does not move."""
    for data, echo in ((loaded, SynthSettings().landsat_echo), (other, 0.0)):
        y, h = data["truth"]["heatwave_year"] - 2000, data["sites"]["heatwave_h"].to_numpy()
        red, nir = (data["landsat"][:, band, 2, :].astype(np.float64) for band in (0, 3))
        ndvi = (nir - red) / (nir + red)  # (n, 21) quarter 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            drop = ndvi[:, y] - np.nanmean(np.delete(ndvi, y, axis=1), axis=1)
            level = np.nanmean(ndvi)
        ok = np.isfinite(drop)
        slope = np.polyfit(h[ok], drop[ok], 1)[0]
        assert slope == pytest.approx(-(1 - level**2) * echo, abs=max(0.2 * echo, 0.01)), (echo, slope)
        assert data["truth"]["heatwave"]["landsat_nir_log_per_h"] == -echo
        if echo:
            assert _corr(drop, h) < -0.7  # -0.86 measured: clearly visible
        else:
            assert abs(_corr(drop, h)) < 0.2


def test_drivers_of_different_modalities_correlate_as_set(loaded, other):
    """Each coupled driver correlates with its partner in another modality at modality_correlation (0: not at all)."""
    for data, rho in ((loaded, SynthSettings().modality_correlation), (other, 0.0)):
        truth, sites, bio12 = data["truth"], data["sites"], data["bio"]["Bio12"].to_numpy()
        soil = pd.read_csv(data["raw"] / list(TABULAR)[2]).set_index("surveyId").reindex(sites["surveyId"])
        pairs = {p["driver"]: p["correlation"] for p in truth["modality_correlation"]["pairs"]}
        assert truth["modality_correlation"]["rho"] == rho == truth["settings"]["modality_correlation"]
        assert pairs["landsat_vegetation"] == pytest.approx(rho, abs=1e-3)
        assert pairs["moisture"] == pytest.approx(rho, abs=1e-3)
        assert _corr(sites["moisture"].to_numpy(), bio12) == pytest.approx(rho, abs=0.05)  # written Bio12
        assert -_corr(soil["Soilgrid-phh2o"].to_numpy(), bio12) == pytest.approx(rho, abs=0.05)
        assert -_corr(sites["heatwave_h"].to_numpy(), bio12) == pytest.approx(rho, abs=0.1)
        assert _corr(sites["ndvi"].to_numpy(), sites["landsat_vegetation"].to_numpy()) == pytest.approx(rho, abs=0.15)
    # truth.json says what the coupling lets other modalities see: moisture through Bio12 in tabular.
    assert loaded["truth"]["visibility"]["moisture"]["tabular"] > 0.05
    assert other["truth"]["visibility"]["moisture"]["tabular"] < 0.03


def test_heatwave_species_avoid_hot_summers(loaded):
    y = loaded["truth"]["heatwave_year"] - 2000
    anomaly = _summer_anomaly(loaded["climate"], y, y)
    corrs = [_corr(anomaly, loaded["presence"][s].to_numpy(float)) for s in loaded["truth"]["heatwave_species"]]
    assert max(corrs) < 0 and np.mean(corrs) < -0.25


def test_ndvi_species_need_red_and_nir_jointly(loaded):
    ndvi, red, nir = _patch_readouts(loaded["patches"])
    driver = loaded["sites"]["ndvi"].to_numpy()
    assert _corr(ndvi, driver) > 0.99
    # The per-site brightness hides the NDVI from either band alone: red and NIR show little of it.
    assert abs(_corr(red, driver)) < 0.45 and abs(_corr(nir, driver)) < 0.45
    with_ndvi, with_red, with_nir = [], [], []
    for s in loaded["truth"]["ndvi_species"]:
        y = loaded["presence"][s].to_numpy(float)
        with_ndvi.append(_corr(ndvi, y))
        with_red.append(abs(_corr(red, y)))
        with_nir.append(abs(_corr(nir, y)))
    assert min(with_ndvi) > 0.2 and np.mean(with_ndvi) > 0.35
    assert np.mean(with_red) < 0.5 * np.mean(with_ndvi) and np.mean(with_nir) < 0.5 * np.mean(with_ndvi)


def test_moisture_species_follow_landsat_swir(loaded):
    """Moisture lowers SWIR in every year; its species follow it."""
    truth, sites = loaded["truth"], loaded["sites"]
    moisture = sites["moisture"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # missing cubes are all NaN
        swir = np.nanmean(np.log(loaded["landsat"][:, 4:6].astype(float)), axis=(1, 2, 3))
    assert _corr(swir, moisture) < -0.7
    for sp in truth["species"]:
        if sp["role"] == "moisture":
            corr = _corr(moisture, loaded["presence"][sp["speciesId"]].to_numpy(float))
            assert np.sign(corr) == np.sign(sp["effects"][0]["coef"]) and abs(corr) > 0.2


def test_decoupled_ndvi_and_moisture_show_through_their_own_modality_only(other):
    """At modality_correlation 0 (version 2's design) no tabular column, nor climate, shows NDVI or moisture."""
    sites = other["sites"]
    tas = np.nanmean(other["climate"][:, 1], axis=(1, 2))
    for driver in ("ndvi", "moisture"):
        values = sites[driver].to_numpy()
        for rel in TABULAR:
            frame = pd.read_csv(other["raw"] / rel).set_index("surveyId").reindex(sites["surveyId"])
            for column in frame.columns:
                assert abs(_corr(frame[column].to_numpy(), values)) < 0.3, (driver, column)
        assert abs(_corr(tas, values)) < 0.3 and abs(_corr(sites["heatwave_h"].to_numpy(), values)) < 0.3
    assert abs(_corr(sites["ndvi"].to_numpy(), sites["moisture"].to_numpy())) < 0.3


def test_bio1_species_follow_their_sign(loaded):
    bio1 = loaded["sites"]["bio1"].to_numpy()
    for sp in loaded["truth"]["species"]:
        if sp["role"] == "bio1":
            corr = _corr(bio1, loaded["presence"][sp["speciesId"]].to_numpy(float))
            assert np.sign(corr) == np.sign(sp["effects"][0]["coef"]) and abs(corr) > 0.15


def test_decorrelate_removes_chance_correlation():
    rng = np.random.default_rng(1)
    xy = np.column_stack([rng.uniform(0, 20, 2000), rng.uniform(40, 55, 2000)])
    others = fields.smooth_fields(rng, xy, 20, 3.0)
    latent = 0.7 * fields.smooth_fields(rng, xy, 1, 1.5)[:, 0] + 0.7 * rng.standard_normal(2000)
    before = max(abs(_corr(latent, others[:, k])) for k in range(20))
    after = fields.decorrelate(latent, others)
    assert before > 0.05
    assert max(abs(_corr(after, others[:, k])) for k in range(20)) < 1e-8
    assert after.std() == pytest.approx(latent.std()) and after.mean() == pytest.approx(latent.mean())
    assert _corr(after, latent) > 0.7
    np.testing.assert_array_equal(fields.decorrelate(latent[:40], others[:40]), latent[:40])  # too few sites


# ------------------------------------------------------------------ null mode
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_null_mode_writes_the_planted_inputs(null_pair):
    planted, null = (_files(root) for root in null_pair)
    assert planted.keys() == null.keys()
    differ = sorted(k for k in planted if planted[k] != null[k])
    assert differ == ["GLC25_PA_metadata_train.csv", "truth.json"]  # labels and their record; not truth_sites.csv


def test_null_labels_ignore_the_nulled_drivers(null_pair):
    """Would-be heatwave and NDVI species follow neither h nor NDVI; every other species keeps its labels."""
    planted, null = (_load(root) for root in null_pair)
    truth = null["truth"]
    drivers = {"heatwave": null["sites"]["heatwave_h"].to_numpy(), "ndvi": null["sites"]["ndvi"].to_numpy()}
    nulled = [sp for sp in truth["species"] if sp["role"] == "null"]
    assert sorted(sp["speciesId"] for sp in nulled) == truth["null_species"]
    would_be = planted["truth"]["heatwave_species"] + planted["truth"]["ndvi_species"]
    assert sorted(truth["null_species"]) == sorted(would_be)
    for sp in nulled:
        sid, driver = sp["speciesId"], drivers[sp["null_of"]]
        # 400 sites: |r| of independent labels is about 0.05 (0.11 at most over six seeds); planted |r| is 0.39 or more.
        assert abs(_corr(null["presence"][sid].to_numpy(float), driver)) < 0.2, sp
        assert abs(_corr(planted["presence"][sid].to_numpy(float), driver)) > 0.3, sp
    kept = [sp["speciesId"] for sp in truth["species"] if sp["role"] != "null"]
    changed = int((planted["presence"][kept] != null["presence"][kept]).to_numpy().sum())
    assert changed <= planted["truth"]["n_forced_presences"] + truth["n_forced_presences"]  # only forced presences move


def test_truth_records_settings_and_nulls(loaded, other, null_pair):
    assert loaded["truth"]["settings"] == SynthSettings().record()
    assert other["truth"]["settings"] == SynthSettings(**OTHER_END).record()
    assert loaded["truth"]["settings"]["standardize_anomalies"] is False
    truth = json.loads((null_pair[1] / "truth.json").read_text())
    assert truth["null_effects"] == truth["settings"]["null_effects"] == ["heatwave", "ndvi"]
    assert truth["heatwave_species"] == [] and truth["ndvi_species"] == [] and truth["n_species"] == 12
    assert all(e["type"] not in ("heatwave", "ndvi") for sp in truth["species"] for e in sp["effects"])
    for sp in truth["species"]:
        assert (sp["role"] == "null") == (sp["effects"] == [])
        assert 0.08 <= sp["prevalence"] <= 0.65
    assert {"heatwave", "ndvi"} == {sp["null_of"] for sp in truth["species"] if sp["role"] == "null"}


def test_data_synth_command_takes_the_settings(tmp_path, capsys):
    out = tmp_path / "raw"
    argv = ["data", "synth", "--out", str(out), "--sites", "30", "--species", "6", "--quiet", "--anomaly-sd", "1.5",
            "--landsat-echo", "0", "--modality-correlation", "0.2", "--standardize-anomalies",
            "--null-effects", "heatwave,ndvi"]
    assert main(argv) == 0
    settings = json.loads((out / "truth.json").read_text())["settings"]
    assert settings == SynthSettings(anomaly_sd=1.5, standardize_anomalies=True, landsat_echo=0.0,
                                     modality_correlation=0.2, null_effects=("heatwave", "ndvi")).record()
    capsys.readouterr()
    for bad in (["--null-effects", "heatwave,nope"], ["--modality-correlation", "1"], ["--anomaly-sd", "nan"]):
        assert main(["data", "synth", "--out", str(tmp_path / "bad"), "--sites", "30", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("miam-explain: error:") and bad[0] in err, err
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------- determinism, atomicity


def test_same_seed_gives_identical_files(tmp_path):
    a = _files(synthesize(tmp_path / "a", n_sites=40, n_species=8, seed=5, progress=False))
    b = _files(synthesize(tmp_path / "b", n_sites=40, n_species=8, seed=5, progress=False))
    c = _files(synthesize(tmp_path / "c", n_sites=40, n_species=8, seed=6, progress=False))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert a["truth.json"] != c["truth.json"]
    assert a["GLC25_PA_metadata_train.csv"] != c["GLC25_PA_metadata_train.csv"]


@pytest.mark.parametrize(
    "kwargs",
    [{"n_sites": 5}, {"n_sites": 20.5}, {"n_species": 3}, {"heatwave_year": 1999}, {"heatwave_year": 2019},
     {"seed": -1}, {"n_sites": True}, {"anomaly_sd": -0.1}, {"anomaly_sd": float("nan")}, {"anomaly_sd": "0.7"},
     {"anomaly_sd": 6}, {"landsat_echo": -0.01}, {"landsat_echo": 0.6}, {"modality_correlation": 1.0},
     {"modality_correlation": True}, {"standardize_anomalies": "yes"}, {"null_effects": "heatwave"},
     {"null_effects": ("heatwave", "nope")}, {"null_effects": ("ndvi", "ndvi")}],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError) as info:
        synthesize(tmp_path / "out", progress=False, **kwargs)
    assert "\n" not in str(info.value) and next(iter(kwargs)) in str(info.value)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_refuses_existing_output_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(MiamError, match="already exists"):
        synthesize(out, n_sites=12, n_species=6, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    synthesize(out, n_sites=12, n_species=6, progress=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "truth.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = generate.write_cube

    def flaky(path, cube):
        calls["n"] += 1
        if calls["n"] > 15:
            raise OSError("disk full")
        real(path, cube)

    monkeypatch.setattr(generate, "write_cube", flaky)
    with pytest.raises(OSError, match="disk full"):
        synthesize(tmp_path / "out", n_sites=30, n_species=6, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar(tmp_path, capsys):
    synthesize(tmp_path / "out", n_sites=12, n_species=6, progress=True)
    assert "12/12" in capsys.readouterr().err
