"""Synthetic GeoPlant: the GLC25 raw layout with planted, recorded ecological effects.

:func:`synthesize` writes a folder that looks like the real GeoPlant /
GeoLifeCLEF 2025 presence-absence data (metadata CSV, Sentinel-2 GeoTIFF
patches, bioclimatic and Landsat ``.pt`` cubes, environmental CSVs), plus a
``truth.json`` that records the generative model, and a ``truth_sites.csv``
with the per-site latent drivers. ``docs/synthetic.md`` documents the model.

Presence of species ``s`` at site ``i`` is Bernoulli with

    logit p_is = a_s + sum_e beta_se * z_e(i) + g_s(i)

where ``z_e`` are standardised drivers (Bio1, heatwave intensity, patch NDVI,
a soil variable, a land-cover indicator) and ``g_s`` a smooth spatial random
effect. Each driver is built so that it is visible through known modalities
only:

* Bio1: tabular (``Bio1``) and climate (mean ``tas``);
* heatwave intensity ``h``: year ``heatwave_year`` of the climate cube (summer
  months) and of the Landsat cube (quarter 3) only;
* NDVI: the Sentinel-2 patch only, through red and NIR *jointly*;
* site moisture: the Landsat SWIR bands only (every year);
* soil and land cover: tabular only.

Everything is drawn from ``numpy.random.default_rng(seed)`` (split into
independent named streams), so one seed gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain._io import atomic_path
from miam_explain.errors import ConfigError

__all__ = [
    "CLIMATE_VARIABLES",
    "CLIMATE_YEARS",
    "HEATWAVE_MONTHS",
    "LANDSAT_BANDS",
    "LANDSAT_YEARS",
    "MODALITIES",
    "SENTINEL2_BANDS",
    "synthesize",
    "survey_paths",
]

#: Version of the layout written (the real GLC25 / GeoPlant raw layout).
LAYOUT = "glc25"
#: Bump when the generative model changes (recorded in truth.json).
#: 2: Landsat moisture species, a stronger climate heatwave imprint and a weaker Landsat echo, stronger NDVI
#: species and a wider red/NIR brightness spread (docs/synthetic.md, "Changes in version 2").
GENERATOR_VERSION = 2

SENTINEL2_BANDS: tuple[str, ...] = ("red", "green", "blue", "nir")
LANDSAT_BANDS: tuple[str, ...] = ("red", "green", "blue", "nir", "swir1", "swir2")
CLIMATE_VARIABLES: tuple[str, ...] = ("pr", "tas", "tasmin", "tasmax")
CLIMATE_YEARS: tuple[int, ...] = tuple(range(2000, 2019))
LANDSAT_YEARS: tuple[int, ...] = tuple(range(2000, 2021))
HEATWAVE_MONTHS: tuple[int, ...] = (6, 7, 8)
HEATWAVE_QUARTER = 3
#: Modality names, as the consolidated dataset names them.
MODALITIES: tuple[str, ...] = ("tabular", "climate", "landsat", "sentinel2")

BIOCLIM_COLUMNS: tuple[str, ...] = tuple(f"Bio{i}" for i in range(1, 20))
SOIL_COLUMNS: tuple[str, ...] = tuple(
    f"Soilgrid-{v}" for v in ("bdod", "cec", "clay", "nitrogen", "phh2o", "sand", "silt", "soc")
)
FOOTPRINT_COLUMNS: tuple[str, ...] = (
    "HumanFootprint-Built1994",
    "HumanFootprint-Built2009",
    "HumanFootprint-Popdensity2009",
    "HumanFootprint-Roads",
)
N_LANDCOVER = 8
LANDCOVER_COLUMNS: tuple[str, ...] = tuple(f"LandCover-{k}" for k in range(1, N_LANDCOVER + 1))
#: Cosmetic names of the 8 land-cover classes (documentation only).
LANDCOVER_NAMES: tuple[str, ...] = (
    "cropland", "broadleaf forest", "coniferous forest", "grassland",
    "shrubland", "wetland", "urban", "bare or water",
)
METADATA_COLUMNS: tuple[str, ...] = (
    "lon", "lat", "year", "geoUncertaintyInM", "areaInM2", "region", "country", "speciesId", "surveyId",
)
#: Soil variables that drive the soil species (cycled over them).
SOIL_DRIVERS: tuple[str, ...] = ("Soilgrid-phh2o", "Soilgrid-sand", "Soilgrid-soc")
#: Effect types, and the modalities through which each one is visible.
EFFECT_MODALITIES: dict[str, tuple[str, ...]] = {
    "bio1": ("tabular", "climate"),
    "heatwave": ("climate", "landsat"),
    "ndvi": ("sentinel2",),
    "soil": ("tabular",),
    "landcover": ("tabular",),
    "moisture": ("landsat",),
}
#: Species roles after the first one of each kind, cycled. Every prefix has at least as many heatwave species as
#: soil plus land-cover species, so climate stays dominant; with 24 species the counts are 7 heatwave, 6 bio1,
#: 4 ndvi, 4 moisture, 2 soil and 1 landcover.
_ROLE_CYCLE: tuple[str, ...] = (
    "bio1", "heatwave", "ndvi", "heatwave", "moisture", "bio1", "heatwave", "ndvi", "soil", "heatwave",
    "moisture", "bio1", "heatwave", "ndvi", "bio1", "moisture", "heatwave", "bio1", "landcover", "ndvi",
)
#: Coefficient ranges (per standard deviation of the driver; landcover per unit indicator).
_COEF_RANGES: dict[str, tuple[float, float]] = {
    "bio1": (1.2, 2.0),
    "heatwave": (2.0, 2.8),
    "heatwave_bio1": (0.3, 0.6),
    "ndvi": (1.6, 2.2),
    "soil": (0.9, 1.4),
    "landcover": (1.5, 2.2),
    "moisture": (1.3, 1.9),
}
SPATIAL_SD = 0.5
TARGET_PREVALENCE = (0.15, 0.5)

# Heatwave imprint per unit intensity h.
HW_TAS, HW_TASMAX, HW_TASMIN, HW_PR_LOG = 3.5, 4.5, 2.5, -0.5  # degC, degC, degC, log-factor
HW_NIR_LOG, HW_SWIR1_LOG, HW_SWIR2_LOG = -0.03, 0.02, 0.02  # log-factors, quarter 3 (a weak echo of the climate signal)

# Landsat site moisture: log-factors on SWIR1 / SWIR2 per unit sd of the moisture latent (water absorbs SWIR).
MOISTURE_SWIR1_LOG, MOISTURE_SWIR2_LOG = -0.20, -0.25

# Sentinel-2 patch model.
PATCH = 64
PATCH_GRID = 5
RN_BASE = 500.0  # geometric mean of red and NIR at unit brightness (reflectance x 1e4)
GREEN_BASE, BLUE_BASE = 700.0, 450.0
BRIGHTNESS_SIGMA = 0.8  # sd of log brightness; 3.2 x NDVI_SCALE, so red or NIR alone shows little of the NDVI
NDVI_LOC, NDVI_SCALE = 0.6, 0.25  # atanh(NDVI) ~ N(loc, scale)

# Missing-data model (rates per site).
TIFF_MISSING_RATE = 0.02
LANDSAT_MISSING_RATE = 0.01
CLOUD_BLOB_RATE = 0.10
CLOUD_FULL_RATE = 0.03
SERIES_GAP_RATE = 0.05
TABULAR_NAN_RATE = 0.005

_LAT_RANGE = (40.0, 55.0)
_LON_RANGE = (-5.0, 20.0)
_COS_LAT = math.cos(math.radians(47.5))
_CHUNK = 256
_STREAMS: tuple[str, ...] = (
    "sites", "elevation", "climate_base", "soil", "footprint", "landcover", "heatwave", "spatial",
    "species", "missing", "tabular_nan", "climate", "landsat", "patch", "gaps", "labels", "metadata",
)

_GDAL_METADATA = (
    "<GDALMetadata>\n"
    + "".join(
        f'  <Item name="DESCRIPTION" sample="{i}" role="description">{b}</Item>\n' for i, b in enumerate(SENTINEL2_BANDS)
    )
    + "</GDALMetadata>"
)
_TIFF_EXTRATAGS = [(42113, "s", 0, "0", True), (42112, "s", 0, _GDAL_METADATA, True)]


# ----------------------------------------------------------------- site state
@dataclass
class Sites:
    """Per-site state that is cheap to hold for every site (no images, no cubes).

    Every array has the site count ``n`` as its first axis.
    """

    survey_id: np.ndarray  # (n,) int64
    lat: np.ndarray  # (n,) float64, degrees
    lon: np.ndarray  # (n,) float64, degrees
    xy: np.ndarray  # (n, 2) planar coordinates in degrees of latitude
    elevation: np.ndarray  # (n,) m
    tas: np.ndarray  # (n, 12) baseline 1981-2010 monthly mean temperature, degC
    tasmin: np.ndarray  # (n, 12) degC
    tasmax: np.ndarray  # (n, 12) degC
    pr: np.ndarray  # (n, 12) mm / month
    bio: np.ndarray  # (n, 19) Bio1..Bio19
    soil: np.ndarray  # (n, 8) SOIL_COLUMNS
    footprint: np.ndarray  # (n, 4) FOOTPRINT_COLUMNS
    landcover: np.ndarray  # (n, 8) fractions, rows sum to 1
    landcover_class: np.ndarray  # (n,) int, dominant class 1..8
    heatwave: np.ndarray  # (n,) h >= 0
    year_fields: np.ndarray  # (n, 19) regional temperature anomaly of each year (unit sd)
    year_pr_fields: np.ndarray  # (n, 19) regional precipitation anomaly of each year (unit sd)
    month_anomaly: np.ndarray  # (19, 12) Europe-wide monthly temperature anomaly, degC
    landsat_base: np.ndarray  # (n, 6) mean Landsat reflectance per band (0..255 scale)
    moisture: np.ndarray  # (n,) Landsat site moisture latent (unit sd), lowers SWIR
    ndvi_latent: np.ndarray  # (n,) atanh of the site NDVI
    brightness_rn: np.ndarray  # (n,) log-normal brightness shared by red and NIR
    brightness_gb: np.ndarray  # (n,) independent log-normal brightness of green and blue
    cloud: np.ndarray  # (n,) 0 clear, 1 cloud blob, 2 fully cloudy
    tiff_missing: np.ndarray  # (n,) bool
    landsat_missing: np.ndarray  # (n,) bool
    climate_gap: np.ndarray  # (n,) bool
    landsat_gap: np.ndarray  # (n,) bool


@dataclass
class Features:
    """Per-site readouts of the written files, filled chunk by chunk.

    They give the patch NDVI driver and the visibility (R^2) of each driver
    through each modality.
    """

    ndvi: np.ndarray  # (n,) cloud-free patch mean NDVI (the NDVI driver)
    ndvi_seen: np.ndarray  # (n,) patch mean NDVI over non-nodata pixels of the written TIFF (NaN if none)
    red_seen: np.ndarray  # (n,) mean red of the written TIFF (NaN if none)
    clim_tas_mean: np.ndarray  # (n,) mean tas of the written cube, degC
    clim_heat: np.ndarray  # (n,) summer tas of heatwave year minus other summers, degC
    landsat_heat: np.ndarray  # (n, 2) log nir / log swir1 anomaly of quarter 3 of the heatwave year
    landsat_mean: np.ndarray  # (n, 6) mean log reflectance per Landsat band over all years and quarters

    @classmethod
    def empty(cls, n: int) -> Features:
        nan = np.full(n, np.nan)
        return cls(nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.full((n, 2), np.nan),
                   np.full((n, len(LANDSAT_BANDS)), np.nan))


# --------------------------------------------------------------------- checks
def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _validate(n_sites: int, n_species: int, seed: int, heatwave_year: int) -> None:
    """Raise :class:`ConfigError` with a one-line fix for a bad argument."""
    if not _is_int(n_sites) or not 10 <= n_sites <= 8_999_999:
        raise ConfigError(f"n_sites must be an integer between 10 and 8999999 (got {n_sites!r}); pass e.g. --sites 2000")
    if not _is_int(n_species) or not 6 <= n_species <= 10_000:
        raise ConfigError(f"n_species must be an integer between 6 and 10000 (got {n_species!r}); pass e.g. --species 24")
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer (got {seed!r}); pass e.g. --seed 0")
    if not _is_int(heatwave_year) or not CLIMATE_YEARS[0] <= heatwave_year <= CLIMATE_YEARS[-1]:
        raise ConfigError(
            f"heatwave_year must be an integer in {CLIMATE_YEARS[0]}..{CLIMATE_YEARS[-1]} (got {heatwave_year!r}); "
            "pass e.g. --heatwave-year 2003"
        )


# --------------------------------------------------------------------- fields
def smooth_fields(rng: np.random.Generator, xy: np.ndarray, n_fields: int, lengthscale: float,
                  n_features: int = 16) -> np.ndarray:
    """Independent smooth random fields: random Fourier features (a Gaussian-process stand-in).

    Each field is ``sqrt(2/F) * sum_f cos(w_f . xy + phi_f)`` with
    ``w_f ~ N(0, I / lengthscale^2)``, which approximates a GP with a squared
    exponential kernel and unit variance.

    Args:
        rng: Random generator.
        xy: ``(n, 2)`` planar coordinates (degrees).
        n_fields: Number of independent fields.
        lengthscale: Correlation length in degrees.
        n_features: Cosines per field.

    Returns:
        ``(n, n_fields)`` float64 array, roughly zero mean and unit variance.
    """
    w = rng.normal(0.0, 1.0 / lengthscale, size=(n_fields, n_features, 2))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(n_fields, n_features))
    out = np.empty((xy.shape[0], n_fields))
    for k in range(n_fields):
        out[:, k] = np.cos(xy @ w[k].T + phi[k]).sum(axis=1)
    return out * math.sqrt(2.0 / n_features)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _standardize_columns(x: np.ndarray) -> np.ndarray:
    """Columns of ``x: (n, k)`` with zero mean and unit sd over the rows (a constant column is only centred)."""
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _mixed(field: np.ndarray, rng: np.random.Generator, spatial: float) -> np.ndarray:
    """Mix a unit smooth field with independent site noise: ``spatial*f + sqrt(1-spatial^2)*e``."""
    return spatial * field + math.sqrt(1.0 - spatial**2) * rng.standard_normal(field.shape)


def decorrelate(latent: np.ndarray, against: np.ndarray) -> np.ndarray:
    """Remove from ``latent`` its least-squares fit on ``against`` (keeping its mean and sd).

    Independent smooth fields are correlated by chance over a finite region
    (few effective degrees of freedom), which would let a model read one
    planted driver from another modality. Projecting it out makes every
    sample correlation with ``against`` exactly zero (a nonlinear model could
    still read location from smooth inputs; the local, non-spatial part of
    each driver guards against that). It is skipped when there are fewer
    than two sites per regressor.

    Args:
        latent: ``(n,)`` or ``(n, k)`` latent values (columns handled independently).
        against: ``(n, p)`` other per-site quantities (finite).

    Returns:
        Array shaped like ``latent``.
    """
    n = latent.shape[0]
    if against.shape[1] == 0 or n < 2 * (against.shape[1] + 1):
        return latent
    x = (against - against.mean(axis=0)) / np.where(against.std(axis=0) > 0, against.std(axis=0), 1.0)
    design = np.column_stack([np.ones(n), x])
    y = latent.reshape(n, -1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    scale = y.std(axis=0) / np.where(resid.std(axis=0) > 0, resid.std(axis=0), 1.0)
    return (y.mean(axis=0) + resid * scale).reshape(latent.shape)


def site_locations(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Survey locations in Europe: 60% in survey clusters, 40% scattered.

    Returns:
        ``(lat, lon)``, each ``(n,)`` degrees, rounded to 5 decimals.
    """
    n_clusters = max(5, n // 80)
    c_lat = rng.uniform(*_LAT_RANGE, size=n_clusters)
    c_lon = rng.uniform(*_LON_RANGE, size=n_clusters)
    which = rng.integers(0, n_clusters, size=n)
    clustered = rng.random(n) < 0.6
    lat = np.where(clustered, c_lat[which] + rng.normal(0, 0.6, n), rng.uniform(*_LAT_RANGE, size=n))
    lon = np.where(clustered, c_lon[which] + rng.normal(0, 0.6 / _COS_LAT, n), rng.uniform(*_LON_RANGE, size=n))
    return np.round(np.clip(lat, *_LAT_RANGE), 5), np.round(np.clip(lon, *_LON_RANGE), 5)


def elevation_field(rng: np.random.Generator, xy: np.ndarray) -> np.ndarray:
    """Elevation in m (mountain ranges from a smooth field, plus local relief). Shape ``(n,)``."""
    f = smooth_fields(rng, xy, 1, 2.5)[:, 0]
    local = rng.standard_normal(len(f))
    return np.round(80.0 + 700.0 * _softplus(1.4 * f - 0.6) * np.exp(0.15 * local), 1)


def baseline_climate(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, xy: np.ndarray,
                     elevation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Monthly 1981-2010 climatology per site.

    Annual temperature falls with latitude and elevation (lapse rate 5.5 K/km)
    and varies with a smooth field; seasonality grows eastward; the south has
    dry summers.

    Returns:
        ``(tas, tasmin, tasmax, pr)``, each ``(n, 12)``: degC and mm/month.
    """
    f = smooth_fields(rng, xy, 4, 4.0)
    n = len(lat)
    local = rng.standard_normal(n)
    months = np.arange(12)
    season = -np.cos(2.0 * np.pi * (months - 0.4) / 12.0)  # -1 mid-January, +1 mid-July
    t_mean = 14.0 - 0.55 * (lat - 47.5) + 1.0 * f[:, 0] + 0.3 * local - 0.0055 * elevation
    amplitude = np.clip(7.5 + 0.12 * (lon - 7.5) + 1.0 * f[:, 1], 4.0, 12.0)
    tas = t_mean[:, None] + amplitude[:, None] * season[None, :]
    dtr = np.clip(8.0 + 1.2 * f[:, 2][:, None] + 2.0 * season[None, :], 3.0, 16.0)
    p_annual = np.clip(750.0 + 220.0 * f[:, 3] + 0.35 * elevation + 60.0 * rng.standard_normal(n), 250.0, None)
    dry_summer = np.clip((45.5 - lat) / 5.0, 0.0, 1.0)
    weights = 1.0 - 0.7 * dry_summer[:, None] * season[None, :] + 0.1 * np.cos(2.0 * np.pi * (months - 10) / 12.0)
    weights = np.clip(weights, 0.15, None)
    pr = p_annual[:, None] * weights / weights.sum(axis=1, keepdims=True)
    return tas, tas - dtr / 2.0, tas + dtr / 2.0, pr


def bioclim(tas: np.ndarray, tasmin: np.ndarray, tasmax: np.ndarray, pr: np.ndarray) -> np.ndarray:
    """The 19 WorldClim bioclimatic variables from a monthly climatology.

    Args:
        tas, tasmin, tasmax: ``(n, 12)`` monthly temperatures, degC.
        pr: ``(n, 12)`` monthly precipitation, mm.

    Returns:
        ``(n, 19)`` Bio1..Bio19 (degC, mm, Bio3 and Bio15 in %, Bio4 = 100 x sd).
    """
    n = tas.shape[0]
    rows = np.arange(n)
    quarter = (np.arange(12)[:, None] + np.arange(3)[None, :]) % 12  # (12, 3) rolling quarters
    q_tas = tas[:, quarter].mean(axis=2)
    q_pr = pr[:, quarter].sum(axis=2)
    bio2 = (tasmax - tasmin).mean(axis=1)
    bio5, bio6 = tasmax.max(axis=1), tasmin.min(axis=1)
    bio7 = bio5 - bio6
    columns = [
        tas.mean(axis=1), bio2, 100.0 * bio2 / bio7, 100.0 * tas.std(axis=1), bio5, bio6, bio7,
        q_tas[rows, q_pr.argmax(axis=1)], q_tas[rows, q_pr.argmin(axis=1)], q_tas.max(axis=1), q_tas.min(axis=1),
        pr.sum(axis=1), pr.max(axis=1), pr.min(axis=1), 100.0 * pr.std(axis=1) / (1.0 + pr.mean(axis=1)),
        q_pr.max(axis=1), q_pr.min(axis=1), q_pr[rows, q_tas.argmax(axis=1)], q_pr[rows, q_tas.argmin(axis=1)],
    ]
    return np.stack(columns, axis=1)


def soil_table(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray) -> np.ndarray:
    """SoilGrids-like topsoil values (SoilGrids integer units), independent of climate.

    Sand, silt and clay (g/kg) sum to 1000; cec rises with clay and soc; bdod
    falls with soc. Each latent variable mixes a smooth field with local noise
    and is decorrelated from ``against`` (see :func:`decorrelate`).

    Args:
        rng: The ``soil`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` quantities of the other modalities (climate, Landsat).

    Returns:
        ``(n, 8)`` in :data:`SOIL_COLUMNS` order.
    """
    f = smooth_fields(rng, xy, 5, 3.0)
    latent = decorrelate(np.stack([_mixed(f[:, k], rng, 0.8) for k in range(5)], axis=1), against)
    texture = latent[:, :3]
    share = np.exp(0.7 * texture + np.array([0.4, 0.3, -0.5]))
    share /= share.sum(axis=1, keepdims=True)
    sand, silt, clay = (1000.0 * share[:, k] for k in range(3))
    ph = 62.0 + 9.0 * latent[:, 3]
    organic = latent[:, 4]
    soc = 180.0 * np.exp(0.5 * organic)
    nitrogen = 25.0 + 1.1 * soc * np.exp(0.1 * rng.standard_normal(len(soc)))
    cec = 60.0 + 0.4 * clay + 0.35 * soc + 15.0 * rng.standard_normal(len(soc))
    bdod = 150.0 - 0.08 * soc + 5.0 * rng.standard_normal(len(soc))
    table = np.stack([bdod, cec, clay, nitrogen, ph, sand, silt, soc], axis=1)
    return np.round(np.clip(table, 1.0, None))


def landcover_table(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of 8 land-cover classes with one dominant class per site.

    The dominant class is the argmax of 8 smooth scores (decorrelated from
    ``against``) plus Gumbel noise; it takes a fraction in U(0.5, 0.95), the
    other classes share the rest (Dirichlet(0.7)).

    Args:
        rng: The ``landcover`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` quantities of the other modalities and of soil.

    Returns:
        ``(fractions (n, 8), dominant class (n,) in 1..8)``; rows sum to 1.
    """
    n = xy.shape[0]
    scores = 1.2 * decorrelate(smooth_fields(rng, xy, N_LANDCOVER, 2.0), against) + rng.gumbel(size=(n, N_LANDCOVER))
    dominant = scores.argmax(axis=1)
    major = rng.uniform(0.5, 0.95, size=n)
    rest = rng.dirichlet(np.full(N_LANDCOVER - 1, 0.7), size=n) * (1.0 - major)[:, None]
    fractions = np.empty((n, N_LANDCOVER))
    others = np.ones((n, N_LANDCOVER), dtype=bool)
    others[np.arange(n), dominant] = False
    fractions[others] = np.round(rest, 4).ravel()
    fractions[np.arange(n), dominant] = 1.0 - fractions[others].reshape(n, -1).sum(axis=1)
    return np.round(fractions, 4), dominant + 1


def footprint_table(rng: np.random.Generator, xy: np.ndarray, landcover_class: np.ndarray) -> np.ndarray:
    """Human-footprint scores (0..10, roads 0..8), higher on urban land cover. Shape ``(n, 4)``."""
    urban = _mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, 0.7) + 2.0 * (landcover_class == 7)
    n = len(urban)
    built2009 = 10.0 * _sigmoid(2.0 * urban - 2.5)
    built1994 = built2009 * rng.uniform(0.7, 1.0, size=n)
    popdensity = np.clip(3.0 * _softplus(urban + 0.5 * rng.standard_normal(n)), 0.0, 10.0)
    roads = 8.0 * _sigmoid(urban - 0.5 + 0.5 * rng.standard_normal(n))
    return np.round(np.stack([built1994, built2009, popdensity, roads], axis=1), 3)


def heatwave_intensity(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray) -> np.ndarray:
    """Heatwave intensity ``h >= 0``: its own smooth field plus local (microclimate) noise.

    The local part (half of the variance) and the decorrelation from every
    other input (``against``, see :func:`decorrelate`) keep ``h`` from being
    predictable from location or from any other modality.

    Args:
        rng: The ``heatwave`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` every other per-site input quantity.

    Returns:
        ``(n,)`` float64, mean about 1.
    """
    raw = decorrelate(_mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, math.sqrt(0.5)), against)
    return _softplus(1.3 * raw + 0.2)


