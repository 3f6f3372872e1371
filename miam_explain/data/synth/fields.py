"""Numerical helpers of the synthetic generator: smooth random fields, decorrelation, link functions.

Shared by :mod:`~miam_explain.data.synth.world` (site drivers),
:mod:`~miam_explain.data.synth.observations` (file readouts),
:mod:`~miam_explain.data.synth.species` (labels) and :mod:`~miam_explain.data.synth.truth`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np

__all__ = [
    "couple",
    "decorrelate",
    "mixed",
    "quiet",
    "sigmoid",
    "smooth_fields",
    "softplus",
    "standardize",
    "standardize_columns",
]


def smooth_fields(rng: np.random.Generator, xy: np.ndarray, n_fields: int, lengthscale: float,
                  n_features: int = 16) -> np.ndarray:
    """Independent smooth random fields: random Fourier features (a Gaussian-process stand-in).

    Each field is ``sqrt(2/F) * sum_f cos(w_f . xy + phi_f)`` with
    ``w_f ~ N(0, I / lengthscale^2)``, which approximates a GP with a squared
    exponential kernel and unit variance.

    Args:
        rng: Random generator.
        xy: ``(n, 2)`` planar coordinates (degrees).
        n_fields: Number of independent fields.
        lengthscale: Correlation length in degrees.
        n_features: Cosines per field.

    Returns:
        ``(n, n_fields)`` float64 array, roughly zero mean and unit variance.
    """
    w = rng.normal(0.0, 1.0 / lengthscale, size=(n_fields, n_features, 2))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(n_fields, n_features))
    out = np.empty((xy.shape[0], n_fields))
    for k in range(n_fields):
        out[:, k] = np.cos(xy @ w[k].T + phi[k]).sum(axis=1)
    return out * math.sqrt(2.0 / n_features)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))``, elementwise, without overflow."""
    return np.logaddexp(0.0, x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def standardize_columns(x: np.ndarray) -> np.ndarray:
    """Columns of ``x: (n, k)`` with zero mean and unit sd over the rows (a constant column is only centred)."""
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def mixed(field: np.ndarray, rng: np.random.Generator, spatial: float) -> np.ndarray:
    """Mix a unit smooth field with independent site noise: ``spatial*f + sqrt(1-spatial^2)*e``."""
    return spatial * field + math.sqrt(1.0 - spatial**2) * rng.standard_normal(field.shape)


def decorrelate(latent: np.ndarray, against: np.ndarray) -> np.ndarray:
    """Remove from ``latent`` its least-squares fit on ``against`` (keeping its mean and sd).

    Independent smooth fields are correlated by chance over a finite region
    (few effective degrees of freedom), which would let a model read one
    planted driver from another modality. Projecting it out makes every
    sample correlation with ``against`` exactly zero (a nonlinear model could
    still read location from smooth inputs; the local, non-spatial part of
    each driver guards against that). It is skipped when there are fewer
    than two sites per regressor.

    Args:
        latent: ``(n,)`` or ``(n, k)`` latent values (columns handled independently).
        against: ``(n, p)`` other per-site quantities (finite).

    Returns:
        Array shaped like ``latent``.
    """
    n = latent.shape[0]
    if against.shape[1] == 0 or n < 2 * (against.shape[1] + 1):
        return latent
    x = (against - against.mean(axis=0)) / np.where(against.std(axis=0) > 0, against.std(axis=0), 1.0)
    design = np.column_stack([np.ones(n), x])
    y = latent.reshape(n, -1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    scale = y.std(axis=0) / np.where(resid.std(axis=0) > 0, resid.std(axis=0), 1.0)
    return (y.mean(axis=0) + resid * scale).reshape(latent.shape)


def couple(latent: np.ndarray, partner: np.ndarray, rho: float) -> np.ndarray:
    """Mix a latent driver with a partner quantity so that their correlation is about ``rho``.

    ``latent`` becomes ``sqrt(1 - rho^2) * z(latent) + rho * z(partner)``,
    restandardised and brought back to the mean and sd of ``latent``
    (``z`` standardises over the sites). When ``latent`` was decorrelated
    from ``partner`` (:func:`decorrelate`), the sample correlation is exactly
    ``rho``. ``rho = 0`` returns ``latent`` itself.

    Args:
        latent: ``(n,)`` latent values.
        partner: ``(n,)`` the quantity of another modality to correlate with (its sign sets the direction).
        rho: Target correlation in ``[0, 1)``.

    Returns:
        ``(n,)`` array with the mean and sd of ``latent``.
    """
    if rho == 0:
        return latent
    z, mean, sd = standardize(latent)
    mix, _, _ = standardize(math.sqrt(1.0 - rho**2) * z + rho * standardize(partner)[0])
    return mean + sd * mix


def standardize(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(z, mean, sd)``: ``x`` with zero mean and unit sd (a constant ``x`` is only centred), and its mean and sd."""
    mean, sd = float(np.mean(x)), float(np.std(x))
    return (x - mean) / (sd if sd > 0 else 1.0), mean, sd


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' warnings (all-NaN rows are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

