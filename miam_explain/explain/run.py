"""The one path of a Shapley run: request -> plan -> executor (in-process | Dask) -> store (memory | zarr) -> result.

:func:`shapley` is the front door; it builds a :class:`~miam_explain.explain.request.ShapleyRequest`
(every option validated there) and hands it to :func:`run`. Whether the run stays in this process
or goes to a cluster, and whether its chunks live in memory or in a resumable zarr store, only
changes which executor and which store the same steps use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.schema import GroupingsInput
from miam_explain.explain.estimators import ShapleyResult
from miam_explain.explain.plan import Plan, plan, plan_estimator
from miam_explain.explain.request import ShapleyRequest
from miam_explain.explain.result import estimate_attrs, result_dataset, to_dataset
from miam_explain.explain.scale.chunked_game import ChunkedPerformanceGame
from miam_explain.explain.scale.chunks import Resources, prediction_chunk
from miam_explain.explain.scale.executors import open_executor
from miam_explain.explain.scale.memory_store import MemoryStore
from miam_explain.explain.scale.records import COUNT, DONE, FLAG, ArraySpec
from miam_explain.explain.scale.zarr_store import ZarrStore
from miam_explain.models.fusion import MiamModel

__all__ = ["shapley", "run", "explain_game"]

log = logging.getLogger("miam_explain.explain.run")


def shapley(
    model: MiamModel | str | os.PathLike,
    data: xr.Dataset | str | os.PathLike | None = None,
    *,
    group: str,
    groupings: GroupingsInput = None,
    value: str = "prediction",
    method: str = "auto",
    budget: int | None = None,
    budget_per_site: int | None = None,
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
    """Shapley values of the token groups of a grouping, for predictions or for performance.

    Args:
        model: Trained model or checkpoint path (a run folder means its best checkpoint).
        data: Dataset or path; default the one recorded in the checkpoint.
        group: Grouping whose members are the players (``spectral_bands``, ``years``,
            ``modalities``, ``patches``, ``variables`` …, or a user grouping of ``groupings``).
        groupings: User groupings added to the model's schema: a TOML file with
            ``[groupings.NAME]`` tables, such TOML text, or the mapping ``{NAME: {member: [selectors]}}``
            (selectors may be ranges, ``climate_years:2000..2004``; see ``docs/schema.md``). The
            result's ``grouping_definition`` attr records the definition of a user ``group``.
        value: ``prediction`` (per site and target) or ``performance`` (a metric over the split).
        method: ``auto``, ``exact``, ``permutation`` (antithetic) or ``kernel`` (paired KernelSHAP).
        budget: Model evaluations allowed, one per (coalition, site); default
            ``max(2,000,000, (2 + 16 P) x n_sites)``, so that ``auto`` gets at least leverage sampling
            with 8 pairs per player (:func:`~miam_explain.explain.plan.run_budget`). ``auto`` is exact
            when ``2^P x n_sites`` fits it.
        budget_per_site: Coalitions per site instead of ``budget`` (a budget of
            ``budget_per_site x n_sites`` evaluations); not together with ``budget``.
        tol: Stop sampling when the largest standard error is below ``tol`` times the range
            of the values.
        seed: Seed of the sampling estimators.
        context: ``none`` (tokens outside the players hidden) or ``all`` (visible).
        target: Prediction game: species ids, ``richness``, ``all`` or ``auto``. Performance game:
            ``auto`` (one metric over every species), or ``all`` or species ids for one metric per
            species (dims ``(player, target)``; ``all`` keeps the species whose metric is defined on
            the split, and the ``presences`` coordinate counts their presences there).
        output: Prediction game: ``probability`` or ``logit``.
        metric: Performance game: ``auto``, ``auc``, ``accuracy``, ``top5`` or ``neg_loss``.
        interactions: Also compute pairwise Shapley interaction indices (exact only).
        split: Sites of this split (``all`` for every site).
        sites: Prediction game: ``site_id`` values to restrict to.
        collapse: Use the exact collapsed forward.
        device: ``auto``, ``cpu`` or ``cuda`` (sharded runs: resolved on each worker).
        progress: Show progress bars.
        scheduler: Address of a running Dask scheduler (``tcp://HOST:PORT``) to shard the work over.
        workers: Start a local Dask cluster of this many single-threaded worker processes instead.
        store: A resumable ``.zarr`` store the chunks stream into; a rerun with the same
            configuration reuses every chunk already written (see ``docs/scaling.md``).
            Sharded runs without a store use a temporary one.
        chunk_size: Sites per chunk (prediction game) or coalitions per chunk (performance
            game) of a sharded or stored run; default 2,048 sites or 32 coalitions.
        overwrite: Start a stored run afresh instead of resuming (or refusing) an existing store.

    Returns:
        The labelled result (see :mod:`miam_explain.explain.result`). A stored run returns it
        backed by the store (lazy; ``.load()`` brings it into memory).

    Example:
        >>> ds = shapley(run_folder, group="spectral_bands", value="performance", device="cpu")
        >>> ds["shapley"].dims, ds.attrs["method"], ds.attrs["grouping"]
        (('player',), 'exact', 'spectral_bands')
        >>> float(abs(ds["shapley"].sum("player") - (ds["v_full"] - ds["v_empty"]))) < 1e-9
        True
        >>> windows = {"windows": {"early": ["climate_years:2000..2009"], "late": ["climate_years:2010..2018"]}}
        >>> ds = shapley(run_folder, group="windows", groupings=windows, value="performance", device="cpu")
        >>> ds["player"].values.tolist(), ds.attrs["grouping_definition"][:40]
        (['early', 'late'], '{"windows": {"early": ["climate_years:20')
    """
    request = ShapleyRequest(
        group=group, groupings=groupings, value=value, method=method, budget=budget, budget_per_site=budget_per_site, tol=tol,
        seed=seed, context=context, target=target,
        output=output, metric=metric, interactions=interactions, split=split, sites=sites, collapse=collapse,
        device=device, progress=progress, scheduler=scheduler, workers=workers, store=store, chunk_size=chunk_size,
        overwrite=overwrite,
    )
    return run(request, model, data)


def run(request: ShapleyRequest, model: MiamModel | str | os.PathLike, data: xr.Dataset | str | os.PathLike | None = None) -> xr.Dataset:
    """Run a request: plan it, open its store, compute what the store lacks on its executor, label the result.

    Args:
        request: The validated request.
        model: Trained model or checkpoint path (a path for sharded or stored runs).
        data: Dataset or path; ``None`` for the one recorded in the checkpoint.

    Returns:
        The labelled result; backed by the store for a stored run.
    """
    the_plan = plan(request, model, data)
    with _open_store(the_plan) as store:
        if store.complete:
            log.info("store %s is complete: nothing to compute", store.path)
            return store.result()
        resources = Resources(the_plan.model, the_plan.dataset)
        with open_executor(resources, scheduler=request.scheduler, workers=request.workers) as executor:
            compute = _run_prediction if request.value == "prediction" else _run_performance
            result = compute(the_plan, store, executor)
        return result.load() if request.sharded and request.store is None else result


def explain_game(
    game,
    *,
    method: str = "auto",
    budget: int | None = None,
    budget_per_site: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    interactions: bool = False,
    progress: bool = False,
) -> ShapleyResult:
    """Run the estimator chosen by ``method`` on a model game already built (its engine holds the sites).

    ``budget`` counts model evaluations, one per (coalition, site); a sampling estimator gets
    ``budget // n_sites`` coalitions, or ``budget_per_site`` (see :func:`~miam_explain.explain.plan.plan_estimator`).
    """
    from miam_explain.explain.games import PerformanceGame

    per_split = isinstance(game, PerformanceGame)  # one value (or one per target) for the whole split
    estimator, coalitions = plan_estimator(
        game.n_players, game.engine.n_sites, method=method, budget=budget, budget_per_site=budget_per_site, tol=tol,
        seed=seed, interactions=interactions, progress=progress,
        n_values=max(1, len(game.target_names)) if per_split else None,
    )
    return estimator.estimate(game, budget=coalitions)


# ----------------------------------------------------------------------------------------------------------------------
# stores


@contextlib.contextmanager
def _open_store(the_plan: Plan) -> Iterator[MemoryStore | ZarrStore]:
    """Memory for an in-process run; the request's zarr store, or a temporary one for a sharded run without one."""
    request = the_plan.request
    arrays = _work_arrays(the_plan)
    if not request.chunked:
        yield MemoryStore(arrays, the_plan.n_chunks)
        return
    with contextlib.ExitStack() as stack:
        if request.store is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="miam-shapley-")))
            path, hint = scratch / "result.zarr", ""
        else:
            path, hint = request.store, ", or choose another --out"
        yield ZarrStore.open(
            path, config=the_plan.store_config(), arrays=arrays, n_chunks=the_plan.n_chunks,
            overwrite=request.overwrite, hint=hint,
        )


