"""One modality of a split left in the store: its rows are read on demand, a few at a time.

:class:`DiskArray` stands in for the ``float32[N, *shape]`` tensor of a split that does not fit
in memory (see :func:`~miam_explain.runtime.tensors.load_split`): indexing it reads only those
sites from the store (zarr or netCDF) and returns a tensor, so what is resident is what was asked
for. Reads run in the calling thread (Dask's synchronous scheduler), so a background reader or a
Dask worker can use it.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from miam_explain.data.format import read_values

__all__ = ["DiskArray", "read_rows"]


def read_rows(variable: xr.DataArray, positions: np.ndarray, *, source: str = "the dataset") -> np.ndarray:
    """``float32[n, ...]`` values of the sites at ``positions`` along ``site`` (any order, repeats allowed).

    Each store chunk is read once: the distinct positions are read in ascending order and the rows
    then put in the order asked for.

    Raises:
        DataError: a damaged store.
    """
    positions = np.asarray(positions, dtype=np.int64)
    unique, inverse = np.unique(positions, return_inverse=True)
    if unique.size and unique[-1] - unique[0] + 1 == unique.size:  # a contiguous range: a plain slice
        part = variable.isel(site=slice(int(unique[0]), int(unique[-1]) + 1))
    else:
        part = variable.isel(site=unique)
    values = np.asarray(read_values(part, source=source, scheduler="synchronous"), dtype=np.float32)
    return values if np.array_equal(unique, positions) else values[inverse]


class DiskArray:
    """The sites ``positions`` of one stored ``site``-first variable, read when indexed.

    Args:
        variable: The variable in the store (lazy), dims ``(site, ...)``.
        positions: ``int64[N]`` positions along ``site`` of the rows of this array.

    Attributes:
        largest_read: The most rows one read has returned so far (what streaming holds at once).

    Example:
        >>> import miam_explain
        >>> ds = miam_explain.open_dataset(data_path)
        >>> climate = DiskArray(ds["x_climate"], np.arange(10, 20))
        >>> climate.shape, climate[2:5].shape
        ((10, 4, 19, 12), torch.Size([3, 4, 19, 12]))
    """

    def __init__(self, variable: xr.DataArray, positions: np.ndarray) -> None:
        self.variable = variable
        self.positions = np.asarray(positions, dtype=np.int64)
        self.largest_read = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, *shape)``, as a tensor's."""
        return (int(self.positions.size), *(int(n) for n in self.variable.shape[1:]))

    def __len__(self) -> int:
        return int(self.positions.size)

    def __getitem__(self, index: slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        """``float32[n, *shape]`` values of the rows ``index`` (a slice or an integer array), read now."""
        positions = self.positions[index if isinstance(index, slice) else np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64)]
        self.largest_read = max(self.largest_read, int(positions.size))
        if positions.size == 0:
            return torch.zeros((0, *self.shape[1:]), dtype=torch.float32)
        return torch.from_numpy(read_rows(self.variable, positions))

    def take(self, index: np.ndarray) -> DiskArray:
        """The rows ``index`` as another :class:`DiskArray` (nothing is read)."""
        return DiskArray(self.variable, self.positions[np.asarray(index, dtype=np.int64)])
