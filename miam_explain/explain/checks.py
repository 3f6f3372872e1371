"""Checks of the options that estimators and Shapley requests share, each written once.

Every function returns the value normalised (a Python ``int`` or ``float``) or raises a
:class:`~miam_explain.errors.ConfigError` whose one-line message names the fix.

Example:
    >>> check_seed(3), check_tol(None), check_positive("workers", 2)
    (3, None, 2)
"""

from __future__ import annotations

import math

import numpy as np

from miam_explain.errors import ConfigError

__all__ = ["check_budget", "check_tol", "check_seed", "check_positive", "check_group"]


def check_budget(budget: int | None) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise ConfigError(f"budget must be a whole number of game evaluations, got {budget!r}")
    return int(budget)


def check_tol(tol: float | None) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise ConfigError(f"tol must be a positive number (e.g. 0.01), got {tol!r}")
    tol = float(tol)
    if not (math.isfinite(tol) and tol > 0):
        raise ConfigError(f"tol must be a positive number (e.g. 0.01), got {tol}")
    return tol


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative whole number (e.g. 0), got {seed!r}")
    return int(seed)


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)



def check_group(group: str) -> str:
    if not isinstance(group, str) or not group:
        raise ConfigError(f"group must be the name of a grouping such as 'spectral_bands', got {group!r}")
    return group
