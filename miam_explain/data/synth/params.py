"""Parameters of the synthetic GeoPlant generative model (``docs/synthetic.md`` explains each one).

The raw-layout facts (band and column names, years, cube shapes) are not here:
they belong to :mod:`miam_explain.data.glc.layout`, shared with the reader.
"""

from __future__ import annotations

__all__ = [
    "ANOMALY_SD",
    "BLUE_BASE",
    "BRIGHTNESS_SIGMA",
    "CLOUD_BLOB_RATE",
    "CLOUD_FULL_RATE",
    "COUPLINGS",
    "ECHO_PATTERN",
    "EFFECT_MODALITIES",
    "GENERATOR_VERSION",
    "GREEN_BASE",
    "HEATWAVE_MONTHS",
    "HEATWAVE_QUARTER",
    "HW_PR_LOG",
    "HW_TAS",
    "HW_TASMAX",
    "HW_TASMIN",
    "IMBALANCE_COLUMN",
    "IMBALANCE_FILE",
    "LANDCOVER_GREENNESS",
    "LANDCOVER_NAMES",
    "LANDSAT_ECHO",
    "LANDSAT_MISSING_RATE",
    "MODALITIES",
    "MODALITY_CORRELATION",
    "MOISTURE_SWIR1_LOG",
    "MOISTURE_SWIR2_LOG",
    "NDVI_LOC",
    "NDVI_SCALE",
    "PATCH_GRID",
    "PR_ANOMALY_PER_DEGC",
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
#: 3: realism settings with realistic defaults (unstandardised yearly anomalies of a set size, a visible Landsat
#: echo of the heatwave, correlated drivers across modalities) and null mode ("Changes in version 3").
GENERATOR_VERSION = 3
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

# Heatwave imprint on the climate cube per unit intensity h (summer months of the heatwave year).
HW_TAS, HW_TASMAX, HW_TASMIN, HW_PR_LOG = 3.5, 4.5, 2.5, -0.5  # degC, degC, degC, log-factor

# Realism settings: the defaults of synthesize (docs/synthetic.md, "Realism settings", says why each one).
#: sd (degC) of each year's regional temperature anomaly field; the site normals (Bio1) span ~13 degC (sd ~3.4).
ANOMALY_SD = 0.7
#: sd of each year's precipitation anomaly field (log units) per degC of anomaly_sd: 0.175 at the default.
PR_ANOMALY_PER_DEGC = 0.25
#: Landsat echo of the heatwave: log-factor per unit h (and per band, times ECHO_PATTERN) in quarter 3.
LANDSAT_ECHO = 0.10
#: Sign and size of the echo per Landsat band, per unit of landsat_echo: a browning, drying canopy reflects
#: more red and SWIR and less NIR (so NDVI drops by about 0.7 * landsat_echo * h).
ECHO_PATTERN: dict[str, float] = {"red": 1.0, "nir": -1.0, "swir1": 2.0 / 3.0, "swir2": 2.0 / 3.0}
#: Correlation planted between each coupled driver and its partner in another modality.
MODALITY_CORRELATION = 0.4
#: Coupled driver -> (partner, sign). Partners: bio1 and bio12 (the normals, seen by tabular and climate) and
#: landsat_vegetation (the Landsat greenness latent). Land-cover scores take their sign per class from
#: LANDCOVER_GREENNESS.
COUPLINGS: dict[str, tuple[str, float]] = {
    "landsat_vegetation": ("bio12", 1.0),  # greener where wetter
    "moisture": ("bio12", 1.0),  # wet sites in wet climates
    "soil_ph": ("bio12", -1.0),  # rain leaches the topsoil
    "soil_organic_carbon": ("bio1", -1.0),  # slow decay where it is cold
    "landcover": ("landsat_vegetation", 1.0),  # forests are green, fields and towns less so
    "ndvi": ("landsat_vegetation", 1.0),  # two sensors see the same canopy
    "heatwave": ("bio12", -1.0),  # dry soils heat up more (soil-moisture feedback)
}
#: Sign of each land-cover class's coupling to Landsat greenness (cropland .. bare or water).
LANDCOVER_GREENNESS: tuple[float, ...] = (-1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0)

# Imbalance regime (docs/synthetic.md, "Imbalance regime"): a clean tabular proxy of the Sentinel-2 NDVI driver,
# written only when the imbalance setting is on. The file lies with the other environmental CSVs, so the reader
# takes the column as one more tabular variable (variable group "other").
#: Name of the proxy column.
IMBALANCE_COLUMN = "Vegetation-NDVI"
#: Its CSV, relative to the raw folder (keyed by surveyId like the other environmental CSVs).
IMBALANCE_FILE = "EnvironmentalValues/Vegetation/GLC25-PA-train-vegetation.csv"

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
