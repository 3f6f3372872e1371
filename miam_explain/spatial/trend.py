"""A smooth trend of per-site values along a covariate, with a bootstrap band.

The smoother is LOWESS without the robustness passes: at each of ``n_grid``
points ``x0`` along the covariate, a straight line is fitted to the sites by
weighted least squares, with tricube weights ``(1 - (d / h)³)³`` of the
distance ``d = |x - x0|`` and ``h`` the distance to the ``ceil(frac · n)``-th
nearest site (so every fit sees the same share of sites); the trend at ``x0`` is
that line's value there. A local *line* (not a local mean) keeps the trend
unbiased on a linear gradient, up to the ends of the range.

The band is a pairs bootstrap: the sites are resampled with replacement
``n_boot`` times, each resample is smoothed with the same bandwidths, and the
band is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the
resampled trends at each grid point. A resample is the full sample weighted by
how often each site was drawn, so all fits are a few matrix products.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from miam_explain.errors import ConfigError, DataError

__all__ = ["Trend", "smooth_trend", "MIN_SITES"]

#: Fewest sites (with a finite value and covariate) a trend is fitted on.
MIN_SITES = 10
#: Bootstrap resamples smoothed per matrix product (bounds memory: ``BOOT_CHUNK × n`` floats).
BOOT_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class Trend:
    """A smoothed trend and its bootstrap band along a covariate.

    Attributes:
        x: ``float[G]`` grid of covariate values, from its minimum to its maximum.
        fit: ``float[G]`` the smoothed trend at ``x``.
        low: ``float[G]`` lower edge of the band.
        high: ``float[G]`` upper edge of the band.
        frac: Share of the sites each local fit sees.
        n_boot: Bootstrap resamples.
        level: Coverage of the band (0.95: the 2.5 and 97.5 percentiles).
        seed: Seed of the resampling.
        n_sites: Sites used (finite value and covariate).
    """

    x: np.ndarray
    fit: np.ndarray
    low: np.ndarray
    high: np.ndarray
    frac: float
    n_boot: int
    level: float
    seed: int
    n_sites: int


def _local_linear(weights: np.ndarray, kernel: np.ndarray, x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Local linear fits at ``grid`` for each row of site weights.

    Args:
        weights: ``float[B, n]`` how much each site counts in each of ``B`` fits.
        kernel: ``float[G, n]`` tricube weight of each site at each grid point.
        x: ``float[n]`` covariate (standardised); ``y``: ``float[n]`` values.
        grid: ``float[G]`` grid points (standardised).

    Returns:
        ``float[B, G]``; NaN where a fit sees no site.
    """
    s0 = weights @ kernel.T
    sx = (weights * x) @ kernel.T
    sxx = (weights * x * x) @ kernel.T
    t0 = (weights * y) @ kernel.T
    tx = (weights * x * y) @ kernel.T
    # Moments about each grid point: sums of w·(x - g)^p and w·(x - g)·y.
    s1 = sx - grid * s0
    s2 = sxx - 2.0 * grid * sx + grid * grid * s0
    t1 = tx - grid * t0
    det = s0 * s2 - s1 * s1
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = t0 / s0
        line = (s2 * t0 - s1 * t1) / det
    # Where the sites seen are (nearly) all at one covariate value the line is undefined: use the local mean.
    flat = ~(det > 1e-10 * s0 * s2)
    out = np.where(flat, mean, line)
    return np.where(s0 > 0, out, np.nan)


def _check(value, name: str, ok: bool, example: str):
    if not ok:
        raise ConfigError(f"{name} must be {example}; got {value!r}")


