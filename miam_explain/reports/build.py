"""The one path of every report: options -> context -> ``compute_*`` -> result -> ``render_*`` -> page -> folder.

Each report module describes itself as a :class:`ReportKind` (its grouping, whether it maps a
target, its compute and render steps); :func:`build_report` runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miam_explain.files import check_output_path
from miam_explain.reports.context import ReportContext, open_context
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage
from miam_explain.reports.writer import write_report

__all__ = ["ReportKind", "build_report"]


@dataclass(frozen=True)
class ReportKind:
    """One kind of report.

    Attributes:
        name: ``ndvi``, ``heatwave`` or ``modalities``.
        group: Grouping whose members are the players, unless the options name another (``group=``).
        maps_target: The report maps ``options.target`` per site.
        compute: ``(context, options) -> result`` (the numbers, in an xarray-backed result).
        render: ``result -> page`` (findings, sections, figures, tables).
    """

    name: str
    group: str
    maps_target: bool
    compute: Callable[[ReportContext, ReportOptions], Any]
    render: Callable[[Any], ReportPage]


def build_report(kind: ReportKind, model, data, *, out: str | os.PathLike, options: Mapping[str, object]) -> Path:
    """Validate the options, refuse an existing ``out``, then compute, render and write the report.

    Args:
        kind: The report.
        model: Checkpoint, run folder or loaded model.
        data: Dataset or path (``None``: the one recorded in the checkpoint).
        out: Report folder to create.
        options: Keyword options (:class:`~miam_explain.reports.options.ReportOptions` fields).

    Returns:
        The report folder.
    """
    resolved = ReportOptions.from_kwargs(options)
    check_output_path(out, overwrite=resolved.overwrite)
    context = open_context(model, data, group=resolved.group or kind.group, options=resolved, maps_target=kind.maps_target)
    result = kind.compute(context, resolved)
    return write_report(result, kind.render(result), out, overwrite=resolved.overwrite)
