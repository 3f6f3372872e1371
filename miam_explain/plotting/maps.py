"""Maps of per-site values (e.g. Shapley contributions) over a Natural Earth base map.

:func:`site_map` draws sites as points, or the means over square lat/lon blocks,
coloured on a diverging scale centred on 0, over country outlines. The base map
is read **offline**: by default from the Natural Earth "lowres" countries that
ship inside the installed ``pyogrio`` package
(``pyogrio/tests/fixtures/naturalearth_lowres``), or from any vector file GDAL
reads (``basemap=FILE``). Without one, the map is a plain lat/lon frame.

Like :mod:`miam_explain.plotting.masks`, it builds figures with
:class:`matplotlib.figure.Figure` directly, never calls ``plt.show()`` and
leaves pyplot's global state alone.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from miam_explain.errors import ConfigError, DataError

if TYPE_CHECKING:
    import geopandas as gpd
    from matplotlib.axes import Axes

__all__ = ["site_map", "block_means", "default_basemap_path", "read_basemap", "NO_BASEMAP"]

log = logging.getLogger(__name__)

#: Pass ``basemap=NO_BASEMAP`` (``--basemap none``) for a plain lat/lon frame.
NO_BASEMAP = "none"
#: Diverging colormap: blue for negative contributions, red for positive ones.
CMAP = "RdBu_r"
#: Fill colours of the base map.
LAND, SEA = "0.92", "#f2f7fb"
#: Where the Natural Earth lowres countries sit inside the ``pyogrio`` package.
PYOGRIO_NATURALEARTH = ("tests", "fixtures", "naturalearth_lowres", "naturalearth_lowres.shp")
#: Margin around the sites, as a fraction of their span (at least ``MIN_MARGIN_DEG``).
MARGIN = 0.06
MIN_MARGIN_DEG = 0.5


def default_basemap_path() -> Path | None:
    """The Natural Earth lowres shapefile inside the installed ``pyogrio``, or ``None``.

    ``pyogrio`` 0.7.2 to 0.13 ship it as a test fixture; a build without its
    tests (or no ``pyogrio`` at all) gives ``None``.
    """
    spec = importlib.util.find_spec("pyogrio")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*PYOGRIO_NATURALEARTH)
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=4)
def _read_vector(path: str, mtime: float) -> gpd.GeoDataFrame:
    import geopandas as gpd

    frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return frame


def read_basemap(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Read a base map (shapefile, GeoPackage, GeoJSON …) in lon/lat degrees.

    Args:
        path: Any vector file GDAL reads. A layer in another CRS is reprojected to
            EPSG:4326; a layer without a CRS is taken to be in lon/lat already.

    Returns:
        The features, cached per path and modification time.

    Raises:
        DataError: the file is missing, unreadable, or holds no geometry.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"base map {str(path)!r} does not exist; pass a vector file (shapefile, GeoPackage, GeoJSON) or 'none'")
    try:
        frame = _read_vector(str(path.resolve()), path.stat().st_mtime)
    except ImportError as exc:
        raise DataError(f"reading base map {str(path)!r} needs geopandas and pyogrio ({exc}); install them or pass 'none'") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot read base map {str(path)!r} ({reason}); pass a vector file GDAL reads "
            "(shapefile, GeoPackage, GeoJSON) or 'none'"
        ) from None
    if len(frame) == 0 or frame.geometry.is_empty.all():
        raise DataError(f"base map {str(path)!r} holds no geometry; pass a vector file with country or coast outlines")
    return frame


def _site_frame(values: xr.DataArray) -> pd.DataFrame:
    """Validate ``values`` and return a frame of finite ``lat``, ``lon``, ``value`` (one row per site)."""
    if not isinstance(values, xr.DataArray):
        raise DataError(f"site_map needs an xarray.DataArray over 'site', got {type(values).__name__}")
    if values.dims != ("site",):
        raise DataError(
            f"site_map needs values with the single dim 'site', got dims {values.dims}; "
            "select one player (and target) first, e.g. ds['shapley'].sel(player='nir')"
        )
    missing = [name for name in ("lat", "lon") if name not in values.coords]
    if missing:
        raise DataError(f"values have no {' and '.join(missing)} coord; map a prediction-game result whose sites carry lat and lon")
    if values.sizes["site"] == 0:
        raise DataError("values hold no sites; map a result with at least one site")
    frame = pd.DataFrame(
        {
            "lat": np.asarray(values["lat"].values, dtype=float),
            "lon": np.asarray(values["lon"].values, dtype=float),
            "value": np.asarray(values.values, dtype=float),
        }
    )
    located = np.isfinite(frame["lat"]) & np.isfinite(frame["lon"])
    if located.any() and ((frame.loc[located, "lat"].abs() > 90).any() or (frame.loc[located, "lon"].abs() > 360).any()):
        raise DataError("lat/lon are not in degrees (|lat| > 90 or |lon| > 360); map sites with WGS84 lat/lon coords")
    frame = frame[located & np.isfinite(frame["value"])]
    if frame.empty:
        raise DataError(f"all {values.sizes['site']} values (or their lat/lon) are NaN; nothing to map")
    return frame.reset_index(drop=True)


def block_means(frame: pd.DataFrame, size: float) -> pd.DataFrame:
    """Mean value over square blocks of ``size`` degrees, aligned on multiples of ``size``.

    Args:
        frame: Columns ``lat``, ``lon`` (degrees) and ``value``, one row per site.
        size: Block edge in degrees.

    Returns:
        One row per block that holds a site: ``lat0``, ``lon0`` (the block's
        south-west corner), ``value`` (the mean) and ``n_sites``.
    """
    # The tiny offset keeps a site on a block edge in the block it starts, despite float division.
    lat0 = np.floor(frame["lat"].to_numpy() / size + 1e-9) * size
    lon0 = np.floor(frame["lon"].to_numpy() / size + 1e-9) * size
    grouped = pd.DataFrame({"lat0": lat0, "lon0": lon0, "value": frame["value"].to_numpy()}).groupby(["lat0", "lon0"])
    out = grouped["value"].agg(value="mean", n_sites="size").reset_index()
    return out


def _extent(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    """``(lon_min, lon_max, lat_min, lat_max)`` around the points, with a margin."""
    lon_lo, lon_hi, lat_lo, lat_hi = lon.min(), lon.max(), lat.min(), lat.max()
    pad_lon = max(MIN_MARGIN_DEG, MARGIN * (lon_hi - lon_lo))
    pad_lat = max(MIN_MARGIN_DEG, MARGIN * (lat_hi - lat_lo))
    west, east = lon_lo - pad_lon, lon_hi + pad_lon
    if lon_lo >= -180.0:  # longitudes in -180..180 (0..360 ones keep their own range)
        west = max(west, -180.0)
    if lon_hi <= 180.0:
        east = min(east, 180.0)
    return float(west), float(east), float(max(lat_lo - pad_lat, -90.0)), float(min(lat_hi + pad_lat, 90.0))


def _degrees(axis: str):
    positive, negative = ("E", "W") if axis == "lon" else ("N", "S")

    def fmt(value: float, _pos: int) -> str:
        hemisphere = positive if value > 0 else negative if value < 0 else ""
        return f"{abs(value):g}°{hemisphere}"

    return FuncFormatter(fmt)


def _default_title(values: xr.DataArray) -> str:
    name = str(values.attrs.get("long_name") or values.name or "value")
    scalars = [
        f"{coord}={values[coord].item()}"
        for coord in values.coords
        if coord not in ("lat", "lon", "site_id", "site") and values[coord].ndim == 0
    ]
    return name + (f" ({', '.join(scalars)})" if scalars else "")


def site_map(
    values: xr.DataArray,
    *,
    blocks: float | None = None,
    basemap: str | os.PathLike | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    units: str | None = None,
) -> Figure:
    """Map a value per site, as points or as block means, over a base map.

    The colour scale is diverging and symmetric about 0 (``vmin = -vmax``), so a
    positive contribution is red and a negative one blue, whatever the range.
    The extent is cropped to the sites with a margin; axes are in degrees, with
    the aspect of an equirectangular map at the sites' mid-latitude. Sites whose
    value or position is NaN are left out.

    Args:
        values: ``float[site]`` with coords ``lat`` and ``lon`` (degrees), e.g.
            ``result["shapley"].sel(player="nir", target="richness")``.
        blocks: Edge in degrees of square blocks aligned on multiples of it
            (``1.0``: 1° blocks); each block is drawn with the mean of its sites.
            ``None`` draws every site as a point.
        basemap: A vector file of outlines (shapefile, GeoPackage, GeoJSON), or
            ``"none"`` (:data:`NO_BASEMAP`) for a plain lat/lon frame. ``None``
            uses the Natural Earth countries inside ``pyogrio``; when that copy is
            absent the map falls back to a plain frame and logs a warning.
        ax: Axes to draw into; a new figure when ``None``.
        title: Axes title (default: the values' name and scalar coords, e.g.
            ``Shapley value (player=nir, target=richness)``).
        units: Units for the colourbar label (default: the ``units`` attr, if any).

    Returns:
        The figure holding the axes and its colourbar.

    Raises:
        DataError: ``values`` are not 1-D over ``site``, lack ``lat``/``lon``, are
            empty or all NaN; or the base map cannot be read.
        ConfigError: ``blocks`` is not a positive number of degrees.

    Example:
        >>> from miam_explain import shapley
        >>> ds = shapley(run_folder, group="spectral_bands", target="richness", split="all", device="cpu")
        >>> fig = site_map(ds["shapley"].sel(player="nir", target="richness"), blocks=1.0)
        >>> fig.axes[0].get_title() != "", len(fig.axes)  # the map and its colourbar
        (True, 2)
    """
    valid = isinstance(blocks, numbers.Real) and not isinstance(blocks, bool) and np.isfinite(blocks) and 0 < blocks <= 90
    if blocks is not None and not valid:
        raise ConfigError(f"blocks must be a block edge in degrees in (0, 90], e.g. 1.0; got {blocks!r}")
    frame = _site_frame(values)

    # Base map: explicit file, explicit none, or pyogrio's Natural Earth copy (else fall back).
    outlines = None
    fallback_note = None
    if basemap is not None and str(basemap).lower() == NO_BASEMAP:
        pass
    elif basemap is not None:
        outlines = read_basemap(basemap)
    else:
        default = default_basemap_path()
        if default is None:
            fallback_note = "no base map found"
            log.warning("no Natural Earth base map inside pyogrio; drawing a plain lat/lon frame (pass basemap=FILE)")
        else:
            try:
                outlines = read_basemap(default)
            except DataError as exc:
                fallback_note = "base map unreadable"
                log.warning("%s; drawing a plain lat/lon frame", exc)

    import geopandas as gpd
    from shapely import box

    if blocks is None:
        shapes = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
        lat_pts, lon_pts = frame["lat"].to_numpy(), frame["lon"].to_numpy()
    else:
        means = block_means(frame, float(blocks))
        geometry = box(means["lon0"], means["lat0"], means["lon0"] + blocks, means["lat0"] + blocks)
        shapes = gpd.GeoDataFrame(means, geometry=geometry, crs="EPSG:4326")
        lat_pts = np.concatenate([means["lat0"], means["lat0"] + blocks])
        lon_pts = np.concatenate([means["lon0"], means["lon0"] + blocks])
    lon_min, lon_max, lat_min, lat_max = _extent(lat_pts, lon_pts)
    aspect = 1.0 / max(np.cos(np.deg2rad(0.5 * (lat_min + lat_max))), 0.05)

    if ax is None:
        ratio = (lat_max - lat_min) * aspect / (lon_max - lon_min)
        fig = Figure(figsize=(7.0, float(np.clip(6.0 * ratio, 3.0, 9.0)) + 0.6), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure

    if outlines is not None:
        ax.set_facecolor(SEA)
        outlines.plot(ax=ax, facecolor=LAND, edgecolor="0.55", linewidth=0.5, zorder=1)
    else:
        ax.grid(True, color="0.88", linewidth=0.6, zorder=0)
        ax.set_facecolor("white")

    vmax = float(np.abs(shapes["value"]).max())
    vmax = vmax if vmax > 0 else 1e-12  # an all-zero map is still centred on 0
    norm = Normalize(vmin=-vmax, vmax=vmax)
    if blocks is None:
        size = float(np.clip(20000.0 / len(shapes), 1.0, 36.0))
        shapes.plot(
            ax=ax, column="value", cmap=CMAP, norm=norm, markersize=size,
            edgecolor="0.3", linewidth=0.15 if size >= 9 else 0.0, zorder=3,
        )
    else:
        shapes.plot(ax=ax, column="value", cmap=CMAP, norm=norm, edgecolor="0.35", linewidth=0.3, zorder=3)
    mappable = ax.collections[-1]

    ax.set_xlim(lon_min, lon_max)
    ax.set_ylim(lat_min, lat_max)
    ax.set_aspect(aspect)
    ax.xaxis.set_major_formatter(_degrees("lon"))
    ax.yaxis.set_major_formatter(_degrees("lat"))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.tick_params(labelsize=8)

    name = str(values.attrs.get("long_name") or values.name or "value")
    units = units if units is not None else values.attrs.get("units")
    label = name + (f" [{units}]" if units else "")
    if blocks is not None:
        label += f"\nmean per {blocks:g}° block"
    fig.colorbar(mappable, ax=ax, label=label, shrink=0.85, extend="neither")

    what = f"{len(frame):,} sites" if blocks is None else f"{len(frame):,} sites in {len(shapes):,} blocks"
    if fallback_note:
        what += f"; {fallback_note}"
    ax.set_title(f"{title if title is not None else _default_title(values)}\n{what}", fontsize=10)
    return fig
