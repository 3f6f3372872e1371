"""Bring your own data: :func:`from_table` turns a table of sites (and gridded cubes) into a consolidated dataset.

The steps, each in its own module: read the table and its coordinates
(:mod:`~miam_explain.data.table.read`), fold rows into sites with their species
and covariates (:mod:`~miam_explain.data.table.sites`), sample each cube at the
sites (:mod:`~miam_explain.data.table.cube`), split, keep the species the
recipe asks for (:mod:`miam_explain.data.glc.recipe`, shared with
``data prepare``), then validate and write atomically with the format's own
helpers (:mod:`miam_explain.data.format`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.data.format import (
    SPLITS,
    dataset_attrs,
    dim_name,
    modality_attrs,
    modality_dims,
    validate_dataset,
    write_dataset,
)
from miam_explain.data.glc.recipe import Recipe, SpeciesSelection, recipe_attrs, select_species
from miam_explain.data.splits import spatial_split, stratified_split
from miam_explain.data.store import as_text
from miam_explain.data.table.cube import open_cube, sample_cube
from miam_explain.data.table.read import read_table, site_coordinates
from miam_explain.data.table.sites import Sites, fold_sites
from miam_explain.data.table.spec import TableSpec, check_modality_name
from miam_explain.errors import ConfigError, DataError
from miam_explain.files import atomic_path, check_output_path

__all__ = ["SPLIT_METHODS", "TABULAR", "TableReport", "from_table"]

#: How ``split`` can be drawn.
SPLIT_METHODS: tuple[str, ...] = ("spatial", "given", "stratified")
#: Name of the modality that holds the covariates.
TABULAR = "tabular"


@dataclass
class TableReport:
    """What :func:`from_table` did, for the closing summary."""

    out: Path
    n_rows: int
    n_sites: int
    n_species: int
    species_format: str
    coordinates: str
    covariates: tuple[str, ...]
    split_counts: dict[str, int]
    species_note: str
    ignored: tuple[str, ...] = ()
    cubes: dict[str, str] = field(default_factory=dict)
    absent: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few readable lines for the command line."""
        splits = ", ".join(f"{k}: {v}" for k, v in self.split_counts.items())
        lines = [(f"prepared {self.n_sites} sites from {self.n_rows} rows, {self.n_species} species "
                  f"({self.species_format} format); {splits}"),
                 f"  coordinates: {self.coordinates}",
                 f"  {self.species_note}"]
        if self.covariates:
            lines.append(f"  x_{TABULAR}: {len(self.covariates)} covariates ({', '.join(self.covariates)})")
        if self.ignored:
            lines.append(f"  left out (not numeric): {', '.join(self.ignored)}")
        lines.extend(f"  x_{name}: {text}" for name, text in self.cubes.items())
        if self.absent:
            where = ", ".join(f"{n} from {s}" for s, n in self.absent.items())
            lines.append(f"  warning: species without presence in a split ({where}): their AUC is undefined there; "
                         "try --split stratified, another --seed or --block-size-deg, or --min-presences")
        lines.append(f"-> {self.out}")
        return "\n".join(lines)


