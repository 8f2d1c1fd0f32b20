"""The differentiable operations, with NumPy's names and semantics.

Each op computes its output with NumPy and returns a closure ``backward(g)`` that
maps ``g = dL/d(out)`` to ``dL/d(input)`` for each input. A closure may return a
gradient shaped like the *output*: the engine un-broadcasts it (see
`engine.unbroadcast`). The derivative each closure implements is written above it.

This module holds arithmetic, elementwise functions and the matrix product;
reductions live in `reductions.py` and shape/indexing ops in `shape_ops.py`. Every
op is importable from here (``from minialign.autograd.ops import sum, reshape``), and
the table `TENSOR_METHODS` at the end binds them to `Tensor` as its operators and
methods (``a + b`` is ``add(a, b)``, ``x.sum(axis=0)`` is ``sum(x, axis=0)``).
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, data_of, make_result
from .reductions import max, mean, min, sum, var  # noqa: F401 - re-exported
from .shape_ops import (  # noqa: F401 - re-exported
    broadcast_to,
    concatenate,
    expand,
    gather,
    getitem,
    reshape,
    split,
    stack,
    swapaxes,
    take_along_axis,
    transpose,
)

# ----------------------------------------------------------------------------
# Arithmetic (broadcasting; the engine sums gradients back to each input's shape)
# ----------------------------------------------------------------------------


def _pair(a, b):
    """Both operands as Tensors; a Python number takes the other operand's dtype."""
    a_t = a if isinstance(a, Tensor) else None
    b_t = b if isinstance(b, Tensor) else None
    a = as_tensor(a, like=b_t)
    b = as_tensor(b, like=a_t)
    _check_broadcast(a.shape, b.shape)
    return a, b


def _check_broadcast(sa, sb, what="shapes"):
    """NumPy's rule, aligned from the right: each pair of sizes is equal or has a 1.

    (Checked in Python: ``np.broadcast_shapes`` costs ~5 us, a visible share of a
    sampling step, where shapes are tiny.)
    """
    for m, n in zip(reversed(sa), reversed(sb)):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"{what} {tuple(sa)} and {tuple(sb)} cannot be broadcast together")


def add(a, b) -> Tensor:
    """$z = a + b$;  $\\partial z/\\partial a = \\partial z/\\partial b = 1$."""
    a, b = _pair(a, b)
    return make_result(a.data + b.data, (a, b), lambda g: (g, g), "add")


def sub(a, b) -> Tensor:
    """$z = a - b$."""
    a, b = _pair(a, b)
    return make_result(a.data - b.data, (a, b), lambda g: (g, -g), "sub")


