"""What the synthetic generator records about itself: ``truth.json`` and ``truth_sites.csv``.

:func:`visibility` measures how much of each driver each modality shows (R^2 of
a linear readout from the written files), :func:`modality_signal` sums the
visible logit variance per modality, and :func:`truth_document` /
:func:`truth_sites` assemble the two files (``docs/synthetic.md`` lists every key).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain.data.glc.layout import (
    CLIMATE_CHANNELS,
    CLIMATE_YEARS,
    GLC25,
    IMAGE_BANDS,
    LANDCOVER_COLUMNS,
    LANDSAT_CHANNELS,
    LANDSAT_YEARS,
)
from miam_explain.data.synth.fields import quiet
from miam_explain.data.synth.observations import Features
from miam_explain.data.synth.params import (
    EFFECT_MODALITIES,
    GENERATOR_VERSION,
    HEATWAVE_MONTHS,
    HEATWAVE_QUARTER,
    HW_NIR_LOG,
    HW_PR_LOG,
    HW_SWIR1_LOG,
    HW_SWIR2_LOG,
    HW_TAS,
    HW_TASMAX,
    HW_TASMIN,
    LANDCOVER_NAMES,
    MODALITIES,
    MOISTURE_SWIR1_LOG,
    MOISTURE_SWIR2_LOG,
)
from miam_explain.data.synth.species import driver_values
from miam_explain.data.synth.world import Sites

__all__ = ["modality_signal", "truth_document", "truth_sites", "visibility"]


def _r2(target: np.ndarray, features: np.ndarray) -> float:
    """R^2 of a least-squares fit of ``target`` on ``features`` (NaN imputed by column means)."""
    x = np.asarray(features, dtype=np.float64).reshape(len(target), -1).copy()
    for col in range(x.shape[1]):
        column = x[:, col]
        fill = np.nanmean(column) if np.isfinite(column).any() else 0.0
        column[~np.isfinite(column)] = fill
    design = np.column_stack([np.ones(len(target)), x])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    ss_tot = float(((target - target.mean()) ** 2).sum())
    if ss_tot == 0.0:
        return 0.0
    return float(np.clip(1.0 - ((target - design @ coef) ** 2).sum() / ss_tot, 0.0, 1.0))


def visibility(effect: dict, z: np.ndarray, tables: dict[str, pd.DataFrame], features: Features) -> dict[str, float]:
    """How much of a driver each modality shows: R^2 of a simple linear readout from the written data.

    Readouts: tabular column(s) of the driver; climate mean tas (Bio1) or the
    heatwave-year summer tas anomaly; Landsat NIR/SWIR1 anomaly of quarter 3
    of the heatwave year; Sentinel-2 mean NDVI of non-cloudy pixels. Missing
    files and cells count as no information (mean imputation).
    """
    by_column = {c: t[c].to_numpy() for t in tables.values() for c in t.columns if c != "surveyId"}
    kind = effect["type"]
    readouts: dict[str, np.ndarray] = {}
    if kind == "bio1":
        readouts = {"tabular": by_column["Bio1"], "climate": features.clim_tas_mean}
    elif kind == "heatwave":
        readouts = {"climate": features.clim_heat, "landsat": features.landsat_heat}
    elif kind == "ndvi":
        readouts = {"sentinel2": features.ndvi_seen}
    elif kind == "moisture":
        readouts = {"landsat": features.landsat_mean}
    elif kind == "soil":
        readouts = {"tabular": by_column[effect["variable"]]}
    elif kind == "landcover":
        lc = np.column_stack([by_column[c] for c in LANDCOVER_COLUMNS])
        col = by_column[effect["column"]]
        with quiet():
            readouts = {"tabular": np.where(np.isfinite(col), col >= np.nanmax(lc, axis=1), np.nan)}
    return {m: round(_r2(z, readouts[m]), 4) if m in readouts else 0.0 for m in MODALITIES}


def modality_signal(species: list[dict], contributions: dict[str, np.ndarray], sites: Sites, features: Features,
                    tables: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Variance of the logit visible through each modality, summed over species.

    ``signal[m] = sum_s sum_e Var(beta_se z_e) * R2(z_e | m)``; the R^2 factors
    are returned too, keyed by driver (``bio1``, ``heatwave``, ``ndvi``,
    ``soil:<variable>``, ``landcover:<class>``).
    """
    signal = dict.fromkeys(MODALITIES, 0.0)
    table: dict[str, dict[str, float]] = {}
    for j, sp in enumerate(species):
        for e, effect in enumerate(sp["effects"]):
            key = effect["type"] + (f":{effect['variable']}" if "variable" in effect else "") + (
                f":{effect['class']}" if "class" in effect else "")
            if key not in table:
                z, _ = driver_values(sites, features, effect)
                table[key] = visibility(effect, z, tables, features)
            variance = float(np.var(contributions[f"{j}:{e}"]))
            for m in MODALITIES:
                signal[m] += variance * table[key][m]
    return {m: round(v, 4) for m, v in signal.items()}, table