def smooth_trend(
    x: np.ndarray,
    y: np.ndarray,
    *,
    frac: float = 0.3,
    n_boot: int = 200,
    level: float = 0.95,
    n_grid: int = 80,
    seed: int = 0,
) -> Trend:
    """LOWESS-style trend of ``y`` along ``x`` with a pairs-bootstrap band.

    Args:
        x: ``float[n]`` covariate per site (NaN: left out).
        y: ``float[n]`` value per site (NaN: left out).
        frac: Share of the sites each local line is fitted to, in (0, 1]:
            larger is smoother.
        n_boot: Bootstrap resamples for the band (at least 20).
        level: Coverage of the band, in (0, 1).
        n_grid: Grid points along ``x`` (at least 2).
        seed: Seed of the resampling.

    Returns:
        The trend on the grid, its band and the settings.

    Raises:
        DataError: fewer than 10 sites with a finite ``x`` and ``y``, a constant
            ``x``, or ``x`` and ``y`` of different lengths.
        ConfigError: a setting out of range.

    Example:
        >>> import numpy as np
        >>> x = np.linspace(0.0, 10.0, 200)
        >>> trend = smooth_trend(x, 2.0 * x + 1.0, n_boot=20, seed=0)   # a line is recovered exactly
        >>> bool(np.allclose(trend.fit, 2.0 * trend.x + 1.0)), bool(np.allclose(trend.low, trend.high))
        (True, True)
    """
    _check(frac, "frac", isinstance(frac, numbers.Real) and 0 < frac <= 1, "a share of the sites in (0, 1], e.g. 0.3")
    _check(n_boot, "n_boot", isinstance(n_boot, numbers.Integral) and not isinstance(n_boot, bool) and n_boot >= 20, "an integer >= 20, e.g. 200")
    _check(level, "level", isinstance(level, numbers.Real) and 0 < level < 1, "a coverage in (0, 1), e.g. 0.95")
    _check(n_grid, "n_grid", isinstance(n_grid, numbers.Integral) and not isinstance(n_grid, bool) and n_grid >= 2, "an integer >= 2, e.g. 80")
    _check(seed, "seed", isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0, "an integer >= 0")
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"the covariate has {x.size} values but there are {y.size} sites; pass one covariate value per site")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < MIN_SITES:
        raise DataError(f"a trend needs at least {MIN_SITES} sites with a finite value and covariate, got {n}")
    centre, scale = float(x.mean()), float(x.std())
    if not scale > 0:
        raise DataError(f"the covariate is constant ({centre:g}) at all {n} sites; pass one that varies")

    u = (x - centre) / scale  # standardised: the moments below stay well conditioned
    grid = np.linspace(u.min(), u.max(), int(n_grid))
    distance = np.abs(u[None, :] - grid[:, None])  # float[G, n]
    span = max(2, int(np.ceil(frac * n)))
    h = np.partition(distance, span - 1, axis=1)[:, span - 1]
    h = np.maximum(h, 1e-12) * (1.0 + 1e-9)  # the span-th site itself gets a (tiny) positive weight
    kernel = np.clip(1.0 - (distance / h[:, None]) ** 3, 0.0, None) ** 3

    rng = np.random.default_rng(seed)
    boots = np.empty((int(n_boot), len(grid)))
    # Skinny products: one BLAS thread is as fast, and does not stall when the cores are busy.
    with threadpool_limits(limits=1, user_api="blas"):
        fit = _local_linear(np.ones((1, n)), kernel, u, y, grid)[0]
        for start in range(0, int(n_boot), BOOT_CHUNK):
            b = min(BOOT_CHUNK, int(n_boot) - start)
            draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
            counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
            boots[start : start + b] = _local_linear(counts, kernel, u, y, grid)
    tail = 100.0 * (1.0 - float(level)) / 2.0
    with warnings.catch_warnings():  # a grid point no resample reaches stays NaN in the band
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(boots, [tail, 100.0 - tail], axis=0)
    return Trend(
        x=grid * scale + centre, fit=fit, low=low, high=high,
        frac=float(frac), n_boot=int(n_boot), level=float(level), seed=int(seed), n_sites=n,
    )
