"""Fused operations: one node in the graph each, with a backward derived by hand.

A composite such as ``exp(x) / exp(x).sum()`` records several nodes and keeps every
intermediate alive; the fused version records one node, keeps only what its
backward needs, and is numerically stable for logits as large as $\\pm 10^4$
(every exponent is taken of a non-positive number). Tests prove each fused op
equal to its composite form, in value and gradient, and to central differences.

Import as ``import minialign.functional as F``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .attention import causal_attention, causal_self_attention
from .engine import Tensor, as_tensor, data_of, get_rng, is_grad_enabled, make_result
from .linear import linear
from .ops import exp, log, maximum, minimum, relu, sqrt, tanh, where
from .token_logprobs import token_logprobs

__all__ = [
    "softmax", "log_softmax", "logsumexp", "sigmoid", "logsigmoid", "softplus",
    "cross_entropy", "gelu", "layer_norm", "embedding", "dropout",
    "causal_attention", "causal_self_attention", "linear", "token_logprobs",
    # plain ops, re-exported for convenience
    "exp", "log", "maximum", "minimum", "relu", "sqrt", "tanh", "where",
]  # fmt: skip


def _shifted_exp(x: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(m, e, s)``: $m = \\max x$, $e = e^{x - m}$, $s = \\sum e$ along ``axis`` (kept).

    $z = x - m \\le 0$ is rounded once, relative to itself (tiny wherever $e^z$ matters),
    $e \\in [0, 1]$ never overflows and $s \\in [1, n]$, so $\\mathrm{softmax}(x) = e / s$
    and $\\log\\mathrm{softmax}(x) = z - \\log s$ keep full precision even at
    $x = \\pm 10^4$ in float32. (Rounding $\\log \\sum_j e^{x_j} \\approx 10^4$ first and
    taking ``exp(x - lse)`` would lose ~4 digits: float32 spacing at $10^4$ is $10^{-3}$.)
    A row of all $-\\infty$ gets $m = 0$, so $e = 0$ and $s = 0$ (see `softmax`).
    """
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    return m, e, np.sum(e, axis=axis, keepdims=True)


def softmax(x, axis: int = -1) -> Tensor:
    """$y_i = e^{x_i} / \\sum_j e^{x_j}$;
    $\\bar x = y \\odot (\\bar y - \\langle \\bar y, y \\rangle)$ (the Jacobian $\\mathrm{diag}(y) - y y^\\top$).

    A row whose entries are all $-\\infty$ (every position masked) has no distribution:
    its output is NaN, as in PyTorch, and under ``ma.detect_anomaly()`` that NaN raises
    a ``FloatingPointError`` naming ``softmax``. A fully masked row is a bug upstream
    (a causal mask always leaves a query its own key), so it is not patched to zeros.
    """
    x = as_tensor(x)
    _, e, s = _shifted_exp(x.data, axis)
    y = e / s  # (0 / 0 = NaN, with NumPy's "invalid value" warning, only for an all -inf row)

    def backward(g):
        return (y * (g - np.sum(g * y, axis=axis, keepdims=True)),)

    return make_result(y, (x,), backward, "softmax")


def log_softmax(x, axis: int = -1) -> Tensor:
    """$y_i = x_i - \\log \\sum_j e^{x_j}$;  $\\bar x = \\bar y - \\mathrm{softmax}(x) \\sum_j \\bar y_j$."""
    x = as_tensor(x)
    m, e, s = _shifted_exp(x.data, axis)
    y = (x.data - m) - np.log(s)
    p = e / s  # softmax(x), from the shifted exponentials (exact, unlike exp(y))

    def backward(g):
        return (g - p * np.sum(g, axis=axis, keepdims=True),)

    return make_result(y, (x,), backward, "log_softmax")


def logsumexp(x, axis: int = -1, keepdims: bool = False) -> Tensor:
    """$y = \\log \\sum_j e^{x_j}$ (computed as $m + \\log \\sum_j e^{x_j - m}$, $m = \\max_j x_j$);
    $\\bar x = \\bar y\\, \\mathrm{softmax}(x)$."""
    x = as_tensor(x)
    m, e, s = _shifted_exp(x.data, axis)
    out = m + np.log(s)

    def backward(g):
        g = g if keepdims else np.expand_dims(g, axis)
        return (g * (e / s),)

    result = out if keepdims else np.squeeze(out, axis=axis)
    return make_result(result, (x,), backward, "logsumexp")


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid(x) -> Tensor:
    """$\\sigma(x) = 1 / (1 + e^{-x})$;  $\\bar x = \\bar y\\, \\sigma(x) (1 - \\sigma(x))$."""
    x = as_tensor(x)
    y = _sigmoid_np(x.data)
    return make_result(y, (x,), lambda g: (g * y * (1 - y),), "sigmoid")


