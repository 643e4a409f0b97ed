"""The node's malloc setting: with the arena limit, threads that allocate share glibc's main arena."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from edge_node.malloc import limit_arenas

# threads allocate and hold a block each, then glibc describes its arenas (one <heap> per arena)
PROBE = """
import ctypes, sys, tempfile, threading
from edge_node.malloc import limit_arenas
if sys.argv[1] == "limit":
    assert limit_arenas(1)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
held, ready, done = [], threading.Barrier(5), threading.Event()
def work():
    held.append(libc.malloc(100_000))
    ready.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
ready.wait()
with tempfile.NamedTemporaryFile("r") as out:
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    f = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, f)
    libc.fclose(f)
    print(out.read().count("<heap nr="))
done.set()
"""

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's"
)


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@glibc
def test_threads_get_arenas_of_their_own_by_default_and_share_one_when_limited() -> None:
    assert arenas("default") > 1
    assert arenas("limit") == 1


def test_a_limit_below_one_arena_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_arenas(0)
