"""Games over a trained model: what drives a prediction (per site), what drives performance (per dataset).

Players are the members of a grouping of the token schema. A coalition
``keep: bool[C, P]`` becomes a token keep-mask: the tokens of the present
players, plus the *context* (tokens of no player: hidden with ``context="none"``,
visible with ``context="all"``), AND the tokens observed at each site. Only the
:class:`~miam_explain.runtime.engine.Engine` touches the model; a game turns the engine's
logits into values (:meth:`ModelGame.reduce`), chunk by chunk.

:class:`PerformanceGame` takes optional site weights ``float[R, N]``: its value is then the
metric under each weighting, so a spatial-block bootstrap is just a game with one row of
weights per resample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from miam_explain.data.format import text_values
from miam_explain.data.schema import GroupingsInput, Players, TokenSchema
from miam_explain.errors import ConfigError, DataError, SchemaError
from miam_explain.explain.game import as_coalition_array
from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.engine import Engine
from miam_explain.runtime.loading import model_and_data, resolve_device
from miam_explain.runtime.metrics import Metric, resolve_metric
from miam_explain.runtime.tensors import SplitTensors, load_split

__all__ = [
    "ModelGame",
    "PredictionGame",
    "PerformanceGame",
    "prediction_game",
    "performance_game",
    "players_of",
    "resolve_targets",
    "resolve_performance_targets",
    "check_auc_defined",
    "CONTEXTS",
    "OUTPUTS",
]

#: What the tokens of no player do: hidden (``none``) or visible (``all``).
CONTEXTS = ("none", "all")
#: What the prediction game reports per target.
OUTPUTS = ("probability", "logit")


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

    def reduce(self, logits: torch.Tensor) -> np.ndarray:
        """``float[c, N, K]`` logits of ``c`` coalitions -> their values ``float64[c, *value_shape]``."""
        raise NotImplementedError

    def __call__(self, coalitions) -> np.ndarray:
        keep = self.token_keep(coalitions)
        parts = [self.reduce(logits) for _, logits in self.engine.iter_logits(keep)]
        return np.concatenate(parts) if parts else np.zeros((0,))


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

    def reduce(self, logits: torch.Tensor) -> np.ndarray:
        if self.output == "logit":
            values = logits
        else:
            values = torch.sigmoid(logits) if self.data.task == "multilabel" else torch.softmax(logits, dim=-1)
        if self.target_index is None:
            values = values.sum(dim=-1, keepdim=True)
        else:
            values = values[..., torch.as_tensor(self.target_index, device=values.device)]
        return values.double().cpu().numpy()


@dataclass
class PerformanceGame(ModelGame):
    """A metric over all sites: ``bool[C, P] -> float64[C]``, ``float64[C, R]`` with site weights, and one
    value per species (``float64[C, K]`` or ``float64[C, R, K]``) with ``target_index``.

    Attributes:
        metric: The metric (:data:`~miam_explain.runtime.metrics.METRICS`): ``auc`` (macro over
            species with both classes), ``accuracy``, ``top5`` or ``neg_loss``.
        weights: ``float64[R, N]`` site weightings (e.g. bootstrap multiplicities), or ``None``
            for the plain metric.
        target_names: The ``K`` species of a per-species game (:func:`resolve_performance_targets`).
        target_index: Their label columns, or ``None`` for the one metric over every species.
    """

    metric: Metric | None = None
    weights: np.ndarray | None = None
    target_names: tuple[str, ...] = ()
    target_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metric is None:
            self.metric = resolve_metric("auto", self.data.task)
        self._target = self.data.target.to(self.engine.device)
        self._weights = None if self.weights is None else torch.as_tensor(self.weights, device=self.engine.device)
        self._columns = None
        if self.target_index is not None:
            if self.metric.per_target is None or self.data.task != "multilabel":
                raise ConfigError(f"metric {self.metric.name!r} has no per-species value on {self.data.task} data; "
                                  "per-species targets need multi-label data and metric auc or neg_loss")
            self._columns = torch.as_tensor(np.asarray(self.target_index, dtype=np.int64), device=self.engine.device)
            self._target = self._target[:, self._columns]

    @property
    def per_target(self) -> bool:
        """One value per species (``target_index`` set) rather than one metric over them all."""
        return self._columns is not None

    def reduce(self, logits: torch.Tensor) -> np.ndarray:
        if self.per_target:
            logits = logits[..., self._columns]
            if self._weights is None:
                return torch.stack([self.metric.per_target(row, self._target) for row in logits]).double().cpu().numpy()
            return torch.stack([self.metric.weighted_per_target(row, self._target, self._weights) for row in logits]).cpu().numpy()
        if self._weights is None:
            return np.asarray([self.metric.value(row, self._target) for row in logits], dtype=np.float64)
        return np.stack([self.metric.weighted(row, self._target, self._weights).cpu().numpy() for row in logits])


def resolve_performance_targets(target, species: Sequence[str], presences: np.ndarray | None, n_sites: int, *, metric: Metric,
                                task: str, split: str) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The species of a per-species performance game, or none for the one metric over them all.

    Args:
        target: ``auto`` (one metric over every species: no targets), ``all`` (every species the
            metric is defined for on the split), or species ids.
        species: The model's species ids, in output order.
        presences: ``int[K]`` presences of each species on the split (``None`` for classes).
        n_sites: Sites of the split.
        metric: The resolved metric.
        task: ``multilabel`` or ``multiclass``.
        split: The split, for messages.

    Returns:
        ``(names, label columns)``; ``((), None)`` for ``auto``.

    Raises:
        ConfigError: ``richness``, a metric or task without per-species values, an unknown species, or
            a species whose AUC is undefined on the split (no presence, or present everywhere).
        DataError: ``all`` where no species has an AUC on the split.

    Example:
        >>> from miam_explain.runtime.metrics import METRICS
        >>> resolve_performance_targets("all", ["a", "b", "c"], np.array([3, 0, 5]), 10, metric=METRICS["auc"],
        ...                             task="multilabel", split="test")
        (('a', 'c'), array([0, 2]))
    """
    if isinstance(target, str) and target == "auto":
        return (), None
    if isinstance(target, str) and target == "richness":
        raise ConfigError("target 'richness' is a prediction; the performance game takes --target all or species ids "
                          "(one metric per species), or none (one metric over every species)")
    if metric.per_target is None or task != "multilabel":
        raise ConfigError(f"per-species targets need multi-label data and metric auc or neg_loss, not {metric.name!r} "
                          f"on {task} data; drop --target for one metric over every species")
    presences = np.asarray(presences)
    defined = (presences > 0) & (presences < n_sites) if metric.name == "auc" else np.ones(len(species), dtype=bool)
    if isinstance(target, str) and target == "all":
        index = np.flatnonzero(defined)
        if index.size == 0:
            raise DataError(f"no species has both presences and absences in split {split!r}; its AUC is undefined, pass another --split")
        return tuple(str(species[i]) for i in index), index
    names, index = resolve_targets(target, species, task, "probability")
    undefined = [name for name, i in zip(names, index) if not defined[i]]
    if undefined:
        raise ConfigError(f"species {undefined[:5]} have no presence or no absence in split {split!r}, so their AUC is "
                          "undefined; drop them or use --target all (which keeps the species it is defined for)")
    return names, index


