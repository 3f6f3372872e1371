"""Parameters of the synthetic GeoPlant generative model (``docs/synthetic.md`` explains each one).

The raw-layout facts (band and column names, years, cube shapes) are not here:
they belong to :mod:`miam_explain.data.glc.layout`, shared with the reader.
"""

from __future__ import annotations

__all__ = [
    "BLUE_BASE",
    "BRIGHTNESS_SIGMA",
    "CLOUD_BLOB_RATE",
    "CLOUD_FULL_RATE",
    "EFFECT_MODALITIES",
    "GENERATOR_VERSION",
    "GREEN_BASE",
    "HEATWAVE_MONTHS",
    "HEATWAVE_QUARTER",
    "HW_NIR_LOG",
    "HW_PR_LOG",
    "HW_SWIR1_LOG",
    "HW_SWIR2_LOG",
    "HW_TAS",
    "HW_TASMAX",
    "HW_TASMIN",
    "LANDCOVER_NAMES",
    "LANDSAT_MISSING_RATE",
    "MODALITIES",
    "MOISTURE_SWIR1_LOG",
    "MOISTURE_SWIR2_LOG",
    "NDVI_LOC",
    "NDVI_SCALE",
    "PATCH_GRID",
    "RN_BASE",
    "SERIES_GAP_RATE",
    "SOIL_DRIVERS",
    "SPATIAL_SD",
    "TABULAR_NAN_RATE",
    "TARGET_PREVALENCE",
    "TIFF_MISSING_RATE",
]

#: Bump when the generative model changes (recorded in truth.json).
#: 2: Landsat moisture species, a stronger climate heatwave imprint and a weaker Landsat echo, stronger NDVI
#: species and a wider red/NIR brightness spread (docs/synthetic.md, "Changes in version 2").
GENERATOR_VERSION = 2
HEATWAVE_MONTHS: tuple[int, ...] = (6, 7, 8)
HEATWAVE_QUARTER = 3
#: Modality names, as the consolidated dataset names them.
MODALITIES: tuple[str, ...] = ("tabular", "climate", "landsat", "sentinel2")
#: Cosmetic names of the 8 land-cover classes (documentation only).
LANDCOVER_NAMES: tuple[str, ...] = (
    "cropland", "broadleaf forest", "coniferous forest", "grassland",
    "shrubland", "wetland", "urban", "bare or water",
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
SPATIAL_SD = 0.5
TARGET_PREVALENCE = (0.15, 0.5)

# Heatwave imprint per unit intensity h.
HW_TAS, HW_TASMAX, HW_TASMIN, HW_PR_LOG = 3.5, 4.5, 2.5, -0.5  # degC, degC, degC, log-factor
HW_NIR_LOG, HW_SWIR1_LOG, HW_SWIR2_LOG = -0.03, 0.02, 0.02  # log-factors, quarter 3 (a weak echo of the climate signal)

# Landsat site moisture: log-factors on SWIR1 / SWIR2 per unit sd of the moisture latent (water absorbs SWIR).
MOISTURE_SWIR1_LOG, MOISTURE_SWIR2_LOG = -0.20, -0.25

# Sentinel-2 patch model (the patch side is PATCH_SIZE of the layout).
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
