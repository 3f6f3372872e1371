"""Where the chunks of a run go: this process, or a Dask cluster (local or remote).

An executor has one method, ``run(fn, tasks)``: it calls ``fn(*args)`` for each ``(key, args)``
task and yields ``(key, result)`` as results arrive. The in-process executor hands each chunk the
plan's loaded model and dataset; on a cluster each worker loads them once (see
:mod:`~miam_explain.explain.scale.chunks`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator

from miam_explain.errors import ConfigError
from miam_explain.explain.scale.chunks import Resources

__all__ = ["LocalExecutor", "DaskExecutor", "open_executor"]

log = logging.getLogger("miam_explain.explain.scale")


class LocalExecutor:
    """Runs chunks one after the other in this process, on the plan's model and dataset.

    Args:
        resources: The loaded model and dataset.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def run(self, fn: Callable, tasks: Iterable[tuple[int, tuple]]) -> Iterator[tuple[int, object]]:
        for key, args in tasks:
            yield key, fn(*args, resources=self.resources)


class DaskExecutor:
    """Runs chunks on a Dask cluster and yields them as they finish.

    Args:
        client: A connected ``distributed.Client``.
    """

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
def open_executor(resources: Resources, *, scheduler: str | None, workers: int | None) -> Iterator[LocalExecutor | DaskExecutor]:
    """This process, a LocalCluster of ``workers`` processes, or the cluster of ``scheduler``.

    Args:
        resources: The plan's model and dataset (used in this process only).
        scheduler: Address of a running Dask scheduler, or ``None``.
        workers: Size of a local cluster to start (processes, one thread each), or ``None``.

    Raises:
        ConfigError: the scheduler cannot be reached.
    """
    if scheduler is None and workers is None:
        yield LocalExecutor(resources)
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
        yield DaskExecutor(client)