def mul(a, b) -> Tensor:
    """$z = a b$;  $\\bar a = \\bar z\\, b$, $\\bar b = \\bar z\\, a$."""
    a, b = _pair(a, b)

    def backward(g):
        return (g * b.data if a.requires_grad else None, g * a.data if b.requires_grad else None)

    return make_result(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    """$z = a / b$;  $\\bar a = \\bar z / b$, $\\bar b = -\\bar z\\, a / b^2$."""
    a, b = _pair(a, b)

    def backward(g):
        ga = g / b.data if a.requires_grad else None
        gb = -g * a.data / (b.data * b.data) if b.requires_grad else None
        return ga, gb

    return make_result(a.data / b.data, (a, b), backward, "div")


def power(a, b) -> Tensor:
    """$z = a^b$;  $\\bar a = \\bar z\\, b a^{b-1}$, $\\bar b = \\bar z\\, z \\log a$ (for $a > 0$)."""
    a, b = _pair(a, b)
    out = a.data**b.data

    def backward(g):
        ga = g * b.data * a.data ** (b.data - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * out * np.log(a.data)
        return ga, gb

    return make_result(out, (a, b), backward, "pow")


def neg(a) -> Tensor:
    a = as_tensor(a)
    return make_result(-a.data, (a,), lambda g: (-g,), "neg")


def maximum(a, b) -> Tensor:
    """Elementwise max; at a tie the gradient is split equally (as PyTorch does)."""
    a, b = _pair(a, b)
    out = np.maximum(a.data, b.data)

    def backward(g):
        share_a = (a.data > b.data) + 0.5 * (a.data == b.data)
        return g * share_a, g * (1.0 - share_a)

    return make_result(out, (a, b), backward, "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise min; at a tie the gradient is split equally (as PyTorch does)."""
    a, b = _pair(a, b)
    out = np.minimum(a.data, b.data)

    def backward(g):
        share_a = (a.data < b.data) + 0.5 * (a.data == b.data)
        return g * share_a, g * (1.0 - share_a)

    return make_result(out, (a, b), backward, "minimum")


def astype(a, dtype) -> Tensor:
    a = as_tensor(a)
    return make_result(a.data.astype(dtype), (a,), lambda g: (g.astype(a.dtype),), "astype")


# ----------------------------------------------------------------------------
# Elementwise functions of one tensor
# ----------------------------------------------------------------------------


def exp(a) -> Tensor:
    """$z = e^a$;  $\\bar a = \\bar z\\, z$."""
    a = as_tensor(a)
    out = np.exp(a.data)
    return make_result(out, (a,), lambda g: (g * out,), "exp")


def log(a) -> Tensor:
    """$z = \\log a$;  $\\bar a = \\bar z / a$."""
    a = as_tensor(a)
    return make_result(np.log(a.data), (a,), lambda g: (g / a.data,), "log")


def tanh(a) -> Tensor:
    """$z = \\tanh a$;  $\\bar a = \\bar z (1 - z^2)$."""
    a = as_tensor(a)
    out = np.tanh(a.data)
    return make_result(out, (a,), lambda g: (g * (1 - out * out),), "tanh")


def relu(a) -> Tensor:
    """$z = \\max(a, 0)$;  $\\bar a = \\bar z\\, [a > 0]$."""
    a = as_tensor(a)
    return make_result(np.maximum(a.data, 0), (a,), lambda g: (g * (a.data > 0),), "relu")


def abs(a) -> Tensor:  # noqa: A001 - NumPy's name
    """$z = |a|$;  $\\bar a = \\bar z\\, \\mathrm{sign}(a)$ (0 at 0)."""
    a = as_tensor(a)
    return make_result(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),), "abs")


def sqrt(a) -> Tensor:
    """$z = \\sqrt a$;  $\\bar a = \\bar z / (2 z)$."""
    a = as_tensor(a)
    out = np.sqrt(a.data)
    return make_result(out, (a,), lambda g: (g / (2 * out),), "sqrt")


def clip(a, lo=None, hi=None) -> Tensor:
    """$z = \\min(\\max(a, lo), hi)$;  $\\bar a = \\bar z\\,[lo \\le a \\le hi]$ (PyTorch's clamp).

    ``lo`` and ``hi`` are numbers or arrays that broadcast against ``a`` (constants:
    no gradient flows into them; the result keeps ``a``'s float dtype). Array bounds
    may broadcast ``a`` to a larger shape; the engine sums the gradient back.
    """
    a = as_tensor(a)
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo and hi")
    lo, hi = (data_of(b) for b in (lo, hi))  # constants
    for name, bound in (("lo", lo), ("hi", hi)):
        if np.ndim(bound):  # an array bound: check it broadcasts (a number always does)
            _check_broadcast(np.shape(bound), a.shape, f"clip: {name} of shape")
    out = np.clip(a.data, lo, hi)
    if out.dtype != a.dtype and np.issubdtype(a.dtype, np.floating):
        out = out.astype(a.dtype)  # float64 array bounds do not promote float32 data

    def backward(g):
        inside = np.ones(out.shape, dtype=bool)  # (out), which may be larger than a
        if lo is not None:
            inside &= a.data >= lo
        if hi is not None:
            inside &= a.data <= hi
        return (g * inside,)

    return make_result(out, (a,), backward, "clip")


def where(condition, a, b) -> Tensor:
    """$z = a$ where ``condition`` else $b$; each input gets the gradient where it was chosen."""
    cond = np.asarray(data_of(condition), dtype=bool)
    a, b = _pair(a, b)
    _check_broadcast(cond.shape, np.broadcast_shapes(a.shape, b.shape))
    out = np.where(cond, a.data, b.data)
    return make_result(out, (a, b), lambda g: (g * cond, g * ~cond), "where")


def masked_fill(a, mask, value) -> Tensor:
    """``value`` where ``mask`` is True, else ``a``; no gradient flows through filled places."""
    a = as_tensor(a)
    mask = np.asarray(data_of(mask), dtype=bool)
    _check_broadcast(a.shape, mask.shape)
    if np.broadcast_shapes(a.shape, mask.shape) != a.shape:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} is larger than input {a.shape}")
    out = np.where(mask, np.asarray(value, dtype=a.dtype), a.data)
    return make_result(out, (a,), lambda g: (g * ~mask,), "masked_fill")


