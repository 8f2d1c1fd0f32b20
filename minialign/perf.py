"""Opt-in speed knobs that are about the C library, not about the maths.

**Why.** A training step of TinyGPT allocates and frees a few dozen NumPy
temporaries of 0.1-10 MB each. glibc's ``malloc`` serves requests above
``M_MMAP_THRESHOLD`` (128 KiB at start-up, adapted upwards later) with a fresh
``mmap`` and, on ``free``, hands the pages back to the kernel (``munmap``, or
trimming the heap top above ``M_TRIM_THRESHOLD``). The next step asks for the same
sizes again, and every page of every temporary is page-faulted and zero-filled
anew. On the tiny config that costs as much as the arithmetic.

**What we do.** `tune_malloc()` raises both thresholds with ``mallopt`` (through
``ctypes``), so freed buffers stay in the process and are reused: memory is
held at its high-water mark instead of oscillating. It is opt-in (a library should
not change process-wide allocator behaviour on import); the CLI and the benchmarks
call it at start-up. It only acts on Linux with glibc and returns False elsewhere.
The same effect without code, before Python starts::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_malloc", "malloc_tuned"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_malloc(mmap_threshold: int = 32 * 2**20, trim_threshold: int = 2**30) -> bool:
    """Keep freed NumPy buffers inside the process (glibc only). Returns True if applied.

    ``mmap_threshold`` is capped by glibc at 32 MiB on 64-bit systems: arrays larger
    than that are still mapped and unmapped each time (and are large enough that the
    page faults are a small fraction of the work done on them).
    """
    global _tuned
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    _tuned = _tuned or ok
    return ok


def malloc_tuned() -> bool:
    """Whether `tune_malloc` has succeeded in this process."""
    return _tuned
