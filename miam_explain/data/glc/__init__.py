"""GeoPlant / GeoLifeCLEF presence-absence raw data (GLC24 Kaggle and GLC25 / GeoPlant layouts).

* :mod:`~miam_explain.data.glc.layout`: the one description of both raw layouts
  (folder and file names, cube shapes, band and column names, path helpers);
* :mod:`~miam_explain.data.glc.reader`: layout detection, metadata, file index and per-file readers;
* :mod:`~miam_explain.data.glc.prepare`: :func:`prepare_geoplant`, raw folder -> consolidated dataset;
* :mod:`~miam_explain.data.glc.recipe`: :class:`Recipe`, the species and tabular columns it keeps (the paper's recipe);
* :mod:`~miam_explain.data.glc.writer`: writing raw files in the GLC25 layout (used by the synthetic generator).
"""

from __future__ import annotations

from miam_explain.data.glc.layout import (
    CLIMATE_CHANNELS,
    IMAGE_BANDS,
    LANDSAT_CHANNELS,
    survey_paths,
)
from miam_explain.data.glc.prepare import PrepareReport, prepare_geoplant
from miam_explain.data.glc.recipe import Recipe
from miam_explain.data.glc.reader import (
    detect_layout,
    read_cube,
    read_jpeg_pair,
    read_metadata,
    read_tiff,
)

__all__ = [
    "CLIMATE_CHANNELS",
    "IMAGE_BANDS",
    "LANDSAT_CHANNELS",
    "PrepareReport",
    "Recipe",
    "detect_layout",
    "prepare_geoplant",
    "read_cube",
    "read_jpeg_pair",
    "read_metadata",
    "read_tiff",
    "survey_paths",
]