def _work_arrays(the_plan: Plan) -> dict[str, ArraySpec]:
    """The arrays chunks write: per-site results (prediction), or coalition values per chunk (performance)."""
    chunk = the_plan.chunk_size or 1
    if the_plan.spec.value == "performance":
        if not the_plan.request.chunked:
            return {}
        if the_plan.spec.target_index is None:
            return {"values": ArraySpec((the_plan.n_chunks, chunk), 1, ("chunk", "row"))}
        return {"values": ArraySpec((the_plan.n_chunks, chunk, len(the_plan.spec.targets)), 1, ("chunk", "row", "target"))}
    n, p, k = the_plan.n_sites, len(the_plan.players), len(the_plan.spec.targets)
    per_player = ArraySpec((n, p, k), chunk, ("site", "player", "target"))
    per_value = ArraySpec((n, k), chunk, ("site", "target"))
    arrays = {"shapley": per_player, "shapley_se": per_player, "v_empty": per_value, "v_full": per_value}
    if the_plan.method == "exact":
        arrays["banzhaf"] = per_player
    if the_plan.spec.interactions:
        arrays["interaction"] = ArraySpec((n, p, p, k), chunk, ("site", "player", "player_j", "target"))
    return arrays


# ----------------------------------------------------------------------------------------------------------------------
# the two games