# ----------------------------------------------------------------------------
# Matrix product
# ----------------------------------------------------------------------------


def matmul(a, b) -> Tensor:
    """$Z = A B$ with NumPy's batching;  $\\bar A = \\bar Z B^\\top$, $\\bar B = A^\\top \\bar Z$.

    When ``b`` is a plain matrix (a weight), the batch axes of ``a`` are folded into
    its rows so both forward and backward are single 2-D matrix products.
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    if b.ndim == 2 and a.ndim > 2:
        return _matmul_folded(a, b)
    try:
        out = a.data @ b.data
    except ValueError:
        raise ValueError(
            f"matmul: batch shapes of {a.shape} and {b.shape} do not broadcast"
        ) from None

    def backward(g):
        # Promote 1-D operands the way NumPy does, so the 2-D formulas apply; the engine
        # then sums the gradient over any batch axes the operand was broadcast along.
        A = a.data[None, :] if a.ndim == 1 else a.data  # (.., n, k)
        B = b.data[:, None] if b.ndim == 1 else b.data  # (.., k, m)
        G = g[..., None] if b.ndim == 1 else g
        G = G[..., None, :] if a.ndim == 1 else G  # (.., n, m)
        ga = G @ np.swapaxes(B, -1, -2) if a.requires_grad else None  # (.., n, k)
        gb = np.swapaxes(A, -1, -2) @ G if b.requires_grad else None  # (.., k, m)
        if gb is not None and b.ndim == 1:
            gb = gb[..., 0]
        return ga, gb

    return make_result(out, (a, b), backward, "matmul")


def _matmul_folded(a: Tensor, b: Tensor) -> Tensor:
    k, m = b.shape
    a2 = a.data.reshape(-1, k)  # (N, k) with N = prod(batch axes)
    out = (a2 @ b.data).reshape(a.shape[:-1] + (m,))

    def backward(g):
        g2 = g.reshape(-1, m)  # (N, m)
        ga = (g2 @ b.data.T).reshape(a.shape) if a.requires_grad else None
        gb = a2.T @ g2 if b.requires_grad else None
        return ga, gb

    return make_result(out, (a, b), backward, "matmul")


# ----------------------------------------------------------------------------
# Tensor's operators and NumPy-named methods: one table, bound once
# ----------------------------------------------------------------------------


def _reflected(op):
    """``other (op) self``: what Python calls for ``2 * x`` or ``ndarray + x``."""

    def method(self, other):
        return op(other, self)

    method.__name__ = f"r{op.__name__}"
    return method


def _comparison(compare):
    """``x < y`` and friends give a boolean Tensor that carries no gradient (a mask)."""

    def method(self, other):
        return Tensor(compare(self.data, data_of(other)))

    method.__name__ = compare.__name__
    return method


# ``x.name(...)`` calls ``name(x, ...)``: each method is the op with the tensor first.
TENSOR_METHODS = {
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": sub, "__rsub__": _reflected(sub),
    "__mul__": mul, "__rmul__": _reflected(mul),
    "__truediv__": div, "__rtruediv__": _reflected(div),
    "__pow__": power, "__rpow__": _reflected(power),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": neg, "__abs__": abs, "__getitem__": getitem,
    "__lt__": _comparison(np.less), "__le__": _comparison(np.less_equal),
    "__gt__": _comparison(np.greater), "__ge__": _comparison(np.greater_equal),
    "sum": sum, "mean": mean, "max": max, "min": min, "var": var,
    "exp": exp, "log": log, "tanh": tanh, "relu": relu, "abs": abs, "sqrt": sqrt, "clip": clip,
    "astype": astype, "reshape": reshape, "transpose": transpose, "swapaxes": swapaxes,
    "broadcast_to": broadcast_to, "expand": expand, "masked_fill": masked_fill,
    "T": property(transpose),  # x.T reverses every axis, as ndarray.T does
}  # fmt: skip

for _name, _method in TENSOR_METHODS.items():
    setattr(Tensor, _name, _method)