def landsat_baseline(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean Landsat reflectance per band (0..255 scale, like the real cubes), and the site moisture latent.

    Two latent fields of its own set the band means: a vegetation field
    (a nuisance that drives no species) and a **moisture** field (local
    hydrology: wet soils and canopies absorb SWIR) that drives the moisture
    species. Both mix a smooth field with local noise and are decorrelated
    from ``against``; moisture is decorrelated from vegetation too.

    Args:
        rng: The ``landsat`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` climate quantities the fields are decorrelated from.

    Returns:
        ``(base (n, 6) in LANDSAT_BANDS order, moisture (n,) standardised)``.
    """
    veg = decorrelate(_mixed(smooth_fields(rng, xy, 1, 2.0)[:, 0], rng, 0.5), against)
    wet = decorrelate(_mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, 0.5), np.column_stack([against, veg]))
    moisture = (wet - wet.mean()) / (wet.std() if wet.std() > 0 else 1.0)
    base = np.array([28.0, 32.0, 18.0, 75.0, 55.0, 30.0])
    slope = np.array([-0.25, -0.10, -0.05, 0.18, -0.10, -0.20])
    wet_slope = np.array([0.0, 0.0, 0.0, 0.0, MOISTURE_SWIR1_LOG, MOISTURE_SWIR2_LOG])
    brightness = np.exp(0.1 * rng.standard_normal(len(veg)))
    log_base = np.log(base)[None, :] + slope[None, :] * veg[:, None] + wet_slope[None, :] * moisture[:, None]
    return np.exp(log_base) * brightness[:, None], moisture


def make_sites(streams: dict[str, np.random.Generator], n: int) -> Sites:
    """Draw every per-site quantity (locations, fields, tables, latent drivers, missingness).

    Args:
        streams: Independent named random generators (see :data:`_STREAMS`).
        n: Number of sites.
    """
    rng = streams["sites"]
    survey_id = 1_000_000 + rng.permutation(n).astype(np.int64)
    lat, lon = site_locations(rng, n)
    xy = np.stack([lon * _COS_LAT, lat], axis=1)
    elevation = elevation_field(streams["elevation"], xy)
    crng = streams["climate_base"]
    tas, tasmin, tasmax, pr = baseline_climate(crng, lat, lon, xy, elevation)
    # Each year's regional anomaly gets zero mean and unit sd over the sites: over a finite region the
    # realised spread of a smooth field varies by chance (0.4..1.9 for 3 000 sites), which would make some
    # years cleaner copies of the climatology than others.
    year_fields = _standardize_columns(smooth_fields(crng, xy, len(CLIMATE_YEARS), 4.0))
    year_pr_fields = _standardize_columns(smooth_fields(crng, xy, len(CLIMATE_YEARS), 4.0))
    month_anomaly = 0.7 * crng.standard_normal((len(CLIMATE_YEARS), 12))
    bio = bioclim(tas, tasmin, tasmax, pr)
    climate_info = np.column_stack([bio, elevation, year_fields, year_pr_fields])
    landsat_base, moisture = landsat_baseline(streams["landsat"], xy, climate_info)
    landsat_info = np.column_stack([np.log(landsat_base), moisture])
    soil = soil_table(streams["soil"], xy, np.column_stack([climate_info, landsat_info]))
    landcover, landcover_class = landcover_table(
        streams["landcover"], xy, np.column_stack([climate_info, landsat_info, soil]))
    footprint = footprint_table(streams["footprint"], xy, landcover_class)
    prng = streams["patch"]
    ndvi_latent = prng.normal(NDVI_LOC, NDVI_SCALE, size=n)
    brightness_rn = np.exp(prng.normal(0.0, BRIGHTNESS_SIGMA, size=n))
    brightness_gb = np.exp(prng.normal(0.0, BRIGHTNESS_SIGMA, size=n))
    everything = np.column_stack([
        climate_info, landsat_info, soil, landcover, footprint, ndvi_latent, brightness_rn, brightness_gb,
    ])
    mrng = streams["missing"]
    cloud_u = mrng.random(n)
    cloud = np.where(cloud_u < CLOUD_FULL_RATE, 2, np.where(cloud_u < CLOUD_FULL_RATE + CLOUD_BLOB_RATE, 1, 0))
    return Sites(
        survey_id=survey_id, lat=lat, lon=lon, xy=xy, elevation=elevation,
        tas=tas, tasmin=tasmin, tasmax=tasmax, pr=pr, bio=bio, soil=soil, footprint=footprint,
        landcover=landcover, landcover_class=landcover_class,
        heatwave=heatwave_intensity(streams["heatwave"], xy, everything),
        year_fields=year_fields, year_pr_fields=year_pr_fields, month_anomaly=month_anomaly,
        landsat_base=landsat_base, moisture=moisture, ndvi_latent=ndvi_latent,
        brightness_rn=brightness_rn, brightness_gb=brightness_gb,
        cloud=cloud,
        tiff_missing=mrng.random(n) < TIFF_MISSING_RATE,
        landsat_missing=mrng.random(n) < LANDSAT_MISSING_RATE,
        climate_gap=mrng.random(n) < SERIES_GAP_RATE,
        landsat_gap=mrng.random(n) < SERIES_GAP_RATE,
    )


# ---------------------------------------------------------------- per chunk
def climate_cubes(rng: np.random.Generator, sites: Sites, idx: np.ndarray, heatwave_year: int) -> np.ndarray:
    """Monthly climate cubes of some sites, in the units of the real GLC cubes.

    ``tas = baseline + 0.03 K/yr trend + regional year anomaly + Europe-wide
    monthly anomaly + noise``; tasmin/tasmax follow with the diurnal range;
    precipitation gets log-normal anomalies. The heatwave adds ``HW_* x h`` to
    the summer months of ``heatwave_year`` only.

    Args:
        rng: The ``climate`` stream.
        sites: All sites.
        idx: ``(c,)`` indices of the sites of this chunk.
        heatwave_year: Year of the heatwave.

    Returns:
        ``(c, 4, 19, 12)`` float32: pr (0.01 mm/month), tas, tasmin, tasmax
        (0.1 K), rounded to integers like the real data.
    """
    c, n_years = len(idx), len(CLIMATE_YEARS)
    trend = 0.03 * (np.asarray(CLIMATE_YEARS) - 1995.0)
    anomaly = (trend[None, :, None] + 0.6 * sites.year_fields[idx][:, :, None] + sites.month_anomaly[None]
               + 0.45 * rng.standard_normal((c, n_years, 12)))
    tas = sites.tas[idx][:, None, :] + anomaly
    half_dtr = ((sites.tasmax - sites.tasmin)[idx] / 2.0)[:, None, :]
    tasmax = tas + half_dtr + 0.3 * rng.standard_normal((c, n_years, 12))
    tasmin = tas - half_dtr + 0.3 * rng.standard_normal((c, n_years, 12))
    log_pr = 0.15 * sites.year_pr_fields[idx][:, :, None] + 0.35 * rng.standard_normal((c, n_years, 12)) - 0.06
    y = heatwave_year - CLIMATE_YEARS[0]
    months = [m - 1 for m in HEATWAVE_MONTHS]
    h = sites.heatwave[idx][:, None]
    tas[:, y, months] += HW_TAS * h
    tasmax[:, y, months] += HW_TASMAX * h
    tasmin[:, y, months] += HW_TASMIN * h
    log_pr[:, y, months] += HW_PR_LOG * h
    pr = sites.pr[idx][:, None, :] * np.exp(log_pr)
    cube = np.stack([100.0 * pr, 10.0 * (tas + 273.15), 10.0 * (tasmin + 273.15), 10.0 * (tasmax + 273.15)], axis=1)
    return np.round(cube).astype(np.float32)


def landsat_cubes(rng: np.random.Generator, sites: Sites, idx: np.ndarray, heatwave_year: int) -> np.ndarray:
    """Quarterly Landsat cubes of some sites (0..255 reflectance scale, integers like the real data).

    Seasonal cycle per band, a per-(site, year) log-normal anomaly and
    per-value noise. In quarter 3 of ``heatwave_year`` NIR drops and SWIR rises
    with ``h``.

    Args:
        rng: The ``landsat`` stream.
        sites: All sites.
        idx: ``(c,)`` indices of the sites of this chunk.
        heatwave_year: Year of the heatwave.

    Returns:
        ``(c, 6, 4, 21)`` float32, band x quarter x year.
    """
    c, n_years = len(idx), len(LANDSAT_YEARS)
    seasonal = np.array([
        [1.10, 0.90, 0.90, 1.10], [1.05, 0.95, 0.95, 1.05], [1.05, 0.95, 0.95, 1.05],
        [0.85, 1.10, 1.15, 0.90], [1.00, 1.00, 1.05, 0.95], [1.05, 0.95, 1.00, 1.00],
    ])
    log_value = (np.log(sites.landsat_base[idx])[:, :, None, None] + np.log(seasonal)[None, :, :, None]
                 + 0.04 * rng.standard_normal((c, 1, 1, n_years)) + 0.05 * rng.standard_normal((c, 6, 4, n_years)))
    y, q = heatwave_year - LANDSAT_YEARS[0], HEATWAVE_QUARTER - 1
    h = sites.heatwave[idx]
    log_value[:, 3, q, y] += HW_NIR_LOG * h
    log_value[:, 4, q, y] += HW_SWIR1_LOG * h
    log_value[:, 5, q, y] += HW_SWIR2_LOG * h
    return np.clip(np.round(np.exp(log_value)), 1.0, 255.0).astype(np.float32)


def _upsample_matrix(low: int, high: int) -> np.ndarray:
    """``(high, low)`` linear-interpolation weights from ``low`` control points to ``high`` pixels."""
    pos = np.linspace(0.0, low - 1.0, high)
    left = np.clip(np.floor(pos).astype(int), 0, low - 2)
    frac = pos - left
    w = np.zeros((high, low))
    w[np.arange(high), left] = 1.0 - frac
    w[np.arange(high), left + 1] = frac
    return w


def _textures(rng: np.random.Generator, c: int, k: int, low: int = 6) -> np.ndarray:
    """``(c, k, 64, 64)`` smooth zero-mean textures with unit variance per pixel."""
    w = _upsample_matrix(low, PATCH)
    grid = rng.standard_normal((c, k, low, low))
    tex = np.einsum("pl,ckls,qs->ckpq", w, grid, w)
    var = (w**2).sum(axis=1)
    return tex / np.sqrt(var[:, None] * var[None, :])


def sentinel_patches(rng: np.random.Generator, sites: Sites, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sentinel-2 patches of some sites, before clouds.

    Red and NIR are ``RN_BASE * b * exp(-/+ a)`` per pixel, with ``a`` the
    site's ``atanh(NDVI)`` plus a smooth texture and ``b`` a per-site
    log-normal brightness, so NDVI = tanh(a) does not depend on ``b``, while
    each band alone does. Green and blue use an independent brightness.

    Args:
        rng: The ``patch`` stream.
        sites: All sites.
        idx: ``(c,)`` indices of the sites of this chunk.

    Returns:
        ``(patches (c, 64, 64, 4) uint16 in 1..10000, cloud-free mean NDVI (c,))``.
    """
    c = len(idx)
    tex = _textures(rng, c, 3)
    noise = 0.03 * rng.standard_normal((c, 4, PATCH, PATCH))
    a = sites.ndvi_latent[idx][:, None, None] + 0.12 * tex[:, 0]
    shade = 0.15 * tex[:, 1]
    log_rn = math.log(RN_BASE) + np.log(sites.brightness_rn[idx])[:, None, None] + shade
    log_gb = np.log(sites.brightness_gb[idx])[:, None, None] + shade + 0.08 * tex[:, 2]
    bands = np.stack([
        log_rn - a + noise[:, 0],
        math.log(GREEN_BASE) + log_gb + noise[:, 1],
        math.log(BLUE_BASE) + log_gb + noise[:, 2],
        log_rn + a + noise[:, 3],
    ], axis=-1)
    patches = np.clip(np.round(np.exp(bands)), 1, 10000).astype(np.uint16)
    red = patches[..., 0].astype(np.float64)
    nir = patches[..., 3].astype(np.float64)
    ndvi = ((nir - red) / (nir + red)).mean(axis=(1, 2))
    return patches, ndvi


def add_clouds(rng: np.random.Generator, patches: np.ndarray, cloud: np.ndarray) -> None:
    """Set cloudy pixels to nodata 0, in place: an elliptic blob (cloud=1) or the whole patch (cloud=2).

    Args:
        rng: The ``patch`` stream.
        patches: ``(c, 64, 64, 4)`` uint16.
        cloud: ``(c,)`` cloud state per site.
    """
    yy, xx = np.mgrid[0:PATCH, 0:PATCH]
    for i in np.flatnonzero(cloud == 1):
        cy, cx = rng.uniform(0, PATCH, size=2)
        ry, rx = rng.uniform(6.0, 20.0, size=2)
        patches[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = 0
    patches[cloud == 2] = 0


def add_series_gaps(rng: np.random.Generator, cubes: np.ndarray, flagged: np.ndarray) -> None:
    """Put NaN gaps into the cubes of flagged sites, in place.

    Half of the flagged sites lose 1-3 whole (channel, year) rows, the others
    1-4 single values.

    Args:
        rng: The ``gaps`` stream.
        cubes: ``(c, channel, ...)`` float32 cubes; the year axis is found by shape.
        flagged: ``(c,)`` bool.
    """
    for i in np.flatnonzero(flagged):
        cube = cubes[i]
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 4))):
                channel = int(rng.integers(0, cube.shape[0]))
                if cube.shape[1:] == (len(CLIMATE_YEARS), 12):  # climate: channel x year x month
                    cube[channel, int(rng.integers(0, cube.shape[1])), :] = np.nan
                else:  # landsat: band x quarter x year
                    cube[channel, :, int(rng.integers(0, cube.shape[2]))] = np.nan
        else:
            for _ in range(int(rng.integers(1, 5))):
                cube[tuple(int(rng.integers(0, s)) for s in cube.shape)] = np.nan


