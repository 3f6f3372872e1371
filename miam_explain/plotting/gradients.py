"""Per-site values (e.g. Shapley contributions) against a covariate, with a smoothed trend.

:func:`gradient_plot` draws one point per site (a hexbin density above
``hexbin_above`` sites), the trend of :func:`miam_explain.spatial.smooth_trend`
(a local linear smoother) and its bootstrap band, and a line at 0 (no
contribution). Like the other plotting modules it builds a
:class:`matplotlib.figure.Figure` directly, never calls ``plt.show()`` and
leaves pyplot's global state alone.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from miam_explain.errors import ConfigError, DataError
from miam_explain.spatial.trend import Trend, smooth_trend

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["gradient_plot", "axis_label"]

#: Colour of the trend and its band.
TREND = "#c2410c"
#: Above this many sites, points are drawn as a hexbin density.
HEXBIN_ABOVE = 5000


def axis_label(data: xr.DataArray | np.ndarray, default: str, units: str | None = None) -> str:
    """``long_name [units]`` of a DataArray (``default`` for a bare array), e.g. ``Bio1, annual mean temperature [°C]``."""
    attrs = data.attrs if isinstance(data, xr.DataArray) else {}
    name = str(attrs.get("long_name") or getattr(data, "name", None) or default)
    units = units if units is not None else attrs.get("units")
    return name + (f" [{units}]" if units else "")


def _covariate(values: xr.DataArray, covariate: xr.DataArray | np.ndarray) -> np.ndarray:
    """``float[site]`` covariate aligned with ``values``: same length, and the same ``site_id`` where both carry one."""
    if not isinstance(values, xr.DataArray) or values.dims != ("site",):
        got = values.dims if isinstance(values, xr.DataArray) else type(values).__name__
        raise DataError(f"gradient_plot needs values as an xarray.DataArray with the single dim 'site', got {got}; select one player (and target) first")
    x = np.asarray(covariate.values if isinstance(covariate, xr.DataArray) else covariate, dtype=float)
    if x.shape != (values.sizes["site"],):
        raise DataError(f"the covariate has shape {x.shape} but there are {values.sizes['site']} sites; pass one value per site")
    both = isinstance(covariate, xr.DataArray) and "site_id" in covariate.coords and "site_id" in values.coords
    if both and not np.array_equal(np.asarray(covariate["site_id"].values), np.asarray(values["site_id"].values)):
        raise DataError("the covariate's site_id differ from the values'; align them (e.g. with miam_explain.spatial.site_covariate)")
    return x


def gradient_plot(
    values: xr.DataArray,
    covariate: xr.DataArray | np.ndarray,
    *,
    ax: Axes | None = None,
    frac: float = 0.3,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    hexbin_above: int = HEXBIN_ABOVE,
    title: str | None = None,
    xlabel: str | None = None,
    units: str | None = None,
) -> Figure:
    """Draw per-site values against a covariate, with a smoothed trend and its band.

    Sites whose value or covariate is NaN are left out. The trend is LOWESS-style
    (local lines on a ``frac`` share of the sites, tricube weights); the band is
    the ``level`` percentile interval of the trend over ``n_boot`` resamples of
    the sites (:func:`miam_explain.spatial.smooth_trend`).

    Args:
        values: ``float[site]``, e.g. ``select_values(result, player="climate", target="richness")``.
        covariate: ``float[site]`` in the same site order: a DataArray (its
            ``long_name`` and ``units`` label the x axis; see
            :func:`miam_explain.spatial.site_covariate`) or an array.
        ax: Axes to draw into; a new figure when ``None``.
        frac: Share of the sites each local line is fitted to, in (0, 1].
        n_boot: Bootstrap resamples for the band (at least 20).
        level: Coverage of the band.
        seed: Seed of the resampling.
        hexbin_above: Above this many sites, draw a hexbin density instead of points.
        title: Axes title (default: ``<values' name> against <covariate>``).
        xlabel: x-axis label (default: the covariate's ``long_name [units]``).
        units: Units of the values for the y-axis label (default: their ``units`` attr).

    Returns:
        The figure holding the axes.

    Raises:
        DataError: values not 1-D over ``site``, a covariate of another length or
            site order, or fewer than 10 sites with both finite.
        ConfigError: a smoother setting out of range.

    Example:
        >>> import numpy as np, xarray as xr
        >>> rng = np.random.default_rng(0)
        >>> temperature = xr.DataArray(rng.uniform(5, 18, 300), dims="site", attrs={"long_name": "Bio1", "units": "°C"})
        >>> values = xr.DataArray(0.01 * (temperature.values - 11) + rng.normal(0, 0.02, 300), dims="site",
        ...                       attrs={"long_name": "Shapley value", "units": "Δ probability"})
        >>> fig = gradient_plot(values, temperature, n_boot=50)
        >>> ax = fig.axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('Bio1 [°C]', 'Shapley value [Δ probability]')
    """
    if not (isinstance(hexbin_above, numbers.Integral) and not isinstance(hexbin_above, bool) and hexbin_above >= 0):
        raise ConfigError(f"hexbin_above must be a number of sites >= 0, e.g. {HEXBIN_ABOVE}; got {hexbin_above!r}")
    x = _covariate(values, covariate)
    y = np.asarray(values.values, dtype=float)
    trend = smooth_trend(x, y, frac=frac, n_boot=n_boot, level=level, seed=seed)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]

    if ax is None:
        fig = Figure(figsize=(6.4, 4.6), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    n = len(x)
    if n > hexbin_above:
        greys = ListedColormap(colormaps["Greys"](np.linspace(0.15, 0.7, 256)))  # light enough for the trend to stand out
        cells = ax.hexbin(x, y, gridsize=60, mincnt=1, bins="log", cmap=greys, linewidths=0.0, zorder=1)
        fig.colorbar(cells, ax=ax, label="sites per hexagon", shrink=0.85)
    else:
        ax.scatter(
            x, y, s=float(np.clip(3000.0 / n, 3.0, 18.0)), alpha=float(np.clip(300.0 / n, 0.12, 0.7)),
            color="0.25", linewidths=0.0, zorder=1, label=f"sites ({n:,})",
        )
    _draw_trend(ax, trend)
    ax.axhline(0.0, color="0.35", linewidth=0.8, linestyle="--", zorder=2)

    xname = axis_label(covariate, "covariate")
    ax.set_xlabel(xlabel if xlabel is not None else xname)
    ax.set_ylabel(axis_label(values, "value", units))
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)
    ax.legend(loc="best", fontsize=7.5, frameon=True, framealpha=0.85, edgecolor="none")
    vname = str(values.attrs.get("long_name") or values.name or "value")
    heading = title if title is not None else f"{vname} against {xname.split(' [')[0]}"
    ax.set_title(f"{heading}\n{n:,} sites", fontsize=10)
    return fig


def _draw_trend(ax: Axes, trend: Trend) -> None:
    """The trend line and its band."""
    ax.fill_between(
        trend.x, trend.low, trend.high, color=TREND, alpha=0.22, linewidth=0.0, zorder=3,
        label=f"{trend.level:.0%} bootstrap band ({trend.n_boot} resamples)",
    )
    ax.plot(trend.x, trend.fit, color=TREND, linewidth=2.0, zorder=4, label=f"local linear trend (span {trend.frac:.0%} of sites)")