def _run_prediction(the_plan: Plan, store, executor) -> xr.Dataset:
    chunk, n_chunks = the_plan.chunk_size, store.n_chunks
    done = store.records()[:, DONE].astype(bool)
    todo = [index for index in range(n_chunks) if not done[index]]
    if store.resumable:
        log.info("store %s: %d chunks of %d sites, %d already written, %d to compute",
                 store.path, n_chunks, chunk, n_chunks - len(todo), len(todo))
    tasks = ((index, (the_plan.spec, the_plan.positions[index * chunk : (index + 1) * chunk])) for index in todo)
    show = the_plan.request.progress and n_chunks > 1
    with tqdm(total=n_chunks, initial=n_chunks - len(todo), desc="site chunks", unit="chunk", disable=not show) as bar:
        for index, (arrays, n_evaluations, converged) in executor.run(prediction_chunk, tasks):
            region = slice(index * chunk, (index + 1) * chunk)
            store.write(index, {name: (region, values) for name, values in arrays.items()}, (n_evaluations, int(converged), 0))
            bar.update()
    if store.resumable:
        log.info("store %s: computed %d chunks, reused %d", store.path, len(todo), n_chunks - len(todo))
    records = store.records()
    names = list(_work_arrays(the_plan))
    work = {name: store.array(name) for name in names}
    spec = the_plan.spec
    estimator, _ = plan_estimator(len(the_plan.players), spec.n_sites, method=spec.method, budget=spec.budget,
                                  budget_per_site=spec.budget_per_site, tol=spec.tol, seed=spec.seed,
                                  interactions=spec.interactions)
    samples = None if spec.method == "exact" else estimator.samples_in(len(the_plan.players), int(records[:, COUNT].min()))
    attrs = estimate_attrs(
        n_evaluations=int(records[:, COUNT].max()), method=the_plan.method, budget=the_plan.coalitions,
        converged=bool(records[:, FLAG].all()), n_samples=samples,
    )
    ds = result_dataset(
        shapley=work["shapley"], shapley_se=work["shapley_se"], v_empty=work["v_empty"], v_full=work["v_full"],
        banzhaf=work.get("banzhaf"), interaction=work.get("interaction"), players=the_plan.players,
        player_coords=the_plan.player_coords, targets=the_plan.spec.targets, target_coords=the_plan.target_coords,
        sites=the_plan.sites, attrs={**attrs, **the_plan.attrs},
    )
    store.finish(ds, drop=names)
    return store.result()


def _run_performance(the_plan: Plan, store, executor) -> xr.Dataset:
    spec, request = the_plan.spec, the_plan.request
    if store.resumable:
        log.info("store %s: %d coalition chunks already written", store.path, int(store.records()[:, DONE].sum()))
    game = ChunkedPerformanceGame(
        spec, the_plan.players, store=store, executor=executor, chunk_size=the_plan.chunk_size, progress=request.progress
    )
    estimator, coalitions = plan_estimator(
        game.n_players, spec.n_sites, method=spec.method, budget=spec.budget, budget_per_site=spec.budget_per_site,
        tol=spec.tol, seed=spec.seed, interactions=spec.interactions, progress=request.progress,
    )
    result = estimator.estimate(game, budget=coalitions)
    if store.resumable:
        log.info("store %s: computed %d chunks, reused %d", store.path, game.computed, game.reused)
    store.finish(to_dataset(result, game, attrs=the_plan.attrs, player_coords=the_plan.player_coords,
                            target_coords=the_plan.target_coords))
    return store.result()