# ------------------------------------------------------------------ features
def _climate_features(cubes: np.ndarray, heatwave_year: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean tas degC (c,), heatwave-year summer tas minus other summers degC (c,))`` from written cubes."""
    tas = cubes[:, 1].astype(np.float64) / 10.0 - 273.15  # (c, year, month)
    y = heatwave_year - CLIMATE_YEARS[0]
    summer = tas[:, :, [m - 1 for m in HEATWAVE_MONTHS]]
    others = np.delete(summer, y, axis=1)
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(tas, axis=(1, 2)), np.nanmean(summer[:, y], axis=1) - np.nanmean(others, axis=(1, 2))


def _landsat_features(cubes: np.ndarray, heatwave_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Readouts of written Landsat cubes ``(c, 6, 4, 21)``.

    Returns:
        ``(heat (c, 2), mean (c, 6))``: the log NIR and log SWIR1 anomaly of
        quarter 3 of the heatwave year vs the other years, and the mean log
        reflectance of each band over all quarters and years.
    """
    y, q = heatwave_year - LANDSAT_YEARS[0], HEATWAVE_QUARTER - 1
    heat = np.empty((cubes.shape[0], 2))
    logs = np.log(cubes.astype(np.float64))
    with _quiet():
        for k, band in enumerate((3, 4)):
            series = logs[:, band, q, :]
            heat[:, k] = series[:, y] - np.nanmean(np.delete(series, y, axis=1), axis=1)
        return heat, np.nanmean(logs, axis=(2, 3))


