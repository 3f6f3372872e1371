"""Writers of raw files in the GLC25 / GeoPlant layout: Sentinel-2 GeoTIFFs, ``.pt`` cubes and CSVs.

They write what the real data holds and what :mod:`miam_explain.data.glc.reader`
reads back: LZW GeoTIFFs with the GDAL nodata and band-name tags, float32
torch tensors loadable with ``weights_only=True``, and CSVs keyed by
``surveyId``. File names and places come from :mod:`miam_explain.data.glc.layout`.
The synthetic generator (:mod:`miam_explain.data.synth`) is their user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain.data.glc.layout import IMAGE_BANDS, METADATA_COLUMNS

__all__ = ["metadata_frame", "survey_table", "write_csvs", "write_cube", "write_tiff"]

_GDAL_METADATA = (
    "<GDALMetadata>\n"
    + "".join(
        f'  <Item name="DESCRIPTION" sample="{i}" role="description">{b}</Item>\n' for i, b in enumerate(IMAGE_BANDS)
    )
    + "</GDALMetadata>"
)
#: GDAL_NODATA (42113) = 0 and GDAL_METADATA (42112) with the band names.
_TIFF_EXTRATAGS = [(42113, "s", 0, "0", True), (42112, "s", 0, _GDAL_METADATA, True)]


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


def survey_table(survey_ids: np.ndarray, columns: Sequence[str], values: np.ndarray) -> pd.DataFrame:
    """A tabular CSV's content: ``surveyId`` first, then one column per variable.

    Args:
        survey_ids: ``int64[n]``.
        columns: The ``k`` variable names.
        values: ``(n, k)`` values.
    """
    frame = pd.DataFrame(values, columns=list(columns))
    frame.insert(0, "surveyId", survey_ids)
    return frame


def metadata_frame(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The long-format metadata table, one row per (survey, species), columns in file order.

    Args:
        columns: Every column of :data:`~miam_explain.data.glc.layout.METADATA_COLUMNS`, each ``(rows,)``.

    Raises:
        ValueError: a column is missing or unknown.
    """
    if set(columns) != set(METADATA_COLUMNS):
        raise ValueError(
            f"metadata needs exactly the columns {list(METADATA_COLUMNS)}; got {sorted(columns)}"
        )
    return pd.DataFrame(dict(columns), columns=list(METADATA_COLUMNS))


def write_csvs(root: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Write each table to ``root / relative path`` (no index column), creating its folders."""
    for rel, frame in tables.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(root / rel, index=False)
