"""Reductions: sum, mean, max, min, var over an axis (or all of them).

The forward is NumPy's; the backward gives the reduced gradient its size-1 axes
back (`_expand_reduced`) so it broadcasts against the input, then multiplies by
the derivative of the reduction, written above each closure.
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, make_result


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
    """Like ``np.max``; the gradient goes to the maximal entries (shared equally on ties)."""
    return _extremum(a, axis, keepdims, np.max, "max")


def min(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    """Like ``np.min``; the gradient goes to the minimal entries (shared equally on ties)."""
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
