"""Sample a gridded series (NetCDF or zarr, ``time x lat x lon``) at the sites: a time-series modality.

Each variable of the cube becomes a channel; the time axis is cut into calendar
years and, within a year, the months that occur (12 months, 4 quarters or one
value a year). Each site takes the values of its nearest grid cell, as
``cube.sel(lat=..., lon=..., method="nearest")`` does; a site outside the grid
(by more than half a cell) is an error, not a silent edge value.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.data.format import dim_name, modality_attrs, modality_dims
from miam_explain.data.schema.messages import name_list
from miam_explain.data.store import as_text
from miam_explain.errors import DataError

__all__ = ["open_cube", "sample_cube"]

#: Dimension names recognised (case-insensitive), in order of preference.
_TIME_NAMES: tuple[str, ...] = ("time", "date", "t", "year")
_LAT_NAMES: tuple[str, ...] = ("lat", "latitude", "y")
_LON_NAMES: tuple[str, ...] = ("lon", "longitude", "x")
#: ``step_unit`` by the months a year holds.
_UNITS = {1: "year", 4: "quarter", 12: "month"}


def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a NetCDF file or a zarr store lazily.

    Raises:
        DataError: the path is missing or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"cube {str(path)!r} does not exist; pass a NetCDF file or a zarr folder (time x lat x lon)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.is_dir() or path.suffix == ".zarr":
                return xr.open_zarr(path, consolidated=None)
            return xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001 - every backend raises its own types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read cube {path.name!r} ({reason}); pass a NetCDF file or a zarr folder") from None


def sample_cube(cube: xr.Dataset, lon: np.ndarray, lat: np.ndarray, *, name: str, source: str = "the cube") -> xr.DataArray:
    """The cube's values at the nearest grid cell of each site, as the modality variable ``x_<name>``.

    Args:
        cube: Variables over ``(time, lat, lon)`` (any order; also ``latitude``/``y``,
            ``longitude``/``x``, ``date``/``t``); the time coordinate holds dates, or integer years.
        lon: ``float64[N]`` site longitudes in degrees (a cube on 0..360 is matched too).
        lat: ``float64[N]`` site latitudes in degrees.
        name: Modality name.
        source: How to name the cube in messages.

    Returns:
        ``float32[N, C, Y, S]`` with dims ``(site, <name>_channel, <name>_year, <name>_step)``:
        C variables, Y calendar years, S steps a year (NaN where the cube has no value).

    Raises:
        DataError: no ``time x lat x lon`` variable, several time steps within one month, or
            a site outside the grid.

    Example:
        >>> time = pd.date_range("2001-01-01", periods=24, freq="MS")
        >>> cube = xr.Dataset({"tas": (("time", "lat", "lon"), np.arange(24 * 2 * 3.0).reshape(24, 2, 3))},
        ...                   coords={"time": time, "lat": [45.0, 46.0], "lon": [3.0, 4.0, 5.0]})
        >>> x = sample_cube(cube, np.array([4.1]), np.array([45.9]), name="climate")
        >>> x.dims, x.shape, x.attrs["step_unit"]
        (('site', 'climate_channel', 'climate_year', 'climate_step'), (1, 1, 2, 12), 'month')
        >>> float(x[0, 0, 1, 0]) == float(cube["tas"].sel(time="2002-01-01", lat=45.9, lon=4.1, method="nearest"))
        True
    """
    time_dim, lat_dim, lon_dim = (_find_dim(cube, names, what, source) for names, what in
                                  ((_TIME_NAMES, "time"), (_LAT_NAMES, "latitude"), (_LON_NAMES, "longitude")))
    variables = [str(v) for v in cube.data_vars if set(cube[v].dims) == {time_dim, lat_dim, lon_dim}
                 and cube[v].dtype.kind in "biuf"]
    if not variables:
        raise DataError(f"{source} has no numeric variable over ({time_dim}, {lat_dim}, {lon_dim}); "
                        f"its variables: {name_list([str(v) for v in cube.data_vars]) or 'none'}")
    for dim in (lat_dim, lon_dim):
        index = cube.indexes[dim]
        if not (index.is_monotonic_increasing or index.is_monotonic_decreasing):
            cube = cube.sortby(dim)
    lat_index, lon_index = cube.indexes[lat_dim], cube.indexes[lon_dim]
    lon = _match_longitudes(np.asarray(lon, float), np.asarray(lon_index, float))
    lat = np.asarray(lat, float)
    _check_covered(lon, lat, np.asarray(lon_index, float), np.asarray(lat_index, float), source)
    years, months = _calendar(cube.indexes[time_dim], source)
    iy = xr.DataArray(lat_index.get_indexer(lat, method="nearest"), dims="site")
    ix = xr.DataArray(lon_index.get_indexer(lon, method="nearest"), dims="site")
    picked = cube[variables].isel({lat_dim: iy, lon_dim: ix})
    values = np.stack([np.asarray(picked[v].transpose("site", time_dim).values, np.float32) for v in variables], axis=1)
    year_list, month_list = np.unique(years), np.unique(months)
    out = np.full((lat.size, len(variables), year_list.size, month_list.size), np.nan, np.float32)
    out[:, :, np.searchsorted(year_list, years), np.searchsorted(month_list, months)] = values
    unit = _UNITS.get(month_list.size, "month")
    if unit == "quarter" and not np.all(np.diff(month_list) == 3):
        unit = "month"
    return xr.DataArray(
        out,
        dims=modality_dims(name, "timeseries"),
        coords={
            dim_name(name, "channel"): as_text(variables),
            dim_name(name, "year"): year_list.astype(np.int64),
            dim_name(name, "step"): np.arange(1, month_list.size + 1, dtype=np.int64),
        },
        attrs=modality_attrs("timeseries", {"step_unit": unit, "step_months": json.dumps(month_list.tolist())}),
    )


def _find_dim(cube: xr.Dataset, names: tuple[str, ...], what: str, source: str) -> str:
    lower = {str(d).lower(): str(d) for d in cube.dims}
    found = next((lower[n] for n in names if n in lower), None)
    if found is None:
        raise DataError(f"{source} has no {what} dimension (looked for {', '.join(names)}); its dims: "
                        f"{', '.join(map(str, cube.dims))}; rename them, e.g. cube.rename(...)")
    if found not in cube.indexes:
        raise DataError(f"{source}: dimension {found!r} has no coordinate values; give the cube its {what}s")
    return found


def _match_longitudes(lon: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Site longitudes on the cube's convention: 0..360 or -180..180."""
    if grid.max() > 180.0:
        return np.where(lon < 0.0, lon + 360.0, lon)
    if grid.min() < 0.0:
        return np.where(lon > 180.0, lon - 360.0, lon)
    return lon


