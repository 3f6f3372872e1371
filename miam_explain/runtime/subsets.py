"""Subset evaluation: one model, many token subsets, one metric per subset (paper Table 1).

A *subset* is a union of selectors (``grouping:member``); its tokens are visible
(AND observed in the data) and every other token is replaced by the mask
embedding. The subsets are evaluated on the :class:`~miam_explain.runtime.engine.Engine`
(tokens computed once per site, collapsed forward) and scored with the metric registry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import xarray as xr

from miam_explain.data.format import text_values
from miam_explain.files import read_toml
from miam_explain.data.schema import GroupingsInput, TokenSchema
from miam_explain.errors import ConfigError, SchemaError
from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.engine import Engine
from miam_explain.runtime.loading import model_and_data, resolve_device
from miam_explain.runtime.metrics import METRICS, per_class_auc
from miam_explain.runtime.tensors import SplitTensors, load_split

__all__ = ["paper_subsets", "table1_subsets", "load_subsets", "subset_logits", "score", "evaluate_subsets", "evaluate"]




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


#: Column names of Table 1 for the GeoPlant modalities alone; other modalities keep their own name.
_TABLE1_NAMES = {"tabular": "Tabular", "landsat": "Landsat", "sentinel2": "Sentinel-2"}


def table1_subsets(schema: TokenSchema) -> dict[str, list[str]]:
    """The columns of the MIAM paper's Table 1 (GeoPlant), as far as the schema can form them.

    In Table 1 order: ``BIO1`` (one tabular variable), ``WorldClim`` (the bioclimatic group),
    ``Clim:<last year>`` and ``Clim:<first>-<last>`` (the last year and every year of the climate
    series: the climate modality alone), ``Center patch`` (every band of the central image patch),
    ``RGB``, each other modality alone (``Tabular``, ``Landsat``, ``Sentinel-2``), ``Satellite``
    (images and spectral series) and ``All``. A non-spectral series other than ``climate`` is
    named by its modality (``<name>:2018``). Columns the data cannot form are left out.
    :func:`paper_subsets` (``"paper"``) is the earlier, shorter table and stays as it was.

    Example:
        >>> from miam_explain.data.schema import ModalityLayout, TokenSchema
        >>> schema = TokenSchema([ModalityLayout("climate", "timeseries", (2, 3, 12), ("pr", "tas"), (2016, 2017, 2018)),
        ...                       ModalityLayout("tabular", "tabular", (2,), ("Bio1", "Elevation"))])
        >>> subsets = table1_subsets(schema)
        >>> list(subsets)
        ['BIO1', 'Clim:2018', 'Clim:2016-2018', 'Tabular', 'All']
        >>> subsets["Clim:2018"], subsets["Clim:2016-2018"]
        (['climate_years:2018'], ['modalities:climate'])
    """
    subsets: dict[str, list[str]] = {}
    groupings = set(schema.grouping_names)
    tabular = [l for l in schema.layouts if l.kind == "tabular"]
    bio1 = [v for l in tabular for v in l.labels if v.lower() == "bio1"]
    if bio1 and "variables" in groupings:
        subsets["BIO1"] = [f"variables:{bio1[0]}"]
    if "variable_groups" in groupings and "worldclim" in schema.members("variable_groups"):
        subsets["WorldClim"] = ["variable_groups:worldclim"]
    climate = [l for l in schema.layouts if l.kind == "timeseries" and l.channel_kind != "band"]
    for layout in climate:
        prefix = "Clim" if layout.name == "climate" or len(climate) == 1 else layout.name
        years = sorted(layout.years)
        subsets[f"{prefix}:{years[-1]}"] = [f"{layout.name}_years:{years[-1]}"]
        subsets[f"{prefix}:{years[0]}-{years[-1]}"] = [f"modalities:{layout.name}"]
    if "patches" in groupings:
        try:
            schema.keep_vector(["patches:center"])
            subsets["Center patch"] = ["patches:center"]
        except SchemaError:
            pass
    if "spectral_bands" in groupings and {"red", "green", "blue"} <= set(schema.members("spectral_bands")):
        subsets["RGB"] = ["spectral_bands:red", "spectral_bands:green", "spectral_bands:blue"]
    for layout in sorted(schema.layouts, key=lambda l: l.kind != "tabular"):  # Table 1 starts with the tabular
        if layout not in climate:
            subsets[_TABLE1_NAMES.get(layout.name, layout.name)] = [f"modalities:{layout.name}"]
    satellite = [l.name for l in schema.layouts if l.kind == "image" or (l.kind == "timeseries" and l.channel_kind == "band")]
    if 2 <= len(satellite) < len(schema.layouts):
        subsets["Satellite"] = [f"modalities:{m}" for m in satellite]
    subsets["All"] = ["all"]
    return subsets


def load_subsets(spec: str | os.PathLike | Mapping[str, Sequence[str]], schema: TokenSchema) -> dict[str, np.ndarray]:
    """Resolve subsets to token keep-vectors.

    Args:
        spec: ``"paper"`` (:func:`paper_subsets`), ``"table1"`` (:func:`table1_subsets`), a TOML file
            with a ``[subsets]`` table mapping names to lists of selectors, or such a mapping. An empty list is the empty subset (the model's prior).
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
    elif str(spec) == "table1":
        table = table1_subsets(schema)
    else:
        path = Path(spec)
        data = read_toml(path, what="subsets file", hint="pass 'paper', 'table1' or a TOML file with a [subsets] table")
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


def subset_logits(
    model: MiamModel,
    data: SplitTensors,
    keeps: Mapping[str, np.ndarray | torch.Tensor],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Logits of every site for every subset, evaluated on the engine.

    Args:
        model: The model (left in eval mode).
        data: The sites.
        keeps: ``{name: bool[T]}`` subsets (True = visible).
        batch_size: Sites per tokenizer batch.
        device: Where to compute.
        progress: Show a progress bar.

    Returns:
        ``(logits, visible)``: ``{name: float[N, K]}`` on ``device`` and the mean number
        of visible tokens per site for each subset (after AND-ing with observed).
    """
    engine = Engine(model, data, device=torch.device(device), tokenize_batch=batch_size, progress=progress)
    keep = torch.stack([torch.as_tensor(np.asarray(v), dtype=torch.bool) for v in keeps.values()]).to(engine.device)
    # one subset per forward: its rows share the collapsed forward's buckets only with each other, so a subset's
    # logits do not depend (in the last bits) on which other subsets the table holds
    logits = [engine.logits(keep[i : i + 1])[0] for i in range(keep.shape[0])]
    visible = (keep[:, None, :] & engine.observed[None]).sum(-1).double().sum(-1) / max(len(data), 1)
    return dict(zip(keeps, logits)), dict(zip(keeps, visible.tolist()))


#: The columns of a subset table, per task: ``{column: metric name}``.
TABLE_METRICS = {"multilabel": {"auc": "auc"}, "multiclass": {"top1": "accuracy", "top5": "top5"}}


def score(logits: torch.Tensor, target: torch.Tensor, task: str) -> dict[str, float]:
    """``{"auc": …}`` (macro over species with both classes) or ``{"top1": …, "top5": …}``."""
    target = target.to(logits.device)
    return {column: METRICS[name].value(logits, target) for column, name in TABLE_METRICS[task].items()}


def evaluate_subsets(
    model: MiamModel,
    data: SplitTensors,
    keeps: Mapping[str, np.ndarray],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = False,
    species: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per subset: the metric(s), the mean visible tokens per site, and the number of sites.

    With ``species`` (the ids of the label columns; multi-label data), one row per (subset, species)
    instead: ``subset``, ``species``, ``auc`` (NaN where the species lacks presences or absences),
    ``presences`` and ``sites``.
    """
    logits, visible = subset_logits(model, data, keeps, batch_size=batch_size, device=device, progress=progress)
    if species is not None:
        if data.task != "multilabel":
            raise ConfigError("per-species scores need multi-label data (presence/absence per species)")
        presences = data.target.sum(dim=0).cpu().numpy().astype(np.int64)
        frames = [pd.DataFrame({"subset": name, "species": [str(s) for s in species],
                                "auc": per_class_auc(logits[name], data.target.to(logits[name].device))[0].cpu().numpy(),
                                "presences": presences, "sites": len(data)}) for name in keeps]
        return pd.concat(frames, ignore_index=True)
    rows = []
    for name in keeps:
        rows.append({"subset": name, **score(logits[name], data.target, data.task), "visible_tokens": visible[name], "sites": len(data)})
    return pd.DataFrame(rows)


def evaluate(
    model: str | os.PathLike | MiamModel,
    *,
    data: str | os.PathLike | xr.Dataset | None = None,
    split: str = "test",
    subsets: str | os.PathLike | Mapping[str, Sequence[str]] = "paper",
    groupings: GroupingsInput = None,
    device: str = "auto",
    batch_size: int = 512,
    progress: bool = False,
    per_species: bool = False,
) -> pd.DataFrame:
    """Evaluate a model on token subsets of one split (see :func:`paper_subsets`).

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset or path (``None``: the one recorded in the checkpoint).
        split: Sites of this split (``all`` for every site).
        subsets: ``"paper"``, ``"table1"`` (the paper's Table 1 columns), a TOML file with a ``[subsets]``
            table, or the mapping (see :func:`load_subsets`).
        groupings: User groupings added to the model's schema first (a TOML path, TOML text or a
            mapping; see :meth:`~miam_explain.data.schema.TokenSchema.with_groupings`), so that
            subsets may name them (``heat_windows:2000-2004``).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: Sites per tokenizer batch.
        progress: Show a progress bar.
        per_species: One AUC per species and subset instead of the macro AUC (multi-label data).

    Returns:
        One row per subset: ``subset``, the metric (``auc`` or ``top1``/``top5``),
        ``visible_tokens`` (mean per site) and ``sites``. With ``per_species``, one row per
        (subset, species): ``subset``, ``species``, ``auc`` (NaN where undefined), ``presences``, ``sites``;
        the macro AUC is the mean of a subset's defined ``auc`` values.

    Raises:
        ConfigError: an unreadable subsets or groupings file.
        SchemaError: an unknown grouping or member in a subset, or user groupings that are not valid.

    Example:
        >>> windows = {"windows": {"early": ["climate_years:2000..2009"], "late": ["climate_years:2010..2018"]}}
        >>> table = evaluate(run_folder, subsets={"late": ["windows:late"]}, groupings=windows, device="cpu")
        >>> table["subset"].tolist(), int(table["visible_tokens"].round().iloc[0]) <= 36
        (['late'], True)
    """
    model, ds = model_and_data(model, data, device=device)
    schema = model.schema.with_groupings(groupings) if groupings else model.schema
    keeps = load_subsets(subsets, schema)
    split_data = load_split(ds, model.schema, split)
    species = list(text_values(ds["species"].values)) if per_species else None
    return evaluate_subsets(model, split_data, keeps, batch_size=batch_size, device=resolve_device(device), progress=progress,
                            species=species)
