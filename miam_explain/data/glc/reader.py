"""Readers of the GLC24 / GLC25 presence-absence raw files: layout detection, metadata, file index, per-file readers.

Files are found by walking the raw folder once and matching file *names*
(``..._bioclimatic_monthly_<id>_cube.pt``, ``<id>.tiff`` ...; the patterns are
in :mod:`miam_explain.data.glc.layout`), which tolerates the known spelling
variants (Satelite/Satellite, hyphen/underscore) and never builds a path from
metadata, so nothing outside the folder is ever read. Metadata may be
``GLC2x_PA_metadata_{train,test}.csv`` or malpolon's single ``metadata.csv``
with a ``subset`` column.

Every reader raises :class:`~miam_explain.errors.DataError` for a bad file;
:func:`miam_explain.data.glc.prepare.prepare_geoplant` turns that into NaN for
one survey and modality.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain.data.glc.layout import (
    CUBE_PATTERNS,
    GLC24,
    GLC24_CUBE_DIR,
    GLC24_RGB_MARKERS,
    GLC25,
    GLC25_PATCH_PREFIXES,
    IMAGE_BANDS,
    IMAGE_PATTERN,
    METADATA_PATTERN,
    TABULAR_DIRS,
    VARIABLE_GROUPS,
)
from miam_explain.errors import DataError

__all__ = [
    "FileIndex",
    "detect_layout",
    "index_files",
    "read_cube",
    "read_jpeg_pair",
    "read_metadata",
    "read_tabular",
    "read_tiff",
]


# ------------------------------------------------------- layout and metadata
def detect_layout(raw: Path) -> str:
    """Return ``"glc25"`` or ``"glc24"`` for a raw folder.

    Raises:
        DataError: the folder is missing or looks like neither layout.
    """
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(f"raw data folder {str(raw)!r} does not exist; pass the folder that holds the GeoPlant files")
    names = [p.name.lower() for p in raw.iterdir()]
    if any(n.startswith(GLC25_PATCH_PREFIXES) for n in names):
        return GLC25
    if any(marker in n for n in names for marker in GLC24_RGB_MARKERS):
        return GLC24
    if any(n.startswith(GLC25) for n in names) or any(TABULAR_DIRS[GLC25].lower() == n for n in names):
        return GLC25
    if any(n.startswith(GLC24) for n in names) or any(
        n in (TABULAR_DIRS[GLC24].lower(), GLC24_CUBE_DIR) for n in names
    ):
        return GLC24
    raise DataError(
        f"{str(raw)!r} looks like neither the GLC24 nor the GLC25/GeoPlant layout "
        "(no SatelitePatches/ or PA_*_SatellitePatches_RGB/ folder); pass the root of the raw data"
    )


def _metadata_files(raw: Path) -> list[Path]:
    found = sorted(p for p in raw.iterdir() if p.is_file() and METADATA_PATTERN.match(p.name))
    if not found and (raw / "metadata.csv").is_file():
        found = [raw / "metadata.csv"]
    root = raw.resolve()
    for path in found:
        if not _inside(path, root):
            raise DataError(
                f"metadata {path.name} is a link to a file outside {str(raw)!r}; the reader never reads outside "
                "the data folder, so copy the file into it"
            )
    if not found:
        raise DataError(
            f"no metadata CSV in {str(raw)!r}; expected GLC2x_PA_metadata_train.csv (and _test) or metadata.csv"
        )
    return found


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, low_memory=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        raise DataError(f"cannot read CSV {str(path)!r} ({str(exc).splitlines()[0]}); check the file") from None


def read_metadata(raw: Path) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, int]:
    """Read the long-format presence-absence metadata.

    Args:
        raw: The raw data folder.

    Returns:
        ``(sites, species, pairs, n_unlabelled)``: one row per labelled survey
        (surveyId, lon, lat, year, region, country, subset), the sorted species
        ids, the (surveyId, speciesId) presence pairs, and the number of
        surveys skipped because they carry no speciesId.

    Raises:
        DataError: no metadata file, a file without surveyId/lon/lat, or no labelled survey.
    """
    frames = []
    for path in _metadata_files(raw):
        frame = _read_csv(path)
        for column in ("surveyId", "lon", "lat"):
            if column not in frame.columns:
                raise DataError(
                    f"metadata {path.name} has no {column!r} column; it must be the long-format "
                    "presence-absence file (lon, lat, speciesId, surveyId, ...)"
                )
        if "subset" not in frame.columns:
            frame["subset"] = "test" if "test" in path.name.lower() else "train"
        if "speciesId" not in frame.columns:
            frame["speciesId"] = np.nan
        frames.append(frame)
    meta = pd.concat(frames, ignore_index=True)
    meta = meta.assign(surveyId=_survey_ids(meta["surveyId"], "metadata"))
    meta = meta[meta["surveyId"].notna()].copy()
    meta["surveyId"] = meta["surveyId"].astype(np.int64)
    labelled = meta.groupby("surveyId")["speciesId"].transform(lambda s: s.notna().any())
    n_unlabelled = int(meta.loc[~labelled, "surveyId"].nunique())
    meta = meta[labelled]
    if meta.empty:
        raise DataError("the metadata holds no survey with a speciesId; presence-absence labels are needed")
    first = meta.groupby("surveyId", sort=True).first()
    sites = pd.DataFrame(
        {
            "surveyId": first.index.to_numpy(np.int64),
            "lon": first["lon"].to_numpy(float),
            "lat": first["lat"].to_numpy(float),
            "year": pd.to_numeric(first.get("year", pd.Series(np.nan, index=first.index)), errors="coerce")
            .fillna(-1)
            .to_numpy(np.int64),
            "region": first.get("region", pd.Series("", index=first.index)).fillna("").astype(str).to_numpy(),
            "country": first.get("country", pd.Series("", index=first.index)).fillna("").astype(str).to_numpy(),
            "subset": first["subset"].fillna("").astype(str).to_numpy(),
        }
    )
    if not np.isfinite(sites[["lon", "lat"]].to_numpy()).all():
        bad = int((~np.isfinite(sites[["lon", "lat"]].to_numpy())).any(axis=1).sum())
        raise DataError(f"{bad} surveys have no lon/lat in the metadata; fix or drop those rows")
    pairs = meta.loc[meta["speciesId"].notna(), ["surveyId", "speciesId"]].copy()
    pairs["speciesId"] = pairs["speciesId"].astype(np.int64)
    species = np.unique(pairs["speciesId"].to_numpy())
    return sites, species, pairs.drop_duplicates(), n_unlabelled


def _survey_ids(column: pd.Series, where: str) -> pd.Series:
    """surveyId values as numbers; NaN for rows without a numeric id (they are skipped).

    Raises:
        DataError: a numeric id that is not a non-negative whole number (it cannot name a file).
    """
    ids = pd.to_numeric(column, errors="coerce")
    numeric = ids.dropna()
    bad = numeric[(numeric % 1 != 0) | (numeric < 0) | (numeric >= 2**63)]
    if len(bad):
        raise DataError(
            f"{where}: surveyId {str(column[bad.index[0]])!r} is not a non-negative whole number; fix the surveyId column"
        )
    return ids


# ----------------------------------------------------------------- file index
@dataclass
class FileIndex:
    """Every file the reader knows in a raw folder: survey id -> path per kind, and the tabular CSVs."""

    climate: dict[int, Path] = field(default_factory=dict)
    landsat: dict[int, Path] = field(default_factory=dict)
    tiff: dict[int, Path] = field(default_factory=dict)
    rgb: dict[int, Path] = field(default_factory=dict)
    nir: dict[int, Path] = field(default_factory=dict)
    tabular: list[Path] = field(default_factory=list)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def index_files(raw: Path) -> FileIndex:
    """Walk ``raw`` once and index every file the reader knows, by survey id."""
    root = raw.resolve()
    index = FileIndex()
    for dirpath, dirnames, filenames in os.walk(raw):
        dirnames.sort()
        lower_dir = dirpath.lower()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() and not _inside(path, root):
                continue  # never follow a link out of the data folder
            for kind, pattern in CUBE_PATTERNS.items():
                match = pattern.search(name)
                if match:
                    getattr(index, kind)[int(match.group(1))] = path
                    break
            else:
                match = IMAGE_PATTERN.match(name)
                if match and ("patches" in lower_dir):
                    sid, ext = int(match.group(1)), match.group(2).lower()
                    if ext.startswith("tif"):
                        index.tiff[sid] = path
                    elif "nir" in lower_dir:
                        index.nir[sid] = path
                    elif "rgb" in lower_dir:
                        index.rgb[sid] = path
                elif (
                    name.lower().endswith(".csv")
                    and any(folder.lower() in lower_dir for folder in TABULAR_DIRS.values())
                    and "monthly" not in name.lower()
                ):
                    index.tabular.append(path)
    return index


# -------------------------------------------------------------- file readers
def read_cube(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Load one ``.pt`` cube safely (``weights_only=True``) and check its shape.

    Raises:
        DataError: the file is corrupt, holds code or other objects, or has another shape.
    """
    import torch

    try:
        tensor = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise DataError(f"cannot load cube {path.name} ({type(exc).__name__}); the file is corrupt or not a tensor") from None
    if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(shape):
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise DataError(f"cube {path.name} has shape {got}, expected {tuple(shape)}")
    return tensor.to(torch.float32).numpy()


