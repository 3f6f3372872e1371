"""Synthetic GeoPlant: the GLC25 raw layout with planted, recorded ecological effects.

:func:`synthesize` writes a folder that looks like the real GeoPlant /
GeoLifeCLEF 2025 presence-absence data (metadata CSV, Sentinel-2 GeoTIFF
patches, bioclimatic and Landsat ``.pt`` cubes, environmental CSVs), plus a
``truth.json`` that records the generative model, and a ``truth_sites.csv``
with the per-site latent drivers. ``docs/synthetic.md`` documents the model.

Presence of species ``s`` at site ``i`` is Bernoulli with

    logit p_is = a_s + sum_e beta_se * z_e(i) + g_s(i)

where ``z_e`` are standardised drivers (Bio1, heatwave intensity, patch NDVI,
a soil variable, a land-cover indicator, Landsat moisture) and ``g_s`` a
smooth spatial random effect. Each driver is planted in known modalities:

* Bio1: tabular (``Bio1``) and climate (mean ``tas``);
* heatwave intensity ``h``: year ``heatwave_year`` of the climate cube (summer
  months) and of the Landsat cube (quarter 3);
* NDVI: the Sentinel-2 patch, through red and NIR *jointly*;
* site moisture: the Landsat SWIR bands (every year);
* soil and land cover: tabular.

Realism settings (``anomaly_sd``, ``standardize_anomalies``, ``landsat_echo``,
``modality_correlation``) default to what real data look like; with
``modality_correlation > 0`` other modalities show part of a driver, which
``truth.json`` measures. Null mode (``null_effects``) writes the same inputs
with no species responding to the named effects.

Modules: :mod:`~miam_explain.data.synth.params` (the model's numbers),
:mod:`~miam_explain.data.synth.settings` (realism settings and null effects),
:mod:`~miam_explain.data.synth.fields` (smooth fields, decorrelation, coupling),
:mod:`~miam_explain.data.synth.world` (sites and per-site drivers),
:mod:`~miam_explain.data.synth.observations` (cubes and patches, chunk by chunk),
:mod:`~miam_explain.data.synth.species` (roles, effects, labels),
:mod:`~miam_explain.data.synth.tables` (the CSVs),
:mod:`~miam_explain.data.synth.truth` (``truth.json``, visibility, modality signal) and
:mod:`~miam_explain.data.synth.generate` (:func:`synthesize`). The file names and
layout come from :mod:`miam_explain.data.glc.layout`, shared with the reader.
"""

from __future__ import annotations

from miam_explain.data.glc.layout import CLIMATE_CHANNELS as CLIMATE_VARIABLES
from miam_explain.data.glc.layout import CLIMATE_YEARS, LANDSAT_YEARS, survey_paths
from miam_explain.data.glc.layout import IMAGE_BANDS as SENTINEL2_BANDS
from miam_explain.data.glc.layout import LANDSAT_CHANNELS as LANDSAT_BANDS
from miam_explain.data.synth.generate import synthesize
from miam_explain.data.synth.params import (
    EFFECT_MODALITIES,
    GENERATOR_VERSION,
    HEATWAVE_MONTHS,
    MODALITIES,
)

__all__ = [
    "CLIMATE_VARIABLES",
    "CLIMATE_YEARS",
    "EFFECT_MODALITIES",
    "GENERATOR_VERSION",
    "HEATWAVE_MONTHS",
    "LANDSAT_BANDS",
    "LANDSAT_YEARS",
    "MODALITIES",
    "SENTINEL2_BANDS",
    "survey_paths",
    "synthesize",
]