def _check_covered(lon: np.ndarray, lat: np.ndarray, lon_grid: np.ndarray, lat_grid: np.ndarray, source: str) -> None:
    """Every site lies within the grid, up to half a cell beyond its outer cell centres."""
    def bounds(grid: np.ndarray) -> tuple[float, float]:
        half = float(np.median(np.abs(np.diff(np.sort(grid))))) / 2 if grid.size > 1 else 0.0
        return float(grid.min()) - half, float(grid.max()) + half

    (x0, x1), (y0, y1) = bounds(lon_grid), bounds(lat_grid)
    outside = (lon < x0) | (lon > x1) | (lat < y0) | (lat > y1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(f"{source} does not cover {int(outside.sum())} of {outside.size} sites (e.g. lon {lon[i]:.4g}, "
                        f"lat {lat[i]:.4g}); it spans lon {x0:.4g}..{x1:.4g}, lat {y0:.4g}..{y1:.4g}: give a cube on a "
                        "lon/lat grid (EPSG:4326) over every site, or drop the sites outside it")


def _calendar(index: pd.Index, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(year, month)`` of every time step, ``int64[T]`` each (month 1 for integer years)."""
    if hasattr(index, "year") and hasattr(index, "month"):  # DatetimeIndex or CFTimeIndex
        years, months = np.asarray(index.year, np.int64), np.asarray(index.month, np.int64)
    elif index.dtype.kind in "iu":  # integer years
        years, months = np.asarray(index, np.int64), np.ones(len(index), np.int64)
    else:
        raise DataError(f"{source}: time holds {index.dtype} values; give dates (or integer years)")
    pairs = pd.DataFrame({"year": years, "month": months})
    if pairs.duplicated().any():
        row = pairs[pairs.duplicated()].iloc[0]
        raise DataError(f"{source} has several time steps in month {int(row.month)} of {int(row.year)}; resample it "
                        "to monthly (or coarser) values first, e.g. cube.resample(time='MS').mean()")
    return years, months
