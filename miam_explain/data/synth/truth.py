"""What the synthetic generator records about itself: ``truth.json`` and ``truth_sites.csv``.

:func:`visibility` measures how much of each driver each modality shows
(adjusted R^2 of a linear readout from the modality's summary features of the
written files, :func:`modality_readouts`), :func:`modality_signal` sums the
visible logit variance per modality, :func:`coupling_record` measures the planted
correlations between modalities, and :func:`truth_document` / :func:`truth_sites`
assemble the two files (``docs/synthetic.md`` lists every key).
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
    SOIL_COLUMNS,
)
from miam_explain.data.synth.fields import quiet
from miam_explain.data.synth.imbalance import imbalance_record
from miam_explain.data.synth.observations import Features
from miam_explain.data.synth.params import (
    COUPLINGS,
    ECHO_PATTERN,
    EFFECT_MODALITIES,
    GENERATOR_VERSION,
    HEATWAVE_MONTHS,
    HEATWAVE_QUARTER,
    HW_PR_LOG,
    HW_TAS,
    HW_TASMAX,
    HW_TASMIN,
    IMBALANCE_COLUMN,
    LANDCOVER_GREENNESS,
    LANDCOVER_NAMES,
    MODALITIES,
    MOISTURE_SWIR1_LOG,
    MOISTURE_SWIR2_LOG,
    SOIL_DRIVERS,
)
from miam_explain.data.synth.settings import SynthSettings
from miam_explain.data.synth.species import driver_values
from miam_explain.data.synth.world import Sites

__all__ = ["coupling_record", "modality_readouts", "modality_signal", "truth_document", "truth_sites", "visibility"]


def _r2(target: np.ndarray, features: np.ndarray) -> float:
    """Adjusted R^2 of a least-squares fit of ``target`` on ``features`` (NaN imputed by column means), in [0, 1].

    The adjustment for the number of (linearly independent) features keeps a modality with many
    readouts from showing a driver by chance; with too few sites to adjust, it is 0.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(target), -1).copy()
    for col in range(x.shape[1]):
        column = x[:, col]
        fill = np.nanmean(column) if np.isfinite(column).any() else 0.0
        column[~np.isfinite(column)] = fill
    design = np.column_stack([np.ones(len(target)), x])
    coef, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    ss_tot = float(((target - target.mean()) ** 2).sum())
    dof = len(target) - rank
    if ss_tot == 0.0 or dof < 1:
        return 0.0
    r2 = 1.0 - ((target - design @ coef) ** 2).sum() / ss_tot
    return float(np.clip(1.0 - (1.0 - r2) * (len(target) - 1) / dof, 0.0, 1.0))


def modality_readouts(tables: dict[str, pd.DataFrame], features: Features) -> dict[str, np.ndarray]:
    """The summary features of each modality that the visibility is read from, ``{modality: (n, p)}``.

    * tabular: ``Bio1``, ``Bio12``, the soil driver columns, for each land-cover class whether it is
      the row maximum, and the NDVI proxy column when the imbalance regime wrote one;
    * climate: the cube's mean tas, mean log precipitation, and heatwave-year summer tas anomaly;
    * landsat: the mean log reflectance of each band, and the log red / NIR / SWIR1 anomaly of quarter 3
      of the heatwave year;
    * sentinel2: the mean NDVI of the non-cloudy pixels.

    Missing files and cells are NaN here (no information; :func:`visibility` imputes the mean).
    """
    by_column = {c: t[c].to_numpy() for t in tables.values() for c in t.columns if c != "surveyId"}
    lc = np.column_stack([by_column[c] for c in LANDCOVER_COLUMNS])
    with quiet():
        top = np.nanmax(lc, axis=1)
    is_top = [np.where(np.isfinite(col), col >= top, np.nan) for col in lc.T]
    proxy = [by_column[IMBALANCE_COLUMN]] if IMBALANCE_COLUMN in by_column else []  # the imbalance regime's column
    return {
        "tabular": np.column_stack([by_column["Bio1"], by_column["Bio12"], *(by_column[c] for c in SOIL_DRIVERS),
                                    *is_top, *proxy]),
        "climate": np.column_stack([features.clim_tas_mean, features.clim_pr_mean, features.clim_heat]),
        "landsat": np.column_stack([features.landsat_mean, features.landsat_heat]),
        "sentinel2": features.ndvi_seen[:, None],
    }


def visibility(z: np.ndarray, readouts: dict[str, np.ndarray]) -> dict[str, float]:
    """How much of a driver ``z: (n,)`` each modality shows: adjusted R^2 of a linear fit on its readouts."""
    return {m: round(_r2(z, readouts[m]), 4) for m in MODALITIES}


