"""minialign.perf: importing minialign keeps NumPy's temporaries in the process (glibc)."""

import os
import platform
import subprocess
import sys

import pytest

from minialign import perf

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt tuning applies to Linux with glibc only",
)

# Allocates a 4 MiB array in a fresh process and reports whether glibc served it with
# its own mmap (an ``hblks`` more in mallinfo2) or from the heap, where freed memory stays.
PROBE = """
import ctypes, numpy as np, minialign
fields = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in fields.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblks
a = np.ones(2**20, dtype=np.float32)
print(libc.mallinfo2().hblks - before, minialign.perf.malloc_tuned())
"""


def _probe(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != perf.ENV_VAR}
    if env_value is not None:
        env[perf.ENV_VAR] = env_value
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@glibc
def test_import_tunes_malloc_in_this_process():
    assert perf.malloc_tuned()


@glibc
def test_after_import_large_arrays_come_from_the_heap_not_a_fresh_mmap():
    assert _probe(None) == ["0", "True"]


@glibc
@pytest.mark.parametrize("off", ["0", "false", "OFF"])
def test_environment_variable_turns_the_tuning_off(off):
    assert _probe(off) == ["1", "False"]  # glibc's default: a 4 MiB array is its own mmap


def test_tune_on_import_respects_the_variable_without_touching_malloc(monkeypatch):
    monkeypatch.setenv(perf.ENV_VAR, "0")
    assert perf.tune_on_import() is False


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="non-Linux platforms only")
def test_elsewhere_tuning_is_a_no_op():
    assert perf.tune_malloc() is False
