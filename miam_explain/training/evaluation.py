"""Subset evaluation: one model, many token subsets, one metric per subset (paper Table 1).

A *subset* is a union of selectors (``grouping:member``); its tokens are visible
(AND observed in the data) and every other token is replaced by the mask
embedding. Predictions use the collapsed forward, and each batch is tokenized
once for all subsets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from miam_explain._io import read_toml
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import ConfigError, SchemaError
from miam_explain.models.fusion import MiamModel
from miam_explain.training.data import SplitTensors
from miam_explain.training.metrics import macro_auc, top_k_accuracy

__all__ = ["resolve_device", "paper_subsets", "load_subsets", "predict_subsets", "score", "evaluate_subsets"]


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


def paper_subsets(schema: TokenSchema) -> dict[str, list[str]]:
    """The paper-style subsets (Table 1), built from whatever the schema holds.

    * partial unimodal: the RGB bands of each image, the last five years of each
      time series, and the ``worldclim`` variable group;
    * unimodal: each modality alone;
    * bimodal: ``satellite`` (images and spectral series), ``environment``
      (tabular and non-spectral series) and ``timeseries`` (all series), when
      each holds at least two modalities;
    * ``all``.

    On GeoPlant-shaped data this gives 12 subsets. Subsets that the data cannot
    form are left out.
    """
    subsets: dict[str, list[str]] = {}
    groupings = set(schema.grouping_names)
    if "spectral_bands" in groupings and {"red", "green", "blue"} <= set(schema.members("spectral_bands")):
        subsets["rgb"] = ["spectral_bands:red", "spectral_bands:green", "spectral_bands:blue"]
    for layout in schema.layouts:
        if layout.kind == "timeseries":
            last = sorted(layout.years)[-5:]
            subsets[f"{layout.name}_last{len(last)}"] = [f"{layout.name}_years:{y}" for y in last]
    if "variable_groups" in groupings and "worldclim" in schema.members("variable_groups"):
        subsets["worldclim"] = ["variable_groups:worldclim"]
    for layout in schema.layouts:
        subsets[layout.name] = [f"modalities:{layout.name}"]
    satellite = [l.name for l in schema.layouts if l.kind == "image" or (l.kind == "timeseries" and l.channel_kind == "band")]
    environment = [l.name for l in schema.layouts if l.kind == "tabular" or (l.kind == "timeseries" and l.channel_kind != "band")]
    series = [l.name for l in schema.layouts if l.kind == "timeseries"]
    for name, members in (("satellite", satellite), ("environment", environment), ("timeseries", series)):
        if len(members) >= 2 and len(members) < len(schema.layouts):
            subsets[name] = [f"modalities:{m}" for m in members]
    subsets["all"] = ["all"]
    return subsets


def load_subsets(spec: str | os.PathLike | Mapping[str, Sequence[str]], schema: TokenSchema) -> dict[str, np.ndarray]:
    """Resolve subsets to token keep-vectors.

    Args:
        spec: ``"paper"``, a TOML file with a ``[subsets]`` table mapping names to lists of
            selectors, or such a mapping. An empty list is the empty subset (the model's prior).
        schema: Token schema used to resolve the selectors.

    Returns:
        ``{name: bool[T]}`` (True = visible).

    Raises:
        ConfigError: unreadable file or no ``[subsets]`` table.
        SchemaError: an unknown grouping or member in a selector.
    """
    if isinstance(spec, Mapping):
        table = spec
    elif str(spec) == "paper":
        table = paper_subsets(schema)
    else:
        path = Path(spec)
        data = read_toml(path, what="subsets file", hint="pass 'paper' or a TOML file with a [subsets] table")
        if not isinstance(data.get("subsets"), dict) or not data["subsets"]:
            raise ConfigError(f"subsets file {path.name} needs a [subsets] table: name = [\"grouping:member\", ...]")
        table = data["subsets"]
    out = {}
    for name, selectors in table.items():
        if isinstance(selectors, str):
            selectors = [selectors]
        if not isinstance(selectors, (list, tuple)):
            raise ConfigError(f"subset {name!r} must be a list of selectors such as [\"spectral_bands:red\"], got {selectors!r}")
        try:
            out[str(name)] = schema.keep_vector(list(selectors)) if selectors else np.zeros(schema.n_tokens, dtype=bool)
        except SchemaError as exc:
            raise SchemaError(f"subset {name!r}: {exc}") from None
    return out


@torch.no_grad()
def predict_subsets(
    model: MiamModel,
    data: SplitTensors,
    keeps: Mapping[str, np.ndarray | torch.Tensor],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Logits of every site for every subset.

    Returns:
        ``(logits, visible)``: ``{name: float[N, K]}`` on ``device`` and the mean number
        of visible tokens per site for each subset (after AND-ing with observed).
    """
    model.eval()
    device = torch.device(device)
    keep_vectors = {k: torch.as_tensor(np.asarray(v), dtype=torch.bool, device=device) for k, v in keeps.items()}
    chunks: dict[str, list[torch.Tensor]] = {k: [] for k in keeps}
    visible = {k: 0.0 for k in keeps}
    n = len(data)
    for start in tqdm(range(0, n, batch_size), desc="evaluate", unit="batch", disable=not progress):
        inputs, _ = data.batch(slice(start, start + batch_size), device)
        tokens, observed = model.tokenize(inputs)
        for name, vector in keep_vectors.items():
            keep = observed & vector[None, :]
            visible[name] += float(keep.sum())
            chunks[name].append(model.forward_collapsed(tokens, keep))
    return {k: torch.cat(v) for k, v in chunks.items()}, {k: v / max(n, 1) for k, v in visible.items()}


def score(logits: torch.Tensor, target: torch.Tensor, task: str) -> dict[str, float]:
    """``{"auc": …}`` (macro over species with both classes) or ``{"top1": …, "top5": …}``."""
    target = target.to(logits.device)
    if task == "multilabel":
        return {"auc": macro_auc(logits, target)}
    return {"top1": top_k_accuracy(logits, target, 1), "top5": top_k_accuracy(logits, target, 5)}


def evaluate_subsets(
    model: MiamModel,
    data: SplitTensors,
    keeps: Mapping[str, np.ndarray],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """One row per subset: the metric(s), the mean visible tokens per site, and the number of sites."""
    logits, visible = predict_subsets(model, data, keeps, batch_size=batch_size, device=device, progress=progress)
    rows = []
    for name in keeps:
        rows.append({"subset": name, **score(logits[name], data.target, data.task), "visible_tokens": visible[name], "sites": len(data)})
    return pd.DataFrame(rows)
