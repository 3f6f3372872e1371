"""Front doors of the model side: load a checkpoint with its data, evaluate subsets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd
import xarray as xr

from miam_explain.data.format import open_dataset
from miam_explain.errors import CheckpointError
from miam_explain.models.checkpoint import check_fits, load_model
from miam_explain.models.fusion import MiamModel
from miam_explain.training.data import load_split
from miam_explain.training.evaluation import evaluate_subsets, load_subsets, resolve_device

__all__ = ["model_and_data", "evaluate"]


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


def evaluate(
    model: str | os.PathLike | MiamModel,
    *,
    data: str | os.PathLike | xr.Dataset | None = None,
    split: str = "test",
    subsets: str | os.PathLike | Mapping[str, Sequence[str]] = "paper",
    device: str = "auto",
    batch_size: int = 512,
    progress: bool = False,
) -> pd.DataFrame:
    """Evaluate a model on token subsets of one split (see :func:`~miam_explain.training.evaluation.paper_subsets`).

    Returns:
        One row per subset: ``subset``, the metric (``auc`` or ``top1``/``top5``),
        ``visible_tokens`` (mean per site) and ``sites``.
    """
    model, ds = model_and_data(model, data, device=device)
    keeps = load_subsets(subsets, model.schema)
    split_data = load_split(ds, model.schema, split)
    return evaluate_subsets(model, split_data, keeps, batch_size=batch_size, device=resolve_device(device), progress=progress)
