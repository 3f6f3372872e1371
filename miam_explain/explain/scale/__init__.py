"""How a run's chunks are computed and kept: chunk functions, executors (in-process or Dask) and stores.

* :mod:`.chunks`: one chunk of sites (prediction game) or of coalitions (performance game), and
  the per-process model cache of Dask workers;
* :mod:`.executors`: :class:`LocalExecutor` (this process) and :class:`DaskExecutor` (a cluster);
* :mod:`.memory_store` and :mod:`.zarr_store`: where chunks are written (the zarr store is
  resumable), with the records of :mod:`.records`;
* :mod:`.chunked_game`: the performance game cut into coalition chunks.

:func:`miam_explain.explain.run.run` puts them together.
"""

from __future__ import annotations

from miam_explain.explain.scale.chunks import performance_chunk, prediction_chunk, worker_stats
from miam_explain.explain.scale.executors import DaskExecutor, LocalExecutor, open_executor
from miam_explain.explain.scale.memory_store import MemoryStore
from miam_explain.explain.scale.zarr_store import ZarrStore

__all__ = [
    "DaskExecutor",
    "LocalExecutor",
    "MemoryStore",
    "ZarrStore",
    "open_executor",
    "performance_chunk",
    "prediction_chunk",
    "worker_stats",
]