def from_table(
    table: str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    *,
    lat_column: str | None = None,
    lon_column: str | None = None,
    site_column: str | None = None,
    species_column: str | None = None,
    species_columns: Sequence[str] | None = None,
    presence_column: str | None = None,
    species_name: str | None = None,
    covariates: Sequence[str] | None = None,
    cubes: Mapping[str, str | os.PathLike] | None = None,
    split: str = "spatial",
    block_size_deg: float = 1.0,
    val: float = 0.15,
    test: float = 0.15,
    min_presences: int | None = None,
    species_in_every_split: bool | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> TableReport:
    """Turn a table of sites and species (and gridded cubes) into a consolidated dataset.

    Args:
        table: A CSV/Parquet file, a vector file (GeoPackage, GeoParquet, shapefile ...; its point
            geometry in any CRS is reprojected to EPSG:4326), or a (Geo)DataFrame.
        out: Output ``.zarr`` folder or ``.nc`` file (written atomically).
        lat_column: Latitude column in degrees (default: the geometry, or a ``lat``/``latitude`` column).
        lon_column: Longitude column in degrees.
        site_column: Rows with the same value are one site (default: each row, or in the
            long format each distinct coordinate pair).
        species_column: Long format: one row per (site, species); present unless ``presence_column`` says 0.
        species_columns: Wide format: one 0/1 column per species.
        presence_column: One species: 0/1, presence vs absence or background.
        species_name: The name of that species (default: the table's file name).
        covariates: Numeric columns of the tabular modality ``x_tabular`` (default: every other numeric column).
        cubes: ``{name: path}`` of NetCDF/zarr cubes (``time x lat x lon``), each sampled at the
            sites' nearest cells into a time-series modality ``x_<name>``.
        split: ``"spatial"`` (blocks of ``block_size_deg``), ``"given"`` (the table's ``split``
            column; val drawn from train blocks if it has none) or ``"stratified"`` (by presence).
        block_size_deg: Side of the spatial blocks in degrees.
        val: Validation fraction.
        test: Test fraction.
        min_presences: Keep species present at least this often (and, by default, in every
            split), as ``data prepare --min-presences``; species never present are always dropped.
        species_in_every_split: Keep only species present in every split (default: on with ``min_presences``).
        seed: Split seed.
        overwrite: Replace an existing output.

    Returns:
        A :class:`TableReport`; the dataset opens with :func:`miam_explain.open_dataset`.

    Raises:
        ConfigError: options that do not fit together.
        DataError: a bad table or cube (the message names the column, row or site).
        OutputExistsError: ``out`` exists and ``overwrite`` is false.

    Example:
        >>> import importlib.resources, tempfile
        >>> gpkg = importlib.resources.files("elapid") / "data" / "ariolimax.gpkg"
        >>> out = Path(tempfile.mkdtemp()) / "ariolimax.zarr"
        >>> report = from_table(gpkg, out, presence_column="presence")
        >>> report.n_sites, report.species_note, report.coordinates
        (6585, 'kept 1 of 1 species', 'geometry, EPSG:32610 -> EPSG:4326')
    """
    spec = TableSpec(lat_column=lat_column, lon_column=lon_column, site_column=site_column,
                     species_column=species_column, species_columns=species_columns, presence_column=presence_column,
                     species_name=species_name, covariates=covariates)
    if split not in SPLIT_METHODS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLIT_METHODS)}")
    recipe = Recipe(min_presences=min_presences, species_in_every_split=species_in_every_split)
    names: tuple[str, ...] = (TABULAR,)
    for name in cubes or {}:
        names += (check_modality_name(name, taken=names),)
    check_output_path(out, overwrite=overwrite)
    is_frame = isinstance(table, pd.DataFrame)
    source = "the table" if is_frame else repr(Path(table).name)
    frame = table if is_frame else read_table(table)
    if len(frame) == 0:
        raise DataError(f"{source} has no rows; it needs one row per site (or per site and species)")
    lon, lat, origin, columns = site_coordinates(frame, lat_column=lat_column, lon_column=lon_column, source=source)
    if columns:  # found by name: they are coordinates, not covariates
        spec = replace(spec, lat_column=columns[0], lon_column=columns[1])
    default_name = "species" if is_frame else Path(table).name.split(".")[0]
    sites = fold_sites(frame, spec, lon, lat, given_split=split == "given", species_name=default_name, source=source)
    if not sites.covariate_names and not cubes:
        raise DataError(f"{source} gives no numeric covariate and no --cube: the model would have no input; "
                        "pass --covariates or --cube NAME=PATH")
    split_names = _split(sites, split, spacing=block_size_deg, val=val, test=test, seed=seed)
    selection = _select_species(sites, split_names, recipe, source)
    labels = sites.labels[:, selection.kept]
    data_vars: dict[str, xr.DataArray | tuple] = {"labels": (("site", "species"), labels)}
    if sites.covariate_names:
        data_vars[f"x_{TABULAR}"] = xr.DataArray(
            sites.covariates, dims=modality_dims(TABULAR, "tabular"),
            coords={dim_name(TABULAR, "variable"): as_text(sites.covariate_names)}, attrs=modality_attrs("tabular"))
    sampled, cube_notes = _sample_cubes(cubes or {}, sites)
    data_vars.update(sampled)
    coords = {
        "site_id": ("site", sites.site_id),
        "lat": ("site", sites.lat),
        "lon": ("site", sites.lon),
        "split": ("site", as_text(split_names)),
        "species": ("species", sites.species[selection.kept]),
    }
    if sites.site_key is not None:
        coords["site_key"] = ("site", sites.site_key)
    ds = xr.Dataset(data_vars, coords=coords, attrs=dataset_attrs(
        task="multilabel", layout="table", source="DataFrame" if is_frame else str(Path(table).resolve()),
        split_method=split, split_seed=seed,
        extra={"split_spacing_deg": float(block_size_deg), "species_format": spec.species_format,
               "coordinates": origin, "table_rows": sites.n_rows,
               "recipe": recipe_attrs(recipe, selection, split=split, spacing=block_size_deg),
               "cubes": json.dumps({name: str(Path(p).resolve()) for name, p in (cubes or {}).items()})}))
    validate_dataset(ds, source=source)
    with atomic_path(out, overwrite=overwrite) as tmp:
        write_dataset(ds, tmp)
    absent = {s: int((labels[split_names == s].sum(axis=0) == 0).sum()) for s in SPLITS if (split_names == s).any()}
    return TableReport(
        out=Path(out), n_rows=sites.n_rows, n_sites=int(sites.site_id.size), n_species=len(selection.kept),
        species_format=spec.species_format, coordinates=origin, covariates=sites.covariate_names,
        split_counts={s: int((split_names == s).sum()) for s in SPLITS}, species_note=selection.summary(recipe),
        ignored=sites.ignored, cubes=cube_notes, absent={s: n for s, n in absent.items() if n},
    )


