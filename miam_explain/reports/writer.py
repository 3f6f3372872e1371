"""The one writer of every report: a folder, created atomically, with the data, ``summary.json`` and the page.

A report's result says what data it holds (:meth:`ReportResult.files`, :meth:`ReportResult.summary`);
its page says what it shows (:class:`~miam_explain.reports.page.ReportPage`). :func:`write_report`
writes both:

* ``*.nc`` (netCDF, h5netcdf) and ``*.csv`` files, as the result names them;
* ``summary.json``: the result's summary plus ``findings`` (the page's sentences);
* ``report.html`` (self-contained) and ``figures/figure_N.png``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.files import atomic_path
from miam_explain.reports.page import ReportPage, page_html

__all__ = ["ReportResult", "write_folder", "write_json", "write_report"]


class ReportResult(Protocol):
    """What a report computed, as :func:`write_report` reads it."""

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files by name: ``*.nc`` datasets and ``*.csv`` tables."""

    def summary(self) -> dict:
        """The machine-readable findings (``summary.json`` without ``findings``)."""


def write_report(result: ReportResult, page: ReportPage, out: str | os.PathLike, *, overwrite: bool) -> Path:
    """Write a report folder atomically: the result's files, ``summary.json``, ``report.html`` and ``figures/``.

    Args:
        result: What the report computed.
        page: How it is shown (its figures are closed once written).
        out: Report folder to create.
        overwrite: Replace an existing ``out``.

    Returns:
        The report folder.
    """

    def write(folder: Path) -> None:
        for name, data in result.files().items():
            if name.endswith(".nc"):
                data.to_netcdf(folder / name, engine="h5netcdf")
            else:
                data.to_csv(folder / name, index=False)
        write_json(folder / "summary.json", result.summary() | {"findings": list(page.findings)})
        (folder / "report.html").write_text(page_html(page, figure_dir=folder / "figures"), encoding="utf-8")

    try:
        return write_folder(out, overwrite=overwrite, write=write)
    finally:
        page.close()


def write_folder(out: str | os.PathLike, *, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Create a report folder atomically: ``write(folder)`` fills a hidden sibling (with ``figures/``), which is then renamed.

    On any error the hidden sibling is removed and ``out`` is left as it was.

    Returns:
        The report folder.
    """
    out = Path(out)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        (tmp / "figures").mkdir()
        write(tmp)
    return out


def write_json(path: Path, document: dict) -> None:
    """Write a JSON document (numpy numbers become Python numbers, NaN becomes null)."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, np.ndarray)):
            return [clean(v) for v in value]
        if isinstance(value, (np.floating, float)):
            return None if not math.isfinite(float(value)) else float(value)
        if isinstance(value, (np.integer, np.bool_)):
            return value.item()
        return value

    path.write_text(json.dumps(clean(document), indent=2, ensure_ascii=False), encoding="utf-8")