def logsigmoid(x) -> Tensor:
    """$\\log \\sigma(x) = \\min(x, 0) - \\log(1 + e^{-|x|})$;  $\\bar x = \\bar y\\, \\sigma(-x)$.

    The form on the left never exponentiates a positive number, so it is exact
    for $x = \\pm 10^4$ where ``log(sigmoid(x))`` would give ``-inf``.
    """
    x = as_tensor(x)
    y = np.minimum(x.data, 0) - np.log1p(np.exp(-np.abs(x.data)))
    return make_result(y, (x,), lambda g: (g * _sigmoid_np(-x.data),), "logsigmoid")


def softplus(x) -> Tensor:
    """$\\log(1 + e^x) = \\max(x, 0) + \\log(1 + e^{-|x|})$;  $\\bar x = \\bar y\\, \\sigma(x)$."""
    x = as_tensor(x)
    y = np.maximum(x.data, 0) + np.log1p(np.exp(-np.abs(x.data)))
    return make_result(y, (x,), lambda g: (g * _sigmoid_np(x.data),), "softplus")


def cross_entropy(logits, targets, mask=None) -> Tensor:
    """Mean negative log-likelihood of integer ``targets`` under ``softmax(logits)``.

    $$L = \\frac{1}{\\sum_n m_n} \\sum_n m_n \\big(-\\log \\mathrm{softmax}(z_n)_{t_n}\\big), \\qquad
      \\frac{\\partial L}{\\partial z_n} = \\frac{m_n}{\\sum m} \\big(\\mathrm{softmax}(z_n) - \\mathrm{onehot}(t_n)\\big)$$

    ``logits`` (..., V); ``targets`` (...) integers in [0, V); ``mask`` (...) of 0/1
    weights (padding = 0). Returns a scalar.

    A NaN (or $+\\infty$) logit gives a NaN loss: there is no check here, to keep the
    training hot path fast. The training loops pass every loss through
    ``train.run.check_finite``, which turns it into a ``FloatingPointError``;
    ``ma.detect_anomaly()`` names the op that made the NaN.
    """
    logits = as_tensor(logits)
    targets = np.asarray(data_of(targets))
    V = logits.shape[-1]
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets shape {targets.shape} != logits shape {logits.shape[:-1]} (logits without its last axis)"
        )
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers, got dtype {targets.dtype}")
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(
            f"cross_entropy: targets must lie in [0, {V}), got range [{targets.min()}, {targets.max()}]"
        )
    weights = (
        np.ones(targets.shape, logits.dtype)
        if mask is None
        else np.asarray(data_of(mask), dtype=logits.dtype)
    )
    if weights.shape != targets.shape:
        raise ValueError(
            f"cross_entropy: mask shape {weights.shape} != targets shape {targets.shape}"
        )
    total = weights.sum()
    if total <= 0:
        raise ValueError("cross_entropy: mask selects no items (its sum is 0)")

    m, e, s = _shifted_exp(logits.data, -1)  # (..., 1), (..., V), (..., 1)
    x_t = np.take_along_axis(logits.data, targets[..., None], axis=-1)  # (..., 1)
    picked = ((x_t - m) - np.log(s))[..., 0]  # log softmax(z_n)_{t_n}, (...)
    loss = -(picked * weights).sum() / total

    def backward(g):
        grad = e / s  # softmax, from the shifted exponentials (exact at logits of ±1e4)
        np.put_along_axis(
            grad, targets[..., None], np.take_along_axis(grad, targets[..., None], -1) - 1, -1
        )
        grad *= (g * weights / total)[..., None]
        return (grad,)

    return make_result(np.asarray(loss, dtype=logits.dtype), (logits,), backward, "cross_entropy")


_GELU_C = np.sqrt(2 / np.pi)


def gelu(x) -> Tensor:
    """GELU, the tanh approximation GPT-2 uses:
    $y = \\tfrac12 x (1 + \\tanh u)$, $u = \\sqrt{2/\\pi}\\,(x + 0.044715 x^3)$;
    $\\bar x = \\bar y \\big[\\tfrac12 (1 + \\tanh u) + \\tfrac12 x (1 - \\tanh^2 u)\\sqrt{2/\\pi}(1 + 3 \\cdot 0.044715 x^2)\\big]$."""
    x = as_tensor(x)
    floating = x.dtype.kind == "f"  # (faster than np.issubdtype on a hot path)
    c = x.dtype.type(_GELU_C) if floating else _GELU_C
    xd = x.data if floating else x.data.astype(np.float64)
    t = np.multiply(xd, xd, out=np.empty_like(xd))  # x*x, not x**3: float32 ** calls powf
    t *= 0.044715
    t += 1
    t *= xd
    t *= c  # u = c x (1 + 0.044715 x^2)
    np.tanh(t, out=t)  # t = tanh u
    # Without a backward to feed, t is not needed again: y overwrites it (one array of
    # x's size less at the peak of a large no_grad forward, e.g. scoring many samples).
    y = t + 1 if is_grad_enabled() and x.requires_grad else np.add(t, 1, out=t)
    y *= xd
    y *= 0.5

    def backward(g):
        du = xd * xd
        du *= 3 * 0.044715
        du += 1
        du *= c  # du/dx
        grad = 1 - t * t
        grad *= xd
        grad *= du
        grad += t
        grad += 1
        grad *= 0.5
        grad *= g
        return (grad,)

    return make_result(y, (x,), backward, "gelu")


