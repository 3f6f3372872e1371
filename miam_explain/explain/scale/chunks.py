"""One chunk of a run: the Shapley values of some sites, or the metric of some coalitions.

A chunk runs where its executor puts it: in this process, on the plan's loaded model and
dataset, or on a Dask worker, which loads them once from the paths in the
:class:`~miam_explain.explain.plan.ChunkSpec` (a cache keyed by checkpoint path, sha256 and
device) and picks its own device.

* **Prediction game.** A chunk is an independent Shapley problem on some sites: the game is
  built on those sites and the estimator runs with the seed and the coalition budget of the
  whole run, so a chunk draws the permutations (or subsets) the one-chunk run draws and the
  assembled result equals it.
* **Performance game.** The metric needs every site at once, so a chunk is some coalitions,
  each evaluated on every site of the split.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from miam_explain.data.format import open_dataset
from miam_explain.errors import CheckpointError
from miam_explain.explain.games import PerformanceGame, PredictionGame, check_auc_defined
from miam_explain.explain.plan import ChunkSpec, plan_estimator
from miam_explain.explain.result import file_sha256
from miam_explain.models.checkpoint import load_model
from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.engine import Engine
from miam_explain.runtime.loading import resolve_device
from miam_explain.runtime.metrics import METRICS
from miam_explain.runtime.tensors import load_split

__all__ = ["Resources", "prediction_chunk", "performance_chunk", "worker_resources", "worker_stats"]


@dataclass
class Resources:
    """The model and the dataset chunks run on, and the performance game built on them (once).

    Attributes:
        model: The model, on the device the chunks compute on.
        dataset: The consolidated dataset.
    """

    model: MiamModel
    dataset: xr.Dataset
    _games: dict = field(default_factory=dict, repr=False)

    def performance_game(self, spec: ChunkSpec) -> PerformanceGame:
        """The performance game of ``spec`` on every site of its split, built on the first call."""
        game = self._games.get(spec)
        if game is None:
            split_data = load_split(self.dataset, self.model.schema, spec.split)
            if spec.metric == "auc":
                check_auc_defined(split_data, spec.split)
            engine = Engine(self.model, split_data, device=resolve_device(spec.device), collapse=spec.collapse, progress=spec.progress)
            index = None if spec.target_index is None else np.asarray(spec.target_index, dtype=np.int64)
            game = PerformanceGame(engine, spec.players(self.model.schema), spec.context, split_data, metric=METRICS[spec.metric],
                                   target_names=spec.targets, target_index=index)
            self._games.clear()
            self._games[spec] = game
        return game


# ----------------------------------------------------------------------------------------------------------------------
# the worker side: one model and one dataset per worker process

_LOCK = threading.Lock()
_WORKER: dict[tuple[str, str, str, str], Resources] = {}
_STATS: Counter = Counter()


def worker_stats() -> dict[str, float]:
    """This process's counters: ``model_loads``, ``prediction_chunks``, ``performance_chunks``, and
    ``chunk_seconds`` (time spent computing chunks). Gather them with ``client.run(worker_stats)``."""
    return dict(_STATS)


def worker_resources(spec: ChunkSpec) -> Resources:
    """The run's model (on this process's device) and dataset, loaded once per checkpoint, sha256, device and data."""
    key = (spec.checkpoint, spec.model_sha256, spec.device, spec.data)
    with _LOCK:
        resources = _WORKER.get(key)
        if resources is None:
            if file_sha256(spec.checkpoint) != spec.model_sha256:
                raise CheckpointError(
                    f"checkpoint {spec.checkpoint!r} changed since the run started (sha256 differs); "
                    "restore it, or start again with --overwrite"
                )
            model = load_model(spec.checkpoint, device=resolve_device(spec.device))
            _WORKER.clear()  # one run per worker: a long-lived cluster does not accumulate models
            resources = _WORKER[key] = Resources(model, open_dataset(spec.data))
            _STATS["model_loads"] += 1
        return resources


@contextlib.contextmanager
def _local_reads() -> Iterator[None]:
    """Read lazy (dask-backed) data in this thread.

    Inside a Dask task, a ``.values`` of a lazy array would otherwise be sent back to the
    cluster, whose single-threaded workers are all busy with chunks: a deadlock.
    """
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


# ----------------------------------------------------------------------------------------------------------------------
# the chunks


def prediction_chunk(
    spec: ChunkSpec, positions: np.ndarray, resources: Resources | None = None
) -> tuple[dict[str, np.ndarray], int, bool]:
    """Shapley values of the prediction game on some sites.

    Args:
        spec: The run.
        positions: ``int64[n]`` positions of the chunk's sites along the dataset's ``site`` dim.
        resources: The model and dataset; ``None`` on a worker (loaded from ``spec``).

    Returns:
        ``(arrays, n_evaluations, converged)``; ``arrays`` in the result layout:
        ``shapley``, ``shapley_se`` (and ``banzhaf`` when exact) ``float64[n, P, K]``,
        ``v_empty``, ``v_full`` ``float64[n, K]``, ``interaction`` ``float64[n, P, P, K]`` when asked for.
    """
    start = time.perf_counter()
    with _local_reads():
        resources = resources or worker_resources(spec)
        part = resources.dataset.isel(site=np.asarray(positions, dtype=np.int64))
        split_data = load_split(part, resources.model.schema, "all")
    engine = Engine(resources.model, split_data, device=resolve_device(spec.device), collapse=spec.collapse, progress=spec.progress)
    index = None if spec.target_index is None else np.asarray(spec.target_index, dtype=np.int64)
    game = PredictionGame(
        engine, spec.players(resources.model.schema), spec.context, split_data,
        target_names=spec.targets, target_index=index, output=spec.output,
    )
    estimator, coalitions = plan_estimator(
        game.n_players, spec.n_sites, method=spec.method, budget=spec.budget, budget_per_site=spec.budget_per_site,
        tol=spec.tol, seed=spec.seed, interactions=spec.interactions, progress=spec.progress,
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


def performance_chunk(spec: ChunkSpec, keep: np.ndarray, resources: Resources | None = None) -> np.ndarray:
    """The metric over every site of the split for some coalitions.

    Args:
        spec: The run.
        keep: ``bool[c, P]`` coalitions.
        resources: The model and dataset; ``None`` on a worker (loaded from ``spec``).

    Returns:
        ``float64[c]`` metric values (``float64[c, K]`` per species).
    """
    start = time.perf_counter()
    with _local_reads():
        game = (resources or worker_resources(spec)).performance_game(spec)
    values = game(keep)
    _STATS["performance_chunks"] += 1
    _STATS["chunk_seconds"] += time.perf_counter() - start
    return values
