"""The op registry: (name, minialign op, NumPy reference, input strategy, PyTorch equivalent).

`tests/test_ops.py` checks every case's forward against NumPy and its backward
against central differences; `tests/test_torch_crosscheck.py` checks the same
cases against PyTorch's autograd. Input strategies live in `tests/strategies.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from strategies import (
    ANY,
    NONZERO,
    OFF_ZERO,
    POSITIVE,
    basic_index_inputs,
    binary,
    broadcast_inputs,
    clip_bounds_inputs,
    cross_entropy_inputs,
    dropout_inputs,
    embedding_inputs,
    fancy_index_inputs,
    floats,
    join_inputs,
    layer_norm_inputs,
    masked_fill_inputs,
    matmul_inputs,
    reduction,
    reshape_inputs,
    separated_pair,
    softmax_inputs,
    split_inputs,
    swapaxes_inputs,
    take_along_inputs,
    transpose_inputs,
    unary,
    where_inputs,
)  # fmt: skip

import minialign as ma
import minialign.functional as F


@dataclass(frozen=True)
class OpCase:
    """One differentiable op.

    ``inputs`` draws ``(arrays, params)``: a tuple of float64 arrays (the
    differentiable inputs) and a dict of fixed parameters (axes, indices, masks).
    ``op(*tensors, **params)`` is minialign, ``ref(*arrays, **params)`` NumPy, and
    ``torch(T, *tensors, **params)`` PyTorch (``T`` is the torch module), or None.
    """

    name: str
    op: Callable
    ref: Callable
    inputs: st.SearchStrategy
    torch: Callable | None = None
    tags: tuple = field(default=())


def _torch_dims(x, axis):
    return tuple(range(x.ndim)) if axis is None else axis


# -- NumPy references for the fused ops (naive formulas; inputs are moderate) ----


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_cross_entropy(logits, targets, mask):
    logp = np.log(np_softmax(logits, -1))
    picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    w = np.ones(targets.shape) if mask is None else mask
    return -(picked * w).sum() / w.sum()


def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def np_layer_norm(x, *wb, has_weight, has_bias, eps=1e-5):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    if has_weight:
        y = y * wb[0]
    if has_bias:
        y = y + wb[-1]
    return y


def ma_layer_norm(x, *wb, has_weight, has_bias):
    weight = wb[0] if has_weight else None
    bias = wb[-1] if has_bias else None
    return F.layer_norm(x, weight, bias)


def torch_layer_norm(T, x, *wb, has_weight, has_bias):
    weight = wb[0] if has_weight else None
    bias = wb[-1] if has_bias else None
    return T.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)


def torch_cross_entropy(T, logits, targets, mask):
    V = logits.shape[-1]
    per_item = T.nn.functional.cross_entropy(
        logits.reshape(-1, V), T.as_tensor(targets.reshape(-1)), reduction="none"
    )
    if mask is None:
        return per_item.mean()
    w = T.as_tensor(mask.reshape(-1))
    return (per_item * w).sum() / w.sum()


def np_dropout(x, p, seed):
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return x * keep / (1 - p)


def _split_op(x, cuts, axis):
    """Split, then glue the pieces back scaled by 1, 2, 3, ... so a misrouted gradient shows."""
    pieces = ma.split(x, list(cuts), axis=axis)
    return ma.concatenate([p * float(k + 1) for k, p in enumerate(pieces)], axis=axis)


def _split_ref(x, cuts, axis):
    pieces = np.split(x, list(cuts), axis=axis)
    return np.concatenate([p * float(k + 1) for k, p in enumerate(pieces)], axis=axis)


def _split_torch(T, x, cuts, axis):
    sizes = np.diff([0, *cuts, x.shape[axis]]).tolist()
    pieces = T.split(x, sizes, dim=axis)
    return T.cat([p * float(k + 1) for k, p in enumerate(pieces)], dim=axis)


def _torch_index(T, x, index):
    """Any NumPy index, in torch: NumPy finds each output's source position, torch gathers it."""
    source = np.arange(x.numel()).reshape(tuple(x.shape))[index]
    return x.reshape(-1)[T.as_tensor(np.array(source, order="C"))]


