"""Reader of pre-computed per-modality embeddings (TaxaBench style).

Input: a ``.pt`` (loaded with ``weights_only=True``) or ``.npz`` (loaded with
``allow_pickle=False``) file holding ``{modality: float[N, D_m]}`` arrays, plus a
CSV with one row per sample and a ``scientific_name`` column (the class). The
CSV may also give ``lat``/``lon`` (or ``latitude``/``longitude``) and a
``site_id``/``surveyId``/``id``. The result is a multi-class consolidated
dataset: ``label(site)`` indexes the sorted ``species`` names, and each modality
is an ``embedding`` variable ``x_<m>(site, <m>_dim)`` (one token per modality).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.files import atomic_path
from miam_explain._version import __version__
from miam_explain.data.format import FORMAT, dim_name, write_dataset
from miam_explain.data.splits import spatial_split, stratified_split
from miam_explain.data.store import as_text
from miam_explain.errors import DataError

__all__ = ["read_embedding_file", "prepare_embeddings"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def read_embedding_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load ``{modality: float32[N, D]}`` from a ``.pt`` or ``.npz`` file, without unpickling code.

    Raises:
        DataError: missing, corrupt or pickled file; arrays that are not 2-D or disagree on N.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding file {str(path)!r} does not exist; pass a .pt or .npz file of {{modality: (N, D)}} arrays")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pt":
            import torch

            raw = torch.load(path, weights_only=True, map_location="cpu")
            if not isinstance(raw, dict):
                raise DataError(f"{path.name} holds a {type(raw).__name__}; expected a dict {{modality: tensor (N, D)}}")
            arrays = {str(k): np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in raw.items()}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        else:
            raise DataError(f"embedding file {path.name} must end in .pt or .npz")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch/numpy raise many types for bad files
        raise DataError(
            f"cannot load embeddings {path.name} ({type(exc).__name__}); the file is corrupt or holds pickled objects"
        ) from None
    if not arrays:
        raise DataError(f"{path.name} holds no arrays")
    sizes = {k: a.shape for k, a in arrays.items()}
    for name, array in arrays.items():
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
            raise DataError(f"embedding {name!r} in {path.name} has shape {array.shape} and dtype {array.dtype}; expected numeric (N, D)")
        if not _NAME.match(name):
            raise DataError(f"modality name {name!r} in {path.name} must be letters, digits and _ only")
    if len({s[0] for s in sizes.values()}) != 1:
        raise DataError(f"embeddings in {path.name} disagree on the number of samples: {sizes}")
    return {k: a.astype(np.float32) for k, a in arrays.items()}


def _column(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    lower = {c.lower(): c for c in frame.columns}
    for name in names:
        if name.lower() in lower:
            return frame[lower[name.lower()]]
    return None


def prepare_embeddings(
    embeddings: str | os.PathLike,
    labels_csv: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "stratified",
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 42,
    overwrite: bool = False,
) -> xr.Dataset:
    """Build a multi-class consolidated dataset from embeddings and a labels CSV.

    Args:
        embeddings: ``.pt`` or ``.npz`` file of ``{modality: (N, D)}`` arrays.
        labels_csv: CSV with N rows and a ``scientific_name`` column.
        out: Output ``.zarr`` folder or ``.nc`` file.
        split: ``"stratified"`` (by class) or ``"spatial"`` (needs lat/lon).
        val: Validation fraction.
        test: Test fraction.
        seed: Split seed.
        overwrite: Replace an existing output.

    Returns:
        The dataset that was written.
    """
    arrays = read_embedding_file(embeddings)
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise DataError(f"labels CSV {str(labels_csv)!r} does not exist; pass --labels with a CSV holding scientific_name")
    try:
        frame = pd.read_csv(labels_csv)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read CSV {labels_csv.name} ({str(exc).splitlines()[0]})") from None
    names = _column(frame, "scientific_name")
    if names is None:
        raise DataError(f"{labels_csv.name} has no 'scientific_name' column; it names the class of each sample")
    n = next(iter(arrays.values())).shape[0]
    if len(frame) != n:
        raise DataError(f"{labels_csv.name} has {len(frame)} rows but the embeddings have {n} samples; they must match row by row")
    if names.isna().any():
        raise DataError(f"{labels_csv.name}: {int(names.isna().sum())} rows have no scientific_name")
    classes, label = np.unique(names.astype(str).to_numpy(), return_inverse=True)
    lat, lon = _column(frame, "lat", "latitude"), _column(frame, "lon", "longitude")
    site_id = _column(frame, "site_id", "surveyId", "id")
    coords_known = lat is not None and lon is not None
    lat_v = lat.to_numpy(float) if coords_known else np.full(n, np.nan)
    lon_v = lon.to_numpy(float) if coords_known else np.full(n, np.nan)
    if split == "stratified":
        split_names = stratified_split(label, val=val, test=test, seed=seed)
    elif split == "spatial":
        if not coords_known or not np.isfinite(np.c_[lat_v, lon_v]).all():
            raise DataError("--split spatial needs lat and lon for every sample; use --split stratified")
        split_names = spatial_split(lon_v, lat_v, val=val, test=test, seed=seed)
    else:
        raise DataError(f"unknown split {split!r}; use 'stratified' or 'spatial'")
    data_vars = {"label": ("site", label.astype(np.int64))}
    for name, array in arrays.items():
        dim = dim_name(name, "dim")
        data_vars[f"x_{name}"] = (("site", dim), array, {"kind": "embedding", "roles": "dim"})
    ds = xr.Dataset(
        data_vars,
        coords={
            "site_id": ("site", site_id.to_numpy(np.int64) if site_id is not None else np.arange(n, dtype=np.int64)),
            "lat": ("site", lat_v),
            "lon": ("site", lon_v),
            "split": ("site", as_text(split_names)),
            "species": ("species", as_text(classes)),
        },
        attrs={
            "miam_format": FORMAT,
            "task": "multiclass",
            "layout": "embeddings",
            "source": str(Path(embeddings).resolve()),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "version": __version__,
            "split_method": split,
            "split_seed": int(seed),
        },
    )
    with atomic_path(out, overwrite=overwrite) as tmp:
        write_dataset(ds, tmp)
    return ds
