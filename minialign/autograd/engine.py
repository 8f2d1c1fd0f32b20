"""The reverse-mode engine: a `Tensor`, the graph it records, and `backward()`.

Every operation makes a new `Tensor` holding its result and, when gradients are
wanted, a *closure* that maps the gradient of the result to the gradients of its
inputs. `backward()` visits the graph in reverse topological order and calls the
closures, so by the time a node's closure runs, every path through it has
already added its contribution to ``node.grad``.

Three rules live here and only here, so that each op's backward stays one line:

1. **Accumulate.** A tensor used twice (``b = a + a``) receives the sum of both
   gradients; ``grad`` is added to, never overwritten.
2. **Undo broadcasting.** An op may return a gradient shaped like its *output*;
   `unbroadcast` sums it back to the shape of the input (left-pad the input's
   shape with 1s, sum over every axis that was stretched).
3. **Check the shape.** After (2) the gradient must have exactly the input's
   shape; if not, the error names the op and both shapes.

Tensor's operators (``a + b``, ``a @ w``, ``x.sum()``) are not defined in this file:
`ops.py`, which defines the ops, binds them to `Tensor` in one table at its end. The
engine imports nothing from the ops, so no module imports one that imports it back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np

# ----------------------------------------------------------------------------
# Global switches: gradient recording, anomaly detection, the default RNG.
# ----------------------------------------------------------------------------

_grad_enabled = True
_detect_anomaly = False
_default_rng = np.random.default_rng(0)


@contextlib.contextmanager
def no_grad():
    """Run a block without recording the graph (inference, sampling, targets)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: operations then record no graph."""
    return _grad_enabled


@contextlib.contextmanager
def detect_anomaly():
    """Raise as soon as any op produces a NaN or inf, forward or backward, naming the op."""
    global _detect_anomaly
    previous, _detect_anomaly = _detect_anomaly, True
    try:
        yield
    finally:
        _detect_anomaly = previous


def seed(n: int) -> np.random.Generator:
    """Reset the default generator that minialign uses when no `rng` is passed; returns it."""
    global _default_rng
    _default_rng = np.random.default_rng(n)
    return _default_rng


def default_rng() -> np.random.Generator:
    """The generator used when a function's ``rng`` argument is ``None``."""
    return _default_rng


def get_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """The generator a function should draw from, given its ``rng`` argument.

    ``None`` means the default generator (the one `seed` resets); an int seeds a *new*
    ``np.random.default_rng(rng)``, so the same int always gives the same draws; a
    ``np.random.Generator`` is used as it is (and advanced).
    """
    if rng is None:
        return _default_rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(rng)
    raise ValueError(
        f"rng must be None, an int seed or a np.random.Generator, got {type(rng).__name__}"
    )


def data_of(x):
    """``x.data`` for a `Tensor`; anything else (an array, a number, a list) as it is."""
    return x.data if isinstance(x, Tensor) else x


# ----------------------------------------------------------------------------
# The Tensor.
# ----------------------------------------------------------------------------

Backward = Callable[[np.ndarray], Sequence[np.ndarray | None]]


