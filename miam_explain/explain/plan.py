"""Planning a Shapley run: the request resolved against the model and the data, once, before any work.

:func:`plan` loads the model and the dataset (checking that they fit), resolves the players of
the grouping, the sites, the targets or the metric, the estimator and its budget, and cuts the
work into chunks. Everything a chunk needs is in the plan's :class:`ChunkSpec`, which is small,
picklable and hashable, so a Dask worker can rebuild the game from it.

Example:
    >>> from miam_explain.explain.request import ShapleyRequest
    >>> the_plan = plan(ShapleyRequest(group="spectral_bands", device="cpu"), run_folder)
    >>> the_plan.players, the_plan.method, the_plan.n_chunks
    (('red', 'green', 'blue', 'nir'), 'exact', 1)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from miam_explain.data.format import read_values, select_split, text_values
from miam_explain.data.schema import Players, TokenSchema, player_coords
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.estimators import ESTIMATORS, choose_method
from miam_explain.explain.estimators.adjusted import MAX_ADJUSTED_VALUES
from miam_explain.explain.estimators.leverage import AUTO_PAIRS_PER_PLAYER
from miam_explain.explain.games import players_of, resolve_performance_targets, resolve_targets
from miam_explain.explain.request import DEFAULT_BUDGET, ShapleyRequest
from miam_explain.explain.result import data_attr, file_sha256, provenance_attrs
from miam_explain.models.checkpoint import data_fingerprint, resolve_checkpoint
from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.loading import model_and_data
from miam_explain.runtime.metrics import resolve_metric

__all__ = ["ChunkSpec", "Plan", "plan", "plan_estimator", "run_budget", "DEFAULT_SITE_CHUNK", "DEFAULT_COALITION_CHUNK"]

#: Sites per chunk of a chunked prediction game.
DEFAULT_SITE_CHUNK = 2048
#: Coalitions per chunk of a chunked performance game.
DEFAULT_COALITION_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class ChunkSpec:
    """Everything a chunk needs to rebuild the game of a run: small, picklable and hashable.

    Attributes:
        checkpoint: The ``.safetensors`` file (``""`` for a model given in memory).
        model_sha256: Its sha256 (a worker refuses a file that changed).
        data: The dataset path (``""`` for a dataset given in memory).
        group: Grouping whose members are the players.
        value: ``prediction`` or ``performance``.
        context: ``none`` or ``all``.
        collapse: Use the collapsed forward.
        device: ``auto``, ``cpu`` or ``cuda``, resolved where the chunk runs.
        split: The split (performance game; prediction chunks carry their sites).
        metric: The resolved metric (performance game).
        targets: The target names: of the prediction game, or the species of a per-species performance game.
        target_index: Their output columns; ``None`` for richness (prediction game) or for the one metric
            over every species (performance game).
        output: ``probability`` or ``logit`` (prediction game).
        method: The resolved estimator.
        budget: Model evaluations the user allowed, or ``None``.
        tol: Stopping tolerance of the sampling estimators.
        seed: Seed of the sampling estimators.
        interactions: Pairwise interaction indices (exact).
        n_sites: Sites of the whole run (the budget is shared out over them).
        budget_per_site: Coalitions per site the user allowed instead of ``budget``, or ``None``.
        progress: Show the estimator's progress bars (in-process runs only).
        groupings: The request's user groupings as JSON (``""`` for none), added to the model's
            schema where the chunk runs (:meth:`players`).
    """

    checkpoint: str
    model_sha256: str
    data: str
    group: str
    value: str
    context: str
    collapse: bool
    device: str
    split: str
    metric: str
    targets: tuple[str, ...]
    target_index: tuple[int, ...] | None
    output: str
    method: str
    budget: int | None
    tol: float | None
    seed: int
    interactions: bool
    n_sites: int
    progress: bool = False
    groupings: str = ""
    budget_per_site: int | None = None

    def players(self, schema: TokenSchema) -> Players:
        """The players of the run on ``schema`` (the model's), with the run's user groupings added."""
        return players_of(schema, self.group, json.loads(self.groupings) if self.groupings else None)


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A request resolved against a model and a dataset.

    Attributes:
        request: The request.
        spec: What each chunk needs.
        players: The ``P`` player names.
        player_coords: Their coordinates from the schema (:func:`~miam_explain.data.schema.player_coords`).
        positions: ``int64[N]`` positions along the dataset's ``site`` dim of the run's sites.
        sites: ``(site_id, lat, lon)`` of the prediction game's sites, else ``None``.
        coalitions: The estimator's coalition budget (``None`` for exact).
        chunk_size: Sites (prediction) or coalitions (performance) per chunk; ``None`` for whole calls.
        attrs: The result's provenance attrs.
        model: The loaded model (in-process runs compute with it).
        dataset: The opened dataset.
        target_coords: Coordinates along ``target``: ``presences`` on the split (per-species performance
            game) and ``species_name`` where the dataset names its species.
    """

    request: ShapleyRequest
    spec: ChunkSpec
    players: tuple[str, ...]
    player_coords: dict[str, np.ndarray]
    positions: np.ndarray
    sites: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    coalitions: int | None
    chunk_size: int | None
    attrs: dict
    model: MiamModel
    dataset: xr.Dataset
    target_coords: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def method(self) -> str:
        """The resolved estimator."""
        return self.spec.method

    @property
    def n_sites(self) -> int:
        """Sites of the run."""
        return self.spec.n_sites

    @property
    def n_chunks(self) -> int:
        """Chunks at the start: site chunks (prediction), or coalition chunks as first estimated (performance)."""
        if self.spec.value == "prediction":
            return math.ceil(self.n_sites / (self.chunk_size or max(self.n_sites, 1)))
        size = self.chunk_size or 1
        if self.method == "exact":
            return 1 + math.ceil(2 ** len(self.players) / size)
        return 1 + math.ceil((self.coalitions or 1) / size)

    def store_config(self) -> dict:
        """What a restart must repeat to reuse the chunks of a stored run (compared key by key)."""
        spec = self.spec
        config = {
            "model_sha256": spec.model_sha256, "data": str(Path(spec.data).resolve()),
            "data_fingerprint": data_fingerprint(self.dataset, self.model.schema), "value": spec.value,
            "group": spec.group, "players": list(self.players), "method": self.request.method, "budget": spec.budget,
            "tol": spec.tol, "seed": spec.seed, "context": spec.context, "split": spec.split, "collapse": spec.collapse,
            "chunk_size": self.chunk_size, "n_sites": spec.n_sites,
        }
        if spec.budget_per_site is not None:  # only when set: stores written before the option stay valid
            config["budget_per_site"] = spec.budget_per_site
        if self.attrs.get("grouping_definition"):  # a user grouping: the same names may hold other tokens
            config["grouping_definition"] = self.attrs["grouping_definition"]
        if spec.value == "prediction":
            ids = np.ascontiguousarray(self.sites[0], dtype=np.int64) if self.sites else np.zeros(0, dtype=np.int64)
            config.update({
                "target": "richness" if spec.target_index is None else list(spec.targets), "output": spec.output,
                "interactions": spec.interactions, "sites": "sha256:" + hashlib.sha256(ids.tobytes()).hexdigest(),
            })
        else:
            config.update({"metric": spec.metric, "interactions": spec.interactions})
            if spec.target_index is not None:  # only when set: stores written before per-species targets stay valid
                config["target"] = list(spec.targets)
        return config


def run_budget(n_players: int, n_sites: int, *, budget: int | None = None, budget_per_site: int | None = None) -> int:
    """The model evaluations a run may spend, one per (coalition, site).

    ``budget`` as given; else ``budget_per_site x n_sites``; else the default,
    ``max(DEFAULT_BUDGET, (2 + 16 P) x n_sites)``: 2,000,000 evaluations, raised where they buy fewer
    than the smallest design ``method="auto"`` trusts for sampling (leverage sampling with
    :data:`~miam_explain.explain.estimators.leverage.AUTO_PAIRS_PER_PLAYER` = 8 complementary pairs
    per player, ``2 + 16 P`` coalitions per site). Where 2,000,000 buys that design the default is
    unchanged, so ``auto`` stays exact whenever ``2^P x n_sites <= 2,000,000``.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on.
        budget: Model evaluations allowed, or ``None``.
        budget_per_site: Coalitions per site allowed, or ``None`` (not with ``budget``).

    Returns:
        The run's budget in model evaluations.

    Example:
        >>> run_budget(4, 13_000), run_budget(342, 13_000), run_budget(342, 13_000, budget_per_site=1000)
        (2000000, 71162000, 13000000)
    """
    if budget is not None:
        return budget
    if budget_per_site is not None:
        return budget_per_site * n_sites
    return max(DEFAULT_BUDGET, (2 + 2 * AUTO_PAIRS_PER_PLAYER * n_players) * n_sites)


def plan_estimator(
    n_players: int,
    n_sites: int,
    *,
    method: str = "auto",
    budget: int | None = None,
    budget_per_site: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    interactions: bool = False,
    progress: bool = False,
    n_values: int | None = None,
):
    """The estimator ``method`` resolves to, and the coalition budget to give its ``estimate``.

    ``budget`` counts model evaluations, one per (coalition, site); a sampling estimator gets
    ``budget // n_sites`` coalitions per site (see :func:`run_budget` for the default, and for
    ``budget_per_site``, which caps exact values as an explicit budget does). A chunked run calls
    this once per chunk with the run's total ``n_sites``, so every chunk gets the estimator (and
    the seed) of the single-process run.

    Args:
        n_players: ``P``.
        n_sites: Sites each coalition is evaluated on (all sites of the run).
        method: ``auto`` or a key of :data:`~miam_explain.explain.estimators.ESTIMATORS`.
        budget: Model evaluations allowed; ``None`` for the default (:func:`run_budget`).
        budget_per_site: Coalitions per site allowed instead of ``budget``, or ``None``.
        tol: Stopping tolerance of the sampling estimators.
        seed: Seed of the sampling estimators.
        interactions: Pairwise interaction indices (exact only).
        progress: Show the estimator's progress bar.
        n_values: Values per coalition of a game that has one value for the whole split (the
            performance game: 1, or its targets); ``None`` for one per site. ``auto`` then chooses
            as for a single site given the coalitions the budget buys, so that regression adjustment
            (:class:`~miam_explain.explain.estimators.AdjustedEstimator`) may serve a game of at most
            :data:`~miam_explain.explain.estimators.adjusted.MAX_ADJUSTED_VALUES` values.

    Returns:
        ``(estimator, coalitions)``: ``coalitions`` is ``None`` for exact.

    Raises:
        ConfigError: an unknown method, exact over its limits, or interactions with a sampling method.

    Example:
        >>> [plan_estimator(p, 13_000)[0].method for p in (4, 19, 342)]
        ['exact', 'leverage', 'leverage']
        >>> plan_estimator(19, 1_000)[0].method, plan_estimator(19, 1_000, n_values=1)[0].method  # a performance game
        ('leverage', 'adjusted')
        >>> plan_estimator(342, 13_000)[1], plan_estimator(342, 13_000, budget_per_site=700, method="permutation")[1]
        (5474, 700)
    """
    total = run_budget(n_players, n_sites, budget=budget, budget_per_site=budget_per_site)
    explicit = budget if budget_per_site is None else total
    if method != "auto":
        name = method
    elif n_values is not None and n_values <= MAX_ADJUSTED_VALUES:
        name = choose_method(n_players, 1, total // n_sites)  # one value per coalition, each costs n_sites evaluations
    else:
        name = choose_method(n_players, n_sites, total)
    if name not in ESTIMATORS:
        raise ConfigError(f"unknown method {method!r}; use one of auto, {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name].for_run(
        n_players=n_players, n_sites=n_sites, budget=explicit, total=total, seed=seed, tol=tol,
        interactions=interactions, progress=progress,
    )


def plan(request: ShapleyRequest, model: MiamModel | str | os.PathLike, data: xr.Dataset | str | os.PathLike | None = None) -> Plan:
    """Resolve a request against a model and a dataset.

    Args:
        request: The validated request.
        model: A loaded model, a checkpoint or a run folder (a path for chunked runs).
        data: A dataset or its path; ``None`` for the one recorded in the checkpoint.

    Raises:
        ConfigError: objects where a chunked run needs paths, an unknown estimator setting.
        SchemaError: an unknown grouping, one without players, user groupings that are not valid, or
            players that overlap.
        DataError: an empty split, or sites that are not in it.
        CheckpointError: a model that does not fit the data.
    """
    if request.chunked:
        if isinstance(model, MiamModel) or not isinstance(model, (str, os.PathLike)):
            raise ConfigError("a sharded or stored run needs the model as a checkpoint path (workers load it); pass the path, not a loaded model")
        if data is not None and not isinstance(data, (str, os.PathLike)):
            raise ConfigError("a sharded or stored run needs the dataset as a path (workers open it); pass the path, not a loaded Dataset")
    checkpoint = str(resolve_checkpoint(model)) if isinstance(model, (str, os.PathLike)) else getattr(model, "checkpoint_path", None)
    loaded, ds = model_and_data(checkpoint if checkpoint and request.chunked else model, data,
                                device="cpu" if request.sharded else request.device)
    players = players_of(loaded.schema, request.group, request.groupings)
    task = "multilabel" if "labels" in ds else "multiclass"
    positions, sites = _sites(ds, request)
    targets, index, metric = (), None, ""
    species = list(text_values(ds["species"].values))
    if request.value == "prediction":
        targets, found = resolve_targets(request.target, species, task, request.output)
    else:
        resolved = resolve_metric(request.metric, task)
        metric = resolved.name
        presences = np.asarray(ds["labels"].isel(site=positions).sum("site").values) if task == "multilabel" else None
        targets, found = resolve_performance_targets(request.target, species, presences, int(positions.size),
                                                     metric=resolved, task=task, split=request.split)
    index = None if found is None else tuple(int(i) for i in found)
    target_coords = _target_coords(ds, index, None if request.value == "prediction" else presences)
    n_sites = int(positions.size)
    estimator, coalitions = plan_estimator(
        players.n_players, n_sites, method=request.method, budget=request.budget, budget_per_site=request.budget_per_site,
        tol=request.tol, seed=request.seed, interactions=request.interactions,
        n_values=None if request.value == "prediction" else max(1, len(targets)),
    )
    if isinstance(data, (str, os.PathLike)):
        data_path = str(data)
    else:  # the checkpoint's dataset, or none for a Dataset in memory
        data_path = str(getattr(loaded, "meta", {}).get("data", {}).get("path", "")) if data is None else ""
    spec = ChunkSpec(
        checkpoint=checkpoint or "", model_sha256=file_sha256(checkpoint), data=data_path, group=request.group,
        value=request.value, context=request.context, collapse=request.collapse, device=request.device,
        split=request.split, metric=metric, targets=targets, target_index=index, output=request.output,
        method=estimator.method, budget=request.budget, tol=request.tol, seed=request.seed,
        interactions=request.interactions, n_sites=n_sites, progress=request.progress and not request.sharded,
        groupings=json.dumps(request.groupings) if request.groupings else "", budget_per_site=request.budget_per_site,
    )
    attrs = provenance_attrs(
        value=request.value, metric=request.output if request.value == "prediction" else metric, group=request.group,
        context=request.context, seed=request.seed, checkpoint=checkpoint, data=data_attr(data, loaded),
        split=request.split, tol=request.tol, n_sites=n_sites, grouping_definition=players.definition,
    )
    return Plan(
        request=request, spec=spec, players=tuple(players.names), player_coords=player_coords(loaded.schema, players),
        positions=positions, sites=sites,
        coalitions=coalitions, chunk_size=_chunk_size(request, n_sites), attrs=attrs, model=loaded, dataset=ds,
        target_coords=target_coords,
    )


def _target_coords(ds: xr.Dataset, index: tuple[int, ...] | None, presences: np.ndarray | None) -> dict[str, np.ndarray]:
    """Coordinates along ``target``: presences on the split (performance game) and the dataset's ``species_name``."""
    if index is None:
        return {}
    rows = np.asarray(index, dtype=np.int64)
    coords = {} if presences is None else {"presences": np.asarray(presences, dtype=np.int64)[rows]}
    if "species_name" in ds.variables and ds["species_name"].dims == ("species",):
        coords["species_name"] = np.asarray(text_values(ds["species_name"].values), dtype=object)[rows].astype(str)
    return coords


def _sites(ds: xr.Dataset, request: ShapleyRequest) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Positions of the run's sites along the dataset's ``site`` dim, and their coordinates (prediction game)."""
    indexed = ds.assign_coords(_position=("site", np.arange(ds.sizes["site"], dtype=np.int64)))
    part = select_split(indexed, request.split)
    positions = np.asarray(part["_position"].values, dtype=np.int64)
    if request.value != "prediction":
        return positions, None
    if request.sites is not None:
        where = {int(s): i for i, s in enumerate(np.asarray(read_values(part["site_id"])))}
        missing = [s for s in request.sites if s not in where]
        if missing:
            raise DataError(f"site_id(s) {missing[:5]} are not in split {request.split!r}; pick sites from that split")
        positions = positions[[where[s] for s in request.sites]]
    site_id, lat, lon = (np.asarray(read_values(ds[name]))[positions] for name in ("site_id", "lat", "lon"))
    return positions, (site_id, lat.astype(np.float64), lon.astype(np.float64))


def _chunk_size(request: ShapleyRequest, n_sites: int) -> int | None:
    """Sites or coalitions per chunk: the request's, the default of a chunked run, or everything at once."""
    if request.chunk_size is not None:
        return request.chunk_size
    if not request.chunked:
        return max(n_sites, 1) if request.value == "prediction" else None
    return DEFAULT_SITE_CHUNK if request.value == "prediction" else DEFAULT_COALITION_CHUNK