def _mask_t(T, m):
    return T.as_tensor(np.array(m, order="C"))


OP_CASES: list[OpCase] = [
    # -- arithmetic: tensor with tensor, and Python scalars on either side ------------
    OpCase("add", lambda a, b: a + b, np.add, binary(), lambda T, a, b: a + b),
    OpCase("sub", lambda a, b: a - b, np.subtract, binary(), lambda T, a, b: a - b),
    OpCase("mul", lambda a, b: a * b, np.multiply, binary(), lambda T, a, b: a * b),
    OpCase("div", lambda a, b: a / b, np.divide, binary(ANY, NONZERO), lambda T, a, b: a / b),
    OpCase(
        "pow", lambda a, b: a**b, np.power, binary(floats(0.5, 2.0), floats(-2, 2)),
        lambda T, a, b: a**b,
    ),
    OpCase("scalar+x", lambda x: 2.5 + x, lambda x: 2.5 + x, unary(), lambda T, x: 2.5 + x),
    OpCase("x-scalar", lambda x: x - 1.5, lambda x: x - 1.5, unary(), lambda T, x: x - 1.5),
    OpCase("scalar-x", lambda x: 2.0 - x, lambda x: 2.0 - x, unary(), lambda T, x: 2.0 - x),
    OpCase("scalar*x", lambda x: 3.0 * x, lambda x: 3.0 * x, unary(), lambda T, x: 3.0 * x),
    OpCase("x/scalar", lambda x: x / 4.0, lambda x: x / 4.0, unary(), lambda T, x: x / 4.0),
    OpCase("scalar/x", lambda x: 2.0 / x, lambda x: 2.0 / x, unary(NONZERO), lambda T, x: 2.0 / x),
    OpCase("x**3", lambda x: x**3, lambda x: x**3, unary(), lambda T, x: x**3),
    OpCase("x**0.5", lambda x: x**0.5, np.sqrt, unary(POSITIVE), lambda T, x: x**0.5),
    OpCase("x**-2", lambda x: x**-2, lambda x: x**-2.0, unary(NONZERO), lambda T, x: x**-2),
    OpCase("2**x", lambda x: 2**x, lambda x: 2.0**x, unary(), lambda T, x: 2**x),
    OpCase("neg", lambda x: -x, np.negative, unary(), lambda T, x: -x),
    OpCase("matmul", lambda a, b: a @ b, np.matmul, matmul_inputs(), lambda T, a, b: a @ b),
    # -- elementwise -----------------------------------------------------------------
    OpCase("exp", ma.exp, np.exp, unary(), lambda T, x: T.exp(x)),
    OpCase("log", ma.log, np.log, unary(POSITIVE), lambda T, x: T.log(x)),
    OpCase("tanh", ma.tanh, np.tanh, unary(), lambda T, x: T.tanh(x)),
    OpCase("relu", ma.relu, lambda x: np.maximum(x, 0), unary(OFF_ZERO), lambda T, x: T.relu(x)),
    OpCase("abs", ma.abs, np.abs, unary(OFF_ZERO), lambda T, x: T.abs(x)),
    OpCase("sqrt", ma.sqrt, np.sqrt, unary(POSITIVE), lambda T, x: T.sqrt(x)),
    OpCase("maximum", ma.maximum, np.maximum, separated_pair(), lambda T, a, b: T.maximum(a, b)),
    OpCase("minimum", ma.minimum, np.minimum, separated_pair(), lambda T, a, b: T.minimum(a, b)),
    OpCase(
        "clip", lambda x: ma.clip(x, -1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0),
        unary(floats(avoid=(-1.0, 1.0))), lambda T, x: T.clamp(x, -1.0, 1.0),
    ),
    OpCase(
        "clip_lo", lambda x: x.clip(0.5), lambda x: np.maximum(x, 0.5),
        unary(floats(avoid=(0.5,))), lambda T, x: T.clamp(x, min=0.5),
    ),
    OpCase(
        "clip_arrays", lambda x, lo, hi: ma.clip(x, lo, hi), lambda x, lo, hi: np.clip(x, lo, hi),
        clip_bounds_inputs(),
        lambda T, x, lo, hi: T.clamp(x, min=_mask_t(T, lo), max=_mask_t(T, hi)),
    ),
    OpCase(
        "where", lambda a, b, cond: ma.where(cond, a, b), lambda a, b, cond: np.where(cond, a, b),
        where_inputs(), lambda T, a, b, cond: T.where(_mask_t(T, cond), a, b),
    ),
    OpCase(
        "masked_fill", lambda x, mask, value: x.masked_fill(mask, value),
        lambda x, mask, value: np.where(mask, value, x), masked_fill_inputs(),
        lambda T, x, mask, value: x.masked_fill(_mask_t(T, mask), value),
    ),
    # -- reductions ------------------------------------------------------------------
    OpCase(
        "sum", lambda x, axis, keepdims: x.sum(axis, keepdims), np.sum, reduction(),
        lambda T, x, axis, keepdims: T.sum(x, _torch_dims(x, axis), keepdim=keepdims),
    ),
    OpCase(
        "mean", lambda x, axis, keepdims: x.mean(axis, keepdims), np.mean, reduction(),
        lambda T, x, axis, keepdims: T.mean(x, _torch_dims(x, axis), keepdim=keepdims),
    ),
    OpCase(
        "max", lambda x, axis, keepdims: x.max(axis, keepdims), np.max, reduction(distinct=True),
        lambda T, x, axis, keepdims: T.amax(x, _torch_dims(x, axis), keepdim=keepdims),
    ),
    OpCase(
        "min", lambda x, axis, keepdims: x.min(axis, keepdims), np.min, reduction(distinct=True),
        lambda T, x, axis, keepdims: T.amin(x, _torch_dims(x, axis), keepdim=keepdims),
    ),
    OpCase(
        "var", lambda x, axis, keepdims, ddof: x.var(axis, ddof, keepdims),
        lambda x, axis, keepdims, ddof: np.var(x, axis=axis, ddof=ddof, keepdims=keepdims),
        reduction(ddof=True),
        lambda T, x, axis, keepdims, ddof: T.var(
            x, _torch_dims(x, axis), correction=ddof, keepdim=keepdims
        ),
    ),
    # -- shapes ----------------------------------------------------------------------
    OpCase(
        "reshape", lambda x, shape: x.reshape(shape), lambda x, shape: x.reshape(shape),
        reshape_inputs(), lambda T, x, shape: x.reshape(shape),
    ),
    OpCase(
        "transpose", lambda x, axes: x.transpose(*axes), lambda x, axes: x.transpose(axes),
        transpose_inputs(), lambda T, x, axes: x.permute(axes),
    ),
    OpCase("T", lambda x: x.T, lambda x: x.T, unary(shape=None), lambda T, x: x.permute(
        tuple(reversed(range(x.ndim))))),
    OpCase(
        "swapaxes", lambda x, a, b: x.swapaxes(a, b), lambda x, a, b: np.swapaxes(x, a, b),
        swapaxes_inputs(), lambda T, x, a, b: T.swapaxes(x, a, b),
    ),
    OpCase(
        "broadcast_to", lambda x, shape: x.broadcast_to(shape), np.broadcast_to,
        broadcast_inputs(), lambda T, x, shape: x.expand(shape),
    ),
    OpCase(
        "expand", lambda x, shape: ma.expand(x, shape), np.broadcast_to, broadcast_inputs(),
        lambda T, x, shape: x.expand(shape),
    ),
    OpCase(
        "concatenate", lambda *xs, axis: ma.concatenate(xs, axis=axis),
        lambda *xs, axis: np.concatenate(xs, axis=axis), join_inputs(same_shape=False),
        lambda T, *xs, axis: T.cat(xs, dim=axis),
    ),
    OpCase(
        "stack", lambda *xs, axis: ma.stack(xs, axis=axis),
        lambda *xs, axis: np.stack(xs, axis=axis), join_inputs(same_shape=True),
        lambda T, *xs, axis: T.stack(xs, dim=axis),
    ),
    OpCase("split", _split_op, _split_ref, split_inputs(), _split_torch),
    OpCase(
        "getitem_basic", lambda x, index: x[index], lambda x, index: x[index],
        basic_index_inputs(), _torch_index,
    ),
    OpCase(
        "getitem_fancy", lambda x, index: x[index], lambda x, index: x[index],
        fancy_index_inputs(), _torch_index,
    ),
    OpCase(
        "take_along_axis", lambda x, indices, axis: ma.take_along_axis(x, indices, axis),
        lambda x, indices, axis: np.take_along_axis(x, indices, axis), take_along_inputs(),
        lambda T, x, indices, axis: T.take_along_dim(x, T.as_tensor(indices), dim=axis),
    ),
    # -- fused ops (minialign.functional) -----------------------------------------------
    OpCase(
        "softmax", lambda x, axis: F.softmax(x, axis), np_softmax, softmax_inputs(),
        lambda T, x, axis: T.softmax(x, dim=axis),
    ),
    OpCase(
        "log_softmax", lambda x, axis: F.log_softmax(x, axis),
        lambda x, axis: np.log(np_softmax(x, axis)), softmax_inputs(),
        lambda T, x, axis: T.log_softmax(x, dim=axis),
    ),
    OpCase(
        "logsumexp", lambda x, axis, keepdims: F.logsumexp(x, axis, keepdims),
        lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims)),
        softmax_inputs(keepdims=True),
        lambda T, x, axis, keepdims: T.logsumexp(x, dim=axis, keepdim=keepdims),
    ),
    OpCase("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), unary(), lambda T, x: T.sigmoid(x)),
    OpCase(
        "logsigmoid", F.logsigmoid, lambda x: -np.log1p(np.exp(-x)), unary(),
        lambda T, x: T.nn.functional.logsigmoid(x),
    ),
    OpCase(
        "softplus", F.softplus, lambda x: np.log1p(np.exp(x)), unary(),
        lambda T, x: T.nn.functional.softplus(x),
    ),
    OpCase(
        "cross_entropy", lambda x, targets, mask: F.cross_entropy(x, targets, mask),
        np_cross_entropy, cross_entropy_inputs(), torch_cross_entropy,
    ),
    OpCase(
        "gelu", F.gelu, np_gelu, unary(floats(-5, 5)),
        lambda T, x: T.nn.functional.gelu(x, approximate="tanh"),
    ),
    OpCase("layer_norm", ma_layer_norm, np_layer_norm, layer_norm_inputs(), torch_layer_norm),
    OpCase(
        "embedding", lambda w, ids: F.embedding(w, ids), lambda w, ids: w[ids],
        embedding_inputs(),
        lambda T, w, ids: T.nn.functional.embedding(T.as_tensor(np.asarray(ids)), w),
    ),
    OpCase(
        "dropout", lambda x, p, seed: F.dropout(x, p, rng=np.random.default_rng(seed)),
        np_dropout, dropout_inputs(), None,  # torch draws its own mask: no cross-check
    ),
]  # fmt: skip

CASES_BY_NAME = {case.name: case for case in OP_CASES}


def as_leaves(arrays):
    """Float64 leaves that keep each array's memory layout (a view stays a view)."""
    return [ma.Tensor(a, requires_grad=True) for a in arrays]