def _patch_features(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean NDVI, mean red)`` over non-nodata pixels of written patches; NaN when fully cloudy."""
    red = patches[..., 0].astype(np.float64)
    nir = patches[..., 3].astype(np.float64)
    valid = (patches != 0).all(axis=-1)
    count = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = np.where(valid, (nir - red) / (nir + red), 0.0).sum(axis=(1, 2)) / count
        mean_red = np.where(valid, red, 0.0).sum(axis=(1, 2)) / count
    return np.where(count > 0, ndvi, np.nan), np.where(count > 0, mean_red, np.nan)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' warnings (all-NaN rows are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ------------------------------------------------------------------ writers
def survey_paths(root: Path, survey_id: int) -> tuple[Path, Path, Path]:
    """Where the files of one survey go in the GLC25 layout.

    Returns:
        ``(tiff, climate cube, landsat cube)`` paths under ``root``; the TIFF
        is under ``SatelitePatches/PA-train/CD/AB/`` with CD the last two
        digits of the id and AB the two before them.
    """
    sid = int(survey_id)
    tiff = root / "SatelitePatches" / "PA-train" / f"{sid % 100:02d}" / f"{sid // 100 % 100:02d}" / f"{sid}.tiff"
    climate = (root / "BioclimTimeSeries" / "cubes" / "PA-train"
               / f"GLC25-PA-train-bioclimatic_monthly_{sid}_cube.pt")
    landsat = (root / "SateliteTimeSeries-Landsat" / "cubes" / "PA-train"
               / f"GLC25-PA-train-landsat-time-series_{sid}_cube.pt")
    return tiff, climate, landsat


def write_tiff(path: Path, patch: np.ndarray) -> None:
    """Write one ``(64, 64, 4)`` uint16 patch as an LZW GeoTIFF with GDAL nodata and band names."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, patch, photometric="minisblack", planarconfig="contig", compression="lzw",
                     extratags=_TIFF_EXTRATAGS, metadata=None)


