"""What training and explaining share: split tensors, loading, devices, metrics, the engine, subsets.

``training`` and ``explain`` are peers over this package and never import each other.

* :mod:`~miam_explain.runtime.tensors`: :class:`SplitTensors` (one split, in memory or streamed), :func:`load_split`;
* :mod:`~miam_explain.runtime.disk`: :class:`~miam_explain.runtime.disk.DiskArray` (a streamed split's inputs, read when indexed);
* :mod:`~miam_explain.runtime.loading`: :func:`resolve_device`, :func:`model_and_data`;
* :mod:`~miam_explain.runtime.metrics`: the metric registry :data:`METRICS` (plain and site-weighted);
* :mod:`~miam_explain.runtime.engine`: :class:`Engine`, the only code that runs a model on token subsets;
* :mod:`~miam_explain.runtime.subsets`: subset tables (paper Table 1) and :func:`evaluate`.
"""

from __future__ import annotations

from miam_explain.runtime.engine import Engine
from miam_explain.runtime.loading import model_and_data, resolve_device
from miam_explain.runtime.metrics import METRICS, Metric, resolve_metric
from miam_explain.runtime.subsets import evaluate, evaluate_subsets, load_subsets, paper_subsets, table1_subsets
from miam_explain.runtime.tensors import SplitTensors, as_site_ids, load_split

__all__ = [
    "Engine",
    "METRICS",
    "Metric",
    "SplitTensors",
    "evaluate",
    "evaluate_subsets",
    "load_split",
    "load_subsets",
    "model_and_data",
    "paper_subsets",
    "resolve_device",
    "resolve_metric",
    "as_site_ids",
    "table1_subsets",
]
