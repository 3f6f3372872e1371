"""The GeoLifeCLEF presence-absence raw layouts (GLC24 Kaggle and GLC25 / GeoPlant): names, shapes and paths.

This module is the one place that knows how the raw files are named and laid
out. The reader (:mod:`miam_explain.data.glc.reader`) matches these names when
it walks a raw folder; the synthetic writer (:mod:`miam_explain.data.glc.writer`
and :mod:`miam_explain.data.synth`) builds its paths from them.

* **GLC25 / GeoPlant**: ``SatelitePatches/PA-train/CD/AB/<id>.tiff`` (64x64,
  4 bands), cubes ``BioclimTimeSeries/cubes/PA-train/GLC25-PA-train-bioclimatic_monthly_<id>_cube.pt``
  and ``SateliteTimeSeries-Landsat/cubes/PA-train/GLC25-PA-train-landsat-time-series_<id>_cube.pt``,
  tabular CSVs under ``EnvironmentalValues/``, metadata ``GLC25_PA_metadata_train.csv``;
* **GLC24 (Kaggle)**: ``PA_Train_SatellitePatches_{RGB,NIR}/pa_train_patches_{rgb,nir}/CD/AB/<id>.jpeg``
  (128x128), cubes under ``TimeSeries-Cubes/``, tabular CSVs under ``EnvironmentalRasters/``.

In both, CD is the last two digits of the survey id and AB the two before them.
Real folders spell "Satelite" and "Satellite", and join cube names with hyphens
or underscores; the patterns here accept every variant.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "BIOCLIM_COLUMNS",
    "CLIMATE_CHANNELS",
    "CLIMATE_CUBE_SHAPE",
    "CLIMATE_YEARS",
    "CUBE_PATTERNS",
    "FOOTPRINT_COLUMNS",
    "GLC24",
    "GLC24_CUBE_DIR",
    "GLC24_RGB_MARKERS",
    "GLC25",
    "GLC25_PATCH_PREFIXES",
    "IMAGE_BANDS",
    "IMAGE_PATTERN",
    "LANDCOVER_COLUMNS",
    "LANDSAT_CHANNELS",
    "LANDSAT_CUBE_SHAPE",
    "LANDSAT_YEARS",
    "METADATA_COLUMNS",
    "METADATA_PATTERN",
    "N_LANDCOVER",
    "PATCH_SIZE",
    "SOIL_COLUMNS",
    "TABULAR_DIRS",
    "TABULAR_FILES",
    "VARIABLE_GROUPS",
    "cube_name",
    "metadata_name",
    "patch_subdirs",
    "survey_paths",
]

#: Layout names, as :func:`~miam_explain.data.glc.reader.detect_layout` returns them.
GLC25 = "glc25"
GLC24 = "glc24"

# ------------------------------------------------------------------ contents
#: Variables of the bioclimatic monthly cubes, in storage order.
CLIMATE_CHANNELS: tuple[str, ...] = ("pr", "tas", "tasmin", "tasmax")
#: Years of the bioclimatic cubes.
CLIMATE_YEARS: tuple[int, ...] = tuple(range(2000, 2019))
#: Shape of a bioclimatic cube: ``(4, 19, 12)`` = variable x year x month.
CLIMATE_CUBE_SHAPE: tuple[int, int, int] = (len(CLIMATE_CHANNELS), len(CLIMATE_YEARS), 12)
#: Bands of the Landsat cubes, in storage order.
LANDSAT_CHANNELS: tuple[str, ...] = ("red", "green", "blue", "nir", "swir1", "swir2")
#: Years of the Landsat cubes.
LANDSAT_YEARS: tuple[int, ...] = tuple(range(2000, 2021))
#: Shape of a Landsat cube: ``(6, 4, 21)`` = band x quarter x year.
LANDSAT_CUBE_SHAPE: tuple[int, int, int] = (len(LANDSAT_CHANNELS), 4, len(LANDSAT_YEARS))
#: Bands of the Sentinel-2 patches, in storage order.
IMAGE_BANDS: tuple[str, ...] = ("red", "green", "blue", "nir")
#: Side of a GLC25 Sentinel-2 patch in pixels (GLC24 JPEG patches are 128).
PATCH_SIZE = 64

#: Columns of the long-format presence-absence metadata, in file order.
METADATA_COLUMNS: tuple[str, ...] = (
    "lon", "lat", "year", "geoUncertaintyInM", "areaInM2", "region", "country", "speciesId", "surveyId",
)
#: Tabular columns (besides ``surveyId``) of the environmental CSVs.
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

#: Prefix of a tabular column (lower case, letters only) -> its variable group.
VARIABLE_GROUPS: dict[str, str] = {
    "bio": "worldclim",
    "soilgrid": "soil",
    "elevation": "elevation",
    "humanfootprint": "human_footprint",
    "landcover": "landcover",
}

# --------------------------------------------------------------------- folders
#: Folder of the tabular CSVs, per layout.
TABULAR_DIRS: dict[str, str] = {GLC25: "EnvironmentalValues", GLC24: "EnvironmentalRasters"}
_GLC25_PATCH_DIR = Path("SatelitePatches") / "PA-train"
_GLC25_CLIMATE_DIR = Path("BioclimTimeSeries") / "cubes" / "PA-train"
_GLC25_LANDSAT_DIR = Path("SateliteTimeSeries-Landsat") / "cubes" / "PA-train"
_ENV = Path(TABULAR_DIRS[GLC25])
#: The GLC25 environmental CSVs: name -> (path relative to the raw folder, columns besides ``surveyId``).
TABULAR_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bioclimatic": (str(_ENV / "Climate" / "Average 1981-2010" / "GLC25-PA-train-bioclimatic.csv"), BIOCLIM_COLUMNS),
    "elevation": (str(_ENV / "Elevation" / "GLC25-PA-train-elevation.csv"), ("Elevation",)),
    "soilgrids": (str(_ENV / "SoilGrids" / "GLC25-PA-train-soilgrids.csv"), SOIL_COLUMNS),
    "human_footprint": (str(_ENV / "HumanFootprint" / "GLC25-PA-train-human_footprint.csv"), FOOTPRINT_COLUMNS),
    "landcover": (str(_ENV / "LandCover" / "GLC25-PA-train-landcover.csv"), LANDCOVER_COLUMNS),
}

#: Lower-case prefixes of the top-level patch folder of GLC25 (both spellings).
GLC25_PATCH_PREFIXES: tuple[str, ...] = ("satelitepatches", "satellitepatches")
#: Lower-case markers of the GLC24 RGB patch folder (both spellings).
GLC24_RGB_MARKERS: tuple[str, ...] = ("satellitepatches_rgb", "satelitepatches_rgb")
#: Lower-case name of the GLC24 cube folder.
GLC24_CUBE_DIR = "timeseries-cubes"

# ------------------------------------------------------------------ file names
#: Stem of the cube file names, per modality (``..._<stem>_<id>_cube.pt``).
_CUBE_STEMS: dict[str, str] = {"climate": "bioclimatic_monthly", "landsat": "landsat-time-series"}
#: Cube file name -> survey id (group 1), per modality; hyphen or underscore anywhere in the stem.
CUBE_PATTERNS: dict[str, re.Pattern[str]] = {
    modality: re.compile(re.sub(r"[-_]", "[-_]", stem) + r"[-_](\d+)[-_]cube\.pt$", re.IGNORECASE)
    for modality, stem in _CUBE_STEMS.items()
}
#: Patch file name ``<id>.tiff`` / ``<id>.jpeg`` -> survey id (group 1) and extension (group 2).
IMAGE_PATTERN = re.compile(r"^(\d+)\.(tiff?|jpe?g)$", re.IGNORECASE)
#: Metadata file name ``GLC2x_PA_metadata_{train,test}.csv`` -> subset (group 1).
METADATA_PATTERN = re.compile(r"^GLC\d\d[-_]PA[-_]metadata[-_](train|test)\.csv$", re.IGNORECASE)


def cube_name(modality: str, survey_id: int, *, edition: str = "GLC25", subset: str = "train") -> str:
    """File name of one survey's cube, e.g. ``GLC25-PA-train-bioclimatic_monthly_1027998_cube.pt``.

    Args:
        modality: ``"climate"`` or ``"landsat"``.
        survey_id: The surveyId.
        edition: ``"GLC25"`` or ``"GLC24"``.
        subset: ``"train"`` or ``"test"``.
    """
    return f"{edition}-PA-{subset}-{_CUBE_STEMS[modality]}_{int(survey_id)}_cube.pt"


def metadata_name(*, edition: str = "GLC25", subset: str = "train") -> str:
    """File name of the metadata CSV, e.g. ``GLC25_PA_metadata_train.csv``."""
    return f"{edition}_PA_metadata_{subset}.csv"


def patch_subdirs(survey_id: int) -> tuple[str, str]:
    """``(CD, AB)``: the two folders of a survey's patch, the last two digits of the id and the two before them."""
    sid = int(survey_id)
    return f"{sid % 100:02d}", f"{sid // 100 % 100:02d}"


def survey_paths(root: Path, survey_id: int) -> tuple[Path, Path, Path]:
    """Where the files of one survey go in the GLC25 layout.

    Returns:
        ``(tiff, climate cube, landsat cube)`` paths under ``root``; the TIFF
        is under ``SatelitePatches/PA-train/CD/AB/`` with CD the last two
        digits of the id and AB the two before them.
    """
    sid = int(survey_id)
    tiff = root / _GLC25_PATCH_DIR / Path(*patch_subdirs(sid)) / f"{sid}.tiff"
    climate = root / _GLC25_CLIMATE_DIR / cube_name("climate", sid)
    landsat = root / _GLC25_LANDSAT_DIR / cube_name("landsat", sid)
    return tiff, climate, landsat
