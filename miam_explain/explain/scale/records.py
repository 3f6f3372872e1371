"""What every store of a chunked run shares: the work-array spec, the chunk record, the coalition fingerprint.

A store (:class:`~miam_explain.explain.scale.memory_store.MemoryStore` for an in-memory run,
:class:`~miam_explain.explain.scale.zarr_store.ZarrStore` for a resumable one) keeps, per chunk,
a record ``int64[4]``: ``(done, n_evaluations or rows, converged, coalition hash)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["ArraySpec", "coalition_hash", "DONE", "COUNT", "FLAG", "HASH"]

#: Columns of a chunk record.
DONE, COUNT, FLAG, HASH = range(4)


@dataclass(frozen=True)
class ArraySpec:
    """One array of the work area.

    Attributes:
        shape: Full shape; axis 0 is cut into chunks.
        chunk: Length of a chunk along axis 0 (the other axes are whole).
        dims: Dimension names (for xarray).
    """

    shape: tuple[int, ...]
    chunk: int
    dims: tuple[str, ...]


def coalition_hash(keep: np.ndarray) -> int:
    """A 63-bit fingerprint of a ``bool[c, P]`` coalition matrix (to check a stored chunk is the one asked for)."""
    digest = hashlib.sha256(np.asarray(keep.shape, dtype=np.int64).tobytes() + np.packbits(keep, axis=None).tobytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1
