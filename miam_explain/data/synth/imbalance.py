"""The imbalance regime: a clean tabular proxy of the Sentinel-2 NDVI driver (``docs/synthetic.md``).

In the planted data every satellite signal lives only in the satellite, so no
masking strategy can make a model neglect it. Real data are not like that: a
dominant modality often carries an easy copy of what a weaker one shows in a
harder form. With ``imbalance = R > 0`` the generator writes one more tabular
column (:data:`~miam_explain.data.synth.params.IMBALANCE_COLUMN`) whose sample
correlation with the NDVI driver of the NDVI species is exactly ``R`` before
rounding and missing cells. Those species can then be read from a single
tabular token, or, harder, from red and NIR of the Sentinel-2 patch; nothing
else changes (same random streams, same inputs and labels).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from miam_explain.data.glc.writer import survey_table
from miam_explain.data.synth.fields import standardize
from miam_explain.data.synth.params import IMBALANCE_COLUMN, IMBALANCE_FILE, TABULAR_NAN_RATE

__all__ = ["imbalance_record", "proxy_column", "proxy_tables"]


def proxy_column(rng: np.random.Generator, driver: np.ndarray, rho: float) -> np.ndarray:
    """A column with sample correlation exactly ``rho`` with ``driver``, in the driver's units.

    ``mean + sd * (rho * z + sqrt(1 - rho^2) * e)``, where ``z`` is the standardised driver and
    ``e`` standard normal noise made orthogonal to ``z`` (and centred) and restandardised.

    Args:
        rng: The ``imbalance`` stream.
        driver: ``(n,)`` finite driver values (the cloud-free patch NDVI).
        rho: Target correlation in ``[0, 1)``.

    Returns:
        ``(n,)`` float64 with the mean and sd of ``driver``.

    Example:
        >>> x = np.linspace(0.2, 0.8, 50)
        >>> round(float(np.corrcoef(proxy_column(np.random.default_rng(0), x, 0.9), x)[0, 1]), 6)
        0.9
    """
    z, mean, sd = standardize(driver)
    noise = rng.standard_normal(len(driver))
    noise -= noise.mean()
    zz = float(z @ z)
    if zz > 0:
        noise -= (float(noise @ z) / zz) * z
    noise = standardize(noise)[0]
    return mean + sd * (rho * z + math.sqrt(1.0 - rho**2) * noise)


def proxy_tables(rng: np.random.Generator, survey_id: np.ndarray, ndvi: np.ndarray,
                 rho: float) -> dict[str, pd.DataFrame]:
    """The proxy CSV: ``{IMBALANCE_FILE: table}``, rounded to 4 decimals, with a few NaN cells like every CSV.

    Args:
        rng: The ``imbalance`` stream.
        survey_id: ``int64[n]`` survey ids.
        ndvi: ``(n,)`` the NDVI driver (cloud-free patch mean NDVI).
        rho: The imbalance setting ``R`` (> 0).
    """
    values = np.round(proxy_column(rng, ndvi, rho), 4)
    values[rng.random(len(values)) < TABULAR_NAN_RATE] = np.nan
    return {IMBALANCE_FILE: survey_table(survey_id, [IMBALANCE_COLUMN], values[:, None])}


def imbalance_record(tables: dict[str, pd.DataFrame], ndvi: np.ndarray, rho: float,
                     species: list[dict]) -> dict:
    """The ``imbalance`` entry of ``truth.json``: the setting, the column and its measured correlation.

    Args:
        tables: The written tabular CSVs (holding :data:`IMBALANCE_FILE`).
        ndvi: ``(n,)`` the NDVI driver.
        rho: The imbalance setting.
        species: The species definitions (the NDVI species are those that the proxy serves).

    Returns:
        ``rho``, ``column``, ``file``, ``driver``, ``modality`` (``tabular``), ``correlation`` (measured
        on the written values, NaN cells left out) and ``species`` (the ids of the NDVI species).
    """
    written = tables[IMBALANCE_FILE][IMBALANCE_COLUMN].to_numpy(dtype=np.float64)
    ok = np.isfinite(written)
    r = float(np.corrcoef(written[ok], ndvi[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return {
        "rho": rho, "column": IMBALANCE_COLUMN, "file": IMBALANCE_FILE,
        "driver": "cloud-free patch mean NDVI (truth_sites.csv: ndvi)", "modality": "tabular",
        "correlation": round(r, 4) if np.isfinite(r) else None,
        "species": [sp["speciesId"] for sp in species if sp["role"] == "ndvi"],
    }