def _sample_cubes(cubes: Mapping[str, str | os.PathLike], sites: Sites) -> tuple[dict[str, xr.DataArray], dict[str, str]]:
    """``({x_<name>: modality}, {name: one line for the summary})`` of every cube, sampled at the sites."""
    variables, notes = {}, {}
    for name, path in cubes.items():
        path = Path(path)
        with open_cube(path) as cube:
            x = sample_cube(cube, sites.lon, sites.lat, name=name, source=f"cube {name!r} ({path.name})")
        x.attrs["source"] = str(path.resolve())
        variables[f"x_{name}"] = x
        empty = int(np.isnan(x.values).reshape(x.shape[0], -1).all(axis=1).sum())
        notes[name] = (f"{' x '.join(str(n) for n in x.shape[1:])} (channel x year x step) from {path.name}, "
                       f"{empty} sites without values")
    return variables, notes


def _split(sites: Sites, method: str, *, spacing: float, val: float, test: float, seed: int) -> np.ndarray:
    """``str[N]`` split of every site."""
    if method == "spatial":
        return spatial_split(sites.lon, sites.lat, spacing=spacing, val=val, test=test, seed=seed)
    if method == "stratified":  # stratum: the site's rarest present species (-1: none), so rare species reach every split
        prevalence = sites.labels.sum(axis=0).astype(float)
        rarest = np.where(sites.labels == 1, prevalence[None, :], np.inf).argmin(axis=1)
        return stratified_split(np.where(sites.labels.any(axis=1), rarest, -1), val=val, test=test, seed=seed)
    given = np.asarray(sites.given_split, dtype="<U5")
    if "val" not in given:  # as data prepare --split given: val drawn as spatial blocks of train
        train = np.flatnonzero(given == "train")
        if train.size:
            given[train] = spatial_split(sites.lon[train], sites.lat[train], spacing=spacing,
                                         val=val / max(1e-9, 1 - test), test=0.0, seed=seed)
    return given


def _select_species(sites: Sites, split_names: np.ndarray, recipe: Recipe, source: str) -> SpeciesSelection:
    """The species to keep (positions into ``sites.species``): never-present ones go, then the recipe's."""
    site_index, species_index = np.nonzero(sites.labels)
    if site_index.size == 0:
        raise DataError(f"{source} has no presence: no species is present at any site; check the species columns")
    pairs = pd.DataFrame({"surveyId": site_index, "speciesId": species_index})
    return select_species(pairs, pd.Series(split_names, index=np.arange(split_names.size)), recipe)
