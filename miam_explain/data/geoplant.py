"""Reader of the GeoPlant / GeoLifeCLEF presence-absence raw layouts (2024 and 2025).

:func:`prepare_geoplant` turns a raw folder into the consolidated dataset. It
auto-detects the layout:

* **GLC25 / GeoPlant**: ``SatelitePatches/PA-train/CD/AB/<id>.tiff`` (64x64,
  4 bands, GeoTIFF), cubes under ``BioclimTimeSeries/`` and
  ``SateliteTimeSeries-Landsat/``, tabular CSVs under ``EnvironmentalValues/``;
* **GLC24 (Kaggle)**: ``PA_Train_SatellitePatches_{RGB,NIR}/.../<id>.jpeg``
  (128x128), cubes under ``TimeSeries-Cubes/``, CSVs under
  ``EnvironmentalRasters/``.

Files are found by walking the raw folder once and matching file *names*
(``..._bioclimatic_monthly_<id>_cube.pt``, ``<id>.tiff`` ...), which tolerates
the known spelling variants (Satelite/Satellite, hyphen/underscore) and never
builds a path from metadata, so nothing outside the folder is ever read.
Metadata may be ``GLC2x_PA_metadata_{train,test}.csv`` or malpolon's single
``metadata.csv`` with a ``subset`` column.

Sites stream through in chunks into zarr, so memory is bounded by one chunk.
A missing or unreadable file gives NaN for that survey and modality; the counts
are reported at the end (or raised at once with ``strict=True``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from miam_explain._io import atomic_path
from miam_explain._version import __version__
from miam_explain.data.format import FORMAT, dim_name
from miam_explain.data.splits import spatial_split
from miam_explain.data.store import SiteChunkWriter, as_text
from miam_explain.errors import DataError

__all__ = [
    "CLIMATE_CHANNELS",
    "LANDSAT_CHANNELS",
    "IMAGE_BANDS",
    "PrepareReport",
    "detect_layout",
    "read_metadata",
    "read_cube",
    "read_tiff",
    "read_jpeg_pair",
    "prepare_geoplant",
]

#: Variables of the bioclimatic monthly cubes, (4, 19, 12) = variable x year x month.
CLIMATE_CHANNELS = ("pr", "tas", "tasmin", "tasmax")
CLIMATE_YEARS = tuple(range(2000, 2019))
#: Bands of the Landsat cubes, (6, 4, 21) = band x quarter x year.
LANDSAT_CHANNELS = ("red", "green", "blue", "nir", "swir1", "swir2")
LANDSAT_YEARS = tuple(range(2000, 2021))
#: Bands of the Sentinel-2 patches, in storage order.
IMAGE_BANDS = ("red", "green", "blue", "nir")

#: Prefix of a tabular column -> its variable group.
VARIABLE_GROUPS = {
    "bio": "worldclim",
    "soilgrid": "soil",
    "elevation": "elevation",
    "humanfootprint": "human_footprint",
    "landcover": "landcover",
}

_CUBE_PATTERNS = {
    "climate": re.compile(r"bioclimatic[-_]monthly[-_](\d+)[-_]cube\.pt$", re.IGNORECASE),
    "landsat": re.compile(r"landsat[-_]time[-_]series[-_](\d+)[-_]cube\.pt$", re.IGNORECASE),
}
_IMAGE_PATTERN = re.compile(r"^(\d+)\.(tiff?|jpe?g)$", re.IGNORECASE)
_METADATA_PATTERN = re.compile(r"^GLC\d\d[-_]PA[-_]metadata[-_](train|test)\.csv$", re.IGNORECASE)


@dataclass
class PrepareReport:
    """What :func:`prepare_geoplant` did: counts for the closing summary."""

    layout: str
    n_sites: int
    n_species: int
    split_counts: dict[str, int]
    missing: Counter = field(default_factory=Counter)
    unreadable: Counter = field(default_factory=Counter)
    unreadable_examples: list[str] = field(default_factory=list)
    skipped_unlabelled: int = 0

    def summary(self) -> str:
        """A few readable lines for the command line."""
        lines = [
            f"prepared {self.n_sites} sites, {self.n_species} species ({self.layout} layout); "
            + ", ".join(f"{k}: {v}" for k, v in self.split_counts.items())
        ]
        for kind in sorted(set(self.missing) | set(self.unreadable)):
            lines.append(
                f"  {kind}: {self.missing.get(kind, 0)} files missing, {self.unreadable.get(kind, 0)} unreadable -> NaN"
            )
        for example in self.unreadable_examples[:5]:
            lines.append(f"    unreadable: {example}")
        if self.skipped_unlabelled:
            lines.append(f"  skipped {self.skipped_unlabelled} surveys without speciesId (unlabelled test set)")
        return "\n".join(lines)


# --------------------------------------------------------------------- layout
def detect_layout(raw: Path) -> str:
    """Return ``"glc25"`` or ``"glc24"`` for a raw folder.

    Raises:
        DataError: the folder is missing or looks like neither layout.
    """
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(f"raw data folder {str(raw)!r} does not exist; pass the folder that holds the GeoPlant files")
    names = [p.name.lower() for p in raw.iterdir()]
    if any(n.startswith(("satelitepatches", "satellitepatches")) for n in names):
        return "glc25"
    if any("satellitepatches_rgb" in n or "satelitepatches_rgb" in n for n in names):
        return "glc24"
    if any(n.startswith("glc25") for n in names) or any("environmentalvalues" == n for n in names):
        return "glc25"
    if any(n.startswith("glc24") for n in names) or any(n in ("environmentalrasters", "timeseries-cubes") for n in names):
        return "glc24"
    raise DataError(
        f"{str(raw)!r} looks like neither the GLC24 nor the GLC25/GeoPlant layout "
        "(no SatelitePatches/ or PA_*_SatellitePatches_RGB/ folder); pass the root of the raw data"
    )


def _metadata_files(raw: Path) -> list[Path]:
    found = sorted(p for p in raw.iterdir() if p.is_file() and _METADATA_PATTERN.match(p.name))
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
class _FileIndex:
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


def _index_files(raw: Path) -> _FileIndex:
    """Walk ``raw`` once and index every file the reader knows, by survey id."""
    root = raw.resolve()
    index = _FileIndex()
    for dirpath, dirnames, filenames in os.walk(raw):
        dirnames.sort()
        lower_dir = dirpath.lower()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() and not _inside(path, root):
                continue  # never follow a link out of the data folder
            for kind, pattern in _CUBE_PATTERNS.items():
                match = pattern.search(name)
                if match:
                    getattr(index, kind)[int(match.group(1))] = path
                    break
            else:
                match = _IMAGE_PATTERN.match(name)
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
                    and ("environmentalvalues" in lower_dir or "environmentalrasters" in lower_dir)
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


def _read_tabular(paths: Iterable[Path], survey_ids: np.ndarray) -> tuple[pd.DataFrame, dict[str, list[str]]] | None:
    """Join every environmental CSV on surveyId; return the table (rows = survey_ids) and groups."""
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


# --------------------------------------------------------------------- driver
@dataclass(frozen=True)
class _Modality:
    name: str
    kind: str
    roles: tuple[str, ...]
    coords: dict[str, np.ndarray]
    attrs: dict[str, str | int]
    read: Callable[[int], np.ndarray | None]  # survey id -> array (without site) or None if absent

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[r]) for r in self.roles)


def _first_image_shape(index: _FileIndex, layout: str) -> tuple[int, int] | None:
    sources = index.tiff if layout == "glc25" else index.rgb
    for sid in list(sources)[:50]:
        try:
            image = read_tiff(sources[sid]) if layout == "glc25" else read_jpeg_pair(index.rgb[sid], index.nir[sid])
        except (DataError, KeyError):
            continue
        return image.shape[1:]
    return None


def prepare_geoplant(
    raw: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "spatial",
    spacing: float = 1.0,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 42,
    chunk_size: int = 512,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PrepareReport:
    """Turn a GLC24 or GLC25 raw folder into a consolidated dataset.

    Args:
        raw: Raw folder (auto-detected layout).
        out: Output ``.zarr`` folder (streamed) or ``.nc`` file.
        split: ``"spatial"`` (verde 1-degree blocks) or ``"given"`` (the
            metadata's train/test subset, with val drawn from train blocks).
        spacing: Block size in degrees for the spatial split.
        val: Validation fraction.
        test: Test fraction.
        seed: Split seed.
        chunk_size: Sites per streamed chunk (bounds memory).
        strict: Raise on the first unreadable file instead of writing NaN.
        overwrite: Replace an existing output.
        progress: Show a progress bar.

    Returns:
        A :class:`PrepareReport` with the counts of missing and unreadable files.

    Raises:
        DataError: missing folder, bad metadata or CSVs, or (``strict``) an unreadable file.
    """
    raw = Path(raw)
    layout = detect_layout(raw)
    sites, species, pairs, n_unlabelled = read_metadata(raw)
    index = _index_files(raw)
    split_names = _make_split(sites, split=split, spacing=spacing, val=val, test=test, seed=seed)
    report = PrepareReport(
        layout=layout,
        n_sites=len(sites),
        n_species=len(species),
        split_counts={s: int((split_names == s).sum()) for s in ("train", "val", "test")},
        skipped_unlabelled=n_unlabelled,
    )
    modalities = _modalities(layout, index, sites["surveyId"].to_numpy())
    species_pos = pd.Series(np.arange(len(species)), index=species)
    pairs_by_site = pairs.groupby("surveyId")["speciesId"].apply(lambda s: species_pos[s.to_numpy()].to_numpy())

    def load(modality: _Modality, sid: int) -> np.ndarray:
        try:
            array = modality.read(sid)
        except DataError as exc:
            if strict:
                raise DataError(f"{exc} (survey {sid}); fix or remove it, or run without --strict to get NaN") from None
            report.unreadable[modality.name] += 1
            report.unreadable_examples.append(str(exc))
            return np.full(modality.shape, np.nan, np.float32)
        if array is None:
            report.missing[modality.name] += 1
            return np.full(modality.shape, np.nan, np.float32)
        return array

    with atomic_path(out, overwrite=overwrite) as tmp:
        zarr_path = tmp if tmp.suffix == ".zarr" else tmp.with_name(tmp.name + ".scratch.zarr")
        writer = SiteChunkWriter(zarr_path, site_chunk=min(chunk_size, 256))
        with tqdm(total=len(sites), desc="prepare", unit="site", disable=not progress) as bar:
            for start in range(0, len(sites), chunk_size):
                rows = sites.iloc[start : start + chunk_size]
                ids = rows["surveyId"].to_numpy()
                labels = np.zeros((len(rows), len(species)), dtype=np.uint8)
                for i, sid in enumerate(ids):
                    labels[i, pairs_by_site.get(sid, np.zeros(0, np.int64))] = 1
                data_vars = {"labels": (("site", "species"), labels)}
                for modality in modalities:
                    stack = np.stack([load(modality, int(sid)) for sid in ids]).astype(np.float32)
                    dims = ("site", *(dim_name(modality.name, r) for r in modality.roles))
                    attrs = {"kind": modality.kind, "roles": ",".join(modality.roles), **modality.attrs}
                    data_vars[f"x_{modality.name}"] = (dims, stack, attrs)
                coords = {
                    "site_id": ("site", ids.astype(np.int64)),
                    "lat": ("site", rows["lat"].to_numpy(float)),
                    "lon": ("site", rows["lon"].to_numpy(float)),
                    "split": ("site", as_text(split_names[start : start + chunk_size])),
                    "survey_year": ("site", rows["year"].to_numpy(np.int64)),
                    "region": ("site", as_text(rows["region"])),
                    "country": ("site", as_text(rows["country"])),
                    "source_subset": ("site", as_text(rows["subset"])),
                }
                if start == 0:
                    coords["species"] = ("species", species.astype(np.int64))
                    for modality in modalities:
                        for role, values in modality.coords.items():
                            coords[dim_name(modality.name, role)] = values
                chunk = xr.Dataset(data_vars, coords=coords)
                writer.append(chunk)
                bar.update(len(rows))
        writer.set_attrs(
            {
                "miam_format": FORMAT,
                "task": "multilabel",
                "layout": layout,
                "source": str(raw.resolve()),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "version": __version__,
                "split_method": split,
                "split_seed": int(seed),
                "split_spacing_deg": float(spacing),
                "reader_missing": json.dumps(dict(report.missing)),
                "reader_unreadable": json.dumps(dict(report.unreadable)),
            }
        )
        if zarr_path != tmp:
            SiteChunkWriter.to_netcdf(zarr_path, tmp)
    return report


def _make_split(sites: pd.DataFrame, *, split: str, spacing: float, val: float, test: float, seed: int) -> np.ndarray:
    lon, lat = sites["lon"].to_numpy(), sites["lat"].to_numpy()
    if split == "spatial":
        return spatial_split(lon, lat, spacing=spacing, val=val, test=test, seed=seed)
    if split == "given":
        given = sites["subset"].str.lower().to_numpy()
        out = np.where(given == "test", "test", "train").astype("<U5")
        train = np.flatnonzero(out == "train")
        if len(train):
            inner = spatial_split(lon[train], lat[train], spacing=spacing, val=val / max(1e-9, 1 - test), test=0.0, seed=seed)
            out[train] = inner
        return out
    raise DataError(f"unknown split {split!r} for presence-absence data; use 'spatial' or 'given'")


def _modalities(layout: str, index: _FileIndex, survey_ids: np.ndarray) -> list[_Modality]:
    """The modalities this raw folder provides, in canonical order."""
    modalities: list[_Modality] = []
    table = _read_tabular(index.tabular, survey_ids)
    if table is not None:
        frame, groups = table
        values = frame.to_numpy(np.float32)
        row_of = {int(s): i for i, s in enumerate(frame.index.to_numpy())}
        modalities.append(
            _Modality(
                name="tabular",
                kind="tabular",
                roles=("variable",),
                coords={"variable": as_text(frame.columns)},
                attrs={"groups": json.dumps(groups)},
                read=lambda sid: values[row_of[sid]],
            )
        )

    def cube_reader(files: dict[int, Path], shape: tuple[int, ...], transpose: tuple[int, ...]):
        def read(sid: int) -> np.ndarray | None:
            path = files.get(sid)
            return None if path is None else np.transpose(read_cube(path, shape), transpose)

        return read

    modalities.append(
        _Modality(
            name="climate",
            kind="timeseries",
            roles=("channel", "year", "step"),
            coords={
                "channel": as_text(CLIMATE_CHANNELS),
                "year": np.array(CLIMATE_YEARS, np.int64),
                "step": np.arange(1, 13, dtype=np.int64),
            },
            attrs={"step_unit": "month"},
            read=cube_reader(index.climate, (4, 19, 12), (0, 1, 2)),
        )
    )
    modalities.append(
        _Modality(
            name="landsat",
            kind="timeseries",
            roles=("channel", "year", "step"),
            coords={
                "channel": as_text(LANDSAT_CHANNELS),
                "year": np.array(LANDSAT_YEARS, np.int64),
                "step": np.arange(1, 5, dtype=np.int64),
            },
            attrs={"step_unit": "quarter", "channel_kind": "band"},
            read=cube_reader(index.landsat, (6, 4, 21), (0, 2, 1)),
        )
    )
    shape = _first_image_shape(index, layout)
    if shape is not None:
        height, width = shape

        def read_image(sid: int) -> np.ndarray | None:
            if layout == "glc25":
                path = index.tiff.get(sid)
                image = None if path is None else read_tiff(path)
            else:
                rgb, nir = index.rgb.get(sid), index.nir.get(sid)
                image = None if rgb is None or nir is None else read_jpeg_pair(rgb, nir)
            if image is not None and image.shape[1:] != (height, width):
                raise DataError(f"patch of survey {sid} is {image.shape[1:]}, expected {(height, width)}")
            return image

        modalities.append(
            _Modality(
                name="sentinel2",
                kind="image",
                roles=("band", "y", "x"),
                coords={
                    "band": as_text(IMAGE_BANDS),
                    "y": np.arange(height, dtype=np.int64),
                    "x": np.arange(width, dtype=np.int64),
                },
                attrs={"grid": 5, "source_format": "geotiff" if layout == "glc25" else "jpeg"},
                read=read_image,
            )
        )
    else:
        warnings.warn("no readable satellite patch found; the dataset has no image modality", stacklevel=2)
    return modalities
