"""A Shapley request: every option of a run, frozen and validated once, here.

What can be checked without the model and the data is checked in :class:`ShapleyRequest`'s
constructor; what needs them (the grouping, the species of a target, the metric of a task, the
cost of exact values) is resolved by :func:`~miam_explain.explain.plan.plan`.

Example:
    >>> request = ShapleyRequest(group="spectral_bands", value="performance", method="exact")
    >>> request.value, request.chunked
    ('performance', False)
    >>> ShapleyRequest(group="years", context="some")
    Traceback (most recent call last):
    ...
    miam_explain.errors.ConfigError: context 'some' must be 'none' or 'all'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miam_explain.data.schema import GroupingsInput, read_groupings
from miam_explain.errors import ConfigError
from miam_explain.explain.checks import check_budget, check_group, check_positive, check_seed, check_tol
from miam_explain.explain.estimators import ESTIMATORS
from miam_explain.explain.games import CONTEXTS, OUTPUTS
from miam_explain.runtime.metrics import METRICS
from miam_explain.runtime.tensors import as_site_ids

__all__ = ["ShapleyRequest", "VALUES", "DEFAULT_BUDGET"]

#: The two games.
VALUES = ("prediction", "performance")
#: Default budget in model evaluations, counted per (coalition, site); a run with more sites or players
#: than it buys the smallest reliable design for gets that design instead
#: (:func:`~miam_explain.explain.plan.run_budget`).
DEFAULT_BUDGET = 2_000_000
_TARGET_WORDS = ("auto", "all", "richness")
_DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class ShapleyRequest:
    """Everything a Shapley run is asked to do (see :func:`miam_explain.shapley` for each option).

    Attributes:
        group: Grouping whose members are the players (built-in, or one of ``groupings``).
        groupings: User groupings ``{name: {member: (selector, ...)}}`` read from a TOML path, TOML
            text or a mapping (:func:`~miam_explain.data.schema.read_groupings`), or ``None``; the
            schema resolves their selectors when the run is planned.
        value: ``prediction`` or ``performance``.
        method: ``auto`` or a key of :data:`~miam_explain.explain.estimators.ESTIMATORS`.
        budget: Model evaluations allowed, one per (coalition, site); ``None`` for the default
            (:func:`~miam_explain.explain.plan.run_budget`).
        budget_per_site: Coalitions per site instead (the run's budget is ``budget_per_site x
            n_sites`` model evaluations); not together with ``budget``.
        tol: Stopping tolerance of the sampling estimators.
        seed: Seed of the sampling estimators.
        context: ``none`` or ``all``.
        target: ``auto``, ``all``, ``richness`` or a tuple of species ids (prediction game); ``auto``
            (one metric over every species), ``all`` or species ids (one metric per species) for the
            performance game.
        output: ``probability`` or ``logit`` (prediction game).
        metric: ``auto`` or a key of :data:`~miam_explain.runtime.metrics.METRICS` (performance game).
        interactions: Pairwise Shapley interaction indices (exact only).
        split: Sites of this split.
        sites: ``site_id`` values to restrict to (prediction game), or ``None``.
        collapse: Use the collapsed forward.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Show progress bars.
        scheduler: Address of a Dask scheduler, or ``None``.
        workers: Size of a local Dask cluster, or ``None``.
        store: A resumable ``.zarr`` store, or ``None``.
        chunk_size: Sites or coalitions per chunk of a chunked run, or ``None`` for the default.
        overwrite: Start a stored run afresh.

    Raises:
        ConfigError: an option of the wrong kind or out of range, options that do not go together, a
            groupings file that is missing or TOML that does not parse.
        DataError: ``sites`` that are not site ids.
        SchemaError: groupings of the wrong shape.
    """

    group: str
    value: str = "prediction"
    method: str = "auto"
    budget: int | None = None
    budget_per_site: int | None = None
    tol: float | None = None
    seed: int = 0
    context: str = "none"
    target: str | tuple[str, ...] = "auto"
    output: str = "probability"
    metric: str = "auto"
    interactions: bool = False
    split: str = "test"
    sites: tuple[int, ...] | None = None
    collapse: bool = True
    device: str = "auto"
    progress: bool = False
    scheduler: str | None = None
    workers: int | None = None
    store: Path | None = None
    chunk_size: int | None = None
    overwrite: bool = False
    groupings: GroupingsInput = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen: normalise in place
        if self.value not in VALUES:
            raise ConfigError(f"value {self.value!r} must be 'prediction' or 'performance'")
        check_group(self.group)
        set_("groupings", read_groupings(self.groupings))
        methods = ("auto", *ESTIMATORS)
        if self.method not in methods:
            raise ConfigError(f"unknown method {self.method!r}; use one of {', '.join(methods)}")
        budget = check_budget(self.budget)
        if budget is not None and budget < 1:
            raise ConfigError(f"budget must be a positive number of model evaluations, got {self.budget}")
        set_("budget", budget)
        if self.budget_per_site is not None:
            if budget is not None:
                raise ConfigError("pass either --budget (model evaluations in all) or --budget-per-site (coalitions per site), not both")
            set_("budget_per_site", check_positive("budget_per_site", self.budget_per_site))
        set_("tol", check_tol(self.tol))
        set_("seed", check_seed(self.seed))
        if self.context not in CONTEXTS:
            raise ConfigError(f"context {self.context!r} must be 'none' or 'all'")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output {self.output!r} must be 'probability' or 'logit'")
        if self.metric != "auto" and self.metric not in METRICS:
            raise ConfigError(f"unknown metric {self.metric!r}; use one of auto, {', '.join(METRICS)}")
        set_("target", _target(self.target))
        if self.value == "performance" and self.target == "richness":
            raise ConfigError("target 'richness' is a prediction; the performance game takes --target all or species ids "
                              "(one metric per species), or none (one metric over every species)")
        if not isinstance(self.split, str) or not self.split:
            raise ConfigError(f"split must be train, val, test or all, got {self.split!r}")
        if self.sites is not None:
            if self.value == "performance":
                raise ConfigError("--sites applies to the prediction game; the performance game uses every site of the split")
            set_("sites", tuple(as_site_ids(self.sites)))
        if not isinstance(self.device, str) or not (self.device in _DEVICES or self.device.startswith("cuda:")):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu or cuda")
        for name in ("interactions", "collapse", "progress", "overwrite"):
            set_(name, bool(getattr(self, name)))
        self._check_chunking()

    def _check_chunking(self) -> None:
        if self.scheduler is not None and self.workers is not None:
            raise ConfigError("pass either --scheduler (an existing Dask cluster) or --workers (a local one), not both")
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise ConfigError(f"scheduler must be an address such as tcp://HOST:8786, got {self.scheduler!r}")
        if self.workers is not None:
            object.__setattr__(self, "workers", check_positive("workers", self.workers))
        if self.store is not None:
            if not isinstance(self.store, (str, os.PathLike)) or Path(self.store).suffix != ".zarr":
                raise ConfigError(f"store {str(self.store)!r} must be a .zarr folder")
            object.__setattr__(self, "store", Path(self.store))
        if not self.chunked and (self.chunk_size is not None or self.overwrite):
            raise ConfigError("chunk_size and overwrite apply to stored or sharded runs; pass store=, workers= or scheduler=")
        if self.chunk_size is not None:
            object.__setattr__(self, "chunk_size", check_positive("chunk_size", self.chunk_size))

    @property
    def sharded(self) -> bool:
        """Whether the chunks run on a Dask cluster."""
        return self.scheduler is not None or self.workers is not None

    @property
    def chunked(self) -> bool:
        """Whether the run goes in chunks through a store that a worker or a rerun can read (sharded or stored)."""
        return self.sharded or self.store is not None

    @property
    def total_budget(self) -> int:
        """The explicit ``budget``, or :data:`DEFAULT_BUDGET` (the plan raises the default to the smallest reliable design
        and turns ``budget_per_site`` into a budget: :func:`~miam_explain.explain.plan.run_budget`)."""
        return DEFAULT_BUDGET if self.budget is None else self.budget


def _target(target) -> str | tuple[str, ...]:
    """``target`` normalised: one of the target words, or a tuple of species ids as strings."""
    if isinstance(target, str) and target in _TARGET_WORDS:
        return target
    ids = (str, int, np.integer)
    if isinstance(target, ids) and not isinstance(target, bool):
        return (str(target),)
    if (isinstance(target, (Sequence, np.ndarray)) and not isinstance(target, str) and len(target)
            and all(isinstance(t, ids) and not isinstance(t, bool) for t in target)):
        return tuple(str(t) for t in target)
    raise ConfigError(f"target {target!r} is not valid; pass species ids (a list of strings), 'richness', 'all' or 'auto'")
