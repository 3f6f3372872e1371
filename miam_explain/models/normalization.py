"""Normalisation statistics of the model inputs, computed on the train split.

Each modality is standardised with a mean and a standard deviation over its
*first* non-site dim: per tabular variable, per time-series channel, per image
band, per embedding dim. The statistics ignore NaN (missing values), are computed
chunk by chunk over sites (bounded memory), and travel in the checkpoint's JSON
metadata so that a loaded model normalises new data exactly as in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from miam_explain.data.format import read_values
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import DataError

__all__ = ["NormStats"]


@dataclass(frozen=True)
class NormStats:
    """Per-modality means and standard deviations along the first non-site dim.

    Attributes:
        mean: ``{modality: float[C]}``.
        std: ``{modality: float[C]}`` (never below ``1e-6``).
    """

    mean: Mapping[str, tuple[float, ...]]
    std: Mapping[str, tuple[float, ...]]

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, schema: TokenSchema, *, chunk_size: int = 1024) -> NormStats:
        """Compute the statistics over every site of ``ds`` (pass the train split).

        Args:
            ds: Consolidated dataset (already restricted to the train split).
            schema: Its token schema.
            chunk_size: Sites read at a time.

        Raises:
            DataError: a modality has no finite value at all for some channel.
        """
        means, stds = {}, {}
        n_sites = ds.sizes["site"]
        for layout in schema.layouts:
            var = ds[layout.variable]
            channels = layout.shape[0]
            count = np.zeros(channels)
            total = np.zeros(channels)
            total_sq = np.zeros(channels)
            for start in range(0, n_sites, chunk_size):
                block = np.asarray(read_values(var.isel(site=slice(start, start + chunk_size))), dtype=np.float64)
                block = np.moveaxis(block, 1, 0).reshape(channels, -1)
                finite = np.isfinite(block)
                values = np.where(finite, block, 0.0)
                count += finite.sum(axis=1)
                total += values.sum(axis=1)
                total_sq += (values**2).sum(axis=1)
            if (count == 0).any():
                empty = [layout.labels[i] if layout.labels else str(i) for i in np.flatnonzero(count == 0)]
                raise DataError(
                    f"modality {layout.name}: no finite value in the train split for {empty[:5]}; "
                    "the data has no information there, drop it or fix the reader"
                )
            mean = total / count
            var_ = np.maximum(total_sq / count - mean**2, 0.0)
            means[layout.name] = tuple(float(m) for m in mean)
            stds[layout.name] = tuple(float(max(np.sqrt(v), 1e-6)) for v in var_)
        return cls(mean=means, std=stds)

    def normalize(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x: float[N, C, ...]`` of one modality (NaN stays NaN)."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = torch.tensor(self.mean[modality], dtype=x.dtype, device=x.device).reshape(shape)
        std = torch.tensor(self.std[modality], dtype=x.dtype, device=x.device).reshape(shape)
        return (x - mean) / std

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the checkpoint metadata."""
        return {"mean": {k: list(v) for k, v in self.mean.items()}, "std": {k: list(v) for k, v in self.std.items()}}

    def check(self, schema: TokenSchema) -> None:
        """Refuse statistics that do not fit ``schema``: one finite mean and positive std per channel.

        Raises:
            DataError: naming the first modality whose statistics are missing or broken.
        """
        for layout in schema.layouts:
            mean, std = self.mean.get(layout.name), self.std.get(layout.name)
            channels = layout.shape[0]
            if mean is None or std is None:
                raise DataError(f"no normalisation statistics for modality {layout.name}; they must come from the same training run")
            if len(mean) != channels or len(std) != channels:
                raise DataError(
                    f"normalisation statistics of {layout.name} have {len(mean)} means and {len(std)} stds for "
                    f"{channels} channels; they must come from the same training run"
                )
            if not (np.isfinite(mean).all() and np.isfinite(std).all() and (np.asarray(std) > 0).all()):
                raise DataError(f"normalisation statistics of {layout.name} are not finite or have std <= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            mean={k: tuple(float(x) for x in v) for k, v in data["mean"].items()},
            std={k: tuple(float(x) for x in v) for k, v in data["std"].items()},
        )
