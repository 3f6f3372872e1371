"""Moran's I of per-site values on k-nearest-neighbour weights, with a permutation p-value.

The statistic and its permutation test are PySAL's (:class:`esda.Moran`); the
weights are libpysal's k-nearest-neighbour weights on **great-circle**
distance (:class:`libpysal.weights.KNN` with ``radius`` = the Earth's radius),
row-standardised. Neighbours are never found on raw lon/lat degrees, where a
degree of longitude shrinks with the cosine of the latitude (at 60°N it is half
a degree of latitude).

``esda`` draws its permutations from NumPy's legacy global generator; the seed
is injected by seeding that generator for the duration of the call and
restoring its state afterwards, so a result is reproducible from its ``seed``
and the caller's global random state is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import warnings
from collections.abc import Iterator

import numpy as np
import xarray as xr

from miam_explain.errors import ConfigError, DataError

__all__ = ["MoranResult", "moran", "knn_weights", "DEFAULT_K", "DEFAULT_PERMUTATIONS", "EARTH_RADIUS_KM"]

#: Neighbours per site: the 8 of a queen's move on a regular grid, PySAL's usual choice for points.
DEFAULT_K = 8
#: Permutations of the test: the smallest p-value it can give is 1 / (999 + 1) = 0.001.
DEFAULT_PERMUTATIONS = 999
#: Fewest permutations accepted (p can then reach 0.01).
MIN_PERMUTATIONS = 99
#: Mean Earth radius, km: with it libpysal's KD-tree measures great-circle (arc) distance.
EARTH_RADIUS_KM = 6371.0


@dataclasses.dataclass(frozen=True)
class MoranResult:
    """Moran's I of per-site values and its permutation test.

    Attributes:
        i: Moran's I: above ``expected_i`` when neighbouring sites have alike
            values (clustered), below it when they differ (dispersed).
        expected_i: Its expectation under spatial randomness, ``-1 / (n_sites - 1)``.
        z: ``(i - mean) / sd`` of I over the permutations.
        p_value: esda's pseudo p-value ``(m + 1) / (n_permutations + 1)``, ``m`` the
            permutations at least as extreme as ``i`` *on the side of* ``i``
            (one-sided in the observed direction; at least ``1 / (n_permutations + 1)``).
        k: Neighbours per site.
        n_permutations: Permutations of the values over the sites.
        seed: Seed of the permutations.
        n_sites: Sites used (those with a finite value and position).
    """

    i: float
    expected_i: float
    z: float
    p_value: float
    k: int
    n_permutations: int
    seed: int
    n_sites: int

    @property
    def pattern(self) -> str:
        """``"clustered"`` when ``i`` is above its expectation, else ``"dispersed"``."""
        return "clustered" if self.i > self.expected_i else "dispersed"

    def summary(self) -> str:
        """One line, e.g. ``Moran's I = 0.412 (expected -0.004, z = 21.3, p = 0.001; 8 neighbours, 999 permutations, 240 sites)``."""
        return (
            f"Moran's I = {self.i:.3f} (expected {self.expected_i:.3f}, z = {self.z:.1f}, p = {self.p_value:.3g}; "
            f"{self.k} neighbours, {self.n_permutations} permutations, {self.n_sites:,} sites)"
        )

    def to_dict(self) -> dict:
        """The fields as plain Python numbers (for JSON)."""
        return dataclasses.asdict(self)


