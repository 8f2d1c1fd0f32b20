"""How inputs reach the function under test and how its answers come back, per framework.

=============  ==========================================  ==============================
framework      what the function receives                  what is compared
=============  ==========================================  ==============================
``numpy``      float64 NumPy arrays, Python floats         values
``minialign``  float64 ``minialign.Tensor`` s (masks and   values, and the gradients of
               flags stay NumPy arrays)                    the differentiable inputs
``torch``      float64 ``torch.Tensor`` s                  values and gradients (through
                                                           ``torch.autograd``)
=============  ==========================================  ==============================

Under the two autograd frameworks each differentiable input is a leaf with
``requires_grad=True``; the output is back-propagated with ``backward(G)`` (``G = 1``
for a scalar loss) and each leaf's ``.grad`` is read back. A leaf whose ``.grad`` stays
``None`` received no gradient (a ``.detach()``, a trip through NumPy or ``float``).
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

from ..autograd.engine import Tensor

FRAMEWORKS = ("numpy", "minialign", "torch")
FLAGS = ("mask", "truncated")  # 0/1 inputs: never differentiable, passed as masks


class NumpyFramework:
    name = "numpy"
    autograd = False

    def leaf(self, x: np.ndarray, requires_grad: bool):
        return np.array(x, dtype=np.float64)

    def flag(self, x: np.ndarray, as_bool: bool):
        return np.array(x, dtype=bool if as_bool else np.float64)

    def backward(self, out, G: np.ndarray) -> bool:
        return False

    def grad(self, leaf) -> np.ndarray | None:
        return None

    def session(self):
        return contextlib.nullcontext()


class MinialignFramework(NumpyFramework):
    name = "minialign"
    autograd = True

    def leaf(self, x, requires_grad):
        return Tensor(np.array(x, dtype=np.float64), requires_grad=requires_grad)

    def backward(self, out, G):
        if isinstance(out, Tensor) and out.requires_grad:
            out.backward(G.astype(out.dtype).reshape(out.shape))
            return True
        return False

    def grad(self, leaf):
        return None if leaf.grad is None else np.array(leaf.grad, dtype=np.float64)


class TorchFramework:
    name = "torch"
    autograd = True

    def __init__(self):
        self.torch = importlib.import_module("torch")

    def leaf(self, x, requires_grad):
        t = self.torch.tensor(np.array(x, dtype=np.float64), dtype=self.torch.float64)
        return t.requires_grad_(requires_grad)

    def flag(self, x, as_bool):
        dtype = self.torch.bool if as_bool else self.torch.float64
        return self.torch.tensor(np.asarray(x), dtype=dtype)

    def backward(self, out, G):
        if self.torch.is_tensor(out) and out.requires_grad:
            out.backward(self.torch.from_numpy(G).to(out.dtype).reshape(out.shape))
            return True
        return False

    def grad(self, leaf):
        return None if leaf.grad is None else leaf.grad.detach().double().numpy().copy()

    @contextlib.contextmanager
    def session(self):
        """One intra-op thread while checking (restored after): on tensors of a few numbers
        the thread pool costs ~1000x the arithmetic (16 ms against 1 µs per op measured on 2
        busy cores)."""
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            yield
        finally:
            self.torch.set_num_threads(threads)


def get(name: str):
    """The framework adapter; torch is imported only here, and only for ``"torch"``."""
    if name == "numpy":
        return NumpyFramework()
    if name == "minialign":
        return MinialignFramework()
    if name == "torch":
        try:
            return TorchFramework()
        except ImportError:
            raise ImportError(
                "framework 'torch' needs PyTorch, which is not installed "
                "(pip install torch; on Linux the CPU build: pip install torch "
                "--index-url https://download.pytorch.org/whl/cpu)"
            ) from None
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {name!r}")


def to_numpy(out):
    """A function's answer as float64 NumPy (a tuple stays a tuple), or TypeError."""
    if isinstance(out, (tuple, list)):
        return tuple(to_numpy(o) for o in out)
    if isinstance(out, Tensor):
        return np.array(out.data, dtype=np.float64)
    if type(out).__module__.split(".")[0] == "torch" and hasattr(out, "detach"):
        return out.detach().double().cpu().numpy().copy()
    if out is None or isinstance(out, (str, bytes, dict)):
        raise TypeError(f"returned {type(out).__name__}, not an array or a number")
    try:
        return np.array(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"returned a {type(out).__name__} that is not numeric ({exc})") from None
