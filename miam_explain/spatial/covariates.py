"""One covariate per site: a coordinate of the values, or a tabular variable of the dataset.

:func:`site_covariate` finds a name among the values' own site coords (``lat``,
``lon`` …) first, then among the tabular variables of the consolidated dataset
(``Bio1``, ``Elevation`` …, any variable of a ``kind="tabular"`` modality) and
its numeric site coords (``survey_year`` …), and returns it aligned with the
values by ``site_id``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.errors import ConfigError, DataError

__all__ = ["site_covariate", "available_covariates", "GEOPLANT_VARIABLES"]

#: The coordinates, described for axis labels.
COORDS = {"lat": ("latitude", "°N"), "lon": ("longitude", "°E")}
#: Long name and units of the GeoPlant environmental values (WorldClim 2.1 bioclim, 1981-2010; elevation),
#: used for datasets with the ``glc24`` / ``glc25`` layout.
GEOPLANT_VARIABLES = {
    "Bio1": ("annual mean temperature", "°C"),
    "Bio2": ("mean diurnal range", "°C"),
    "Bio3": ("isothermality", "%"),
    "Bio4": ("temperature seasonality (100 × sd)", "°C"),
    "Bio5": ("max temperature of the warmest month", "°C"),
    "Bio6": ("min temperature of the coldest month", "°C"),
    "Bio7": ("temperature annual range", "°C"),
    "Bio8": ("mean temperature of the wettest quarter", "°C"),
    "Bio9": ("mean temperature of the driest quarter", "°C"),
    "Bio10": ("mean temperature of the warmest quarter", "°C"),
    "Bio11": ("mean temperature of the coldest quarter", "°C"),
    "Bio12": ("annual precipitation", "mm"),
    "Bio13": ("precipitation of the wettest month", "mm"),
    "Bio14": ("precipitation of the driest month", "mm"),
    "Bio15": ("precipitation seasonality (CV)", "%"),
    "Bio16": ("precipitation of the wettest quarter", "mm"),
    "Bio17": ("precipitation of the driest quarter", "mm"),
    "Bio18": ("precipitation of the warmest quarter", "mm"),
    "Bio19": ("precipitation of the coldest quarter", "mm"),
    "Elevation": ("elevation", "m"),
}


def _site_coords(ds: xr.Dataset | xr.DataArray) -> list[str]:
    """Numeric 1-D coords over ``site`` (``site_id`` aside)."""
    return [
        str(name) for name, coord in ds.coords.items()
        if coord.dims == ("site",) and name != "site_id" and np.issubdtype(coord.dtype, np.number)
    ]


def _tabular(data: xr.Dataset) -> dict[str, tuple[str, str]]:
    """Tabular variable name -> (modality variable, its variable dim), over every ``kind="tabular"`` modality."""
    out: dict[str, tuple[str, str]] = {}
    for var in data.data_vars:
        if data[var].attrs.get("kind") != "tabular":
            continue
        dim = next((d for d in data[var].dims if d != "site"), None)
        if dim is None or dim not in data.coords:
            continue
        for name in np.asarray(data[dim].values).tolist():
            out.setdefault(str(name), (str(var), dim))
    return out


def available_covariates(values: xr.DataArray, data: xr.Dataset | None = None) -> list[str]:
    """Every name :func:`site_covariate` accepts for these values (and dataset)."""
    names = _site_coords(values)
    if data is not None:
        names += [n for n in _site_coords(data) if n not in names]
        names += [n for n in _tabular(data) if n not in names]
    return names


def _open(data: xr.Dataset | str | os.PathLike) -> xr.Dataset:
    if isinstance(data, xr.Dataset):
        return data
    from miam_explain.data.format import open_dataset

    return open_dataset(data)


def site_covariate(
    values: xr.DataArray,
    name: str,
    *,
    data: xr.Dataset | str | os.PathLike | None = None,
) -> xr.DataArray:
    """One covariate value per site of ``values``, by name.

    Args:
        values: ``float[site]`` per-site values (coords ``site_id``, ``lat``, ``lon``),
            e.g. from :func:`miam_explain.explain.result.select_values`.
        name: A site coord of ``values`` (``lat``, ``lon``), or a tabular variable
            (``Bio1``, ``Elevation`` …) or numeric site coord of ``data``.
        data: The consolidated dataset the result was computed on (or its path);
            needed for anything but the values' own coords.

    Returns:
        ``float[site]`` aligned with ``values`` (NaN where the dataset has no value),
        named ``name``, with ``long_name`` and ``units`` attrs where they are known.

    Raises:
        ConfigError: an unknown name (the message lists the known ones), or a
            dataset variable asked for without ``data``.
        DataError: sites of ``values`` that are not in ``data``.

    Example:
        >>> import numpy as np, xarray as xr
        >>> values = xr.DataArray(np.zeros(3), dims="site",
        ...                       coords={"site_id": ("site", [7, 8, 9]), "lat": ("site", [44.0, 45.5, 47.0]), "lon": ("site", [1.0, 2.0, 3.0])})
        >>> lat = site_covariate(values, "lat")
        >>> lat.values.tolist(), lat.attrs["units"]
        ([44.0, 45.5, 47.0], '°N')
    """
    if not isinstance(values, xr.DataArray) or values.dims != ("site",):
        raise DataError("site_covariate needs values as an xarray.DataArray with the single dim 'site'; select one player (and target) first")
    if name in _site_coords(values):
        long_name, units = COORDS.get(name, (name, values[name].attrs.get("units", "")))
        return _named(np.asarray(values[name].values, dtype=float), values, name, long_name, units)
    if data is None:
        raise ConfigError(
            f"{name!r} is not a coord of the values ({', '.join(_site_coords(values)) or 'none'}); "
            "for a tabular variable (Bio1, Elevation ...) pass the dataset the result was computed on"
        )
    data = _open(data)
    tabular = _tabular(data)
    if name in tabular:
        var, dim = tabular[name]
        index = np.flatnonzero(np.array([str(v) for v in np.asarray(data[dim].values).tolist()]) == name)[0]
        column = np.asarray(data[var].isel({dim: int(index)}).values, dtype=float)
    elif name in _site_coords(data):
        column = np.asarray(data[name].values, dtype=float)
    else:
        known = available_covariates(values, data)
        shown = ", ".join(known[:40]) + (f" ... ({len(known)} in all)" if len(known) > 40 else "")
        raise ConfigError(f"unknown covariate {name!r}; choose a coord or tabular variable: {shown}")
    if "site_id" not in values.coords or "site_id" not in data.coords:
        raise DataError("values and dataset must both carry a 'site_id' coord to match sites; pass a result written by 'miam-explain shapley'")
    rows = pd.Index(np.asarray(data["site_id"].values)).get_indexer(np.asarray(values["site_id"].values))
    if (rows < 0).any():
        raise DataError(
            f"{int((rows < 0).sum())} of {len(rows)} sites of the result are not in the dataset; "
            "pass the dataset the result was computed on"
        )
    long_name, units = (GEOPLANT_VARIABLES.get(name, (name, "")) if data.attrs.get("layout") in ("glc24", "glc25") else (name, ""))
    if long_name != name:
        long_name = f"{name}, {long_name}"
    return _named(column[rows], values, name, long_name, units)


def _named(column: np.ndarray, values: xr.DataArray, name: str, long_name: str, units: str) -> xr.DataArray:
    """``column`` (``float[site]``) with the site coords of ``values``, a name and its label attrs."""
    coords = {str(c): ("site", np.asarray(values[c].values)) for c in values.coords if values[c].dims == ("site",)}
    return xr.DataArray(column, dims="site", coords=coords, name=name, attrs={"long_name": long_name, "units": units})