class Tensor:
    """An ``np.ndarray`` that remembers how it was made.

    ``data``           the values (dtype is kept: float32 for models, float64 for checks)
    ``grad``           d(output)/d(self) after ``backward()``, same shape and dtype, or None
    ``requires_grad``  whether gradients flow into this tensor

    Operators (``a + b``, ``a @ w``, ``a[i]``) and NumPy-named methods (``.sum()``,
    ``.reshape()``, ``.T``) are bound to this class by the table at the end of `ops.py`.
    """

    __array_priority__ = 1000  # make ``ndarray + Tensor`` call Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data: np.ndarray = np.asarray(data, dtype=dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {self.data.dtype}"
            )
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._op = ""
        self._retain_grad = False

    # -- basic attributes ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = f", op={self._op!r}" if self._op else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{extra})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares memory, like ``torch.detach``)."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this intermediate tensor after ``backward()`` (leaves always keep it)."""
        self._retain_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # -- backward -----------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Fill ``.grad`` of every leaf that requires it with d(self)/d(leaf).

        ``grad`` is the upstream gradient d(L)/d(self); it may be omitted only
        when ``self`` holds a single number (then it is 1).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad "
                "(no input had requires_grad=True, or it was made under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a single-element tensor, got shape "
                    f"{self.shape}; reduce it first (e.g. .sum()) or pass grad of that shape"
                )
            grad = np.ones_like(self.data)
        grad = np.asarray(data_of(grad), dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad has shape {grad.shape}, expected {self.shape}")
        # This pass's gradient of each intermediate reached so far, kept apart from .grad:
        # a retained intermediate may still hold the .grad of an earlier backward(), which
        # must not flow into its inputs a second time.
        pending: dict[Tensor, np.ndarray] = {}
        self._receive(grad, "backward", pending)
        for node in reversed(topological_order(self)):
            g = pending.pop(node, None)  # complete now: every consumer of node has run
            if g is None:
                continue
            if node._retain_grad:
                node._keep(g)
            for parent, g_parent in zip(node._parents, node._backward(g)):
                if g_parent is not None and parent.requires_grad:
                    parent._receive(g_parent, node._op, pending)

    def _receive(self, g: np.ndarray, op: str, pending: dict) -> None:
        """Add one contribution to d(root)/d(self): into ``.grad`` for a leaf, else to ``pending``."""
        g = unbroadcast(np.asarray(g), self.shape)
        if g.shape != self.shape:
            raise RuntimeError(
                f"backward of {op!r} produced a gradient of shape {g.shape} "
                f"for an input of shape {self.shape}"
            )
        if _detect_anomaly and not np.all(np.isfinite(g)):
            raise FloatingPointError(
                f"detect_anomaly: backward of {op!r} produced a non-finite gradient "
                f"for an input of shape {self.shape} (made by {self._op or 'a leaf'!r})"
            )
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        if self.is_leaf:
            self._keep(g)
        else:
            pending[self] = g if self not in pending else pending[self] + g

    def _keep(self, g: np.ndarray) -> None:
        """``.grad += g``, never writing into an array the engine did not make here.

        The first gradient is stored as a private copy (``g`` may be a read-only broadcast
        view, or shared with a sibling input); an optimiser may then scale it in place.
        """
        self.grad = np.array(g, copy=True) if self.grad is None else self.grad + g

    __hash__ = object.__hash__  # == stays identity so tensors can live in sets and dicts


# ----------------------------------------------------------------------------
# Graph helpers used by every op.
# ----------------------------------------------------------------------------


def make_result(data: np.ndarray, parents: tuple[Tensor, ...], backward: Backward, op: str):
    """Wrap an op's output; record ``backward`` only if some parent wants a gradient."""
    if _detect_anomaly and not np.all(np.isfinite(data)):
        raise FloatingPointError(f"detect_anomaly: forward of {op!r} produced NaN or inf")
    out = Tensor(data)
    if _grad_enabled and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
        out._op = op
    return out


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` back down to ``shape``: the gradient of ``np.broadcast_to(x, g.shape)``.

    Broadcasting left-pads ``shape`` with 1s, then stretches every size-1 axis; the
    gradient of a copy is the sum over the copies, so we sum over exactly those axes.
    """
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on (that requires grad), inputs before outputs.

    Iterative depth-first search with an explicit stack, so a graph 100,000 ops deep
    does not hit Python's recursion limit. A node is emitted after all its parents.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Tensors pass through; Python numbers take the dtype of ``like`` (no float64 upcast)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float)) and not isinstance(x, bool):
        if np.issubdtype(like.dtype, np.floating):
            return Tensor(np.asarray(x, dtype=like.dtype))
    return Tensor(x)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """Make a leaf tensor: ``ma.tensor([1.0, 2.0], requires_grad=True)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