def modality_signal(species: list[dict], contributions: dict[str, np.ndarray], sites: Sites, features: Features,
                    tables: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Variance of the logit visible through each modality, summed over species.

    ``signal[m] = sum_s sum_e Var(beta_se z_e) * R2(z_e | m)``; the R^2 factors
    are returned too, keyed by driver (``bio1``, ``heatwave``, ``ndvi``,
    ``moisture``, ``soil:<variable>``, ``landcover:<class>``).
    """
    signal = dict.fromkeys(MODALITIES, 0.0)
    table: dict[str, dict[str, float]] = {}
    readouts = modality_readouts(tables, features)
    for j, sp in enumerate(species):
        for e, effect in enumerate(sp["effects"]):
            key = effect["type"] + (f":{effect['variable']}" if "variable" in effect else "") + (
                f":{effect['class']}" if "class" in effect else "")
            if key not in table:
                z, _ = driver_values(sites, features, effect)
                table[key] = visibility(z, readouts)
            variance = float(np.var(contributions[f"{j}:{e}"]))
            for m in MODALITIES:
                signal[m] += variance * table[key][m]
    return {m: round(v, 4) for m, v in signal.items()}, table


def coupling_record(sites: Sites, features: Features, rho: float) -> dict:
    """The planted correlations between modalities: the setting and, per coupled driver, the measured one.

    Each pair gives the sample correlation between the driver as species see it (the written soil
    column, the patch NDVI, ``h``, ...) and its signed partner; it is about ``rho`` (exactly ``rho``
    for the latents, a little less through the nonlinear ones) and about 0 when ``rho`` is 0. For land
    cover the driver is the class's greenness sign (``LANDCOVER_GREENNESS``) at the dominant class.
    """
    partners = {"bio1": sites.bio[:, 0], "bio12": sites.bio[:, 11], "landsat_vegetation": sites.vegetation}
    drivers = {
        "landsat_vegetation": sites.vegetation, "moisture": sites.moisture,
        "soil_ph": sites.soil[:, SOIL_COLUMNS.index("Soilgrid-phh2o")],
        "soil_organic_carbon": sites.soil[:, SOIL_COLUMNS.index("Soilgrid-soc")],
        "landcover": np.asarray(LANDCOVER_GREENNESS)[sites.landcover_class - 1],
        "ndvi": features.ndvi, "heatwave": sites.heatwave,
    }
    pairs = []
    for name, (source, sign) in COUPLINGS.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            r = float(np.corrcoef(drivers[name], sign * partners[source])[0, 1])
        pairs.append({"driver": name, "partner": source, "sign": sign,
                      "correlation": round(r, 4) if np.isfinite(r) else 0.0})
    return {"rho": rho, "pairs": pairs}


def truth_sites(sites: Sites, features: Features) -> pd.DataFrame:
    """Per-site latent drivers and missingness flags (``truth_sites.csv``)."""
    return pd.DataFrame({
        "surveyId": sites.survey_id,
        "lat": sites.lat,
        "lon": sites.lon,
        "heatwave_h": np.round(sites.heatwave, 6),
        "ndvi": np.round(features.ndvi, 6),
        "moisture": np.round(sites.moisture, 6),
        "landsat_vegetation": np.round(sites.vegetation, 6),
        "bio1": np.round(sites.bio[:, 0], 6),
        "landcover_class": sites.landcover_class,
        "cloud": np.array(["clear", "blob", "full"])[sites.cloud],
        "tiff_missing": sites.tiff_missing.astype(int),
        "landsat_missing": sites.landsat_missing.astype(int),
        "climate_gap": sites.climate_gap.astype(int),
        "landsat_gap": sites.landsat_gap.astype(int),
    })


def truth_document(species: list[dict], signal: dict[str, float], table: dict[str, dict[str, float]], sites: Sites,
                   features: Features, tables: dict[str, pd.DataFrame], *, n_forced: int, seed: int,
                   heatwave_year: int, spatial: np.ndarray, settings: SynthSettings) -> dict:
    """The ``truth.json`` document (``docs/synthetic.md`` lists every key)."""
    def ids(role: str) -> list[int]:
        return [sp["speciesId"] for sp in species if sp["role"] == role]

    echo = {f"landsat_{band}_log_per_h": round(settings.landsat_echo * f, 6) for band, f in ECHO_PATTERN.items()}

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
        "settings": settings.record(),
        "null_effects": list(settings.null_effects),
        "heatwave": {
            "h_mean": round(float(sites.heatwave.mean()), 6), "h_sd": round(float(sites.heatwave.std()), 6),
            "tas_degC_per_h": HW_TAS, "tasmax_degC_per_h": HW_TASMAX, "tasmin_degC_per_h": HW_TASMIN,
            "pr_log_per_h": HW_PR_LOG, **echo,
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
        "null_species": ids("null"),
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
        "effect_modalities": {k: list(v) + (["tabular"] if k == "ndvi" and settings.imbalance > 0 else [])
                              for k, v in EFFECT_MODALITIES.items()},
        "modality_correlation": coupling_record(sites, features, settings.modality_correlation),
        **({"imbalance": imbalance_record(tables, features.ndvi, settings.imbalance, species)}
           if settings.imbalance > 0 else {}),
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