def truth_sites(sites: Sites, features: Features) -> pd.DataFrame:
    """Per-site latent drivers and missingness flags (``truth_sites.csv``)."""
    return pd.DataFrame({
        "surveyId": sites.survey_id,
        "lat": sites.lat,
        "lon": sites.lon,
        "heatwave_h": np.round(sites.heatwave, 6),
        "ndvi": np.round(features.ndvi, 6),
        "moisture": np.round(sites.moisture, 6),
        "bio1": np.round(sites.bio[:, 0], 6),
        "landcover_class": sites.landcover_class,
        "cloud": np.array(["clear", "blob", "full"])[sites.cloud],
        "tiff_missing": sites.tiff_missing.astype(int),
        "landsat_missing": sites.landsat_missing.astype(int),
        "climate_gap": sites.climate_gap.astype(int),
        "landsat_gap": sites.landsat_gap.astype(int),
    })


def truth_document(species: list[dict], signal: dict[str, float], table: dict[str, dict[str, float]], sites: Sites,
           tables: dict[str, pd.DataFrame], n_forced: int, seed: int, heatwave_year: int, spatial: np.ndarray) -> dict:
    """The ``truth.json`` document."""
    def ids(role: str) -> list[int]:
        return [sp["speciesId"] for sp in species if sp["role"] == role]

    n = len(sites.survey_id)
    nan_cells = {Path(rel).name: int(t.drop(columns="surveyId").isna().to_numpy().sum()) for rel, t in tables.items()}
    return {
        "layout": GLC25,
        "generator": "miam_explain.data.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_sites": n,
        "n_species": len(species),
        "heatwave_year": heatwave_year,
        "heatwave_months": list(HEATWAVE_MONTHS),
        "heatwave_quarter": HEATWAVE_QUARTER,
        "heatwave": {
            "h_mean": round(float(sites.heatwave.mean()), 6), "h_sd": round(float(sites.heatwave.std()), 6),
            "tas_degC_per_h": HW_TAS, "tasmax_degC_per_h": HW_TASMAX, "tasmin_degC_per_h": HW_TASMIN,
            "pr_log_per_h": HW_PR_LOG, "landsat_nir_log_per_h": HW_NIR_LOG,
            "landsat_swir1_log_per_h": HW_SWIR1_LOG, "landsat_swir2_log_per_h": HW_SWIR2_LOG,
        },
        "species_ids": [sp["speciesId"] for sp in species],
        "species": species,
        "ndvi_species": ids("ndvi"),
        "heatwave_species": ids("heatwave"),
        "bio1_species": ids("bio1"),
        "soil_species": ids("soil"),
        "soil_variable": {str(sp["speciesId"]): sp["effects"][0]["variable"] for sp in species if sp["role"] == "soil"},
        "landcover_species": ids("landcover"),
        "landcover_class": {str(sp["speciesId"]): sp["effects"][0]["class"] for sp in species if sp["role"] == "landcover"},
        "moisture_species": ids("moisture"),
        "moisture": {"landsat_swir1_log_per_sd": MOISTURE_SWIR1_LOG, "landsat_swir2_log_per_sd": MOISTURE_SWIR2_LOG},
        "landcover_names": {str(k + 1): name for k, name in enumerate(LANDCOVER_NAMES)},
        "sentinel2_bands": list(IMAGE_BANDS),
        "landsat_bands": list(LANDSAT_CHANNELS),
        "climate_variables": list(CLIMATE_CHANNELS),
        "climate_years": list(CLIMATE_YEARS),
        "landsat_years": list(LANDSAT_YEARS),
        "units": {
            "climate_pr": "0.01 mm per month", "climate_temperature": "0.1 K",
            "landsat": "reflectance on a 0..255 scale", "sentinel2": "reflectance x 10000, 0 = nodata (cloud)",
            "bioclim": "WorldClim conventions: degC, mm, Bio3/Bio15 in %, Bio4 = 100 x sd",
        },
        "effect_modalities": {k: list(v) for k, v in EFFECT_MODALITIES.items()},
        "visibility": table,
        "modality_signal": signal,
        "modality_ranking": sorted(MODALITIES, key=lambda m: -signal[m]),
        "spatial_signal": round(float(np.var(spatial, axis=0).sum()), 4),
        "n_forced_presences": n_forced,
        "missing": {
            "tiff_missing": int(sites.tiff_missing.sum()),
            "landsat_missing": int(sites.landsat_missing.sum()),
            "cloud_blob": int((sites.cloud == 1).sum()),
            "cloud_full": int((sites.cloud == 2).sum()),
            "climate_gap": int(sites.climate_gap.sum()),
            "landsat_gap": int(sites.landsat_gap.sum()),
            "tabular_nan_cells": nan_cells,
        },
    }
