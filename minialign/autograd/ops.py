"""The differentiable operations, with NumPy's names and semantics.

Each op computes its output with NumPy and returns a closure ``backward(g)`` that
maps ``g = dL/d(out)`` to ``dL/d(input)`` for each input. A closure may return a
gradient shaped like the *output*: the engine un-broadcasts it (see
`engine.unbroadcast`). The derivative each closure implements is written above it.
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, make_result

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


def _check_broadcast(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(f"shapes {sa} and {sb} cannot be broadcast together") from None


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
    """$z = \\min(\\max(a, lo), hi)$;  $\\bar a = \\bar z\\,[lo \\le a \\le hi]$ (PyTorch's clamp)."""
    a = as_tensor(a)
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo and hi")
    out = np.clip(a.data, lo, hi)

    def backward(g):
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a.data >= lo
        if hi is not None:
            inside &= a.data <= hi
        return (g * inside,)

    return make_result(out, (a,), backward, "clip")


def where(condition, a, b) -> Tensor:
    """$z = a$ where ``condition`` else $b$; each input gets the gradient where it was chosen."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    a, b = _pair(a, b)
    _check_broadcast(cond.shape, np.broadcast_shapes(a.shape, b.shape))
    out = np.where(cond, a.data, b.data)
    return make_result(out, (a, b), lambda g: (g * cond, g * ~cond), "where")


def masked_fill(a, mask, value) -> Tensor:
    """``value`` where ``mask`` is True, else ``a``; no gradient flows through filled places."""
    a = as_tensor(a)
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
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
# Reductions
# ----------------------------------------------------------------------------


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(ax % ndim if ndim else ax for ax in axes))


def _count(shape, axis) -> int:
    """How many values a reduction over ``axis`` combines into each output."""
    return int(np.prod([shape[ax] for ax in _normalize_axis(axis, len(shape))]))


def _expand_reduced(g, shape, axis, keepdims):
    """Give a reduced gradient back its size-1 axes, so it broadcasts against the input."""
    if keepdims or g.ndim == len(shape):
        return g
    return np.expand_dims(g, _normalize_axis(axis, len(shape)))


def sum(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    """$z = \\sum_i a_i$;  $\\bar a_i = \\bar z$ (broadcast back)."""
    a = as_tensor(a)
    out = np.sum(a.data, axis=axis, keepdims=keepdims)

    def backward(g):
        return (np.broadcast_to(_expand_reduced(g, a.shape, axis, keepdims), a.shape),)

    return make_result(np.asarray(out), (a,), backward, "sum")


def mean(a, axis=None, keepdims=False) -> Tensor:
    """$z = \\frac1n \\sum_i a_i$;  $\\bar a_i = \\bar z / n$."""
    a = as_tensor(a)
    out = np.mean(a.data, axis=axis, keepdims=keepdims)
    n = _count(a.shape, axis)

    def backward(g):
        return (np.broadcast_to(_expand_reduced(g, a.shape, axis, keepdims) / n, a.shape),)

    return make_result(np.asarray(out), (a,), backward, "mean")


def _extremum(a, axis, keepdims, fn, name):
    a = as_tensor(a)
    out = np.asarray(fn(a.data, axis=axis, keepdims=keepdims))

    def backward(g):
        # The gradient goes to the arg-extreme; ties share it equally (like torch.amax).
        hit = a.data == _expand_reduced(out, a.shape, axis, keepdims)
        count = hit.sum(axis=axis, keepdims=True)
        return (hit * (_expand_reduced(g, a.shape, axis, keepdims) / count),)

    return make_result(out, (a,), backward, name)


def max(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    return _extremum(a, axis, keepdims, np.max, "max")


def min(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    return _extremum(a, axis, keepdims, np.min, "min")


def var(a, axis=None, ddof=0, keepdims=False) -> Tensor:
    """$z = \\frac{1}{n - \\mathrm{ddof}} \\sum_i (a_i - \\bar a)^2$;
    $\\bar a_i = \\bar z \\cdot 2 (a_i - \\bar a) / (n - \\mathrm{ddof})$."""
    a = as_tensor(a)
    centred = a.data - a.data.mean(axis=axis, keepdims=True)
    n = _count(a.shape, axis)
    if n - ddof <= 0:
        raise ValueError(
            f"var: {n} values along axis {axis} with ddof={ddof} leave no degrees of freedom"
        )
    out = np.var(a.data, axis=axis, ddof=ddof, keepdims=keepdims)

    def backward(g):
        return (_expand_reduced(g, a.shape, axis, keepdims) * centred * (2.0 / (n - ddof)),)

    return make_result(np.asarray(out), (a,), backward, "var")


# ----------------------------------------------------------------------------
# Shapes: reshape, transpose, broadcast, join, split, index, gather
# ----------------------------------------------------------------------------


def reshape(a, *shape) -> Tensor:
    a = as_tensor(a)
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape {a.shape} ({a.size} values) into {shape}"
        ) from None
    return make_result(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def transpose(a, *axes) -> Tensor:
    a = as_tensor(a)
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    axes = tuple(ax % a.ndim for ax in axes) if axes else tuple(reversed(range(a.ndim)))
    inverse = tuple(np.argsort(axes))
    return make_result(
        np.transpose(a.data, axes), (a,), lambda g: (np.transpose(g, inverse),), "transpose"
    )


def swapaxes(a, axis1, axis2) -> Tensor:
    a = as_tensor(a)
    out = np.swapaxes(a.data, axis1, axis2)
    return make_result(out, (a,), lambda g: (np.swapaxes(g, axis1, axis2),), "swapaxes")


def broadcast_to(a, shape) -> Tensor:
    """A read-only broadcast view; the engine sums the gradient back to ``a.shape``."""
    a = as_tensor(a)
    try:
        out = np.broadcast_to(a.data, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast {a.shape} to {tuple(shape)}") from None
    return make_result(out, (a,), lambda g: (g,), "broadcast_to")


expand = broadcast_to


def concatenate(tensors, axis=0) -> Tensor:
    tensors = tuple(as_tensor(t) for t in tensors)
    out = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return make_result(out, tensors, lambda g: tuple(np.split(g, bounds, axis=axis)), "concatenate")


def stack(tensors, axis=0) -> Tensor:
    tensors = tuple(as_tensor(t) for t in tensors)
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g):
        return tuple(np.take(g, i, axis=axis) for i in range(len(tensors)))

    return make_result(out, tensors, backward, "stack")


def split(a, indices_or_sections, axis=0) -> list[Tensor]:
    """Like ``np.split``: a list of pieces, each a slice of ``a`` (so each is differentiable)."""
    a = as_tensor(a)
    pieces = np.split(np.arange(a.shape[axis]), indices_or_sections)
    index = [slice(None)] * a.ndim
    out = []
    for piece in pieces:
        start = int(piece[0]) if len(piece) else 0
        index[axis] = slice(start, start + len(piece))
        out.append(getitem(a, tuple(index)))
    return out


def _is_basic_index(index) -> bool:
    """Slices, ints, None and Ellipsis never repeat an element; arrays and lists may."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


def getitem(a, index) -> Tensor:
    """``a[index]`` with NumPy's basic and fancy indexing.

    Backward scatters ``g`` into zeros of ``a``'s shape. Fancy indices may repeat an
    element (``a[[0, 0]]``); ``np.add.at`` then *adds* each copy's gradient.
    """
    a = as_tensor(a)
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    out = a.data[index]
    basic = _is_basic_index(index)

    def backward(g):
        grad = np.zeros(a.shape, dtype=g.dtype)
        if basic:
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return (grad,)

    return make_result(np.asarray(out), (a,), backward, "getitem")


def take_along_axis(a, indices, axis) -> Tensor:
    """Gather: ``out[..., j, ...] = a[..., indices[..., j, ...], ...]`` along ``axis``.

    The backward scatters with ``np.add.at``, so a repeated index accumulates.
    """
    a = as_tensor(a)
    indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {indices.dtype}")
    out = np.take_along_axis(a.data, indices, axis=axis)
    axis = axis % a.ndim

    def backward(g):
        # Address every output element's source in ``a``; axes where ``a`` was
        # broadcast (size 1) all point at index 0, so np.add.at sums them too.
        grids = list(np.ogrid[tuple(slice(n) for n in out.shape)])
        for d, n in enumerate(a.shape):
            if n == 1 and out.shape[d] != 1 and d != axis:
                grids[d] = np.zeros_like(grids[d])
        grids[axis] = np.broadcast_to(indices, out.shape)
        grad = np.zeros(a.shape, dtype=g.dtype)
        np.add.at(grad, tuple(grids), g)
        return (grad,)

    return make_result(out, (a,), backward, "take_along_axis")


gather = take_along_axis
