"""Loading what every command needs: the device, and a model with the dataset it fits."""

from __future__ import annotations

import os

import torch
import xarray as xr

from miam_explain.data.format import open_dataset
from miam_explain.errors import CheckpointError, ConfigError
from miam_explain.models.checkpoint import check_fits, load_model
from miam_explain.models.fusion import MiamModel

__all__ = ["resolve_device", "model_and_data"]

def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if isinstance(name, torch.device):
        return name
    if not isinstance(name, str):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device auto or cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA GPU(s)); use cuda or cuda:0")
    return device


def model_and_data(
    model: str | os.PathLike | MiamModel,
    data: str | os.PathLike | xr.Dataset | None = None,
    *,
    device: str = "auto",
) -> tuple[MiamModel, xr.Dataset]:
    """Load a model (path or object) and its dataset (default: the one in the checkpoint), checking they fit."""
    resolved = resolve_device(device)
    if not isinstance(model, MiamModel):
        model = load_model(model, device=resolved)
    else:
        model = model.to(resolved).eval()
    if data is None:
        recorded = getattr(model, "meta", {}).get("data", {}).get("path")
        if not recorded:
            raise CheckpointError("the checkpoint records no dataset; pass --data")
        data = recorded
    ds = data if isinstance(data, xr.Dataset) else open_dataset(data)
    check_fits(model, ds)
    return model, ds
