"""The synthetic world: survey sites and every per-site quantity (climate, soil, land cover, latent drivers).

:func:`make_sites` draws, for every site at once, what is cheap to hold: the
locations, the 1981-2010 climatology and its Bio1..Bio19, soil, land cover,
human footprint, the Landsat baseline and moisture, the Sentinel-2 brightness
and NDVI latents, the heatwave intensity and the missing-data flags. Each
driver mixes a smooth field with local noise and is decorrelated from the
quantities of the other modalities, so it is visible through known modalities
only; then, as far as :class:`~miam_explain.data.synth.settings.SynthSettings`
asks (``modality_correlation``), it is coupled to a partner quantity of another
modality (:data:`~miam_explain.data.synth.params.COUPLINGS`). The images and
cubes are drawn chunk by chunk later (:mod:`~miam_explain.data.synth.observations`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from miam_explain.data.glc.layout import CLIMATE_YEARS, N_LANDCOVER
from miam_explain.data.synth.fields import (
    couple,
    decorrelate,
    mixed,
    sigmoid,
    smooth_fields,
    softplus,
    standardize,
    standardize_columns,
)
from miam_explain.data.synth.params import (
    BRIGHTNESS_SIGMA,
    CLOUD_BLOB_RATE,
    CLOUD_FULL_RATE,
    COUPLINGS,
    LANDCOVER_GREENNESS,
    LANDSAT_MISSING_RATE,
    MOISTURE_SWIR1_LOG,
    MOISTURE_SWIR2_LOG,
    NDVI_LOC,
    NDVI_SCALE,
    SERIES_GAP_RATE,
    TIFF_MISSING_RATE,
)
from miam_explain.data.synth.settings import SynthSettings

__all__ = [
    "Sites",
    "baseline_climate",
    "bioclim",
    "elevation_field",
    "footprint_table",
    "heatwave_intensity",
    "landcover_table",
    "landsat_baseline",
    "make_sites",
    "site_locations",
    "soil_table",
]

#: Where the survey sites lie (degrees), and the cosine of the mid latitude for planar coordinates.
_LAT_RANGE = (40.0, 55.0)
_LON_RANGE = (-5.0, 20.0)
_COS_LAT = math.cos(math.radians(47.5))


def _coupled(name: str, latent: np.ndarray, partners: dict[str, np.ndarray], rho: float,
             sign: float = 1.0) -> np.ndarray:
    """``latent`` coupled (correlation ``rho``) to its partner of :data:`COUPLINGS`, times ``sign``."""
    source, direction = COUPLINGS[name]
    return couple(latent, sign * direction * partners[source], rho)


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
    year_fields: np.ndarray  # (n, 19) regional temperature anomaly of each year, in units of anomaly_sd
    year_pr_fields: np.ndarray  # (n, 19) regional precipitation anomaly of each year, in units of pr_anomaly_sd
    month_anomaly: np.ndarray  # (19, 12) Europe-wide monthly temperature anomaly, degC
    landsat_base: np.ndarray  # (n, 6) mean Landsat reflectance per band (0..255 scale)
    moisture: np.ndarray  # (n,) Landsat site moisture latent (unit sd), lowers SWIR
    vegetation: np.ndarray  # (n,) Landsat vegetation (greenness) latent (unit sd), a nuisance
    ndvi_latent: np.ndarray  # (n,) atanh of the site NDVI
    brightness_rn: np.ndarray  # (n,) log-normal brightness shared by red and NIR
    brightness_gb: np.ndarray  # (n,) independent log-normal brightness of green and blue
    cloud: np.ndarray  # (n,) 0 clear, 1 cloud blob, 2 fully cloudy
    tiff_missing: np.ndarray  # (n,) bool
    landsat_missing: np.ndarray  # (n,) bool
    climate_gap: np.ndarray  # (n,) bool
    landsat_gap: np.ndarray  # (n,) bool


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
    return np.round(80.0 + 700.0 * softplus(1.4 * f - 0.6) * np.exp(0.15 * local), 1)


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


def soil_table(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray, *, partners: dict[str, np.ndarray],
               rho: float) -> np.ndarray:
    """SoilGrids-like topsoil values (SoilGrids integer units), independent of climate but for the coupling.

    Sand, silt and clay (g/kg) sum to 1000; cec rises with clay and soc; bdod
    falls with soc. Each latent variable mixes a smooth field with local noise
    and is decorrelated from ``against`` (see :func:`decorrelate`); then the pH
    and organic-carbon latents are coupled to their climate partners.

    Args:
        rng: The ``soil`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` quantities of the other modalities (climate, Landsat).
        partners: Standardised partner quantities by name (``bio1``, ``bio12``).
        rho: The modality correlation.

    Returns:
        ``(n, 8)`` in :data:`~miam_explain.data.glc.layout.SOIL_COLUMNS` order.
    """
    f = smooth_fields(rng, xy, 5, 3.0)
    latent = decorrelate(np.stack([mixed(f[:, k], rng, 0.8) for k in range(5)], axis=1), against)
    latent[:, 3] = _coupled("soil_ph", latent[:, 3], partners, rho)
    latent[:, 4] = _coupled("soil_organic_carbon", latent[:, 4], partners, rho)
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


def landcover_table(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray, *,
                    partners: dict[str, np.ndarray], rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of 8 land-cover classes with one dominant class per site.

    The dominant class is the argmax of 8 smooth scores (decorrelated from
    ``against``, then coupled to Landsat greenness with the signs of
    :data:`LANDCOVER_GREENNESS`) plus Gumbel noise; it takes a fraction in
    U(0.5, 0.95), the other classes share the rest (Dirichlet(0.7)).

    Args:
        rng: The ``landcover`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` quantities of the other modalities and of soil.
        partners: Standardised partner quantities by name (``landsat_vegetation``).
        rho: The modality correlation.

    Returns:
        ``(fractions (n, 8), dominant class (n,) in 1..8)``; rows sum to 1.
    """
    n = xy.shape[0]
    smooth = decorrelate(smooth_fields(rng, xy, N_LANDCOVER, 2.0), against)
    for k, sign in enumerate(LANDCOVER_GREENNESS):
        if sign:
            smooth[:, k] = _coupled("landcover", smooth[:, k], partners, rho, sign)
    scores = 1.2 * smooth + rng.gumbel(size=(n, N_LANDCOVER))
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
    urban = mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, 0.7) + 2.0 * (landcover_class == 7)
    n = len(urban)
    built2009 = 10.0 * sigmoid(2.0 * urban - 2.5)
    built1994 = built2009 * rng.uniform(0.7, 1.0, size=n)
    popdensity = np.clip(3.0 * softplus(urban + 0.5 * rng.standard_normal(n)), 0.0, 10.0)
    roads = 8.0 * sigmoid(urban - 0.5 + 0.5 * rng.standard_normal(n))
    return np.round(np.stack([built1994, built2009, popdensity, roads], axis=1), 3)


