"""Read a user's table (CSV, Parquet, GeoPackage, GeoParquet, shapefile ...) and its site coordinates.

Plain tables are read with pandas, vector files with geopandas (pyogrio). The
coordinates come from two columns in degrees, or from point geometries in any
CRS, reprojected to EPSG:4326 longitude/latitude.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from miam_explain.data.schema.messages import did_you_mean, name_list
from miam_explain.errors import DataError

__all__ = ["TABLE_SUFFIXES", "VECTOR_SUFFIXES", "numeric_column", "read_table", "require_columns", "site_coordinates"]

#: Plain tables, read with :func:`pandas.read_csv` (compressed ``.csv.gz`` etc. too).
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
#: Vector files, read with :func:`geopandas.read_file`.
VECTOR_SUFFIXES: tuple[str, ...] = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml")
_PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".geoparquet", ".pq")
_COMPRESSIONS: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip", ".zst")
#: Column names tried, in order, when no ``--lat-column``/``--lon-column`` is given (case-insensitive).
_LAT_NAMES: tuple[str, ...] = ("lat", "latitude", "decimallatitude")
_LON_NAMES: tuple[str, ...] = ("lon", "lng", "long", "longitude", "decimallongitude")


def _suffix(path: Path) -> str:
    """``data.csv.gz`` -> ``.csv``; ``points.GPKG`` -> ``.gpkg``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table of sites: a :class:`pandas.DataFrame`, or a :class:`geopandas.GeoDataFrame` for vector files.

    Args:
        path: ``.csv``/``.tsv``/``.txt`` (optionally compressed), ``.parquet``/``.geoparquet``,
            or a vector file (``.gpkg``, ``.shp``, ``.geojson``, ``.fgb`` ...).

    Raises:
        DataError: a missing, unreadable or empty file, or an unknown format.

    Example:
        >>> import importlib.resources
        >>> frame = read_table(importlib.resources.files("elapid") / "data" / "ariolimax.gpkg")
        >>> len(frame), frame.crs.to_epsg()
        (6585, 32610)
    """
    path = Path(str(path))
    if not path.exists():
        raise DataError(f"table {str(path)!r} does not exist; pass a CSV, Parquet or vector file (GeoPackage, shapefile ...)")
    suffix = _suffix(path)
    known = (*TABLE_SUFFIXES, *_PARQUET_SUFFIXES, *VECTOR_SUFFIXES)
    if suffix not in known:
        raise DataError(f"cannot tell the format of {path.name!r} from its name; use one of {', '.join(known)}")
    try:
        if suffix in TABLE_SUFFIXES:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else None if suffix == ".txt" else ",",
                                engine="python" if suffix == ".txt" else "c")
        elif suffix in _PARQUET_SUFFIXES:
            frame = _read_parquet(path)
        else:
            import geopandas as gpd

            frame = gpd.read_file(path, engine="pyogrio")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"table {path.name!r} is empty; it needs a header and one row per site") from None
    except Exception as exc:  # noqa: BLE001 - pandas, pyogrio and GDAL raise many types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read table {path.name!r} ({reason}); check that it is a valid {suffix} file") from None
    if len(frame) == 0:
        raise DataError(f"table {path.name!r} has no rows; it needs one row per site (or per site and species)")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """GeoParquet with geopandas (its geometry and CRS), plain Parquet with pandas; both need pyarrow."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(f"reading {path.name!r} needs pyarrow; install it (pip install pyarrow) or save the table as "
                        "CSV or GeoPackage") from None
    import geopandas as gpd

    try:
        return gpd.read_parquet(path)
    except ValueError:  # no geo metadata: a plain table
        return pd.read_parquet(path)


def require_columns(frame: pd.DataFrame, names: Sequence[str], *, what: str, source: str) -> None:
    """Raise a one-line :class:`DataError` naming the first of ``names`` that ``frame`` lacks.

    Example:
        >>> frame = pd.DataFrame({"surveyId": [1], "lat": [45.0]})
        >>> require_columns(frame, ["surveyid"], what="--site-column", source="t.csv")
        Traceback (most recent call last):
        ...
        miam_explain.errors.DataError: t.csv has no column 'surveyid' (--site-column); did you mean 'surveyId'? available columns: surveyId, lat
    """
    available = [str(c) for c in frame.columns if not _is_geometry(frame, c)]
    for name in names:
        if name not in frame.columns:
            raise DataError(f"{source} has no column {name!r} ({what}); {did_you_mean(name, available)}"
                            f"available columns: {name_list(available)}")


def _is_geometry(frame: pd.DataFrame, column) -> bool:
    return getattr(frame, "active_geometry_name", None) == column


def numeric_column(frame: pd.DataFrame, name: str, *, what: str, source: str) -> np.ndarray:
    """A column as ``float64[n]``, or a one-line :class:`DataError` when it holds text.

    Example:
        >>> numeric_column(pd.DataFrame({"x": ["1", "a"]}), "x", what="covariate", source="t.csv")
        Traceback (most recent call last):
        ...
        miam_explain.errors.DataError: t.csv: covariate column 'x' is not numeric (it holds values such as '1', 'a'); give numbers (encode categories as 0/1 columns first)
    """
    series = frame[name]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    examples = ", ".join(repr(str(v)) for v in pd.unique(series.dropna())[:3])
    raise DataError(f"{source}: {what} column {name!r} is not numeric (it holds values such as {examples}); "
                    "give numbers (encode categories as 0/1 columns first)")


