"""The performance game with every call cut into coalition chunks that an executor evaluates.

It keeps the game contract (``bool[C, P] -> float64[C]``, or ``float64[C, K]`` per species), so the estimators run on it
unchanged, in this process or on a Dask cluster. With a resumable store the chunks of every call
are numbered in call order; a chunk already in the store (the same coalitions, checked by hash)
is read back instead of computed, so a rerun replays the estimator from its seed and recomputes
only what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from miam_explain.errors import ConfigError
from miam_explain.explain.game import PlayerGame, as_coalition_array
from miam_explain.explain.plan import ChunkSpec
from miam_explain.explain.scale.chunks import performance_chunk
from miam_explain.explain.scale.records import COUNT, DONE, HASH, coalition_hash

__all__ = ["ChunkedPerformanceGame"]


class ChunkedPerformanceGame(PlayerGame):
    """A performance game whose calls are evaluated chunk by chunk by an executor.

    Args:
        spec: The run.
        players: The player names.
        store: Where chunks stream to (a resumable store is also read back from).
        executor: Where chunks run.
        chunk_size: Coalitions per chunk; ``None`` for one chunk per call.
        progress: Show a progress bar per call.
    """

    def __init__(self, spec: ChunkSpec, players: Sequence[str], *, store, executor, chunk_size: int | None, progress: bool) -> None:
        self._set_players(players)
        self.spec = spec
        self.store = store
        self.executor = executor
        self.chunk_size = chunk_size
        self.progress = progress
        self._next_chunk = 0
        self.reused = 0
        self.computed = 0

    @property
    def per_target(self) -> bool:
        """One value per species (the run's ``target_index`` is set), as :attr:`PerformanceGame.per_target`."""
        return self.spec.target_index is not None

    @property
    def target_names(self) -> tuple[str, ...]:
        """The species of a per-species run."""
        return self.spec.targets

    def __call__(self, coalitions) -> np.ndarray:
        keep = as_coalition_array(coalitions, self.n_players)
        size = self.chunk_size or max(keep.shape[0], 1)
        starts = range(0, keep.shape[0], size)
        first = self._next_chunk
        self._next_chunk += len(starts)
        out: list[np.ndarray | None] = [None] * len(starts)
        todo = []
        if self.store.resumable:
            self.store.grow(self._next_chunk)
        for slot, start in enumerate(starts):
            rows = keep[start : start + size]
            if self.store.resumable and self._reuse(first + slot, rows, out, slot):
                continue
            todo.append((slot, rows))
        tasks = ((slot, (self.spec, rows)) for slot, rows in todo)
        rows_of = dict(todo)
        with tqdm(total=len(todo), desc="coalition chunks", unit="chunk", disable=not self.progress or len(todo) < 2, leave=False) as bar:
            for slot, values in self.executor.run(performance_chunk, tasks):
                values = np.asarray(values, dtype=np.float64)
                if self.store.resumable:
                    padded = np.full((size, *values.shape[1:]), np.nan)
                    padded[: values.shape[0]] = values
                    record = (values.shape[0], 0, coalition_hash(rows_of[slot]))
                    self.store.write(first + slot, {"values": (first + slot, padded)}, record)
                out[slot] = values
                self.computed += 1
                bar.update()
        self._n_evaluations += keep.shape[0]
        return np.concatenate(out) if out else np.zeros(0)

    def _reuse(self, index: int, rows: np.ndarray, out: list, slot: int) -> bool:
        """Read chunk ``index`` back from the store when it was written; refuse one that holds other coalitions."""
        record = self.store.record(index)
        if not record[DONE]:
            return False
        if record[HASH] != coalition_hash(rows) or record[COUNT] != rows.shape[0]:
            raise ConfigError(
                f"chunk {index} of store {str(self.store.path)!r} holds other coalitions than this run asks for; "
                "the store is damaged, pass --overwrite to start again"
            )
        out[slot] = self.store.read("values", index)[: rows.shape[0]]
        self.reused += 1
        return True