def write_cube(path: Path, cube: np.ndarray) -> None:
    """Write one float32 cube as a torch tensor loadable with ``torch.load(weights_only=True)``."""
    import torch

    torch.save(torch.from_numpy(np.ascontiguousarray(cube, dtype=np.float32)).clone(), path)


def _with_nans(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """A float copy of ``values`` with about :data:`TABULAR_NAN_RATE` of its cells set to NaN."""
    out = values.astype(np.float64).copy()
    out[rng.random(out.shape) < TABULAR_NAN_RATE] = np.nan
    return out


def tabular_tables(rng: np.random.Generator, sites: Sites) -> dict[str, pd.DataFrame]:
    """The environmental CSVs (relative path -> table keyed by surveyId), with a few NaN cells."""
    env = Path("EnvironmentalValues")
    blocks = {
        env / "Climate" / "Average 1981-2010" / "GLC25-PA-train-bioclimatic.csv": (BIOCLIM_COLUMNS, np.round(sites.bio, 3)),
        env / "Elevation" / "GLC25-PA-train-elevation.csv": (("Elevation",), sites.elevation[:, None]),
        env / "SoilGrids" / "GLC25-PA-train-soilgrids.csv": (SOIL_COLUMNS, sites.soil),
        env / "HumanFootprint" / "GLC25-PA-train-human_footprint.csv": (FOOTPRINT_COLUMNS, sites.footprint),
        env / "LandCover" / "GLC25-PA-train-landcover.csv": (LANDCOVER_COLUMNS, sites.landcover),
    }
    tables = {}
    for rel, (columns, values) in blocks.items():
        frame = pd.DataFrame(_with_nans(rng, values), columns=list(columns))
        frame.insert(0, "surveyId", sites.survey_id)
        tables[str(rel)] = frame
    return tables


def _region_country(lat: np.ndarray, lon: np.ndarray, elevation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosmetic biogeographic region and country names from coarse boxes (not used by any effect)."""
    region = np.select(
        [elevation > 1500, lat < 44.0, (lon < 3.0) | (lat > 52.0), (lon > 16.0) & (lat < 49.0)],
        ["ALPINE", "MEDITERRANEAN", "ATLANTIC", "PANNONIAN"], default="CONTINENTAL",
    )
    names = np.array([
        ["Spain", "France", "Italy", "Italy"],
        ["France", "Switzerland", "Austria", "Hungary"],
        ["France", "Germany", "Czechia", "Poland"],
        ["United Kingdom", "Netherlands", "Germany", "Poland"],
    ])
    row = np.clip(np.searchsorted([44.0, 48.0, 52.0], lat, side="right"), 0, 3)
    col = np.clip(np.searchsorted([3.0, 10.0, 15.0], lon, side="right"), 0, 3)
    return region, names[row, col]


def metadata_table(rng: np.random.Generator, sites: Sites, presence: np.ndarray,
                   species_ids: np.ndarray) -> pd.DataFrame:
    """The long-format metadata: one row per (survey, present species).

    Args:
        rng: The ``metadata`` stream.
        sites: All sites.
        presence: ``(n, K)`` bool.
        species_ids: ``(K,)`` int species ids.
    """
    n = len(sites.survey_id)
    year = rng.integers(2017, 2022, size=n)
    uncertainty = rng.choice([1.0, 5.0, 10.0, 25.0, 50.0, 100.0], size=n)
    area = rng.choice([1.0, 4.0, 10.0, 16.0, 25.0, 50.0, 79.0, 100.0, 200.0, 400.0], size=n)
    region, country = _region_country(sites.lat, sites.lon, sites.elevation)
    site, sp = np.nonzero(presence)
    return pd.DataFrame({
        "lon": sites.lon[site], "lat": sites.lat[site], "year": year[site],
        "geoUncertaintyInM": uncertainty[site], "areaInM2": area[site],
        "region": region[site], "country": country[site],
        "speciesId": species_ids[sp].astype(np.float64), "surveyId": sites.survey_id[site],
    }, columns=list(METADATA_COLUMNS))


# -------------------------------------------------------------- species model
def assign_roles(rng: np.random.Generator, n_species: int) -> list[str]:
    """Primary effect of each species: one of each kind first, then :data:`_ROLE_CYCLE`; shuffled."""
    roles = list(EFFECT_MODALITIES) + [_ROLE_CYCLE[k % len(_ROLE_CYCLE)] for k in range(n_species - len(EFFECT_MODALITIES))]
    return [roles[k] for k in rng.permutation(n_species)]


def _standardize(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, sd = float(np.mean(x)), float(np.std(x))
    return (x - mean) / (sd if sd > 0 else 1.0), mean, sd


def build_species(rng: np.random.Generator, n_species: int) -> list[dict]:
    """Species definitions: id, name, role and effects (coefficients; drivers are filled in later).

    Returns:
        One dict per species, sorted by ``speciesId``.
    """
    ids = np.sort(rng.choice(np.arange(1, 11256), size=n_species, replace=False))
    roles = assign_roles(rng, n_species)
    classes = rng.permutation(N_LANDCOVER) + 1
    soil_start = int(rng.integers(0, len(SOIL_DRIVERS)))
    n_soil = n_landcover = 0
    species = []
    for sid, role in zip(ids, roles):
        lo, hi = _COEF_RANGES[role]
        coef = float(rng.uniform(lo, hi))
        effect: dict = {"type": role}
        if role in ("bio1", "soil", "moisture"):
            coef *= float(rng.choice([-1.0, 1.0]))
        if role == "heatwave":
            coef = -coef
        if role == "soil":
            effect["variable"] = SOIL_DRIVERS[(soil_start + n_soil) % len(SOIL_DRIVERS)]
            n_soil += 1
        if role == "landcover":
            effect["class"] = int(classes[n_landcover % N_LANDCOVER])
            effect["column"] = f"LandCover-{effect['class']}"
            n_landcover += 1
        effect["coef"] = round(coef, 4)
        effects = [effect]
        if role == "heatwave":  # cold-adapted: also a weak negative response to Bio1
            effects.append({"type": "bio1", "coef": round(-float(rng.uniform(*_COEF_RANGES["heatwave_bio1"])), 4)})
        species.append({
            "speciesId": int(sid), "name": f"sp{int(sid):05d}_{role}", "role": role, "effects": effects,
            "target_prevalence": round(float(rng.uniform(*TARGET_PREVALENCE)), 4), "spatial_sd": SPATIAL_SD,
        })
    return species


def driver_values(sites: Sites, features: Features, effect: dict) -> tuple[np.ndarray, dict]:
    """The driver of one effect and how it is defined.

    Returns:
        ``(z (n,), record)``: the standardised driver (the raw indicator for
        land cover) and a JSON record of its definition (column, mean, sd).
    """
    kind = effect["type"]
    if kind == "bio1":
        raw, record = sites.bio[:, 0], {"driver": "Bio1 (1981-2010 annual mean temperature, degC)"}
    elif kind == "heatwave":
        raw, record = sites.heatwave, {"driver": "heatwave intensity h (truth_sites.csv: heatwave_h)"}
    elif kind == "ndvi":
        raw, record = features.ndvi, {"driver": "cloud-free patch mean NDVI (truth_sites.csv: ndvi)"}
    elif kind == "moisture":
        raw, record = sites.moisture, {"driver": "Landsat site moisture (truth_sites.csv: moisture)"}
    elif kind == "soil":
        raw = sites.soil[:, SOIL_COLUMNS.index(effect["variable"])]
        record = {"driver": f"{effect['variable']} (tabular)"}
    elif kind == "landcover":
        z = (sites.landcover_class == effect["class"]).astype(np.float64)
        return z, {"driver": f"1[dominant land-cover class == {effect['class']}]", "mean": None, "sd": None}
    else:  # pragma: no cover - roles are fixed above
        raise ValueError(kind)
    z, mean, sd = _standardize(raw)
    return z, {**record, "mean": round(mean, 6), "sd": round(sd, 6)}


def spatial_effects(rng: np.random.Generator, xy: np.ndarray, n_species: int) -> np.ndarray:
    """Per-species smooth spatial random effects, ``(n, K)`` with sd :data:`SPATIAL_SD`."""
    return SPATIAL_SD * smooth_fields(rng, xy, n_species, 3.0, n_features=12)


def _solve_intercepts(eta: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Intercepts ``a`` such that ``mean_i sigmoid(a + eta_i) = target`` (bisection, per column)."""
    lo, hi = np.full(eta.shape[1], -20.0), np.full(eta.shape[1], 20.0)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        too_high = _sigmoid(mid[None, :] + eta).mean(axis=0) > target
        hi, lo = np.where(too_high, mid, hi), np.where(too_high, lo, mid)
    return (lo + hi) / 2.0


def draw_labels(rng: np.random.Generator, species: list[dict], sites: Sites, features: Features,
                spatial: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Fill in drivers and intercepts, draw presences, and give every site at least one species.

    Args:
        rng: The ``labels`` stream.
        species: Species definitions (updated in place: drivers, intercept, prevalence).
        sites, features: Per-site state and readouts.
        spatial: ``(n, K)`` spatial random effects.

    Returns:
        ``(presence (n, K) bool, contributions {species name/effect index: (n,)}, forced count)``.
    """
    n, k = spatial.shape
    eta = spatial.copy()
    contributions: dict[str, np.ndarray] = {}
    for j, sp in enumerate(species):
        for e, effect in enumerate(sp["effects"]):
            z, record = driver_values(sites, features, effect)
            effect.update(record)
            contributions[f"{j}:{e}"] = effect["coef"] * z
            eta[:, j] += contributions[f"{j}:{e}"]
    target = np.array([sp["target_prevalence"] for sp in species])
    intercept = _solve_intercepts(eta, target)
    prob = _sigmoid(intercept[None, :] + eta)
    presence = rng.random((n, k)) < prob
    empty = np.flatnonzero(~presence.any(axis=1))
    presence[empty, prob[empty].argmax(axis=1)] = True
    for j, sp in enumerate(species):
        sp["intercept"] = round(float(intercept[j]), 6)
        sp["prevalence"] = round(float(presence[:, j].mean()), 6)
    return presence, contributions, len(empty)


# -------------------------------------------------------------- visibility
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
        with _quiet():
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


# ------------------------------------------------------------------- driver
def _write_chunk(root: Path, rngs: dict[str, np.random.Generator], sites: Sites, features: Features,
                 idx: np.ndarray, heatwave_year: int) -> None:
    """Generate and write the per-site files (TIFF, two cubes) of one chunk, and record its readouts."""
    climate = climate_cubes(rngs["climate"], sites, idx, heatwave_year)
    landsat = landsat_cubes(rngs["landsat"], sites, idx, heatwave_year)
    patches, ndvi = sentinel_patches(rngs["patch"], sites, idx)
    add_clouds(rngs["patch"], patches, sites.cloud[idx])
    add_series_gaps(rngs["gaps"], climate, sites.climate_gap[idx])
    add_series_gaps(rngs["gaps"], landsat, sites.landsat_gap[idx])
    features.ndvi[idx] = ndvi
    features.clim_tas_mean[idx], features.clim_heat[idx] = _climate_features(climate, heatwave_year)
    features.landsat_heat[idx], features.landsat_mean[idx] = _landsat_features(landsat, heatwave_year)
    seen_ndvi, seen_red = _patch_features(patches)
    tiff_missing, landsat_missing = sites.tiff_missing[idx], sites.landsat_missing[idx]
    features.ndvi_seen[idx] = np.where(tiff_missing, np.nan, seen_ndvi)
    features.red_seen[idx] = np.where(tiff_missing, np.nan, seen_red)
    features.landsat_heat[idx[landsat_missing]] = np.nan
    features.landsat_mean[idx[landsat_missing]] = np.nan
    for k, i in enumerate(idx):
        tiff, climate_path, landsat_path = survey_paths(root, int(sites.survey_id[i]))
        if not tiff_missing[k]:
            write_tiff(tiff, patches[k])
        write_cube(climate_path, climate[k])
        if not landsat_missing[k]:
            write_cube(landsat_path, landsat[k])


def _truth_sites(sites: Sites, features: Features) -> pd.DataFrame:
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


def _truth(species: list[dict], signal: dict[str, float], table: dict[str, dict[str, float]], sites: Sites,
           tables: dict[str, pd.DataFrame], n_forced: int, seed: int, heatwave_year: int, spatial: np.ndarray) -> dict:
    """The ``truth.json`` document."""
    def ids(role: str) -> list[int]:
        return [sp["speciesId"] for sp in species if sp["role"] == role]

    n = len(sites.survey_id)
    nan_cells = {Path(rel).name: int(t.drop(columns="surveyId").isna().to_numpy().sum()) for rel, t in tables.items()}
    return {
        "layout": LAYOUT,
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
        "sentinel2_bands": list(SENTINEL2_BANDS),
        "landsat_bands": list(LANDSAT_BANDS),
        "climate_variables": list(CLIMATE_VARIABLES),
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


def synthesize(out: str | os.PathLike, *, n_sites: int = 2000, n_species: int = 24, seed: int = 0,
               heatwave_year: int = 2003, overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthetic GeoPlant raw folder (GLC25 layout) with planted effects and ``truth.json``.

    Args:
        out: Folder to create (written atomically: it appears complete or not at all).
        n_sites: Number of surveys (>= 10).
        n_species: Number of species (>= 6).
        seed: Seed of ``numpy.random.default_rng``; the same seed gives byte-identical files.
        heatwave_year: Year of the heatwave (2000..2018).
        overwrite: Replace ``out`` if it exists.
        progress: Show a progress bar over sites.

    Returns:
        The path of the written folder.

    Raises:
        ConfigError: a bad argument.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    from tqdm.auto import tqdm

    _validate(n_sites, n_species, seed, heatwave_year)
    streams = dict(zip(_STREAMS, np.random.default_rng(seed).spawn(len(_STREAMS))))
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for path in survey_paths(tmp, 0)[1:]:
            path.parent.mkdir(parents=True)
        sites = make_sites(streams, n_sites)
        species = build_species(streams["species"], n_species)
        spatial = spatial_effects(streams["spatial"], sites.xy, n_species)
        features = Features.empty(n_sites)
        with tqdm(total=n_sites, desc="synth", unit="site", disable=not progress) as bar:
            for start in range(0, n_sites, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, n_sites))
                _write_chunk(tmp, streams, sites, features, idx, heatwave_year)
                bar.update(len(idx))
        presence, contributions, n_forced = draw_labels(streams["labels"], species, sites, features, spatial)
        metadata_table(streams["metadata"], sites, presence, np.array([sp["speciesId"] for sp in species])).to_csv(
            tmp / "GLC25_PA_metadata_train.csv", index=False)
        tables = tabular_tables(streams["tabular_nan"], sites)
        for rel, frame in tables.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(tmp / rel, index=False)
        _truth_sites(sites, features).to_csv(tmp / "truth_sites.csv", index=False)
        signal, table = modality_signal(species, contributions, sites, features, tables)
        truth = _truth(species, signal, table, sites, tables, n_forced, seed, heatwave_year, spatial)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return Path(out)
