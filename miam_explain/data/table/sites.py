"""Fold a table's rows into sites: ids, coordinates, covariates, species labels and a given split.

Rows with the same site id (``site_column``) are one site; they must agree on
the coordinates, the covariates and the split, and their species are merged
(a species is present where any row says so). Without a site column every row
is a site, except in the long format, where rows at the same coordinates are
one site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from miam_explain.data.format import SPLITS
from miam_explain.data.schema.messages import name_list
from miam_explain.data.store import as_text
from miam_explain.data.table.read import numeric_column, require_columns
from miam_explain.data.table.spec import SPLIT_COLUMN, TableSpec, integral
from miam_explain.errors import DataError

__all__ = ["Sites", "fold_sites"]


@dataclass(frozen=True)
class Sites:
    """A table folded into ``N`` sites and ``K`` species.

    Attributes:
        site_id: ``int64[N]``: the site column's values when they are integers, else ``0..N-1``.
        site_key: ``object[N]`` of ``str``: the site column's values when they are not
            integers (kept as coordinate ``site_key``), else ``None``.
        lon: ``float64[N]`` degrees.
        lat: ``float64[N]`` degrees.
        labels: ``uint8[N, K]`` 0/1 presence.
        species: ``[K]`` species ids (``int64`` when the table holds integer ids, else ``str``).
        covariates: ``float32[N, V]``, NaN = missing.
        covariate_names: The ``V`` covariate columns.
        ignored: Non-numeric columns left out of the default covariates.
        given_split: ``str[N]`` split of each site (``split="given"``), else ``None``.
        n_rows: Rows of the table.
    """

    site_id: np.ndarray
    site_key: np.ndarray | None
    lon: np.ndarray
    lat: np.ndarray
    labels: np.ndarray
    species: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    ignored: tuple[str, ...]
    given_split: np.ndarray | None
    n_rows: int


def fold_sites(
    frame: pd.DataFrame,
    spec: TableSpec,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    given_split: bool = False,
    species_name: str = "species",
    source: str = "the table",
) -> Sites:
    """Fold the rows of ``frame`` into sites.

    Args:
        frame: The table, ``n`` rows.
        spec: The roles of its columns, with the coordinate columns resolved (when the
            coordinates come from columns), so that they are not taken as covariates.
        lon: ``float64[n]`` longitude of each row (from :func:`~miam_explain.data.table.read.site_coordinates`).
        lat: ``float64[n]`` latitude of each row.
        given_split: Read each site's split from the ``split`` column.
        species_name: Name of the one species of the ``presence`` format when ``spec`` names none.
        source: How to name the table in messages.

    Raises:
        DataError: a missing or non-numeric column, a 0/1 column with other values, rows
            of one site that disagree, or no species.

    Example:
        >>> frame = pd.DataFrame({"surveyId": [7, 7, 9], "speciesId": [1, 2, 2], "lat": [45.0, 45.0, 46.0],
        ...                       "lon": [3.0, 3.0, 4.0], "elevation": [210.0, 210.0, 480.0]})
        >>> spec = TableSpec(lat_column="lat", lon_column="lon", site_column="surveyId", species_column="speciesId")
        >>> sites = fold_sites(frame, spec, frame["lon"].to_numpy(), frame["lat"].to_numpy())
        >>> sites.site_id.tolist(), sites.species.tolist(), sites.labels.tolist(), sites.covariate_names
        ([7, 9], [1, 2], [[1, 1], [0, 1]], ('elevation',))
    """
    n_rows = len(frame)
    for option, column in spec.named_columns():
        require_columns(frame, [column], what=option, source=source)
    codes, site_id, site_key = _site_codes(frame, spec, lon, lat, source)
    n_sites = int(site_id.size)
    first = np.unique(codes, return_index=True)[1]
    names, values, ignored = _covariates(frame, spec, given_split=given_split, source=source)
    split = _given_split(frame, source) if given_split else None
    if n_sites < n_rows:
        per_row = {"lon": lon, "lat": lat, **dict(zip(names, values.T))}
        if split is not None:
            per_row[SPLIT_COLUMN] = split
        _check_agreement(pd.DataFrame(per_row), codes, site_id if site_key is None else site_key, spec, source)
    labels, species = _labels(frame, spec, codes, n_sites, species_name=species_name, source=source)
    return Sites(
        site_id=site_id,
        site_key=site_key,
        lon=lon[first],
        lat=lat[first],
        labels=labels,
        species=species,
        covariates=values[first].astype(np.float32),
        covariate_names=names,
        ignored=ignored,
        given_split=None if split is None else split[first],
        n_rows=n_rows,
    )


def _site_codes(frame: pd.DataFrame, spec: TableSpec, lon: np.ndarray, lat: np.ndarray, source: str):
    """``(codes int64[n] in 0..N-1 by first appearance, site_id int64[N], site_key str[N] | None)``."""
    if spec.site_column is not None:
        ids = frame[spec.site_column]
        if ids.isna().any():
            row = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise DataError(f"{source}: data row {row + 1} has no site id in {spec.site_column!r} "
                            f"({int(ids.isna().sum())} such rows); give every row its site")
        codes, uniques = pd.factorize(ids, sort=False)
        uniques = np.asarray(uniques)
        if pd.api.types.is_numeric_dtype(ids.dtype) and integral(uniques):
            return codes.astype(np.int64), uniques.astype(np.int64), None
        return codes.astype(np.int64), np.arange(len(uniques), dtype=np.int64), as_text(uniques)
    if spec.species_format == "long":  # one site per distinct coordinate pair
        codes = pd.DataFrame({"lon": lon, "lat": lat}).groupby(["lon", "lat"], sort=False).ngroup().to_numpy(np.int64)
        return codes, np.arange(int(codes.max()) + 1, dtype=np.int64), None
    return np.arange(len(frame), dtype=np.int64), np.arange(len(frame), dtype=np.int64), None


def _covariates(frame: pd.DataFrame, spec: TableSpec, *, given_split: bool, source: str):
    """``(names, float64[n, V], ignored non-numeric columns)``."""
    if spec.covariates is not None:
        require_columns(frame, spec.covariates, what="--covariates", source=source)
        names, ignored = tuple(spec.covariates), ()
    else:
        skip = {*spec.role_columns, getattr(frame, "active_geometry_name", None)}
        if given_split:
            skip.add(SPLIT_COLUMN)
        candidates = [c for c in frame.columns if c not in skip]
        names = tuple(str(c) for c in candidates if pd.api.types.is_numeric_dtype(frame[c].dtype))
        ignored = tuple(str(c) for c in candidates if str(c) not in names)
    values = np.empty((len(frame), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        values[:, j] = numeric_column(frame, name, what="covariate", source=source)
    infinite = np.isinf(values)
    if infinite.any():
        row, col = (int(i[0]) for i in np.nonzero(infinite))
        raise DataError(f"{source}: covariate {names[col]!r} is infinite in data row {row + 1} "
                        f"({int(infinite.sum())} such values); use NaN for a missing value")
    return names, values, ignored


def _given_split(frame: pd.DataFrame, source: str) -> np.ndarray:
    require_columns(frame, [SPLIT_COLUMN], what="--split given", source=source)
    raw = frame[SPLIT_COLUMN]
    if raw.isna().any():
        row = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DataError(f"{source}: data row {row + 1} has no {SPLIT_COLUMN!r} ({int(raw.isna().sum())} such rows); "
                        f"give every row one of {', '.join(SPLITS)}")
    names = raw.astype(str).str.strip().str.lower().to_numpy(dtype=object)
    unknown = sorted(set(names) - set(SPLITS))
    if unknown:
        raise DataError(f"{source}: column {SPLIT_COLUMN!r} holds {name_list(unknown, 5)}; use {', '.join(SPLITS)}")
    return names


def _check_agreement(per_row: pd.DataFrame, codes: np.ndarray, names: np.ndarray, spec: TableSpec, source: str) -> None:
    """Rows of one site must hold the same coordinates, covariates and split (NaN equals NaN)."""
    counts = per_row.groupby(codes).nunique(dropna=False)
    for column in per_row.columns:
        bad = np.flatnonzero(counts[column].to_numpy() > 1)
        if bad.size:
            site = int(bad[0])
            rows = np.flatnonzero(codes == site)
            values = per_row[column].to_numpy()[rows]
            distinct = pd.unique(pd.Series(values)).tolist()[:2]  # NaN counts as one value
            what = "coordinates" if column in ("lon", "lat") else f"{column!r}"
            fix = ("give each row its own site id, or drop the column from --covariates" if spec.site_column
                   else "pass --site-column to say which rows are one site")
            raise DataError(f"{source}: rows of site {names[site]} disagree on {what} ({column} = {distinct[0]!r} in "
                            f"data row {rows[0] + 1}, {distinct[1]!r} in another; {bad.size} such sites); rows of one "
                            f"site must agree: {fix}")


def _binary(frame: pd.DataFrame, name: str, *, source: str) -> np.ndarray:
    """A 0/1 column as ``uint8[n]``."""
    values = numeric_column(frame, name, what="0/1 presence", source=source)
    if np.isnan(values).any():
        raise DataError(f"{source}: 0/1 column {name!r} has {int(np.isnan(values).sum())} empty cells; "
                        "give 1 (present) or 0 (absent or background) in every row")
    other = ~np.isin(values, (0.0, 1.0))
    if other.any():
        raise DataError(f"{source}: 0/1 column {name!r} holds {values[other][0]:g} in data row "
                        f"{int(np.flatnonzero(other)[0]) + 1}; presence columns hold 1 (present) or 0 (absent or background)")
    return values.astype(np.uint8)


def _labels(frame: pd.DataFrame, spec: TableSpec, codes: np.ndarray, n_sites: int, *, species_name: str, source: str):
    """``(uint8[N, K], species[K])``; a species is present at a site when any of its rows says so."""
    if spec.species_format == "wide":
        matrix = np.stack([_binary(frame, c, source=source) for c in spec.species_columns], axis=1)
        species = as_text(spec.species_columns)
    elif spec.species_format == "presence":
        matrix = _binary(frame, spec.presence_column, source=source)[:, None]
        species = as_text([spec.species_name or species_name])
    else:
        column = frame[spec.species_column]
        valid = column.notna().to_numpy()
        if not valid.any():
            raise DataError(f"{source}: species column {spec.species_column!r} is empty; it names the species of each row")
        numeric = pd.api.types.is_numeric_dtype(column.dtype) and integral(column[valid].to_numpy())
        ids = column[valid].to_numpy().astype(np.int64) if numeric else column[valid].astype(str).to_numpy(dtype=object)
        species, index = np.unique(ids, return_inverse=True)
        present = np.ones(len(frame), np.uint8)
        if spec.presence_column is not None:
            present = _binary(frame, spec.presence_column, source=source)
        labels = np.zeros((n_sites, len(species)), dtype=np.uint8)
        keep = present[valid] == 1
        labels[codes[valid][keep], index[keep]] = 1
        return labels, (species.astype(np.int64) if numeric else as_text(species))
    labels = np.zeros((n_sites, matrix.shape[1]), dtype=np.uint8)
    np.maximum.at(labels, codes, matrix)
    return labels, species