def resolve_targets(target, species: Sequence[str], task: str, output: str) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The targets of a prediction game: their names and output columns (``None`` for richness).

    Args:
        target: Species ids (one or a sequence), ``richness``, ``all`` or ``auto`` (``all`` for at
            most 8 outputs, else ``richness``).
        species: The model's species ids, in output order.
        task: ``multilabel`` or ``multiclass``.
        output: ``probability`` or ``logit``.

    Raises:
        ConfigError: an unknown species, or richness where it is undefined.
    """
    species = list(species)
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


def check_auc_defined(data: SplitTensors, split: str) -> None:
    """Refuse a split on which no species has both presences and absences (the AUC is undefined there)."""
    presences = data.target.sum(dim=0)
    if not bool(((presences > 0) & (presences < len(data))).any()):
        raise DataError(f"no species has both presences and absences in split {split!r}; AUC is undefined")


def players_of(schema: TokenSchema, group: str, groupings: GroupingsInput = None) -> Players:
    """The players of ``group``, once the user ``groupings`` (if any) are added to the model's schema.

    Args:
        schema: The model's token schema.
        group: A grouping name (built-in, or one of ``groupings``).
        groupings: User groupings, as :meth:`TokenSchema.with_groupings
            <miam_explain.data.schema.TokenSchema.with_groupings>` takes them; ``None`` for none.

    Returns:
        The players; a user grouping's ``definition`` is set.

    Raises:
        SchemaError: an unknown grouping (the message lists every grouping, the user ones too), a user
            grouping that is not valid, members that overlap, or a grouping without players.

    Example:
        >>> from miam_explain import load_model
        >>> schema = load_model(run_folder).schema
        >>> players_of(schema, "late", {"late": {"a": ["climate_years:2010..2014"], "b": ["climate_years:2015..2018"]}}).names
        ('a', 'b')
    """
    if groupings:
        schema = schema.with_groupings(groupings)
    players = schema.players(group)
    if players.n_players == 0:
        raise SchemaError(f"grouping {group!r} has no players in this data")
    return players


def _setup(model, data, *, group: str, groupings: GroupingsInput, split: str | None, sites, collapse: bool, device: str,
           progress: bool):
    model, ds = model_and_data(model, data, device=device)
    players = players_of(model.schema, group, groupings)
    split_data = load_split(ds, model.schema, split)
    if sites is not None:
        split_data = split_data.subset(sites, split=split)
    engine = Engine(model, split_data, device=resolve_device(device), collapse=collapse, progress=progress)
    return engine, players, split_data, list(text_values(ds["species"].values))


def prediction_game(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    groupings: GroupingsInput = None,
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
        group: Grouping whose members are the players (``spectral_bands``, ``years`` …, or one of ``groupings``).
        groupings: User groupings added to the model's schema (see :func:`players_of`).
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
    if output not in OUTPUTS:
        raise ConfigError(f"output {output!r} must be 'probability' or 'logit'")
    engine, players, split_data, species = _setup(
        model, data, group=group, groupings=groupings, split=split, sites=sites, collapse=collapse, device=device,
        progress=progress,
    )
    names, index = resolve_targets(target, species, split_data.task, output)
    return PredictionGame(engine, players, context, split_data, target_names=names, target_index=index, output=output)


def performance_game(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    groupings: GroupingsInput = None,
    split: str = "test",
    metric: str = "auto",
    target: str | Sequence[str] = "auto",
    context: str = "none",
    weights: np.ndarray | None = None,
    collapse: bool = True,
    device: str = "auto",
    progress: bool = False,
) -> PerformanceGame:
    """The dataset-level performance game: ``bool[C, P] -> float64[C]`` (a metric over all sites).

    ``metric="auto"`` is ``auc`` for multi-label data and ``accuracy`` for classes. With
    ``weights`` (``float[R, N]``, one row per weighting of the split's sites) the game gives
    ``float64[C, R]``. ``target="all"`` or species ids give one metric per species
    (``float64[C, K]``, or ``float64[C, R, K]`` with weights; :func:`resolve_performance_targets`).
    ``groupings`` adds user groupings to the model's schema (see :func:`players_of`).
    """
    engine, players, split_data, species = _setup(
        model, data, group=group, groupings=groupings, split=split, sites=None, collapse=collapse, device=device,
        progress=progress,
    )
    resolved = resolve_metric(metric, split_data.task)
    if resolved.name == "auc":
        check_auc_defined(split_data, split)
    names, index = resolve_performance_targets(target, species, split_data.presences, len(split_data), metric=resolved,
                                               task=split_data.task, split=split)
    return PerformanceGame(engine, players, context, split_data, metric=resolved, weights=weights, target_names=names,
                           target_index=index)
