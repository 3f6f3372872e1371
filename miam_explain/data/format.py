"""The consolidated dataset: conventions, validation and opening.

Everything downstream (schema, tokenizers, training, explain engine) reads one
format: an :class:`xarray.Dataset`, stored as zarr (a folder ending in
``.zarr``) or netCDF (``.nc``). ``docs/data.md`` describes it in full; in short:

* dimension ``site`` with coords ``site_id`` (int64), ``lat``, ``lon``
  (float64) and ``split`` (``"train"``, ``"val"`` or ``"test"``);
* multi-label targets ``labels(site, species)`` (uint8, 0/1) or multi-class
  ``label(site)`` (int64 index into the ``species`` coord);
* one variable ``x_<modality>`` (float32, NaN = missing) per modality, with
  attrs ``kind`` (``tabular``, ``timeseries``, ``image``, ``embedding``) and
  ``roles`` (comma-separated role of each non-site dim, in order); every
  non-site dim is named ``<modality>_<role>``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from miam_explain._version import __version__
from miam_explain.errors import DataError

__all__ = [
    "FORMAT",
    "KIND_ROLES",
    "SPLITS",
    "dataset_attrs",
    "dim_name",
    "modality_attrs",
    "modality_dims",
    "modality_names",
    "modality_roles",
    "open_dataset",
    "plain_strings",
    "read_values",
    "select_split",
    "split_positions",
    "text_values",
    "validate_dataset",
    "write_dataset",
]

#: Value of the ``miam_format`` global attribute of every consolidated dataset.
FORMAT = "miam-explain consolidated v1"

#: The roles of the non-site dims of each modality kind, in storage order.
KIND_ROLES: dict[str, tuple[str, ...]] = {
    "tabular": ("variable",),
    "timeseries": ("channel", "year", "step"),
    "image": ("band", "y", "x"),
    "embedding": ("dim",),
}

#: One-dimensional coordinates that :func:`open_dataset` reads into memory at once.
_SMALL_COORDS: tuple[str, ...] = ("site_id", "lat", "lon", "split", "species")

#: The split names, in their canonical order.
SPLITS: tuple[str, ...] = ("train", "val", "test")


def text_values(values) -> np.ndarray:
    """Any array of strings (fixed-width, object, numpy StringDType) as a plain ``str`` array."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def plain_strings(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every string variable and coordinate as an object array of Python ``str``.

    zarr 3 with NumPy 2 loads variable-length strings as ``StringDType``, which
    ``.astype(str)``, older pandas and matplotlib refuse. :func:`open_dataset` calls this,
    so users get ordinary strings. String variables are small (coordinates such as
    ``split`` or ``species``); they are read into memory here.

    Example:
        >>> s = xr.Dataset(coords={"split": ("site", np.array(["train", "val"], dtype=np.dtypes.StringDType()))})
        >>> plain_strings(s)["split"].values.astype(str)
        array(['train', 'val'], dtype='<U5')
    """
    coords, data_vars = {}, {}
    for name, var in ds.variables.items():
        if var.dtype.kind == "T":  # numpy.dtypes.StringDType
            plain = var.copy(data=np.asarray(var.values, dtype=object))
            (coords if name in ds.coords else data_vars)[name] = plain
    return ds.assign_coords(coords).assign(data_vars) if coords or data_vars else ds


def dim_name(modality: str, role: str) -> str:
    """Dimension name of ``role`` for ``modality``, e.g. ``("climate", "year") -> "climate_year"``."""
    return f"{modality}_{role}"


def modality_dims(modality: str, kind: str) -> tuple[str, ...]:
    """Dims of ``x_<modality>``: ``site`` then ``<modality>_<role>`` for each role of ``kind``.

    Example:
        >>> modality_dims("climate", "timeseries")
        ('site', 'climate_channel', 'climate_year', 'climate_step')
    """
    return ("site", *(dim_name(modality, role) for role in KIND_ROLES[kind]))


def modality_attrs(kind: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Attributes of a modality variable: ``kind``, ``roles`` and the kind's ``extra`` ones.

    Args:
        kind: One of :data:`KIND_ROLES`.
        extra: e.g. ``groups`` (tabular), ``step_unit`` (timeseries), ``grid`` (image).

    Example:
        >>> modality_attrs("timeseries", {"step_unit": "month"})
        {'kind': 'timeseries', 'roles': 'channel,year,step', 'step_unit': 'month'}
    """
    return {"kind": kind, "roles": ",".join(KIND_ROLES[kind]), **dict(extra or {})}


