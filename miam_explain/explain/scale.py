"""Scale-out of the explain engine: chunks sharded over a Dask cluster, streamed into a resumable store.

* **Prediction game.** The sites are cut into chunks of ``chunk_size`` sites (fixed, never
  derived from the number of workers). A chunk is an independent Shapley problem: its
  worker builds the game on those sites and runs the estimator, with the seed and the
  coalition budget of the whole run, so a chunk draws the permutations (or subsets) the
  single-process run draws and the assembled result equals it.
* **Performance game.** The metric needs every site at once, so the coalitions are
  sharded instead. The estimator runs here, on the client, and draws its coalitions from
  the seed; its game (:class:`ShardedPerformanceGame`) cuts every batch into chunks of
  ``chunk_size`` coalitions, each evaluated on every site by a worker. For the exact
  method the gathered values are the ``2^P`` table.

Each worker process loads the model once (a cache keyed by checkpoint path and sha256)
and picks its own device. Results stream into a :class:`~miam_explain.explain.store.ResultStore`
chunk by chunk; a rerun with the same configuration reuses every chunk already written.
Without a cluster (``scheduler`` and ``workers`` unset) the chunks run in this process,
through the same functions, so long local runs resume too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.format import open_dataset, read_values, select_split, text_values
from miam_explain.errors import CheckpointError, ConfigError, DataError, SchemaError
from miam_explain.explain.api import (
    _sha256,
    data_attr,
    estimate_attrs,
    plan_estimator,
    provenance_attrs,
    result_dataset,
    to_dataset,
)
from miam_explain.explain.game import as_coalition_array
from miam_explain.explain.games import CONTEXTS, _targets, performance_game, prediction_game, resolve_metric
from miam_explain.explain.store import COUNT, DONE, FLAG, HASH, ArraySpec, ResultStore, coalition_hash
from miam_explain.models.checkpoint import check_fits, data_fingerprint, load_model, resolve_checkpoint
from miam_explain.models.fusion import MiamModel
from miam_explain.training.data import _site_ids
from miam_explain.training.evaluation import resolve_device

__all__ = [
    "ShardSpec",
    "ShardedPerformanceGame",
    "sharded_shapley",
    "prediction_chunk",
    "performance_chunk",
    "worker_stats",
    "DEFAULT_SITE_CHUNK",
    "DEFAULT_COALITION_CHUNK",
]

log = logging.getLogger(__name__)

#: Sites per chunk of the prediction game.
DEFAULT_SITE_CHUNK = 2048
#: Coalitions per chunk of the performance game.
DEFAULT_COALITION_CHUNK = 32


@dataclass(frozen=True)
class ShardSpec:
    """Everything a worker needs to rebuild the game of a run: small, picklable and hashable.

    Attributes:
        checkpoint: The ``.safetensors`` file.
        model_sha256: Its sha256 (a worker refuses a file that changed).
        data: The dataset path.
        group: Grouping whose members are the players.
        value: ``prediction`` or ``performance``.
        context: ``none`` or ``all``.
        collapse: Use the collapsed forward.
        device: ``auto``, ``cpu`` or ``cuda``, resolved on each worker.
        split: The split (performance game; prediction chunks carry their sites).
        metric: The resolved metric (performance game).
        target: ``"richness"`` or the target names (prediction game).
        output: ``probability`` or ``logit`` (prediction game).
        method: The requested method (resolved again, identically, per chunk).
        budget: Model evaluations of the whole run, or ``None``.
        tol: Stopping tolerance of the sampling estimators.
        seed: Seed of the sampling estimators.
        interactions: Pairwise interaction indices (exact).
        n_sites: Sites of the whole run (the budget is shared out over them).
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
    target: str | tuple[str, ...]
    output: str
    method: str
    budget: int | None
    tol: float | None
    seed: int
    interactions: bool
    n_sites: int


