"""In-memory tensors of one split: raw inputs per modality, targets and site ids."""

from __future__ import annotations

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
    """

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    site_id: np.ndarray
    task: str

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def batch(self, index: torch.Tensor | slice, device: torch.device | str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs and targets of some rows, moved to ``device``."""
        return {k: v[index].to(device) for k, v in self.inputs.items()}, self.target[index].to(device)


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
    return SplitTensors(inputs=inputs, target=target, site_id=np.asarray(part["site_id"].values), task=task)
