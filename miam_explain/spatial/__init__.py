"""Statistics of per-site values (e.g. Shapley contributions) in space and along gradients.

* :func:`moran`: Moran's I on k-nearest-neighbour weights (great-circle
  distance), with a seeded permutation p-value (PySAL's ``esda`` and ``libpysal``);
* :func:`smooth_trend`: a LOWESS-style trend along a covariate with a bootstrap band;
* :func:`site_covariate`: a covariate per site, from the values' coords or the dataset's
  tabular variables.

:mod:`miam_explain.plotting.gradients` draws the trend; ``miam-explain map`` reports both.

Example:
    >>> import numpy as np, xarray as xr
    >>> from miam_explain.spatial import moran
    >>> rng = np.random.default_rng(0)
    >>> noise = xr.DataArray(rng.normal(size=200), dims="site",
    ...                      coords={"lat": ("site", rng.uniform(42, 51, 200)), "lon": ("site", rng.uniform(-4, 8, 200))})
    >>> moran(noise, seed=0).p_value > 0.05    # iid noise: no spatial pattern
    True
"""

from __future__ import annotations

from miam_explain.spatial.autocorrelation import MoranResult, knn_weights, moran
from miam_explain.spatial.covariates import available_covariates, site_covariate
from miam_explain.spatial.trend import Trend, smooth_trend

__all__ = ["MoranResult", "moran", "knn_weights", "Trend", "smooth_trend", "site_covariate", "available_covariates"]