def heatwave_intensity(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray, *,
                       partners: dict[str, np.ndarray], rho: float) -> np.ndarray:
    """Heatwave intensity ``h >= 0``: its own smooth field plus local (microclimate) noise.

    The local part (half of the variance) and the decorrelation from every
    other input (``against``, see :func:`decorrelate`) keep ``h`` from being
    predictable from location or from any other modality, up to its coupling
    (``rho``) with the annual precipitation of the normals (drier, hotter).

    Args:
        rng: The ``heatwave`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` every other per-site input quantity.
        partners: Standardised partner quantities by name (``bio12``).
        rho: The modality correlation.

    Returns:
        ``(n,)`` float64, mean about 1.
    """
    raw = decorrelate(mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, math.sqrt(0.5)), against)
    raw = _coupled("heatwave", raw, partners, rho)
    return softplus(1.3 * raw + 0.2)


def landsat_baseline(rng: np.random.Generator, xy: np.ndarray, against: np.ndarray, *,
                     partners: dict[str, np.ndarray], rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean Landsat reflectance per band (0..255 scale, like the real cubes), and its two latents.

    Two latent fields of its own set the band means: a vegetation field
    (a nuisance that drives no species) and a **moisture** field (local
    hydrology: wet soils and canopies absorb SWIR) that drives the moisture
    species. Both mix a smooth field with local noise and are decorrelated
    from ``against``; moisture is decorrelated from vegetation too. Then both
    are coupled to the annual precipitation of the normals (``rho``).

    Args:
        rng: The ``landsat`` stream.
        xy: ``(n, 2)`` planar coordinates.
        against: ``(n, p)`` climate quantities the fields are decorrelated from.
        partners: Standardised partner quantities by name (``bio12``).
        rho: The modality correlation.

    Returns:
        ``(base (n, 6) in LANDSAT_CHANNELS order, moisture (n,), vegetation (n,))``; the latents standardised.
    """
    veg = decorrelate(mixed(smooth_fields(rng, xy, 1, 2.0)[:, 0], rng, 0.5), against)
    veg = _coupled("landsat_vegetation", veg, partners, rho)
    wet = decorrelate(mixed(smooth_fields(rng, xy, 1, 1.5)[:, 0], rng, 0.5), np.column_stack([against, veg]))
    moisture = standardize(_coupled("moisture", wet, partners, rho))[0]
    base = np.array([28.0, 32.0, 18.0, 75.0, 55.0, 30.0])
    slope = np.array([-0.25, -0.10, -0.05, 0.18, -0.10, -0.20])
    wet_slope = np.array([0.0, 0.0, 0.0, 0.0, MOISTURE_SWIR1_LOG, MOISTURE_SWIR2_LOG])
    brightness = np.exp(0.1 * rng.standard_normal(len(veg)))
    log_base = np.log(base)[None, :] + slope[None, :] * veg[:, None] + wet_slope[None, :] * moisture[:, None]
    return np.exp(log_base) * brightness[:, None], moisture, standardize(veg)[0]


def make_sites(streams: dict[str, np.random.Generator], n: int, settings: SynthSettings) -> Sites:
    """Draw every per-site quantity (locations, fields, tables, latent drivers, missingness).

    Args:
        streams: Independent named random generators; this uses ``sites``, ``elevation``,
            ``climate_base``, ``landsat``, ``soil``, ``landcover``, ``footprint``, ``patch``,
            ``missing`` and ``heatwave``.
        n: Number of sites.
        settings: The realism settings (``standardize_anomalies``, ``modality_correlation``).
    """
    rng = streams["sites"]
    survey_id = 1_000_000 + rng.permutation(n).astype(np.int64)
    lat, lon = site_locations(rng, n)
    xy = np.stack([lon * _COS_LAT, lat], axis=1)
    elevation = elevation_field(streams["elevation"], xy)
    crng = streams["climate_base"]
    tas, tasmin, tasmax, pr = baseline_climate(crng, lat, lon, xy, elevation)
    # Each year's regional anomaly is a smooth field of nominal unit sd; the climate cube scales it by anomaly_sd.
    # Over a finite region its realised mean and spread vary between years (as real years do) unless standardised.
    year_fields = smooth_fields(crng, xy, len(CLIMATE_YEARS), 4.0)
    year_pr_fields = smooth_fields(crng, xy, len(CLIMATE_YEARS), 4.0)
    if settings.standardize_anomalies:
        year_fields, year_pr_fields = standardize_columns(year_fields), standardize_columns(year_pr_fields)
    month_anomaly = 0.7 * crng.standard_normal((len(CLIMATE_YEARS), 12))
    bio = bioclim(tas, tasmin, tasmax, pr)
    rho = settings.modality_correlation
    partners = {"bio1": standardize(bio[:, 0])[0], "bio12": standardize(bio[:, 11])[0]}
    climate_info = np.column_stack([bio, elevation, year_fields, year_pr_fields])
    landsat_base, moisture, vegetation = landsat_baseline(streams["landsat"], xy, climate_info,
                                                          partners=partners, rho=rho)
    partners["landsat_vegetation"] = vegetation
    landsat_info = np.column_stack([np.log(landsat_base), moisture])
    soil = soil_table(streams["soil"], xy, np.column_stack([climate_info, landsat_info]), partners=partners, rho=rho)
    landcover, landcover_class = landcover_table(
        streams["landcover"], xy, np.column_stack([climate_info, landsat_info, soil]), partners=partners, rho=rho)
    footprint = footprint_table(streams["footprint"], xy, landcover_class)
    prng = streams["patch"]
    ndvi_latent = prng.normal(NDVI_LOC, NDVI_SCALE, size=n)
    brightness_rn = np.exp(prng.normal(0.0, BRIGHTNESS_SIGMA, size=n))
    brightness_gb = np.exp(prng.normal(0.0, BRIGHTNESS_SIGMA, size=n))
    ndvi_latent = _coupled("ndvi", ndvi_latent, partners, rho)
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
        heatwave=heatwave_intensity(streams["heatwave"], xy, everything, partners=partners, rho=rho),
        year_fields=year_fields, year_pr_fields=year_pr_fields, month_anomaly=month_anomaly,
        landsat_base=landsat_base, moisture=moisture, vegetation=vegetation, ndvi_latent=ndvi_latent,
        brightness_rn=brightness_rn, brightness_gb=brightness_gb,
        cloud=cloud,
        tiff_missing=mrng.random(n) < TIFF_MISSING_RATE,
        landsat_missing=mrng.random(n) < LANDSAT_MISSING_RATE,
        climate_gap=mrng.random(n) < SERIES_GAP_RATE,
        landsat_gap=mrng.random(n) < SERIES_GAP_RATE,
    )
