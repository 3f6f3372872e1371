"""Ecological reports: one self-contained HTML page each, with the data and ``summary.json`` behind it.

* :func:`ndvi_report`: spectral bands, their interactions and every band combination (paper Fig. 5a);
* :func:`heatwave_report`: climate years, expanding windows and flagged years (paper Fig. 5b);
* :func:`modalities_report`: modality Shapley values, the subset table and MIAM's training history.

Each writes a folder (atomically) with ``report.html`` (self-contained), ``summary.json`` and the
netCDF/CSV data behind them. Helpers: :mod:`~miam_explain.reports.bootstrap` (spatial-block
bootstrap), :mod:`~miam_explain.reports.common` (model, split and cached coalitions),
:mod:`~miam_explain.reports.html` (the page).
"""

from __future__ import annotations

import os
from pathlib import Path

from miam_explain.errors import ConfigError
from miam_explain.reports.heatwave import heatwave_report
from miam_explain.reports.modalities import modalities_report
from miam_explain.reports.ndvi import ndvi_report

__all__ = ["REPORTS", "heatwave_report", "modalities_report", "ndvi_report", "run_report"]

#: Report kinds and the function that writes each.
REPORTS = {"ndvi": ndvi_report, "heatwave": heatwave_report, "modalities": modalities_report}


def run_report(kind: str, model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the report ``kind`` (``ndvi``, ``heatwave`` or ``modalities``) to the folder ``out``.

    ``options`` are the keyword arguments of the report function (``split``, ``target``,
    ``n_boot``, ``seed``, ``device``, ``budget``, ``overwrite``, ``progress``).

    Raises:
        ConfigError: an unknown ``kind``.
    """
    if kind not in REPORTS:
        raise ConfigError(f"unknown report {kind!r}; use one of {', '.join(REPORTS)}")
    return REPORTS[kind](model, data, out=out, **options)
