"""Give large freed buffers back to the system, so that a long run's memory stays at its working set.

glibc's ``malloc`` raises its mmap threshold each time a large block is freed, up to 32 MiB; from
then on tensors of a few MiB come from the heap, whose freed pages are rarely returned. A training
or explain run allocates many such tensors of changing sizes (the collapsed forward's buckets, the
streamed batches), and its resident memory then creeps up by gigabytes over an epoch. Fixing the
threshold at 1 MiB (``mallopt(M_MMAP_THRESHOLD)``, which also turns the dynamic raise off) maps
every large tensor on its own and unmaps it when freed. It costs time: every such tensor is then
mapped and zeroed afresh (measured: the report tests ran 18% longer, with three times the system
time). So it is set only where memory matters, when :func:`~miam_explain.runtime.tensors.load_split`
streams a split too large for memory; small runs keep glibc's defaults. A script may call
:func:`release_large_frees` itself. Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "release_large_frees"]

#: Allocations from this many bytes on are mapped on their own (and unmapped when freed).
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def release_large_frees(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; ``True`` when it was set (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