def _band_names_from_gdal(xml: str | None, n: int) -> list[str] | None:
    if not xml:
        return None
    names = dict((int(s), v.strip().lower()) for s, v in re.findall(r'sample="(\d+)"[^>]*>([^<]*)<', xml))
    if len(names) != n:
        return None
    return [names[i] for i in range(n)]


def read_tiff(path: Path) -> np.ndarray:
    """Read a 4-band GeoTIFF patch as ``float32[band, y, x]`` in red, green, blue, nir order.

    Nodata pixels (the GDAL_NODATA tag) become NaN. Compression (LZW, deflate
    ...) is handled by tifffile + imagecodecs.

    Raises:
        DataError: the file is truncated, corrupt, or lacks one of the four bands.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            array = page.asarray()
            tags = page.tags
            nodata = tags.get("GDAL_NODATA")
            nodata = None if nodata is None else nodata.value
            meta = tags.get("GDAL_METADATA")
            meta = None if meta is None else meta.value
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for bad files
        raise DataError(f"cannot read TIFF {path.name} ({type(exc).__name__}); the file is truncated or corrupt") from None
    if array.ndim != 3:
        raise DataError(f"TIFF {path.name} has shape {array.shape}; expected 4 bands")
    bands_first = array if separate else np.moveaxis(array, -1, 0)
    data = bands_first.astype(np.float32)
    if nodata is not None:
        try:
            data[bands_first == float(str(nodata).strip())] = np.nan
        except ValueError:
            pass
    names = _band_names_from_gdal(meta, data.shape[0]) or list(IMAGE_BANDS)
    try:
        order = [names.index(b) for b in IMAGE_BANDS]
    except ValueError:
        raise DataError(f"TIFF {path.name} has bands {names}; expected {list(IMAGE_BANDS)}") from None
    return data[order]


def read_jpeg_pair(rgb_path: Path, nir_path: Path) -> np.ndarray:
    """Read a GLC24 RGB + NIR JPEG pair as ``float32[4, y, x]`` (red, green, blue, nir)."""
    from PIL import Image

    try:
        with Image.open(rgb_path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
        with Image.open(nir_path) as im:
            nir = np.asarray(im.convert("L"), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types
        raise DataError(f"cannot read JPEG patch {rgb_path.name} ({type(exc).__name__})") from None
    if rgb.shape[:2] != nir.shape:
        raise DataError(f"RGB and NIR patches of {rgb_path.name} differ in size")
    return np.concatenate([np.moveaxis(rgb, -1, 0), nir[None]], axis=0)


# -------------------------------------------------------------------- tabular
def _variable_group(column: str) -> str:
    key = re.sub(r"[^a-z]", "", column.lower())
    for prefix, group in VARIABLE_GROUPS.items():
        if key.startswith(prefix):
            return group
    return "other"


def read_tabular(paths: Iterable[Path], survey_ids: np.ndarray) -> tuple[pd.DataFrame, dict[str, list[str]]] | None:
    """Join every environmental CSV on surveyId.

    Args:
        paths: The tabular CSVs (:attr:`FileIndex.tabular`).
        survey_ids: ``int64[n]``: the surveys, in row order.

    Returns:
        ``(table, groups)``: a ``float32`` table with one row per survey id (NaN where a
        CSV has no row) and one column per numeric variable, and variable group -> columns;
        ``None`` when there is no CSV.

    Raises:
        DataError: a CSV cannot be read, has no surveyId column or a bad surveyId.
    """
    by_key: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        frame = _read_csv(path)
        if "surveyId" not in frame.columns:
            raise DataError(f"tabular CSV {path.name} has no 'surveyId' column; every CSV must be keyed by surveyId")
        key = re.sub(r"(?i)[-_]?(pa[-_])?(train|test)[-_]?", "-", path.stem)
        by_key.setdefault(key, []).append(frame)
    if not by_key:
        return None
    table = pd.DataFrame(index=pd.Index(survey_ids, name="surveyId"))
    for key, frames in sorted(by_key.items()):
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.assign(surveyId=_survey_ids(frame["surveyId"], f"tabular CSV {key}"))
        frame = frame[frame["surveyId"].notna()]
        frame = frame.assign(surveyId=frame["surveyId"].astype(np.int64)).drop_duplicates("surveyId")
        frame = frame.set_index("surveyId")
        numeric = frame.apply(pd.to_numeric, errors="coerce")
        numeric = numeric.loc[:, numeric.notna().any()]
        clash = [c for c in numeric.columns if c in table.columns]
        numeric = numeric.rename(columns={c: f"{key}:{c}" for c in clash})
        table = table.join(numeric, how="left")
    groups: dict[str, list[str]] = {}
    for column in table.columns:
        groups.setdefault(_variable_group(column), []).append(column)
    return table.astype(np.float32), groups