def site_coordinates(
    frame: pd.DataFrame, *, lat_column: str | None = None, lon_column: str | None = None, source: str = "the table"
) -> tuple[np.ndarray, np.ndarray, str, tuple[str, ...]]:
    """Longitude and latitude of every row, in degrees (EPSG:4326).

    Args:
        frame: The table (a GeoDataFrame for vector files).
        lat_column: Latitude column in degrees; ``None`` uses the point geometry of a
            GeoDataFrame, or a column named ``lat``, ``latitude`` or ``decimalLatitude``.
        lon_column: Longitude column, likewise.
        source: How to name the table in messages.

    Returns:
        ``(lon, lat, origin, columns)``: ``float64[n]`` each, where they came from
        (e.g. ``"geometry, EPSG:32610 -> EPSG:4326"``), and the ``(lat, lon)`` columns
        read (empty for a geometry).

    Raises:
        DataError: missing or non-numeric columns, missing (NaN) coordinates, non-point
            geometries, or values outside the longitude/latitude range.

    Example:
        >>> frame = pd.DataFrame({"latitude": [45.5, 46.0], "longitude": [3.0, 4.5]})
        >>> lon, lat, origin, columns = site_coordinates(frame)
        >>> lon.tolist(), lat.tolist(), origin, columns
        ([3.0, 4.5], [45.5, 46.0], 'columns longitude/latitude', ('latitude', 'longitude'))
    """
    if lat_column is None and _geometry(frame) is not None:
        lon, lat, origin = _from_geometry(frame, source)
        kind, columns = "geometry", ()
    else:
        if lat_column is None:
            lat_column, lon_column = _find_column(frame, _LAT_NAMES), _find_column(frame, _LON_NAMES)
            if lat_column is None or lon_column is None:
                available = [str(c) for c in frame.columns]
                raise DataError(f"{source} has no point geometry and no lat/lon columns; pass --lat-column and "
                                f"--lon-column (in degrees); available columns: {name_list(available)}")
        require_columns(frame, [lat_column, lon_column], what="coordinates", source=source)
        lat = numeric_column(frame, lat_column, what="latitude", source=source)
        lon = numeric_column(frame, lon_column, what="longitude", source=source)
        origin, kind, columns = f"columns {lon_column}/{lat_column}", "columns", (lat_column, lon_column)
    _check_degrees(lon, lat, kind=kind, source=source)
    return lon, lat, origin, columns


def _find_column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


def _geometry(frame: pd.DataFrame):
    """The active geometry of a GeoDataFrame, or ``None`` (a plain DataFrame, or no geometry)."""
    name = getattr(frame, "active_geometry_name", None)
    return frame[name] if name is not None and name in frame.columns else None


def _from_geometry(frame: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray, str]:
    geometry = _geometry(frame)
    missing = geometry.isna() | geometry.is_empty
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(f"{source}: data row {row + 1} has no geometry ({int(missing.sum())} such rows); every site needs a "
                        "point: drop those rows or fill them")
    types = set(geometry.geom_type.unique())
    if types != {"Point"}:
        raise DataError(f"{source} holds {', '.join(sorted(types - {'Point'}))} geometries; sites must be points "
                        "(convert them first, e.g. to centroids with geopandas: frame.geometry.centroid)")
    crs = geometry.crs
    if crs is None:  # no CRS recorded: degrees are the only reading that can be checked
        return geometry.x.to_numpy(float), geometry.y.to_numpy(float), "geometry, no CRS (read as EPSG:4326)"
    if crs.is_geographic:  # check the range in the file's own CRS before any transform
        _check_degrees(geometry.x.to_numpy(float), geometry.y.to_numpy(float), kind=f"geometry in {crs.to_string()}",
                       source=source)
    name = crs.to_string()
    if crs.to_epsg() == 4326:
        return geometry.x.to_numpy(float), geometry.y.to_numpy(float), f"geometry, {name}"
    projected = geometry.to_crs(4326)
    return projected.x.to_numpy(float), projected.y.to_numpy(float), f"geometry, {name} -> EPSG:4326"


def _check_degrees(lon: np.ndarray, lat: np.ndarray, *, kind: str, source: str) -> None:
    """NaN coordinates and values outside lon [-180, 360], lat [-90, 90] are one-line errors."""
    nan = np.isnan(lon) | np.isnan(lat)
    if nan.any():
        row = int(np.flatnonzero(nan)[0])
        raise DataError(f"{source}: data row {row + 1} has no coordinates (NaN lat/lon; {int(nan.sum())} such rows); every "
                        "site needs a location: drop those rows or fill them")
    for name, values, low, high in (("lat", lat, -90.0, 90.0), ("lon", lon, -180.0, 360.0)):
        bad = ~np.isfinite(values) | (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            if kind == "columns":
                swapped = bool(np.all(np.abs(lon) <= 90.0) and np.all(np.abs(lat) <= 180.0))
                hint = ("; are --lat-column and --lon-column swapped?" if swapped else
                        "; the columns must hold degrees (EPSG:4326): for projected coordinates, give a vector file "
                        "(GeoPackage, GeoParquet, shapefile) that records its CRS")
            else:
                hint = "; the coordinates do not fit the file's CRS: record the right CRS in the file"
            raise DataError(f"{source}: {name} of data row {row + 1} is {values[row]}, outside [{low:g}, {high:g}] degrees "
                            f"({int(bad.sum())} such rows, from the {kind}){hint}")
