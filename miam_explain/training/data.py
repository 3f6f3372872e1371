"""In-memory tensors of one split: raw inputs per modality, targets and site ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from miam_explain.data.format import select_split
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import DataError

__all__ = ["SplitTensors", "load_split"]


@dataclass(frozen=True)
class SplitTensors:
    """The sites of one split, ready for the model.

    Attributes:
        inputs: ``{modality: float32[N, *shape]}`` raw values (NaN = missing).
        target: ``float32[N, K]`` 0/1 labels (multi-label) or ``int64[N]`` classes (multi-class).
        site_id: ``int64[N]``.
        task: ``multilabel`` or ``multiclass``.
        lat: ``float64[N]`` latitudes.
        lon: ``float64[N]`` longitudes.
    """

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    site_id: np.ndarray
    task: str
    lat: np.ndarray
    lon: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def batch(self, index: torch.Tensor | slice, device: torch.device | str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs and targets of some rows, moved to ``device``."""
        return {k: v[index].to(device) for k, v in self.inputs.items()}, self.target[index].to(device)

    def subset(self, site_ids: Sequence[int], *, split: str | None = None) -> SplitTensors:
        """The sites with these ``site_id`` values, in that order.

        Raises:
            DataError: a site id that is not among these sites.
        """
        position = {int(s): i for i, s in enumerate(self.site_id)}
        missing = [int(s) for s in site_ids if int(s) not in position]
        if missing:
            raise DataError(f"site_id(s) {missing[:5]} are not in split {split!r}; pick sites from that split")
        index = np.array([position[int(s)] for s in site_ids], dtype=np.int64)
        return SplitTensors(
            inputs={k: v[index] for k, v in self.inputs.items()},
            target=self.target[index],
            site_id=self.site_id[index],
            task=self.task,
            lat=self.lat[index],
            lon=self.lon[index],
        )


def load_split(ds: xr.Dataset, schema: TokenSchema, split: str | None) -> SplitTensors:
    """Load one split of a consolidated dataset into memory.

    Raises:
        DataError: an empty or unknown split, or targets with non-finite values.
    """
    part = select_split(ds, split)
    inputs = {layout.name: torch.from_numpy(np.asarray(part[layout.variable].values, dtype=np.float32)) for layout in schema.layouts}
    if "labels" in part:
        labels = np.asarray(part["labels"].values, dtype=np.float32)
        if not np.isfinite(labels).all():
            raise DataError("labels hold NaN; presence-absence labels must be 0 or 1")
        target, task = torch.from_numpy(labels), "multilabel"
    else:
        target, task = torch.from_numpy(np.asarray(part["label"].values, dtype=np.int64)), "multiclass"
    return SplitTensors(
        inputs=inputs,
        target=target,
        site_id=np.asarray(part["site_id"].values),
        task=task,
        lat=np.asarray(part["lat"].values, dtype=np.float64),
        lon=np.asarray(part["lon"].values, dtype=np.float64),
    )
