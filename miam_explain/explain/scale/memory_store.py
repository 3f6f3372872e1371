"""The store of an in-memory run: the chunks' arrays in numpy, nothing written to disk, nothing to resume.

It keeps the interface of :class:`~miam_explain.explain.scale.zarr_store.ZarrStore`, so a run
goes through the same steps whether its result lives in memory or in a resumable zarr folder.

Example:
    >>> import numpy as np
    >>> from miam_explain.explain.scale.records import ArraySpec
    >>> store = MemoryStore({"v_full": ArraySpec((4, 1), 2, ("site", "target"))}, n_chunks=2)
    >>> store.write(1, {"v_full": (slice(2, 4), np.ones((2, 1)))}, (5, 1, 0))
    >>> store.records()[:, 0].tolist(), store.array("v_full")[:, 0].tolist()
    ([0, 1], [nan, nan, 1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from miam_explain.explain.scale.records import ArraySpec

__all__ = ["MemoryStore"]


class MemoryStore:
    """Chunk arrays and records in memory.

    Args:
        arrays: The work arrays (name -> spec); float64, filled with NaN.
        n_chunks: Number of chunk records to start with.
    """

    #: Nothing survives the run, so nothing is reused.
    resumable = False
    #: A new store holds no result.
    complete = False

    def __init__(self, arrays: Mapping[str, ArraySpec], n_chunks: int) -> None:
        self._arrays = {name: np.full(spec.shape, np.nan) for name, spec in arrays.items()}
        self._records = np.zeros((n_chunks, 4), dtype=np.int64)
        self._result: xr.Dataset | None = None

    @property
    def n_chunks(self) -> int:
        """Number of chunk records."""
        return int(self._records.shape[0])

    def records(self) -> np.ndarray:
        """``int64[n_chunks, 4]`` chunk records (zeros when not written)."""
        return self._records.copy()

    def write(self, index: int, data: Mapping[str, tuple[slice | int, np.ndarray]], record: Sequence[int]) -> None:
        """Write one chunk's arrays (``name -> (region along axis 0, values)``), then its record."""
        for name, (region, values) in data.items():
            self._arrays[name][region] = values
        self._records[index] = np.asarray([1, *record], dtype=np.int64)

    def array(self, name: str) -> np.ndarray:
        """A work array."""
        return self._arrays[name]

    def finish(self, result: xr.Dataset, *, drop: Sequence[str] = ()) -> None:
        """Keep the result (and let go of the work arrays it was built from)."""
        self._result = result
        for name in drop:
            self._arrays.pop(name, None)

    def result(self) -> xr.Dataset:
        """The result given to :meth:`finish`."""
        if self._result is None:
            raise RuntimeError("the run has not finished; finish() comes before result()")
        return self._result
