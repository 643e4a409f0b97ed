"""glibc's malloc set for a process with a memory budget: every thread allocates from one arena.

By default glibc gives each thread that allocates an arena of its own (up to eight per core). A node's
threads (gRPC's event engine, the inference thread that runs openSMILE and OpenCV, the event loop) then
each keep the pages they freed in their own arena, where the others cannot reuse them: on `bench/edge.py`
one shared arena lowers the node's peak RSS by ~1 MB at no measurable CPU cost (the GIL already
serialises most of the allocating work).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def limit_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas (call before threads start: arenas already made stay); False where the C
    library is not glibc (musl, macOS), which leaves the allocator as it is."""
    if arenas < 1:
        raise ValueError(f"malloc arenas: at least 1, got {arenas}")
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) refused; malloc keeps its default arenas", arenas)
        return False
    return True
