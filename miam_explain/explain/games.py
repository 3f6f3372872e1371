"""Games over a trained model: what drives a prediction (per site), what drives performance (per dataset).

Players are the members of a grouping of the token schema. A coalition
``keep: bool[C, P]`` becomes a token keep-mask: the tokens of the present
players, plus the *context* (tokens of no player: hidden with ``context="none"``,
visible with ``context="all"``), AND the tokens observed at each site. Only the
:class:`~miam_explain.explain.engine.Engine` touches the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from miam_explain.data.format import text_values
from miam_explain.data.schema import Players
from miam_explain.errors import ConfigError, DataError, SchemaError
from miam_explain.explain.engine import Engine
from miam_explain.explain.game import as_coalition_array
from miam_explain.models.fusion import MiamModel
from miam_explain.training.api import model_and_data
from miam_explain.training.data import SplitTensors, load_split
from miam_explain.training.evaluation import resolve_device
from miam_explain.training.metrics import per_class_auc, top_k_accuracy

__all__ = ["ModelGame", "PredictionGame", "PerformanceGame", "prediction_game", "performance_game", "resolve_metric", "CONTEXTS", "METRICS"]

CONTEXTS = ("none", "all")
METRICS = ("auto", "auc", "accuracy", "top5", "neg_loss")


@dataclass
class ModelGame:
    """Shared part of the model games: players, context and the coalition -> token mapping.

    Attributes:
        engine: Evaluates token keep-masks for every site.
        players_spec: The players (names and token indices) of the grouping.
        context: ``"none"`` (tokens of no player hidden) or ``"all"`` (visible).
        data: The sites (targets, site ids and coordinates).
    """

    engine: Engine
    players_spec: Players
    context: str
    data: SplitTensors

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ConfigError(f"context {self.context!r} must be 'none' or 'all'")
        self._matrix = torch.as_tensor(self.players_spec.token_matrix(), device=self.engine.device)
        covered = torch.as_tensor(self.players_spec.covered(), device=self.engine.device)
        self._context = ~covered if self.context == "all" else torch.zeros_like(covered)
        self._n_evaluations = 0

    @property
    def players(self) -> tuple[str, ...]:
        """Player names (members of the grouping)."""
        return tuple(self.players_spec.names)

    @property
    def n_players(self) -> int:
        """Number of players ``P``."""
        return self.players_spec.n_players

    @property
    def n_evaluations(self) -> int:
        """Coalitions evaluated so far."""
        return self._n_evaluations

    def token_keep(self, coalitions) -> torch.Tensor:
        """``bool[C, P]`` coalitions -> ``bool[C, T]`` token keep-masks (before AND observed)."""
        keep = torch.as_tensor(as_coalition_array(coalitions, self.n_players), device=self.engine.device)
        self._n_evaluations += keep.shape[0]
        tokens = (keep.to(torch.float32) @ self._matrix.to(torch.float32)) > 0
        return tokens | self._context[None, :]


@dataclass
class PredictionGame(ModelGame):
    """Per-site model outputs: ``bool[C, P] -> float64[C, n_sites, n_targets]``.

    Attributes:
        target_names: Name of each output column (species ids, ``richness`` …).
        target_index: Output columns, or ``None`` for richness (the sum of probabilities).
        output: ``"probability"`` or ``"logit"``.
    """

    target_names: tuple[str, ...] = ()
    target_index: np.ndarray | None = None
    output: str = "probability"

    def __call__(self, coalitions) -> np.ndarray:
        logits = self.engine.logits(self.token_keep(coalitions))  # (C, N, K)
        task = self.data.task
        if self.output == "logit":
            values = logits
        else:
            values = torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=-1)
        if self.target_index is None:
            values = values.sum(dim=-1, keepdim=True)
        else:
            values = values[..., torch.as_tensor(self.target_index, device=values.device)]
        return values.double().cpu().numpy()


@dataclass
class PerformanceGame(ModelGame):
    """A metric over all sites: ``bool[C, P] -> float64[C]``.

    Attributes:
        metric: ``auc`` (macro over species with both classes), ``accuracy``, ``top5`` or
            ``neg_loss`` (minus the mean binary / categorical cross-entropy).
    """

    metric: str = "auc"

    def __call__(self, coalitions) -> np.ndarray:
        keep = self.token_keep(coalitions)
        n, k = self.engine.n_sites, self.engine.model.config.n_outputs
        per_call = max(1, (1 << 22) // max(n * k, 1))  # bound the (c, N, K) logits held at once
        target = self.data.target.to(self.engine.device)
        out = []
        for start in range(0, keep.shape[0], per_call):
            logits = self.engine.logits(keep[start : start + per_call])
            out.extend(self._metric(row, target) for row in logits)
        return np.asarray(out, dtype=np.float64)

    def _metric(self, logits: torch.Tensor, target: torch.Tensor) -> float:
        if self.metric == "auc":
            auc, valid = per_class_auc(logits, target)
            return float(auc[valid].mean())
        if self.metric == "accuracy":
            return top_k_accuracy(logits, target, 1)
        if self.metric == "top5":
            return top_k_accuracy(logits, target, 5)
        if self.data.task == "multilabel":
            return -float(F.binary_cross_entropy_with_logits(logits, target))
        return -float(F.cross_entropy(logits, target))


def _setup(model, data, *, group: str, split: str | None, sites, context: str, collapse: bool, device: str, progress: bool):
    model, ds = model_and_data(model, data, device=device)
    players = model.schema.players(group)
    if players.n_players == 0:
        raise SchemaError(f"grouping {group!r} has no players in this data")
    split_data = load_split(ds, model.schema, split)
    if sites is not None:
        split_data = split_data.subset(sites, split=split)
    engine = Engine(model, split_data, device=resolve_device(device), collapse=collapse, progress=progress)
    species = list(text_values(ds["species"].values))
    return model, engine, players, split_data, species


def _targets(target, species: list[str], task: str, output: str) -> tuple[tuple[str, ...], np.ndarray | None]:
    if isinstance(target, str) and target == "auto":
        if len(species) <= 8:
            target = "all"
        elif task == "multilabel":
            target = "richness"
        else:
            raise ConfigError(f"{len(species)} classes: pass --target with class names, or 'all'")
    if isinstance(target, str) and target == "richness":
        if task != "multilabel" or output != "probability":
            raise ConfigError("target 'richness' (the sum of species probabilities) needs multi-label data and output='probability'")
        return ("richness",), None
    if isinstance(target, str) and target == "all":
        return tuple(species), np.arange(len(species))
    ids = (str, int, np.integer)
    if isinstance(target, ids) and not isinstance(target, bool):
        wanted = [target]
    elif isinstance(target, (Sequence, np.ndarray)) and len(target) and all(isinstance(t, ids) and not isinstance(t, bool) for t in target):
        wanted = list(target)
    else:
        raise ConfigError(f"target {target!r} is not valid; pass species ids (a list of strings), 'richness', 'all' or 'auto'")
    names = [str(t) for t in wanted]
    unknown = [t for t in names if t not in species]
    if unknown:
        shown = ", ".join(species[:20]) + (f" … and {len(species) - 20} more" if len(species) > 20 else "")
        raise ConfigError(f"unknown target(s) {unknown}; use 'richness', 'all' or species from: {shown}")
    return tuple(names), np.array([species.index(t) for t in names], dtype=np.int64)


def resolve_metric(metric: str, task: str) -> str:
    """The performance metric ``metric`` means for a task (``auto``: ``auc`` for multi-label, else ``accuracy``).

    Raises:
        ConfigError: an unknown metric, or one that does not fit the task.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if metric == "auto":
        metric = "auc" if task == "multilabel" else "accuracy"
    if metric == "auc" and task != "multilabel":
        raise ConfigError("metric 'auc' needs multi-label data; use accuracy or top5")
    if metric in ("accuracy", "top5") and task != "multiclass":
        raise ConfigError(f"metric {metric!r} needs multi-class data; use auc or neg_loss")
    return metric


