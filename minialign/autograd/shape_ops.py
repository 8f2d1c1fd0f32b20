"""Shape and indexing ops: reshape, transpose, broadcast, join, split, index, gather.

None of these changes a value, only where it sits, so each backward moves the
gradient back to where its value came from: the inverse reshape or permutation,
the pieces of a join, or a scatter into zeros for an index (adding where an index
repeats).
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, data_of, make_result


def reshape(a, *shape) -> Tensor:
    """Like ``np.reshape``: the same values in a new shape (``reshape(a, 2, 3)`` or ``(2, 3)``)."""
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
    """Like ``np.transpose``: permute the axes (reverse them when none are given)."""
    a = as_tensor(a)
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    axes = tuple(ax % a.ndim for ax in axes) if axes else tuple(reversed(range(a.ndim)))
    inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))  # where each axis went
    return make_result(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),), "transpose")


def swapaxes(a, axis1, axis2) -> Tensor:
    """Like ``np.swapaxes``: exchange two axes."""
    a = as_tensor(a)
    out = a.data.swapaxes(axis1, axis2)
    return make_result(out, (a,), lambda g: (g.swapaxes(axis1, axis2),), "swapaxes")


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
    """Like ``np.concatenate``: join tensors along an existing axis."""
    tensors = tuple(as_tensor(t) for t in tensors)
    out = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return make_result(out, tensors, lambda g: tuple(np.split(g, bounds, axis=axis)), "concatenate")


def stack(tensors, axis=0) -> Tensor:
    """Like ``np.stack``: join tensors of one shape along a new axis."""
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
        index = tuple(data_of(i) for i in index)
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
    indices = np.asarray(data_of(indices))
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
