"""The tensors of one split: raw inputs per modality, targets and site ids.

A split whose inputs fit under :data:`IN_MEMORY_BYTES` is read into memory; a larger one keeps its
inputs in the store (:class:`~miam_explain.runtime.disk.DiskArray`, rows read when indexed), so
memory does not grow with the number of sites. Targets, site ids and coordinates are small and
always in memory. Both kinds answer the same interface (``inputs``, ``target``, ``batch``,
``subset``, ``len``), and both give the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from miam_explain.data.format import read_values, select_split, split_positions
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import DataError
from miam_explain.heap import release_large_frees
from miam_explain.runtime.disk import DiskArray

__all__ = ["IN_MEMORY_BYTES", "SplitTensors", "load_split", "as_site_ids", "input_bytes"]

#: Largest split, in bytes of float32 inputs, that :func:`load_split` reads into memory (512 MiB);
#: a larger one streams its inputs from the store.
IN_MEMORY_BYTES = 512 << 20
#: Sites read at a time when a split is loaded into memory (bounds the transient copy).
_LOAD_BLOCK_SITES = 2048


@dataclass(frozen=True)
class SplitTensors:
    """The sites of one split, ready for the model.

    Attributes:
        inputs: ``{modality: float32[N, *shape]}`` raw values (NaN = missing): tensors, or
            :class:`~miam_explain.runtime.disk.DiskArray` s read when indexed (a streamed split).
        target: ``float32[N, K]`` 0/1 labels (multi-label) or ``int64[N]`` classes (multi-class).
        site_id: ``int64[N]``.
        task: ``multilabel`` or ``multiclass``.
        lat: ``float64[N]`` latitudes.
        lon: ``float64[N]`` longitudes.
    """

    inputs: dict[str, torch.Tensor | DiskArray]
    target: torch.Tensor
    site_id: np.ndarray
    task: str
    lat: np.ndarray
    lon: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @property
    def presences(self) -> np.ndarray | None:
        """``int64[K]`` sites where each species is present (multi-label data); ``None`` for classes."""
        if self.task != "multilabel":
            return None
        return self.target.sum(dim=0).cpu().numpy().astype(np.int64)

    @property
    def streamed(self) -> bool:
        """Whether the inputs stay in the store (read when indexed) rather than in memory."""
        return any(isinstance(v, DiskArray) for v in self.inputs.values())

    def batch(self, index: torch.Tensor | slice, device: torch.device | str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs and targets of some rows, moved to ``device``."""
        return {k: v[index].to(device) for k, v in self.inputs.items()}, self.target[index].to(device)

    def subset(self, site_ids: Sequence[int], *, split: str | None = None) -> SplitTensors:
        """The sites with these ``site_id`` values, in that order (a repeated id repeats its site).

        Raises:
            DataError: no site id, a value that is not a whole number, or a site id that is
                not among these sites.
        """
        wanted = as_site_ids(site_ids)
        position = {int(s): i for i, s in enumerate(self.site_id)}
        missing = [s for s in wanted if s not in position]
        if missing:
            raise DataError(f"site_id(s) {missing[:5]} are not in split {split!r}; pick sites from that split")
        index = np.array([position[s] for s in wanted], dtype=np.int64)
        return SplitTensors(
            inputs={k: v.take(index) if isinstance(v, DiskArray) else v[index] for k, v in self.inputs.items()},
            target=self.target[index],
            site_id=self.site_id[index],
            task=self.task,
            lat=self.lat[index],
            lon=self.lon[index],
        )


def as_site_ids(site_ids: Sequence[int]) -> list[int]:
    """``site_ids`` as a non-empty list of ints; anything else is a :class:`DataError`."""
    if isinstance(site_ids, (str, bytes)) or not isinstance(site_ids, (Sequence, np.ndarray)):
        raise DataError(f"sites must be a list of site_id values, got {type(site_ids).__name__}; e.g. sites=[1027998, 5000108]")
    out = []
    for value in list(site_ids):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, str)):
            raise DataError(f"site id {value!r} is not a whole number; pass site_id values such as 1027998")
        try:
            out.append(int(value))
        except ValueError:
            raise DataError(f"site id {value!r} is not a whole number; pass site_id values such as 1027998") from None
    if not out:
        raise DataError("the list of sites is empty; pass at least one site_id, or none to use the whole split")
    return out