@lru_cache(maxsize=32)
def _averaging_vector(D: int, dtype: np.dtype) -> np.ndarray:
    """(1/D, ..., 1/D), made once per size (read-only: it is shared)."""
    avg = np.full(D, 1.0 / D, dtype=dtype)
    avg.flags.writeable = False
    return avg


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis, then scale and shift.

    $$\\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad y = w \\odot \\hat x + b$$
    ($\\mu$, $\\sigma^2$ the mean and biased variance over the last axis of size $D$). With
    $\\bar{\\hat x} = \\bar y \\odot w$ and $r = 1/\\sqrt{\\sigma^2 + \\epsilon}$:
    $$\\bar x = r\\big(\\bar{\\hat x} - \\mathrm{mean}(\\bar{\\hat x}) - \\hat x\\, \\mathrm{mean}(\\bar{\\hat x} \\odot \\hat x)\\big),
      \\quad \\bar w = \\textstyle\\sum \\bar y \\odot \\hat x, \\quad \\bar b = \\sum \\bar y.$$
    """
    x = as_tensor(x)
    D = x.shape[-1]
    parents = [x]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            p = as_tensor(p)
            if p.shape != (D,):
                raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected ({D},)")
            parents.append(p)
    # Row means as a matrix-vector product with (1/D, ..., 1/D): BLAS gemv is ~5x faster
    # than NumPy's reduction over a short last axis.
    xd = x.data if x.dtype.kind == "f" else x.data.astype(np.float64)
    avg = _averaging_vector(D, xd.dtype)
    mean = lambda a: (a @ avg)[..., None]  # noqa: E731 - (..., D) -> (..., 1)
    xc = xd - mean(xd)
    rstd = 1.0 / np.sqrt(mean(xc * xc) + eps)
    xhat = xc
    xhat *= rstd
    y = xhat
    if weight is not None:
        y = y * parents[1].data
    if bias is not None:
        y = y + parents[-1].data if weight is None else np.add(y, parents[-1].data, out=y)

    def backward(g):
        gxhat = g * parents[1].data if weight is not None else g
        gx = xhat * mean(gxhat * xhat)
        np.subtract(gxhat, gx, out=gx)
        gx -= mean(gxhat)
        gx *= rstd
        grads = [gx]
        lead = tuple(range(g.ndim - 1))
        if weight is not None:
            grads.append((g * xhat).sum(axis=lead))
        if bias is not None:
            grads.append(g.sum(axis=lead))
        return tuple(grads)

    return make_result(y, tuple(parents), backward, "layer_norm")


def embedding(weight, indices) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ``indices`` (...) -> (..., D).

    Backward adds each position's gradient into the row it came from; a token that
    appears twice gets both contributions (see `_scatter_add_rows`).
    """
    weight = as_tensor(weight)
    indices = np.asarray(data_of(indices))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    V = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= V):
        raise ValueError(
            f"embedding: indices must lie in [0, {V}), got range [{indices.min()}, {indices.max()}]"
        )

    def backward(g):
        return (_scatter_add_rows(weight.shape, indices.reshape(-1), g.reshape(-1, g.shape[-1])),)

    return make_result(weight.data[indices], (weight,), backward, "embedding")


def _scatter_add_rows(shape, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``out = zeros(shape); out[ids[n]] += rows[n]`` for n = 0, 1, ... in order.

    That is ``np.add.at(out, ids, rows)``. On a 2-D ``out`` NumPy's ``add.at`` takes a
    slow path, one row at a time (0.43 ms of the tiny training step); on a flat ``out``
    with one index per element it takes its fast path, ~6x faster. Every element still
    receives its contributions in the same order, so the sums are the same bit for bit.
    """
    V, D = shape
    flat_ids = (ids[:, None] * D + np.arange(D)).reshape(-1)  # element (ids[n], d) of out
    out = np.zeros(V * D, dtype=rows.dtype)
    np.add.at(out, flat_ids, rows.reshape(-1))
    return out.reshape(V, D)


def dropout(x, p: float, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Zero each entry with probability ``p`` and scale the rest by $1/(1-p)$ (inverted dropout).

    The mask comes from ``rng`` (or the default generator that ``ma.seed`` resets).
    """
    x = as_tensor(x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    keep = (get_rng(rng).random(x.shape) >= p) / (1.0 - p)
    keep = keep.astype(x.dtype)
    return make_result(x.data * keep, (x,), lambda g: (g * keep,), "dropout")
