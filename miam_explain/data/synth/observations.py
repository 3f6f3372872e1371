"""What the sensors record at the synthetic sites, chunk by chunk, and readouts of the written values.

:func:`climate_cubes`, :func:`landsat_cubes` and :func:`sentinel_patches` draw
the per-survey arrays of a chunk of sites (in the units of the real GLC files);
:func:`add_clouds` and :func:`add_series_gaps` punch the missing data into
them. The readouts (:func:`climate_features`, :func:`landsat_features`,
:func:`patch_features`) fill :class:`Features`, from which the NDVI driver and
the visibility of every driver are computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from miam_explain.data.glc.layout import (
    CLIMATE_YEARS,
    LANDSAT_CHANNELS,
    LANDSAT_YEARS,
    PATCH_SIZE,
)
from miam_explain.data.synth.fields import quiet
from miam_explain.data.synth.params import (
    BLUE_BASE,
    ECHO_PATTERN,
    GREEN_BASE,
    HEATWAVE_MONTHS,
    HEATWAVE_QUARTER,
    HW_PR_LOG,
    HW_TAS,
    HW_TASMAX,
    HW_TASMIN,
    RN_BASE,
)
from miam_explain.data.synth.settings import SynthSettings
from miam_explain.data.synth.world import Sites

__all__ = [
    "ECHO_BANDS",
    "Features",
    "add_clouds",
    "add_series_gaps",
    "climate_cubes",
    "climate_features",
    "landsat_cubes",
    "landsat_features",
    "patch_features",
    "sentinel_patches",
]

#: Landsat bands of the heatwave readout (the bands the echo moves most), by index in LANDSAT_CHANNELS.
ECHO_BANDS: tuple[int, ...] = tuple(LANDSAT_CHANNELS.index(b) for b in ("red", "nir", "swir1"))


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
    clim_pr_mean: np.ndarray  # (n,) mean log precipitation of the written cube
    clim_heat: np.ndarray  # (n,) summer tas of heatwave year minus other summers, degC
    landsat_heat: np.ndarray  # (n, 3) log red / nir / swir1 anomaly of quarter 3 of the heatwave year
    landsat_mean: np.ndarray  # (n, 6) mean log reflectance per Landsat band over all years and quarters

    @classmethod
    def empty(cls, n: int) -> Features:
        """Features of ``n`` sites, all NaN until the chunks fill them."""
        nan = np.full(n, np.nan)
        return cls(nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(),
                   np.full((n, len(ECHO_BANDS)), np.nan), np.full((n, len(LANDSAT_CHANNELS)), np.nan))


def climate_cubes(rng: np.random.Generator, sites: Sites, idx: np.ndarray, heatwave_year: int,
                  settings: SynthSettings) -> np.ndarray:
    """Monthly climate cubes of some sites, in the units of the real GLC cubes.

    ``tas = normals + 0.03 K/yr trend + anomaly_sd x regional year anomaly +
    Europe-wide monthly anomaly + noise``; tasmin/tasmax follow with the
    diurnal range; precipitation gets log-normal anomalies (``pr_anomaly_sd``).
    The heatwave adds ``HW_* x h`` to the summer months of ``heatwave_year`` only.

    Args:
        rng: The ``climate`` stream.
        sites: All sites.
        idx: ``(c,)`` indices of the sites of this chunk.
        heatwave_year: Year of the heatwave.
        settings: The realism settings (``anomaly_sd``).

    Returns:
        ``(c, 4, 19, 12)`` float32: pr (0.01 mm/month), tas, tasmin, tasmax
        (0.1 K), rounded to integers like the real data.
    """
    c, n_years = len(idx), len(CLIMATE_YEARS)
    trend = 0.03 * (np.asarray(CLIMATE_YEARS) - 1995.0)
    anomaly = (trend[None, :, None] + settings.anomaly_sd * sites.year_fields[idx][:, :, None]
               + sites.month_anomaly[None]
               + 0.45 * rng.standard_normal((c, n_years, 12)))
    tas = sites.tas[idx][:, None, :] + anomaly
    half_dtr = ((sites.tasmax - sites.tasmin)[idx] / 2.0)[:, None, :]
    tasmax = tas + half_dtr + 0.3 * rng.standard_normal((c, n_years, 12))
    tasmin = tas - half_dtr + 0.3 * rng.standard_normal((c, n_years, 12))
    log_pr = (settings.pr_anomaly_sd * sites.year_pr_fields[idx][:, :, None]
              + 0.35 * rng.standard_normal((c, n_years, 12)) - 0.06)
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


def landsat_cubes(rng: np.random.Generator, sites: Sites, idx: np.ndarray, heatwave_year: int,
                  echo: float) -> np.ndarray:
    """Quarterly Landsat cubes of some sites (0..255 reflectance scale, integers like the real data).

    Seasonal cycle per band, a per-(site, year) log-normal anomaly and
    per-value noise. In quarter 3 of ``heatwave_year`` each band moves by
    ``echo x ECHO_PATTERN[band] x h`` in log units (red and SWIR up, NIR down).

    Args:
        rng: The ``landsat`` stream.
        sites: All sites.
        idx: ``(c,)`` indices of the sites of this chunk.
        heatwave_year: Year of the heatwave.
        echo: The echo strength (``landsat_echo``); 0 leaves the heatwave out of Landsat.

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
    for band, factor in ECHO_PATTERN.items():
        if echo * factor:
            log_value[:, LANDSAT_CHANNELS.index(band), q, y] += echo * factor * h
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
    w = _upsample_matrix(low, PATCH_SIZE)
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
    noise = 0.03 * rng.standard_normal((c, 4, PATCH_SIZE, PATCH_SIZE))
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
    yy, xx = np.mgrid[0:PATCH_SIZE, 0:PATCH_SIZE]
    for i in np.flatnonzero(cloud == 1):
        cy, cx = rng.uniform(0, PATCH_SIZE, size=2)
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
def climate_features(cubes: np.ndarray, heatwave_year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readouts of written climate cubes ``(c, 4, 19, 12)``.

    Returns:
        ``(mean tas degC (c,), mean log precipitation (c,), heatwave-year summer tas minus other summers degC (c,))``.
    """
    tas = cubes[:, 1].astype(np.float64) / 10.0 - 273.15  # (c, year, month)
    y = heatwave_year - CLIMATE_YEARS[0]
    summer = tas[:, :, [m - 1 for m in HEATWAVE_MONTHS]]
    others = np.delete(summer, y, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), quiet():
        log_pr = np.log(cubes[:, 0].astype(np.float64))
        return (np.nanmean(tas, axis=(1, 2)), np.nanmean(log_pr, axis=(1, 2)),
                np.nanmean(summer[:, y], axis=1) - np.nanmean(others, axis=(1, 2)))


def landsat_features(cubes: np.ndarray, heatwave_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Readouts of written Landsat cubes ``(c, 6, 4, 21)``.

    Returns:
        ``(heat (c, 3), mean (c, 6))``: the log red, NIR and SWIR1 anomaly of
        quarter 3 of the heatwave year vs the other years (:data:`ECHO_BANDS`),
        and the mean log reflectance of each band over all quarters and years.
    """
    y, q = heatwave_year - LANDSAT_YEARS[0], HEATWAVE_QUARTER - 1
    heat = np.empty((cubes.shape[0], len(ECHO_BANDS)))
    logs = np.log(cubes.astype(np.float64))
    with quiet():
        for k, band in enumerate(ECHO_BANDS):
            series = logs[:, band, q, :]
            heat[:, k] = series[:, y] - np.nanmean(np.delete(series, y, axis=1), axis=1)
        return heat, np.nanmean(logs, axis=(2, 3))


def patch_features(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean NDVI, mean red)`` over non-nodata pixels of written patches; NaN when fully cloudy."""
    red = patches[..., 0].astype(np.float64)
    nir = patches[..., 3].astype(np.float64)
    valid = (patches != 0).all(axis=-1)
    count = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = np.where(valid, (nir - red) / (nir + red), 0.0).sum(axis=(1, 2)) / count
        mean_red = np.where(valid, red, 0.0).sum(axis=(1, 2)) / count
    return np.where(count > 0, ndvi, np.nan), np.where(count > 0, mean_red, np.nan)