def input_bytes(schema: TokenSchema, n_sites: int) -> int:
    """Bytes of the float32 inputs of ``n_sites`` sites."""
    return int(n_sites) * 4 * sum(int(np.prod(layout.shape)) for layout in schema.layouts)


def load_split(ds: xr.Dataset, schema: TokenSchema, split: str | None, *, max_bytes: int | None = None) -> SplitTensors:
    """Load one split of a consolidated dataset: in memory when its inputs fit, else streamed from the store.

    Args:
        ds: The consolidated dataset.
        schema: Its token schema.
        split: ``train``, ``val``, ``test``, or ``None``/``all`` for every site.
        max_bytes: Largest inputs (float32 bytes) read into memory; ``None``: :data:`IN_MEMORY_BYTES`.
            Past it the inputs stay in the store (``SplitTensors.streamed``). A split larger than
            :data:`IN_MEMORY_BYTES` also sets the process's heap to return freed buffers
            (:func:`~miam_explain.heap.release_large_frees`; it costs some speed, so small splits streamed on
            request leave it alone).

    Raises:
        DataError: an empty or unknown split, targets that are not 0/1 (multi-label) or
            not class indices (multi-class), or a damaged store.
    """
    positions = split_positions(ds, split)
    part = select_split(ds, split)
    bound = IN_MEMORY_BYTES if max_bytes is None else int(max_bytes)
    stored = {layout.name: DiskArray(ds[layout.variable], positions) for layout in schema.layouts}
    size = input_bytes(schema, positions.size)
    if size <= bound:
        inputs = {name: _in_memory(disk) for name, disk in stored.items()}
    else:
        inputs = dict(stored)
        if size > IN_MEMORY_BYTES:  # a long run over a large split: give freed buffers back (miam_explain/heap.py)
            release_large_frees()
    if "labels" in part:
        labels = np.asarray(read_values(part["labels"]), dtype=np.float32)
        if not np.isfinite(labels).all():
            raise DataError("labels hold NaN; presence-absence labels must be 0 or 1")
        if not np.isin(labels, (0.0, 1.0)).all():
            bad = labels[~np.isin(labels, (0.0, 1.0))][0]
            raise DataError(f"labels hold the value {bad:g}; presence-absence labels must be 0 or 1, fix the labels and prepare the data again")
        target, task = torch.from_numpy(labels), "multilabel"
    else:
        label = np.asarray(read_values(part["label"]))
        n_classes = part.sizes.get("species", 0)
        if label.dtype.kind not in "iu" or ((label < 0) | (label >= n_classes)).any():
            raise DataError(
                f"'label' must hold class indices in 0..{n_classes - 1} (into the species coordinate); "
                "fix the labels and prepare the data again"
            )
        target, task = torch.from_numpy(label.astype(np.int64)), "multiclass"
    return SplitTensors(
        inputs=inputs,
        target=target,
        site_id=np.asarray(read_values(part["site_id"])),
        task=task,
        lat=np.asarray(read_values(part["lat"]), dtype=np.float64),
        lon=np.asarray(read_values(part["lon"]), dtype=np.float64),
    )


def _in_memory(disk: DiskArray) -> torch.Tensor:
    """All the rows of ``disk`` in one tensor, read a block of sites at a time (no second full copy)."""
    out = torch.empty(disk.shape, dtype=torch.float32)
    for start in range(0, len(disk), _LOAD_BLOCK_SITES):
        stop = min(len(disk), start + _LOAD_BLOCK_SITES)
        out[start:stop] = disk[start:stop]
    return out
