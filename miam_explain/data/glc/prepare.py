"""Turn a GLC24 or GLC25 raw folder into the consolidated dataset: :func:`prepare_geoplant`.

It auto-detects the layout (:func:`~miam_explain.data.glc.reader.detect_layout`),
reads the metadata and indexes the files once, then streams sites through in
chunks into zarr, so memory is bounded by one chunk. A missing or unreadable
file gives NaN for that survey and modality; the counts are reported at the end
(or raised at once with ``strict=True``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.files import atomic_path
from miam_explain._version import __version__
from miam_explain.data.format import FORMAT, dim_name
from miam_explain.data.glc.layout import (
    CLIMATE_CHANNELS,
    CLIMATE_CUBE_SHAPE,
    CLIMATE_YEARS,
    GLC25,
    IMAGE_BANDS,
    LANDSAT_CHANNELS,
    LANDSAT_CUBE_SHAPE,
    LANDSAT_YEARS,
)
from miam_explain.data.glc.reader import (
    FileIndex,
    detect_layout,
    index_files,
    read_cube,
    read_jpeg_pair,
    read_metadata,
    read_tabular,
    read_tiff,
)
from miam_explain.data.glc.recipe import Recipe, recipe_attrs, select_species, select_tabular
from miam_explain.data.splits import spatial_split
from miam_explain.data.store import SiteChunkWriter, as_text
from miam_explain.errors import ConfigError, DataError

__all__ = ["PrepareReport", "prepare_geoplant"]


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
    species_note: str = ""

    def summary(self) -> str:
        """A few readable lines for the command line."""
        lines = [
            f"prepared {self.n_sites} sites, {self.n_species} species ({self.layout} layout); "
            + ", ".join(f"{k}: {v}" for k, v in self.split_counts.items())
        ]
        if self.species_note:
            lines.append(f"  {self.species_note}")
        for kind in sorted(set(self.missing) | set(self.unreadable)):
            lines.append(
                f"  {kind}: {self.missing.get(kind, 0)} files missing, {self.unreadable.get(kind, 0)} unreadable -> NaN"
            )
        for example in self.unreadable_examples[:5]:
            lines.append(f"    unreadable: {example}")
        if self.skipped_unlabelled:
            lines.append(f"  skipped {self.skipped_unlabelled} surveys without speciesId (unlabelled test set)")
        return "\n".join(lines)


# --------------------------------------------------------------------- driver
@dataclass(frozen=True)
class _Modality:
    """One modality of the output: its dims, coords and attrs, and how to read one survey."""

    name: str
    kind: str
    roles: tuple[str, ...]
    coords: dict[str, np.ndarray]
    attrs: dict[str, str | int]
    read: Callable[[int], np.ndarray | None]  # survey id -> array (without site) or None if absent

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[r]) for r in self.roles)


def _first_image_shape(index: FileIndex, layout: str) -> tuple[int, int] | None:
    sources = index.tiff if layout == GLC25 else index.rgb
    for sid in list(sources)[:50]:
        try:
            image = read_tiff(sources[sid]) if layout == GLC25 else read_jpeg_pair(index.rgb[sid], index.nir[sid])
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
    min_presences: int | None = None,
    species_in_every_split: bool | None = None,
    tabular_columns: Sequence[str] | None = None,
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
        spacing: Block size in degrees for the spatial split (``--block-size-deg``; 1 in the paper).
        val: Validation fraction.
        test: Test fraction.
        seed: Split seed.
        min_presences: Keep the species present in at least this many surveys, counted
            over all splits (21 = the paper's "more than 20"); ``None`` keeps all.
        species_in_every_split: Keep only species present in every split; ``None``
            means on exactly when ``min_presences`` is given (the paper's recipe).
        tabular_columns: Tabular columns or variable groups (``worldclim``, ``soil`` ...)
            that become tokens; ``None`` keeps every numeric column of every CSV.
        chunk_size: Sites per streamed chunk (bounds memory).
        strict: Raise on the first unreadable file instead of writing NaN.
        overwrite: Replace an existing output.
        progress: Show a progress bar.

    Returns:
        A :class:`PrepareReport` with the counts of missing and unreadable files
        and of the species the recipe dropped (recorded in the ``recipe`` attr too).

    Raises:
        ConfigError: ``min_presences`` below 1, a block size that is not positive,
            or an unknown tabular column.
        DataError: missing folder, bad metadata or CSVs, a recipe that keeps no
            species, or (``strict``) an unreadable file.
    """
    recipe = Recipe(
        min_presences=min_presences,
        species_in_every_split=species_in_every_split,
        tabular_columns=None if tabular_columns is None else tuple(tabular_columns),
    )
    raw = Path(raw)
    layout = detect_layout(raw)
    sites, _, pairs, n_unlabelled = read_metadata(raw)
    split_names = _make_split(sites, split=split, spacing=spacing, val=val, test=test, seed=seed)
    selection = select_species(pairs, pd.Series(split_names, index=sites["surveyId"].to_numpy()), recipe)
    species = selection.kept
    pairs = pairs[pairs["speciesId"].isin(species)]
    index = index_files(raw)
    report = PrepareReport(
        layout=layout,
        n_sites=len(sites),
        n_species=len(species),
        split_counts={s: int((split_names == s).sum()) for s in ("train", "val", "test")},
        skipped_unlabelled=n_unlabelled,
        species_note=selection.summary(recipe) if recipe.min_presences or recipe.in_every_split else "",
    )
    modalities = _modalities(layout, index, sites["surveyId"].to_numpy(), tabular_columns=recipe.tabular_columns)
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
                "recipe": recipe_attrs(recipe, selection, split=split, spacing=spacing),
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


def _modalities(
    layout: str, index: FileIndex, survey_ids: np.ndarray, *, tabular_columns: tuple[str, ...] | None = None
) -> list[_Modality]:
    """The modalities this raw folder provides, in canonical order (tabular restricted to ``tabular_columns``)."""
    modalities: list[_Modality] = []
    table = read_tabular(index.tabular, survey_ids)
    if table is None and tabular_columns is not None:
        raise ConfigError(
            "--tabular-columns was given but the raw folder has no tabular CSV "
            "(EnvironmentalValues/ or EnvironmentalRasters/); leave the option out"
        )
    if table is not None:
        frame, groups = table
        if tabular_columns is not None:
            frame, groups = select_tabular(frame, groups, tabular_columns)
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
                "step": np.arange(1, CLIMATE_CUBE_SHAPE[2] + 1, dtype=np.int64),
            },
            attrs={"step_unit": "month"},
            read=cube_reader(index.climate, CLIMATE_CUBE_SHAPE, (0, 1, 2)),
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
                "step": np.arange(1, LANDSAT_CUBE_SHAPE[1] + 1, dtype=np.int64),
            },
            attrs={"step_unit": "quarter", "channel_kind": "band"},
            read=cube_reader(index.landsat, LANDSAT_CUBE_SHAPE, (0, 2, 1)),
        )
    )
    shape = _first_image_shape(index, layout)
    if shape is not None:
        height, width = shape

        def read_image(sid: int) -> np.ndarray | None:
            if layout == GLC25:
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
                attrs={"grid": 5, "source_format": "geotiff" if layout == GLC25 else "jpeg"},
                read=read_image,
            )
        )
    else:
        warnings.warn("no readable satellite patch found; the dataset has no image modality", stacklevel=2)
    return modalities
