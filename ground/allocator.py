"""The C allocator's settings for the long-running commands (glibc's malloc)."""

from __future__ import annotations

import ctypes
import sys

# M_MMAP_THRESHOLD and M_ARENA_MAX, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# glibc's own starting value: blocks this large or larger are mapped apart from the heap.
MMAP_THRESHOLD = 128 * 1024
# Arenas for all threads: glibc's default is eight per core.
ARENA_MAX = 2


def return_large_blocks() -> bool:
    """Keep blocks of 128 KiB and more out of the heap, so that they go back to the system when freed.

    glibc starts so, but raises the threshold to the size of every such block freed, up to
    32 MiB. After a drain's first batches, their JSON and the bodies of the time-series writes
    (hundreds of KiB to a few MiB each) come from the heap instead, and the heap keeps what it
    grew by: about 3 MB more at the peak of a drain, measured. Setting the threshold fixes it.
    False where the C library has no such setting (not glibc).
    """
    return _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def share_arenas() -> bool:
    """Let all threads allocate from two arenas, rather than one arena a thread up to eight a core.

    A service has a dozen threads (the collector, the API, the timers' pool); each arena keeps
    its own free memory, and a thread that allocated once keeps its arena. Python holds its
    lock around most allocations anyway, so two are as fast here: about 1 MB less with 10,000
    devices, measured. False where the C library has no such setting (not glibc).
    """
    return _mallopt(_M_ARENA_MAX, ARENA_MAX)


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, value))