def prediction_game(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    split: str = "test",
    sites: Sequence[int] | None = None,
    target: str | Sequence[str] = "auto",
    output: str = "probability",
    context: str = "none",
    collapse: bool = True,
    device: str = "auto",
    progress: bool = False,
) -> PredictionGame:
    """The per-site prediction game.

    Args:
        model: Trained model or checkpoint path.
        data: Dataset or path; default the one recorded in the checkpoint.
        group: Grouping whose members are the players (``spectral_bands``, ``years`` …).
        split: Sites of this split (``all`` for every site).
        sites: Optional ``site_id`` values to restrict to.
        target: Species ids, ``richness`` (sum of probabilities), ``all``, or ``auto``
            (``all`` for at most 8 outputs, else ``richness``).
        output: ``probability`` or ``logit``.
        context: ``none`` (tokens of no player hidden) or ``all`` (visible).
        collapse: Use the exact collapsed forward.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: Show progress bars.

    Returns:
        A game mapping ``bool[C, P]`` to ``float64[C, n_sites, n_targets]``.
    """
    if output not in ("probability", "logit"):
        raise ConfigError(f"output {output!r} must be 'probability' or 'logit'")
    model, engine, players, split_data, species = _setup(
        model, data, group=group, split=split, sites=sites, context=context, collapse=collapse, device=device, progress=progress
    )
    names, index = _targets(target, species, split_data.task, output)
    return PredictionGame(engine, players, context, split_data, target_names=names, target_index=index, output=output)


def performance_game(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    split: str = "test",
    metric: str = "auto",
    context: str = "none",
    collapse: bool = True,
    device: str = "auto",
    progress: bool = False,
) -> PerformanceGame:
    """The dataset-level performance game: ``bool[C, P] -> float64[C]`` (a metric over all sites).

    ``metric="auto"`` is ``auc`` for multi-label data and ``accuracy`` for classes.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    model, engine, players, split_data, _ = _setup(
        model, data, group=group, split=split, sites=None, context=context, collapse=collapse, device=device, progress=progress
    )
    metric = resolve_metric(metric, split_data.task)
    if metric == "auc":
        presences = split_data.target.sum(dim=0)
        if not bool(((presences > 0) & (presences < len(split_data))).any()):
            raise DataError(f"no species has both presences and absences in split {split!r}; AUC is undefined")
    return PerformanceGame(engine, players, context, split_data, metric=metric)