def _positions(values: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(value, lon, lat)`` of the sites with a finite value and position, each ``float[n]``."""
    if not isinstance(values, xr.DataArray) or values.dims != ("site",):
        got = values.dims if isinstance(values, xr.DataArray) else type(values).__name__
        raise DataError(f"Moran's I needs an xarray.DataArray with the single dim 'site', got {got}; select one player (and target) first")
    missing = [name for name in ("lat", "lon") if name not in values.coords]
    if missing:
        raise DataError(f"values have no {' and '.join(missing)} coord; Moran's I needs sites with lat and lon in degrees")
    y = np.asarray(values.values, dtype=float)
    lat = np.asarray(values["lat"].values, dtype=float)
    lon = np.asarray(values["lon"].values, dtype=float)
    keep = np.isfinite(y) & np.isfinite(lat) & np.isfinite(lon)
    if (np.abs(lat[keep]) > 90).any() or (np.abs(lon[keep]) > 360).any():
        raise DataError("lat/lon are not in degrees (|lat| > 90 or |lon| > 360); Moran's I needs WGS84 lat/lon coords")
    return y[keep], lon[keep], lat[keep]


def knn_weights(lon: np.ndarray, lat: np.ndarray, *, k: int = DEFAULT_K):
    """Row-standardised k-nearest-neighbour weights on great-circle distance.

    Args:
        lon: ``float[n]`` longitudes in degrees (-180..180 or 0..360).
        lat: ``float[n]`` latitudes in degrees.
        k: Neighbours per site. Sites at the same position count as neighbours
            at distance 0 (every site still has exactly ``k``).

    Returns:
        A :class:`libpysal.weights.W` (``transform == "R"``: each row sums to 1).

    Example:
        >>> import numpy as np
        >>> w = knn_weights(np.array([0.0, 0.1, 0.2, 5.0]), np.array([45.0, 45.0, 45.0, 45.0]), k=1)
        >>> [[int(j) for j in w.neighbors[i]] for i in range(4)]   # the last site is far east: its nearest is the third
        [[1], [0], [1], [2]]
    """
    from libpysal.weights import KNN

    wrapped = (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0
    with warnings.catch_warnings():  # a kNN graph may have several components; Moran's I does not mind
        warnings.simplefilter("ignore", UserWarning)
        w = KNN.from_array(np.c_[wrapped, np.asarray(lat, dtype=float)], k=int(k), radius=EARTH_RADIUS_KM, silence_warnings=True)
    w.transform = "r"
    return w


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed NumPy's legacy global generator (which esda draws from) and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _positive_int(value, name: str, low: int, example: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, e.g. {example}; got {value!r}")
    return int(value)


def moran(
    values: xr.DataArray,
    *,
    k: int = DEFAULT_K,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> MoranResult:
    """Moran's I of per-site values, with a permutation p-value, on kNN weights.

    Sites whose value or position is NaN are left out. The weights link each site
    to its ``k`` nearest sites on the sphere (:func:`knn_weights`), row-standardised,
    so ``I = zᵀWz / zᵀz`` with ``z`` the centred values.

    Args:
        values: ``float[site]`` with coords ``lat`` and ``lon`` in degrees, e.g.
            ``result["shapley"].sel(player="nir", target="richness")``.
        k: Neighbours per site (at least 1, fewer than the sites).
        n_permutations: Random permutations of the values over the sites (at least 99).
        seed: Seed of the permutations.

    Returns:
        I, its expectation, the permutation z and p-value, and the settings.

    Raises:
        DataError: values not over ``site``, without ``lat``/``lon``, with at most
            ``k`` usable sites, or constant (I is then undefined).
        ConfigError: ``k``, ``n_permutations`` or ``seed`` not a valid integer.

    Example:
        >>> import numpy as np, xarray as xr
        >>> rng = np.random.default_rng(0)
        >>> lat, lon = rng.uniform(42, 51, 300), rng.uniform(-4, 8, 300)
        >>> smooth = xr.DataArray(np.sin(lon / 2), dims="site", coords={"lat": ("site", lat), "lon": ("site", lon)})
        >>> result = moran(smooth, k=8, seed=1)
        >>> round(result.i, 2), result.p_value, result.pattern
        (0.94, 0.001, 'clustered')
    """
    k = _positive_int(k, "k (neighbours per site)", 1, DEFAULT_K)
    n_permutations = _positive_int(n_permutations, "the number of permutations", MIN_PERMUTATIONS, DEFAULT_PERMUTATIONS)
    seed = _positive_int(seed, "seed", 0, 0)
    y, lon, lat = _positions(values)
    if len(y) <= k:
        raise DataError(f"Moran's I with k={k} neighbours needs more than {k} sites with a finite value and position, got {len(y)}; lower k")
    if np.ptp(y) <= 1e-12 * float(np.abs(y).max()):
        raise DataError(f"the {len(y):,} values are constant, so Moran's I is undefined (no variance to correlate)")

    import esda

    w = knn_weights(lon, lat, k=k)
    with _seeded_global_numpy(seed), np.errstate(divide="ignore", invalid="ignore"):
        stat = esda.Moran(y, w, transformation="r", permutations=n_permutations)
    return MoranResult(
        i=float(stat.I),
        expected_i=float(stat.EI),
        z=float(stat.z_sim),
        p_value=float(stat.p_sim),
        k=k,
        n_permutations=n_permutations,
        seed=seed,
        n_sites=len(y),
    )
