"""Speed settings that are about the C library, not the maths: on by default.

**Why.** A training step of TinyGPT allocates and frees a few dozen NumPy
temporaries of 0.1-10 MB each (activations, their gradients, attention weights).
glibc's ``malloc`` serves a request above ``M_MMAP_THRESHOLD`` (128 KiB at start-up,
adapted upwards later) with a fresh ``mmap`` and, on ``free``, hands the pages back to
the kernel (``munmap``, or trimming the top of the heap above ``M_TRIM_THRESHOLD``).
The next step asks for the same sizes again, and every page of every temporary is
page-faulted and zero-filled anew. On the tiny config that costs as much as the
arithmetic.

**What we do.** ``import minialign`` calls `tune_malloc()`, which raises both
thresholds with ``mallopt`` (through ``ctypes``), so freed buffers stay in the process
and the next step reuses them: memory is held at its high-water mark instead of being
returned and faulted back. Measured with ``bench/bench_gpt.py`` against
``bench/bench_gpt.py --no-tune`` (one BLAS thread, medians of three runs on a busy
2-core machine), the training step's time relative to PyTorch's drops from 1.34x to
0.87x (tiny), 1.16x to 0.92x (small) and 1.30x to 0.92x (medium): the tuning alone
takes a third off the tiny step and a fifth off the larger ones. The values are the
same bit for bit: only where the memory comes from changes. The cost: the process
keeps its high-water mark (the full ``minialign demo`` peaks ~10% higher in RSS).

It acts only on Linux with glibc (``mallopt`` exists nowhere else; on macOS, Windows,
musl and Pyodide `tune_malloc` returns False and nothing changes). It changes the
allocator for the whole process, which is why it can be turned off: set the
environment variable ``MINIALIGN_TUNE_MALLOC=0`` before importing minialign. The same
tuning without minialign, set before Python starts::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
"""

from __future__ import annotations

import os
import sys

__all__ = ["ENV_VAR", "malloc_tuned", "tune_malloc", "tune_on_import"]

ENV_VAR = "MINIALIGN_TUNE_MALLOC"
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
    import ctypes  # here, not at the top: only Linux gets this far
    import ctypes.util

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


def tune_on_import() -> bool:
    """What ``import minialign`` runs: `tune_malloc`, unless ``MINIALIGN_TUNE_MALLOC=0``."""
    if os.environ.get(ENV_VAR, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return tune_malloc()


def malloc_tuned() -> bool:
    """Whether `tune_malloc` has succeeded in this process."""
    return _tuned