# ----------------------------------------------------------------------------------------------------------------------
# worker side: one model (and one dataset, one performance game) per worker process

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str], MiamModel] = {}
_DATASETS: dict[str, xr.Dataset] = {}
_GAMES: dict[ShardSpec, object] = {}
_STATS: Counter = Counter()


def worker_stats() -> dict[str, float]:
    """This process's counters: ``model_loads``, ``prediction_chunks``, ``performance_chunks``, and
    ``chunk_seconds`` (time spent computing chunks). Gather them with ``client.run(worker_stats)``."""
    return dict(_STATS)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model(spec: ShardSpec) -> MiamModel:
    """The run's model on this process's device, loaded once per (checkpoint path, sha256, device)."""
    key = (spec.checkpoint, spec.model_sha256, spec.device)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            if _file_sha256(spec.checkpoint) != spec.model_sha256:
                raise CheckpointError(
                    f"checkpoint {spec.checkpoint!r} changed since the run started (sha256 differs); "
                    "restore it, or start again with --overwrite"
                )
            model = load_model(spec.checkpoint, device=resolve_device(spec.device))
            _MODELS.clear()  # one model per worker: a long-lived cluster does not accumulate them
            _MODELS[key] = model
            _STATS["model_loads"] += 1
        return model


@contextlib.contextmanager
def _local_reads() -> Iterator[None]:
    """Read lazy (dask-backed) data in this thread.

    Inside a Dask task, a ``.values`` of a lazy array would otherwise be sent back to the
    cluster, whose single-threaded workers are all busy with chunks: a deadlock.
    """
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


def _dataset(path: str) -> xr.Dataset:
    with _LOCK:
        ds = _DATASETS.get(path)
        if ds is None:
            ds = open_dataset(path)
            _DATASETS.clear()
            _DATASETS[path] = ds
        return ds


def prediction_chunk(spec: ShardSpec, positions: np.ndarray) -> tuple[dict[str, np.ndarray], int, bool]:
    """Shapley values of the prediction game on some sites (runs on a worker).

    Args:
        spec: The run.
        positions: ``int64[n]`` positions of the chunk's sites along the dataset's ``site`` dim.

    Returns:
        ``(arrays, n_evaluations, converged)``; ``arrays`` in the result layout:
        ``shapley``, ``shapley_se`` (and ``banzhaf`` when exact) ``float64[n, P, K]``,
        ``v_empty``, ``v_full`` ``float64[n, K]``, ``interaction`` ``float64[n, P, P, K]`` when asked for.
    """
    start = time.perf_counter()
    with _local_reads():
        model = _model(spec)
        part = _dataset(spec.data).isel(site=np.asarray(positions, dtype=np.int64))
        game = prediction_game(
            model, part, group=spec.group, split="all", target=spec.target, output=spec.output,
            context=spec.context, collapse=spec.collapse, device=spec.device,
        )
    estimator, coalitions = plan_estimator(
        game.n_players, spec.n_sites, method=spec.method, budget=spec.budget, tol=spec.tol, seed=spec.seed,
        interactions=spec.interactions,
    )
    result = estimator.estimate(game, budget=coalitions)
    arrays = {
        "shapley": np.moveaxis(result.values, 0, 1),
        "shapley_se": np.moveaxis(result.se, 0, 1),
        "v_empty": result.v_empty,
        "v_full": result.v_full,
    }
    if result.banzhaf is not None:
        arrays["banzhaf"] = np.moveaxis(result.banzhaf, 0, 1)
    if result.interactions is not None:
        arrays["interaction"] = np.moveaxis(result.interactions, 2, 0)
    _STATS["prediction_chunks"] += 1
    _STATS["chunk_seconds"] += time.perf_counter() - start
    return arrays, int(result.n_evaluations), bool(result.converged)