def dataset_attrs(
    *, task: str, layout: str, source: str, split_method: str, split_seed: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Global attributes of a consolidated dataset: the format mark, the task and the provenance.

    Args:
        task: ``"multilabel"`` or ``"multiclass"``.
        layout: What the reader read (``glc25``, ``embeddings``, ``table`` ...).
        source: The raw input's path.
        split_method: How ``split`` was drawn.
        split_seed: Its seed.
        extra: The reader's own attributes (counts, spacing ...).
    """
    return {
        "miam_format": FORMAT,
        "task": task,
        "layout": layout,
        "source": source,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
        "split_method": split_method,
        "split_seed": int(split_seed),
        **dict(extra or {}),
    }


def modality_names(ds: xr.Dataset) -> list[str]:
    """Modality names of ``ds`` in variable order (``x_climate`` -> ``climate``)."""
    return [str(name)[2:] for name in ds.data_vars if str(name).startswith("x_")]


def modality_roles(ds: xr.Dataset, modality: str) -> dict[str, str]:
    """Map role -> dim name for one modality, from its ``roles`` attribute."""
    var = ds[f"x_{modality}"]
    roles = [r.strip() for r in str(var.attrs.get("roles", "")).split(",") if r.strip()]
    return dict(zip(roles, var.dims[1:]))


def validate_dataset(ds: xr.Dataset, *, source: str = "dataset") -> xr.Dataset:
    """Check that ``ds`` follows the consolidated format; return it unchanged.

    Args:
        ds: Candidate dataset.
        source: How to name the dataset in error messages (usually its path).

    Raises:
        DataError: naming the first rule that ``ds`` breaks.
    """
    if ds.attrs.get("miam_format") != FORMAT:
        raise DataError(
            f"{source} is not a miam-explain consolidated dataset (no miam_format attribute); "
            "make one with 'miam-explain data prepare RAW --out DATA.zarr'"
        )
    if "site" not in ds.dims:
        raise DataError(f"{source} has no 'site' dimension; re-create it with 'miam-explain data prepare'")
    for coord in ("site_id", "lat", "lon"):
        if coord not in ds.coords or ds[coord].dims != ("site",):
            raise DataError(f"{source} lacks the per-site coordinate {coord!r}; re-create it with 'miam-explain data prepare'")
    if "labels" in ds.data_vars:
        if ds["labels"].dims != ("site", "species"):
            raise DataError(f"{source}: 'labels' must have dims (site, species), found {ds['labels'].dims}")
    elif "label" in ds.data_vars:
        if ds["label"].dims != ("site",) or "species" not in ds.coords:
            raise DataError(f"{source}: 'label' must have dim (site,) and a 'species' coordinate naming the classes")
    else:
        raise DataError(f"{source} has no 'labels' (multi-label) or 'label' (multi-class) variable; re-create it with 'miam-explain data prepare'")
    modalities = modality_names(ds)
    if not modalities:
        raise DataError(f"{source} has no modality variables (named x_<modality>); re-create it with 'miam-explain data prepare'")
    for modality in modalities:
        var = ds[f"x_{modality}"]
        kind = var.attrs.get("kind")
        if kind not in KIND_ROLES:
            raise DataError(
                f"{source}: x_{modality} has kind {kind!r}; it must be one of {', '.join(KIND_ROLES)}"
            )
        expected = tuple(dim_name(modality, role) for role in KIND_ROLES[kind])
        if var.dims != ("site", *expected):
            raise DataError(f"{source}: x_{modality} must have dims {('site', *expected)}, found {var.dims}")
        roles = tuple(modality_roles(ds, modality))
        if roles != KIND_ROLES[kind]:
            raise DataError(
                f"{source}: x_{modality} attribute roles={var.attrs.get('roles')!r} must be {','.join(KIND_ROLES[kind])!r}"
            )
        if var.dtype.kind not in _NUMERIC_KINDS:
            raise DataError(f"{source}: x_{modality} holds {var.dtype} values; a modality must be numeric (float32, NaN = missing)")
    _validate_sites(ds, source)
    if "split" in ds.coords:
        found = set(np.unique(text_values(read_values(ds["split"], source=source))).tolist())
        unknown = found - set(SPLITS)
        if unknown:
            raise DataError(f"{source}: unknown split names {sorted(unknown)}; use {', '.join(SPLITS)}")
    return ds


#: ``dtype.kind`` of the numeric arrays: bool, signed and unsigned integer, float.
_NUMERIC_KINDS = "biuf"


def _validate_sites(ds: xr.Dataset, source: str) -> None:
    """Per-site coordinates and targets: types, unique ids, plausible coordinates (reads only 1-D coords)."""
    fix = "fix them in the source data and prepare the dataset again"
    site_id = read_values(ds["site_id"], source=source)
    if site_id.dtype.kind not in "iu":
        raise DataError(f"{source}: site_id holds {site_id.dtype} values; site ids must be integers (the surveyId); {fix}")
    if np.unique(site_id).size != site_id.size:
        values, counts = np.unique(site_id, return_counts=True)
        raise DataError(f"{source}: site_id {int(values[counts > 1][0])} appears {int(counts.max())} times; site ids must be unique; {fix}")
    coords = {}
    for name, limit in (("lat", 90.0), ("lon", 360.0)):
        values = read_values(ds[name], source=source)
        if values.dtype.kind not in "iuf":
            raise DataError(f"{source}: {name} holds {values.dtype} values; {name} must be a number in degrees; {fix}")
        values = values.astype(np.float64)
        bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > limit) | ((values < -180.0) if name == "lon" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: {name} of site_id {int(site_id[i])} is {values[i]}, outside "
                f"{'[-90, 90]' if name == 'lat' else '[-180, 360]'} degrees ({int(bad.sum())} such sites); {fix}"
            )
        coords[name] = values
    half = np.isnan(coords["lat"]) != np.isnan(coords["lon"])
    if half.any():
        i = int(np.flatnonzero(half)[0])
        raise DataError(
            f"{source}: site_id {int(site_id[i])} has lat {coords['lat'][i]} and lon {coords['lon'][i]}; give both "
            f"coordinates or neither (NaN = unknown location) ({int(half.sum())} such sites); {fix}"
        )
    if "species" not in ds.coords:
        raise DataError(f"{source} has no 'species' coordinate naming the species or classes; re-create it with 'miam-explain data prepare'")
    species = text_values(read_values(ds["species"], source=source))
    if np.unique(species).size != species.size:
        values, counts = np.unique(species, return_counts=True)
        raise DataError(f"{source}: species {str(values[counts > 1][0])!r} is listed {int(counts.max())} times; species must be unique; {fix}")
    target = "labels" if "labels" in ds.data_vars else "label"
    kinds = _NUMERIC_KINDS if target == "labels" else "iu"
    if ds[target].dtype.kind not in kinds:
        wanted = "0/1 numbers" if target == "labels" else "integer class indices"
        raise DataError(f"{source}: {target!r} holds {ds[target].dtype} values; it must hold {wanted}; {fix}")


def read_values(array: xr.DataArray, *, source: str = "the dataset", scheduler: str | None = None) -> np.ndarray:
    """The values of a (possibly lazy) variable as a numpy array.

    A damaged store (a truncated or corrupt chunk) fails only when the values are
    read; that failure becomes a one-line :class:`DataError`.

    Args:
        array: The variable.
        source: How to name the dataset in the error.
        scheduler: A Dask scheduler for a dask-backed variable (``"synchronous"``: read in the calling
            thread, as a background reader or a Dask worker must); ``None`` for Dask's default.

    Raises:
        DataError: the values cannot be read or decoded.
    """
    try:
        if scheduler is not None:
            return np.asarray(array.compute(scheduler=scheduler).values)
        return np.asarray(array.values)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - zarr, numcodecs and h5py raise many types for a damaged chunk
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot read {str(array.name)!r} from {source} ({reason}); the store is damaged (a truncated or corrupt "
            "chunk): prepare it again with 'miam-explain data prepare'"
        ) from None


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Open and validate a consolidated dataset (zarr folder or netCDF file).

    Args:
        path: A ``.zarr`` folder or a ``.nc`` file written by ``miam-explain data prepare``.

    Returns:
        The lazily loaded dataset.

    Raises:
        DataError: the path is missing, unreadable, or not a consolidated dataset.

    Example:
        >>> import miam_explain
        >>> ds = miam_explain.open_dataset(data_path)
        >>> ds["x_climate"].dims
        ('site', 'climate_channel', 'climate_year', 'climate_step')
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {str(path)!r} does not exist; make one with 'miam-explain data prepare RAW --out DATA.zarr'")
    if path.is_dir():
        _refuse_unsafe_codecs(path)
    try:
        if path.is_dir():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = xr.open_zarr(path, consolidated=None)
        else:
            ds = xr.open_dataset(path, engine="h5netcdf")
        for name in _SMALL_COORDS:  # read once here: validation needs them, and they are small
            if name in ds.coords and ds[name].ndim == 1:
                ds[name].variable.load()
        ds = plain_strings(ds)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot read {str(path)!r} as a zarr store or netCDF file ({reason}); "
            "pass a dataset written by 'miam-explain data prepare'"
        ) from None
    return validate_dataset(ds, source=repr(str(path)))


#: Codecs that decode by unpickling (they could run code); a store that names one is refused.
_UNSAFE_CODECS = ("pickle",)


def _refuse_unsafe_codecs(path: Path) -> None:
    """Refuse a zarr store whose metadata names a pickle codec, before zarr reads any chunk.

    Only metadata files are read: the consolidated ``.zmetadata`` / ``zarr.json`` at the
    root and the ``.zarray`` / ``zarr.json`` of each array one level down (where xarray
    puts them). Current zarr already refuses such arrays; this keeps it so.

    Raises:
        DataError: a pickle codec, compressor or filter.
    """
    texts = []
    try:
        folders = [path, *(child for child in sorted(path.iterdir()) if child.is_dir() and not child.is_symlink())]
        for folder in folders:
            for name in (".zmetadata", ".zarray", "zarr.json"):
                meta = folder / name
                if meta.is_file():
                    texts.append(meta.read_text(errors="replace"))
    except OSError:
        pass  # an unreadable store fails properly when zarr opens it
    for text in texts:
        try:
            document = json.loads(text)
        except ValueError:
            continue  # a broken file fails properly when zarr opens the store
        for codec in _codec_names(document):
            if any(word in codec.lower() for word in _UNSAFE_CODECS):
                raise DataError(
                    f"{str(path)!r} uses the {codec!r} codec, which decodes by unpickling and could run code; "
                    "miam-explain refuses it — re-create the dataset with 'miam-explain data prepare'"
                )


def _codec_names(document) -> list[str]:
    """Every ``id`` (zarr v2) or ``name`` (zarr v3) found in a codec position of a metadata document."""
    names: list[str] = []
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("compressor", "filters", "codecs", "object_codec") or key.endswith("codec"):
                    for codec in value if isinstance(value, list) else [value]:
                        if isinstance(codec, dict):
                            name = codec.get("id", codec.get("name"))
                            if isinstance(name, str):
                                names.append(name)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return names


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write a whole in-memory dataset to ``path`` (zarr if it ends in ``.zarr``, else netCDF).

    The caller handles atomicity (see :func:`miam_explain.files.atomic_path`).
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's notes on string dtypes and consolidated metadata
        if path.suffix == ".zarr":
            ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
        else:
            ds.to_netcdf(path, engine="h5netcdf")


def select_split(ds: xr.Dataset, split: str | None) -> xr.Dataset:
    """The sites of one split (``None`` or ``"all"``: every site).

    Raises:
        DataError: unknown split name, a dataset without splits, or a split without sites.
    """
    if split in (None, "all"):
        if ds.sizes["site"] == 0:
            raise DataError("the dataset has no sites; prepare it again from a metadata file with surveys")
        return ds
    return ds.isel(site=split_positions(ds, split))


def split_positions(ds: xr.Dataset, split: str | None) -> np.ndarray:
    """``int64[n]`` positions along ``site`` of the sites of one split, in store order (``None``/``"all"``: every site).

    Raises:
        DataError: as :func:`select_split`.
    """
    if split in (None, "all"):
        if ds.sizes["site"] == 0:
            raise DataError("the dataset has no sites; prepare it again from a metadata file with surveys")
        return np.arange(ds.sizes["site"], dtype=np.int64)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or 'all'")
    if "split" not in ds.coords:
        raise DataError("the dataset has no 'split' coordinate; prepare it with --split spatial or stratified")
    selected = np.flatnonzero(text_values(read_values(ds["split"])) == split)
    if selected.size == 0:
        raise DataError(
            f"split {split!r} has no sites; choose another split or prepare the data again with larger "
            "--val/--test fractions (or a smaller --spacing)"
        )
    return selected.astype(np.int64)
