"""The batches of one training epoch, from a split in memory or streamed from the store.

In memory (:func:`epoch_batches` on a split that :func:`~miam_explain.runtime.tensors.load_split`
read into memory), the order is one permutation of all sites drawn from the run's generator, as it
always was. Streamed, the split is cut into chunks of consecutive sites; each epoch the chunk
order is drawn from the generator, a background thread reads chunks ahead in that order
(:data:`PREFETCH_CHUNKS` of them), and the sites of :data:`BUFFER_CHUNKS` chunks at a time (plus
the few left from the previous buffer) are shuffled together with the generator and cut into
batches. The result is deterministic for a seed, visits every site once per epoch, and holds at
most ``(BUFFER_CHUNKS + PREFETCH_CHUNKS + 1) x CHUNK_SITES`` sites plus one batch, whatever the
split's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from miam_explain.runtime.tensors import SplitTensors

__all__ = ["BUFFER_CHUNKS", "CHUNK_SITES", "PREFETCH_CHUNKS", "ChunkStream", "epoch_batches"]

#: Sites per streamed chunk (consecutive sites of the split, read in one go).
CHUNK_SITES = 256
#: Chunks shuffled together.
BUFFER_CHUNKS = 8
#: Chunks the background reader reads ahead.
PREFETCH_CHUNKS = 2

Batch = tuple[dict[str, torch.Tensor], torch.Tensor, int]


def epoch_batches(split: SplitTensors, batch_size: int, *, generator: torch.Generator, device: torch.device) -> Iterator[Batch]:
    """``(inputs, target, n)`` batches of one epoch over ``split`` on ``device``, in an order drawn from ``generator``."""
    if split.streamed:
        yield from ChunkStream(split, batch_size, generator=generator, device=device)
        return
    order = torch.randperm(len(split), generator=generator)
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        inputs, target = split.batch(index, device)
        yield inputs, target, len(index)


class ChunkStream:
    """One epoch of shuffled batches streamed from a split, with read-ahead in a background thread.

    Args:
        split: The split (inputs in memory or in the store).
        batch_size: Sites per batch (the last batch of the epoch may be smaller).
        generator: Draws the chunk order and each buffer's permutation (in the calling thread only).
        device: Where the batches go.
        chunk_sites, buffer_chunks, prefetch_chunks: Sizes (defaults: the module constants).

    Attributes:
        peak_sites: The most sites held at once so far (buffer, read-ahead queue, chunk in the
            reader's hands), for the memory bound.
    """

    def __init__(
        self,
        split: SplitTensors,
        batch_size: int,
        *,
        generator: torch.Generator,
        device: torch.device,
        chunk_sites: int = CHUNK_SITES,
        buffer_chunks: int = BUFFER_CHUNKS,
        prefetch_chunks: int = PREFETCH_CHUNKS,
    ) -> None:
        self.split = split
        self.batch_size = max(1, int(batch_size))
        self.generator = generator
        self.device = device
        self.chunk_sites = max(1, int(chunk_sites))
        self.buffer_chunks = max(1, int(buffer_chunks))
        self.prefetch_chunks = max(1, int(prefetch_chunks))
        self.peak_sites = 0
        self._resident = 0
        self._lock = threading.Lock()

    def _hold(self, n: int) -> None:
        with self._lock:
            self._resident += n
            self.peak_sites = max(self.peak_sites, self._resident)

    def _read(self, chunks: list[slice], out: queue.Queue, stop: threading.Event) -> None:
        """The reader thread: put each chunk's ``(inputs, target)`` on ``out`` in order, then ``None``."""
        try:
            for sites in chunks:
                self._hold(sites.stop - sites.start)
                item = self.split.batch(sites, "cpu")
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            out.put(exc)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.split)
        chunks = [slice(start, min(n, start + self.chunk_sites)) for start in range(0, n, self.chunk_sites)]
        order = torch.randperm(len(chunks), generator=self.generator).tolist()
        ahead: queue.Queue = queue.Queue(maxsize=self.prefetch_chunks)
        stop = threading.Event()
        reader = threading.Thread(target=self._read, args=([chunks[i] for i in order], ahead, stop), daemon=True)
        reader.start()
        left: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []  # sites of the last buffer not yet in a batch
        try:
            done = False
            while not done:
                buffer = list(left)
                while len(buffer) < self.buffer_chunks + len(left):
                    item = ahead.get()
                    if isinstance(item, BaseException):
                        raise item
                    if item is None:
                        done = True
                        break
                    buffer.append(item)
                yield from self._shuffled(buffer, left, last=done)
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                try:
                    ahead.get(timeout=0.1)
                except queue.Empty:
                    pass
            reader.join()

    def _shuffled(self, buffer: list, left: list, *, last: bool) -> Iterator[Batch]:
        """Batches of the buffer's sites in a random order; the remainder (under a batch) goes to ``left``."""
        left.clear()
        if not buffer:
            return
        inputs = {k: torch.cat([b[0][k] for b in buffer]) for k in buffer[0][0]}
        target = torch.cat([b[1] for b in buffer])
        buffer.clear()  # the chunks live on only in the concatenation
        n = int(target.shape[0])
        order = torch.randperm(n, generator=self.generator)
        full = n if last else n - n % self.batch_size
        for start in range(0, full, self.batch_size):
            index = order[start : start + self.batch_size]
            yield {k: v[index].to(self.device) for k, v in inputs.items()}, target[index].to(self.device), len(index)
        if full < n:
            rest = order[full:]
            left.append(({k: v[rest] for k, v in inputs.items()}, target[rest]))
        self._hold(len(order[full:]) - n)  # the buffer's chunks are released; what is left stays held