def performance_chunk(spec: ShardSpec, keep: np.ndarray) -> np.ndarray:
    """The metric over every site of the split for some coalitions (runs on a worker).

    Args:
        spec: The run.
        keep: ``bool[c, P]`` coalitions.

    Returns:
        ``float64[c]`` metric values.
    """
    start = time.perf_counter()
    with _LOCK:
        game = _GAMES.get(spec)
    if game is None:
        with _local_reads():
            game = performance_game(
                _model(spec), _dataset(spec.data), group=spec.group, split=spec.split, metric=spec.metric,
                context=spec.context, collapse=spec.collapse, device=spec.device,
            )
        with _LOCK:
            _GAMES.clear()
            _GAMES[spec] = game
    values = game(keep)
    _STATS["performance_chunks"] += 1
    _STATS["chunk_seconds"] += time.perf_counter() - start
    return values


# ----------------------------------------------------------------------------------------------------------------------
# executors: where the chunks run


class _LocalExecutor:
    """Runs chunks one after the other in this process."""

    def run(self, fn: Callable, tasks: Iterable[tuple[int, tuple]]) -> Iterator[tuple[int, object]]:
        for key, args in tasks:
            yield key, fn(*args)


class _DaskExecutor:
    """Runs chunks on a Dask cluster and yields them as they finish."""

    def __init__(self, client) -> None:
        self.client = client

    def run(self, fn: Callable, tasks: Iterable[tuple[int, tuple]]) -> Iterator[tuple[int, object]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        futures = {}
        try:
            for key, args in tasks:
                futures[self.client.submit(fn, *args, pure=False)] = key
            for future, result in as_completed(futures, with_results=True):
                yield futures[future], result
                future.release()
        except KilledWorker as exc:
            raise ConfigError(
                f"workers died repeatedly running a chunk ({exc}); out of memory? lower --chunk-size or give the "
                "workers more memory, then rerun the same command to resume"
            ) from None
        finally:
            self.client.cancel(list(futures))


@contextlib.contextmanager
def _environ_restored() -> Iterator[None]:
    """Undo what a LocalCluster's nannies write into this process's environment.

    They set ``OMP_NUM_THREADS=1`` (and MKL's, OpenBLAS's) in ``os.environ`` before spawning
    workers and leave it there, which would make every later subprocess single-threaded.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


@contextlib.contextmanager
def _executor(scheduler: str | None, workers: int | None) -> Iterator[_LocalExecutor | _DaskExecutor]:
    """This process, a LocalCluster of ``workers`` processes, or the cluster of ``scheduler``."""
    if scheduler is None and workers is None:
        try:
            yield _LocalExecutor()
        finally:  # this process is no long-lived worker: free the model, dataset and game
            with _LOCK:
                _MODELS.clear()
                _DATASETS.clear()
                _GAMES.clear()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--scheduler and --workers need dask.distributed; pip install distributed") from None
    with contextlib.ExitStack() as stack:
        if workers is not None:
            stack.enter_context(_environ_restored())
            cluster = stack.enter_context(
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, silence_logs=logging.ERROR)
            )
            client = stack.enter_context(Client(cluster))
            log.info("started a local Dask cluster of %d workers; dashboard %s", workers, client.dashboard_link)
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {scheduler!r} ({reason}); start one with 'dask scheduler' "
                    "or use --workers N for a local cluster"
                ) from None
        yield _DaskExecutor(client)


# ----------------------------------------------------------------------------------------------------------------------
# the performance game, sharded over coalition chunks


class ShardedPerformanceGame:
    """The performance game with every call cut into coalition chunks that workers evaluate.

    It keeps the game contract (``bool[C, P] -> float64[C]``), so the estimators run on it
    unchanged. The chunks of every call are numbered in call order; a chunk already in the
    store (the same coalitions, checked by hash) is read back instead of computed, so a
    rerun replays the estimator from its seed and recomputes only what is missing.

    Args:
        spec: The run.
        players: The player names.
        store: Where chunks stream to.
        executor: Where chunks run.
        chunk_size: Coalitions per chunk.
        progress: Show a progress bar per call.
    """

    def __init__(self, spec: ShardSpec, players: Sequence[str], *, store: ResultStore, executor, chunk_size: int, progress: bool) -> None:
        self.spec = spec
        self._players = tuple(players)
        self.store = store
        self.executor = executor
        self.chunk_size = chunk_size
        self.progress = progress
        self._next_chunk = 0
        self._n_evaluations = 0
        self.reused = 0
        self.computed = 0

    @property
    def players(self) -> tuple[str, ...]:
        """Player names."""
        return self._players

    @property
    def n_players(self) -> int:
        """Number of players ``P``."""
        return len(self._players)

    @property
    def n_evaluations(self) -> int:
        """Coalitions evaluated so far."""
        return self._n_evaluations

    def __call__(self, coalitions) -> np.ndarray:
        keep = as_coalition_array(coalitions, self.n_players)
        starts = range(0, keep.shape[0], self.chunk_size)
        first = self._next_chunk
        self._next_chunk += len(starts)
        self.store.grow(self._next_chunk)
        out: list[np.ndarray | None] = [None] * len(starts)
        todo = []
        for slot, start in enumerate(starts):
            rows = keep[start : start + self.chunk_size]
            index, digest = first + slot, coalition_hash(rows)
            record = self.store.record(index)
            if record[DONE]:
                if record[HASH] != digest or record[COUNT] != rows.shape[0]:
                    raise ConfigError(
                        f"chunk {index} of store {str(self.store.path)!r} holds other coalitions than this run asks for; "
                        "the store is damaged, pass --overwrite to start again"
                    )
                out[slot] = self.store.read("values", index)[: rows.shape[0]]
                self.reused += 1
            else:
                todo.append((slot, rows, digest))
        tasks = ((slot, (self.spec, rows)) for slot, rows, _ in todo)
        digests = {slot: digest for slot, _, digest in todo}
        with tqdm(total=len(todo), desc="coalition chunks", unit="chunk", disable=not self.progress or not todo, leave=False) as bar:
            for slot, values in self.executor.run(performance_chunk, tasks):
                values = np.asarray(values, dtype=np.float64)
                padded = np.full(self.chunk_size, np.nan)
                padded[: values.shape[0]] = values
                self.store.write(first + slot, {"values": (first + slot, padded)}, (values.shape[0], 0, digests[slot]))
                out[slot] = values
                self.computed += 1
                bar.update()
        self._n_evaluations += keep.shape[0]
        return np.concatenate(out) if out else np.zeros(0)


# ----------------------------------------------------------------------------------------------------------------------
# planning (client side)


@dataclass(frozen=True)
class _Plan:
    spec: ShardSpec
    players: tuple[str, ...]
    positions: np.ndarray  # prediction: int64[N] positions along the dataset's site dim
    sites: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (site_id, lat, lon)
    coalitions: int | None  # the estimator's coalition budget
    resolved_method: str
    metric_name: str
    attrs: dict
    data_fingerprint: str


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _plan(
    model, data, *, group, value, method, budget, tol, seed, context, target, output, metric, interactions, split,
    sites, collapse, device,
) -> _Plan:
    if isinstance(model, MiamModel) or not isinstance(model, (str, os.PathLike)):
        raise ConfigError("a sharded or stored run needs the model as a checkpoint path (workers load it); pass the path, not a loaded model")
    if data is not None and not isinstance(data, (str, os.PathLike)):
        raise ConfigError("a sharded or stored run needs the dataset as a path (workers open it); pass the path, not a loaded Dataset")
    # checked here, before any worker starts (the workers check them again when they build the game)
    if context not in CONTEXTS:
        raise ConfigError(f"context {context!r} must be 'none' or 'all'")
    if value == "prediction" and output not in ("probability", "logit"):
        raise ConfigError(f"output {output!r} must be 'probability' or 'logit'")
    if not isinstance(device, str) or not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda (resolved on each worker)")
    checkpoint = str(resolve_checkpoint(model))
    planning = load_model(checkpoint, device="cpu")
    data_path = data if data is not None else getattr(planning, "meta", {}).get("data", {}).get("path")
    if not data_path:
        raise CheckpointError("the checkpoint records no dataset; pass --data")
    ds = open_dataset(data_path)
    check_fits(planning, ds)
    players = planning.schema.players(group)
    if players.n_players == 0:
        raise SchemaError(f"grouping {group!r} has no players in this data")
    task = "multilabel" if "labels" in ds else "multiclass"
    indexed = ds.assign_coords(_position=("site", np.arange(ds.sizes["site"], dtype=np.int64)))
    part = select_split(indexed, split)
    positions = np.asarray(part["_position"].values, dtype=np.int64)
    site_ids = np.asarray(read_values(part["site_id"]))
    target_spec: str | tuple[str, ...] = ""
    site_coords = None
    if value == "prediction":
        names, index = _targets(target, list(text_values(ds["species"].values)), task, output)
        target_spec = "richness" if index is None else tuple(names)
        if sites is not None:
            wanted = _site_ids(sites)
            where = {int(s): i for i, s in enumerate(site_ids)}
            missing = [s for s in wanted if s not in where]
            if missing:
                raise DataError(f"site_id(s) {missing[:5]} are not in split {split!r}; pick sites from that split")
            positions = positions[[where[s] for s in wanted]]
        site_coords = tuple(
            np.asarray(read_values(ds[name]))[positions] for name in ("site_id", "lat", "lon")
        )
        site_coords = (site_coords[0], site_coords[1].astype(np.float64), site_coords[2].astype(np.float64))
        metric_name = output
    else:
        if sites is not None:
            raise ConfigError("--sites applies to the prediction game; the performance game uses every site of the split")
        metric_name = resolve_metric(metric, task)
    n_sites = int(positions.size)
    estimator, coalitions = plan_estimator(
        players.n_players, n_sites, method=method, budget=budget, tol=tol, seed=seed, interactions=interactions
    )
    spec = ShardSpec(
        checkpoint=checkpoint, model_sha256=_sha256(checkpoint), data=str(data_path), group=group, value=value,
        context=context, collapse=bool(collapse), device=device, split=str(split), metric=metric_name if value == "performance" else "",
        target=target_spec, output=output, method=method, budget=budget, tol=tol, seed=int(seed),
        interactions=bool(interactions), n_sites=n_sites,
    )
    attrs = provenance_attrs(
        value=value, metric=metric_name, group=group, context=context, seed=seed, checkpoint=checkpoint,
        data=data_attr(data, planning), split=split, tol=tol, n_sites=n_sites,
    )
    return _Plan(
        spec=spec, players=tuple(players.names), positions=positions, sites=site_coords, coalitions=coalitions,
        resolved_method=estimator.method, metric_name=metric_name, attrs=attrs,
        data_fingerprint=data_fingerprint(ds, planning.schema),
    )


def _store_config(plan: _Plan, chunk_size: int) -> dict:
    """What a restart must repeat to reuse the chunks (compared key by key)."""
    spec = plan.spec
    config = {
        "model_sha256": spec.model_sha256,
        "data": str(Path(spec.data).resolve()),
        "data_fingerprint": plan.data_fingerprint,
        "value": spec.value,
        "group": spec.group,
        "players": list(plan.players),
        "method": spec.method,
        "budget": spec.budget,
        "tol": spec.tol,
        "seed": spec.seed,
        "context": spec.context,
        "split": spec.split,
        "collapse": spec.collapse,
        "chunk_size": chunk_size,
        "n_sites": spec.n_sites,
    }
    if spec.value == "prediction":
        ids = np.ascontiguousarray(plan.sites[0], dtype=np.int64) if plan.sites else np.zeros(0, dtype=np.int64)
        config.update(
            {
                "target": spec.target if isinstance(spec.target, str) else list(spec.target),
                "output": spec.output,
                "interactions": spec.interactions,
                "sites": "sha256:" + hashlib.sha256(ids.tobytes()).hexdigest(),
            }
        )
    else:
        config.update({"metric": spec.metric, "interactions": spec.interactions})
    return config


# ----------------------------------------------------------------------------------------------------------------------
# the runs


def _prediction_arrays(plan: _Plan, chunk_size: int) -> dict[str, ArraySpec]:
    n, p = plan.spec.n_sites, len(plan.players)
    k = 1 if isinstance(plan.spec.target, str) else len(plan.spec.target)
    per_player = ArraySpec((n, p, k), chunk_size, ("site", "player", "target"))
    per_value = ArraySpec((n, k), chunk_size, ("site", "target"))
    arrays = {"shapley": per_player, "shapley_se": per_player, "v_empty": per_value, "v_full": per_value}
    if plan.resolved_method == "exact":
        arrays["banzhaf"] = per_player
    if plan.spec.interactions:
        arrays["interaction"] = ArraySpec((n, p, p, k), chunk_size, ("site", "player", "player_j", "target"))
    return arrays


def _run_prediction(plan: _Plan, store: ResultStore, executor, *, chunk_size: int, progress: bool) -> xr.Dataset:
    import dask.array as da

    n_chunks = store.n_chunks
    done = store.records()[:, DONE].astype(bool)
    todo = [index for index in range(n_chunks) if not done[index]]
    log.info("store %s: %d chunks of %d sites, %d already written, %d to compute", store.path, n_chunks, chunk_size, n_chunks - len(todo), len(todo))
    tasks = ((index, (plan.spec, plan.positions[index * chunk_size : (index + 1) * chunk_size])) for index in todo)
    computed = 0
    with tqdm(total=n_chunks, initial=n_chunks - len(todo), desc="site chunks", unit="chunk", disable=not progress) as bar:
        for index, (arrays, n_evaluations, converged) in executor.run(prediction_chunk, tasks):
            region = slice(index * chunk_size, (index + 1) * chunk_size)
            store.write(index, {name: (region, values) for name, values in arrays.items()}, (n_evaluations, int(converged), 0))
            computed += 1
            bar.update()
    log.info("store %s: computed %d chunks, reused %d", store.path, computed, n_chunks - len(todo))
    records = store.records()
    names = list(_prediction_arrays(plan, chunk_size))
    lazy = {name: da.from_zarr(store.array(name)) for name in names}
    attrs = {
        **estimate_attrs(
            n_evaluations=int(records[:, COUNT].max()), method=plan.resolved_method, budget=plan.coalitions,
            converged=bool(records[:, FLAG].all()),
        ),
        **plan.attrs,
    }
    ds = result_dataset(
        shapley=lazy["shapley"], shapley_se=lazy["shapley_se"], v_empty=lazy["v_empty"], v_full=lazy["v_full"],
        banzhaf=lazy.get("banzhaf"), interaction=lazy.get("interaction"), players=plan.players,
        targets=[plan.spec.target] if isinstance(plan.spec.target, str) else plan.spec.target, sites=plan.sites, attrs=attrs,
    )
    store.finish(ds, drop=names)
    return store.result()


def _run_performance(plan: _Plan, store: ResultStore, executor, *, chunk_size: int, progress: bool) -> xr.Dataset:
    spec = plan.spec
    game = ShardedPerformanceGame(spec, plan.players, store=store, executor=executor, chunk_size=chunk_size, progress=progress)
    written = int(store.records()[:, DONE].sum())
    log.info("store %s: %d coalition chunks already written", store.path, written)
    estimator, coalitions = plan_estimator(
        game.n_players, spec.n_sites, method=spec.method, budget=spec.budget, tol=spec.tol, seed=spec.seed,
        interactions=spec.interactions, progress=progress,
    )
    result = estimator.estimate(game, budget=coalitions)
    log.info("store %s: computed %d chunks, reused %d", store.path, game.computed, game.reused)
    store.finish(to_dataset(result, game, attrs=plan.attrs))
    return store.result()


def _initial_chunks(plan: _Plan, chunk_size: int) -> int:
    if plan.spec.value == "prediction":
        return math.ceil(plan.spec.n_sites / chunk_size)
    if plan.resolved_method == "exact":
        return 1 + math.ceil(2 ** len(plan.players) / chunk_size)
    return 1 + math.ceil((plan.coalitions or 1) / chunk_size)


def sharded_shapley(
    model: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    group: str,
    value: str = "prediction",
    method: str = "auto",
    budget: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    context: str = "none",
    target: str | Sequence[str] = "auto",
    output: str = "probability",
    metric: str = "auto",
    interactions: bool = False,
    split: str = "test",
    sites: Sequence[int] | None = None,
    collapse: bool = True,
    device: str = "auto",
    progress: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    store: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """:func:`~miam_explain.explain.api.shapley` in chunks: on a Dask cluster and/or through a resumable store.

    The arguments are those of :func:`~miam_explain.explain.api.shapley`; ``model`` and
    ``data`` must be paths. The result has the same layout and provenance as an in-memory run.

    Args:
        scheduler: Address of a running Dask scheduler, or ``None``.
        workers: Size of a local Dask cluster to start (processes, one thread each), or ``None``.
        store: The ``.zarr`` store (resumed when it holds this configuration); ``None`` for a
            temporary one whose result is loaded into memory.
        chunk_size: Sites (prediction) or coalitions (performance) per chunk.
        overwrite: Delete an existing store first.

    Returns:
        The result: backed by ``store`` when given, else in memory.

    Raises:
        ConfigError: bad options, or a store that holds another configuration.
        OutputError: the store cannot be written.
    """
    if scheduler is not None and workers is not None:
        raise ConfigError("pass either --scheduler (an existing Dask cluster) or --workers (a local one), not both")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError(f"scheduler must be an address such as tcp://HOST:8786, got {scheduler!r}")
    if workers is not None:
        workers = _positive("workers", workers)
    if value not in ("prediction", "performance"):
        raise ConfigError(f"value {value!r} must be 'prediction' or 'performance'")
    default = DEFAULT_SITE_CHUNK if value == "prediction" else DEFAULT_COALITION_CHUNK
    chunk_size = default if chunk_size is None else _positive("chunk_size", chunk_size)
    if store is not None and Path(store).suffix != ".zarr":
        raise ConfigError(f"store {str(store)!r} must be a .zarr folder")
    plan = _plan(
        model, data, group=group, value=value, method=method, budget=budget, tol=tol, seed=seed, context=context,
        target=target, output=output, metric=metric, interactions=interactions, split=split, sites=sites,
        collapse=collapse, device=device,
    )
    config = _store_config(plan, chunk_size)
    arrays = _prediction_arrays(plan, chunk_size) if value == "prediction" else {"values": ArraySpec((_initial_chunks(plan, chunk_size), chunk_size), 1, ("chunk", "row"))}
    with contextlib.ExitStack() as stack:
        if store is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="miam-shapley-")))
            path, hint = scratch / "result.zarr", ""
        else:
            path, hint = Path(store), ", or choose another --out"
        result_store = ResultStore.open(
            path, config=config, arrays=arrays, n_chunks=_initial_chunks(plan, chunk_size), overwrite=overwrite, hint=hint
        )
        if result_store.complete:
            log.info("store %s is complete: nothing to compute", path)
            result = result_store.result()
        else:
            with _executor(scheduler, workers) as executor:
                run = _run_prediction if value == "prediction" else _run_performance
                result = run(plan, result_store, executor, chunk_size=chunk_size, progress=progress)
        if store is None:
            result = result.load()
    return result
