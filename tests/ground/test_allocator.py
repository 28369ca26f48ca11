"""The allocator setting of the long-running commands, checked in glibc itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# In a process of its own: a 4 MiB block freed, then 256 KiB asked for. glibc counts the blocks
# it mapped apart from the heap (mallinfo2's hblks): with its threshold raised by the free, the
# 256 KiB come from the heap instead.
PROBE = """
import ctypes, sys
from ground.allocator import return_large_blocks
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
if sys.argv[1] == "set":
    assert return_large_blocks()
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(256 << 10)
print(libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")
@pytest.mark.parametrize(("mode", "mapped"), [("set", "1"), ("unset", "0")])
def test_large_blocks_stay_out_of_the_heap_once_set(mode: str, mapped: str) -> None:
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, cwd=root
    )
    assert found.stdout.strip() == mapped


# Six threads allocate at once, and stay until the arenas are counted: glibc's own report
# (malloc_info's XML, one <heap> per arena) says how many arenas there are.
ARENAS = """
import ctypes, re, sys, threading
from ground.allocator import share_arenas
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.open_memstream.restype = ctypes.c_void_p
libc.open_memstream.argtypes = (ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t))
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
if sys.argv[1] == "set":
    assert share_arenas()
ready, done = threading.Barrier(7), threading.Event()
def allocate():
    libc.malloc(1000)
    ready.wait()
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads:
    t.start()
ready.wait()
text, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
libc.malloc_info(0, stream)
libc.fclose(stream)
done.set()
print(len(re.findall(rb"<heap nr=", text.value)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")
def test_threads_share_two_arenas_once_set() -> None:
    root = Path(__file__).resolve().parents[2]

    def arenas(mode: str) -> int:
        found = subprocess.run(
            [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, check=True, cwd=root
        )
        return int(found.stdout)

    assert arenas("set") <= 2 < arenas("unset")
