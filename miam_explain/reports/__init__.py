"""Ecological reports: one self-contained HTML page each, with the data and ``summary.json`` behind it.

* :func:`ndvi_report`: spectral bands, their interactions and every band combination (paper Fig. 5a);
* :func:`heatwave_report`: climate years, expanding windows and flagged years (paper Fig. 5b);
* :func:`modalities_report`: modality Shapley values, the subset table and MIAM's training history;
* :func:`species_report`: each species' own AUC explained by the players, and its leading player.

Every report runs one path (:func:`~miam_explain.reports.build.build_report`): its options,
frozen and validated once (:class:`ReportOptions`) -> a context on the split
(:mod:`~miam_explain.reports.context`: the games, one pass over the engine per batch of
coalitions, the spatial-block bootstrap of :mod:`~miam_explain.reports.bootstrap`) ->
``compute_*`` -> an xarray-backed result -> ``render_*`` -> a :class:`ReportPage` ->
:func:`write_report`, which writes the folder atomically: ``report.html`` (self-contained),
``summary.json`` and the netCDF/CSV data behind them.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "ndvi"
    >>> folder = ndvi_report(run_folder, out=out, split="all", n_boot=20, device="cpu", progress=False)
    >>> sorted(p.name for p in folder.iterdir())[:4]
    ['bands.csv', 'combinations.csv', 'figures', 'ndvi.nc']
    >>> options = ReportOptions(split="all", n_boot=20, device="cpu", progress=False)
    >>> context = open_context(run_folder, None, group="spectral_bands", options=options, maps_target=True)
    >>> result = compute_ndvi(context, options)         # numbers only: an xarray-backed result
    >>> result.dataset["shapley"].dims
    ('player',)
    >>> page = render_ndvi(result)                      # the page: findings and sections with figures
    >>> len(page.sections) > 0
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from miam_explain.errors import ConfigError
from miam_explain.reports.context import ReportContext, open_context
from miam_explain.reports.heatwave import (
    HeatwaveResult,
    compute_heatwave,
    heatwave_report,
    render_heatwave,
)
from miam_explain.reports.modalities import (
    ModalitiesResult,
    compute_modalities,
    modalities_report,
    render_modalities,
)
from miam_explain.reports.ndvi import NdviResult, compute_ndvi, ndvi_report, render_ndvi
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.species import SpeciesResult, compute_species, render_species, species_report
from miam_explain.reports.page import ReportPage, Section
from miam_explain.reports.writer import write_report

__all__ = [
    "REPORTS",
    "run_report",
    "ndvi_report",
    "heatwave_report",
    "modalities_report",
    "species_report",
    "ReportOptions",
    "ReportContext",
    "open_context",
    "compute_ndvi",
    "render_ndvi",
    "NdviResult",
    "compute_heatwave",
    "render_heatwave",
    "HeatwaveResult",
    "compute_modalities",
    "render_modalities",
    "ModalitiesResult",
    "compute_species",
    "render_species",
    "SpeciesResult",
    "ReportPage",
    "Section",
    "write_report",
]

#: Report kinds and the function that writes each.
REPORTS = {"ndvi": ndvi_report, "heatwave": heatwave_report, "modalities": modalities_report, "species": species_report}


def run_report(kind: str, model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the report ``kind`` (``ndvi``, ``heatwave``, ``modalities`` or ``species``) to the folder ``out``.

    ``options`` are the fields of :class:`ReportOptions` (``split``, ``target``, ``n_boot``,
    ``seed``, ``device``, ``budget``, ``overwrite``, ``progress``, ``group``, ``groupings``).

    Raises:
        ConfigError: an unknown ``kind``, or an unknown or invalid option.
    """
    if kind not in REPORTS:
        raise ConfigError(f"unknown report {kind!r}; use one of {', '.join(REPORTS)}")
    return REPORTS[kind](model, data, out=out, **options)
