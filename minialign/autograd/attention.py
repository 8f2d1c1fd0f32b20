"""Fused causal self-attention: one graph node with a backward derived by hand.

For one head, with queries $Q \\in \\mathbb{R}^{T_q \\times d}$, keys and values
$K, V \\in \\mathbb{R}^{T_k \\times d}$ and $s = 1/\\sqrt d$:

$$S = s\\, Q K^\\top + M, \\qquad P = \\mathrm{softmax}_{\\text{rows}}(S), \\qquad O = P V$$

where the causal mask $M_{ij} = -\\infty$ when key $j$ lies in the future of query
$i$ and $0$ otherwise. Queries are the *last* $T_q$ of the $T_k$ positions, so
$T_q = T_k$ in training and $T_q = 1$ when sampling with a key/value cache; query
$i$ sits at absolute position $T_k - T_q + i$ and sees keys $j \\le T_k - T_q + i$.

Backward, given $\\bar O = \\partial L / \\partial O$:

$$\\bar V = P^\\top \\bar O, \\quad \\bar P = \\bar O V^\\top, \\quad
  \\bar S = P \\odot \\big(\\bar P - \\delta\\big), \\;
  \\delta_i = \\textstyle\\sum_j \\bar P_{ij} P_{ij} = \\sum_c \\bar O_{ic} O_{ic},$$
$$\\bar Q = s\\, \\bar S K, \\qquad \\bar K = s\\, \\bar S^\\top Q.$$

($\\delta$ is the softmax Jacobian's row term; computing it from $O$ and $\\bar O$
rather than from $P$ and $\\bar P$ is the trick FlashAttention uses: a
$(T_q, d)$ product instead of a $(T_q, T_k)$ one.) Masked entries have $P = 0$
exactly, so they receive no gradient. The only $(T_q, T_k)$ array kept for the
backward is $P$; the composite version keeps four.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import ops
from .engine import Tensor, as_tensor, is_grad_enabled, make_result

__all__ = ["causal_attention", "causal_self_attention", "causal_attention_reference"]


@lru_cache(maxsize=64)
def _causal_bias(T_q: int, T_k: int, dtype: np.dtype) -> np.ndarray:
    """(T_q, T_k) additive mask: 0 where key j may be seen by query i, -inf in its future."""
    offset = T_k - T_q
    future = np.arange(T_k)[None, :] > (offset + np.arange(T_q))[:, None]  # (T_q, T_k)
    bias = np.where(future, -np.inf, 0.0).astype(dtype)
    bias.flags.writeable = False
    return bias


def _check(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(
            f"causal_attention: q, k, v must have the same rank >= 2 (..., T, head_size), "
            f"got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if k.shape != v.shape or q.shape[:-2] != k.shape[:-2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"causal_attention: expected q (..., T_q, hs) and k, v (..., T_k, hs) with equal "
            f"leading axes, got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    if q.shape[-2] > k.shape[-2]:
        raise ValueError(
            f"causal_attention: more queries ({q.shape[-2]}) than keys ({k.shape[-2]}); "
            f"queries must be the last T_q of the T_k positions"
        )


def _forward(q: np.ndarray, k: np.ndarray, v: np.ndarray):
    """Return ``O`` (..., T_q, hs) and the weights transposed, ``Pt`` (..., T_k, T_q).

    We build $S^\\top = K Q^\\top$ rather than $S$: the softmax then reduces over axis -2,
    which NumPy vectorises across the contiguous last axis (a row-wise max over a
    short last axis is ~2x slower). ``Pt.swapaxes(-1, -2)`` is $P$, a free view.
    """
    T_q, T_k, hs = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = q.dtype.type(1.0 / np.sqrt(hs))  # a dtype scalar: no float64 upcast of float32
    Pt = k @ np.swapaxes(q, -1, -2)  # (..., T_k, T_q) = S^T before scaling
    Pt *= scale
    if T_q > 1:  # one query (sampling with a cache) sees every key: nothing to mask
        Pt += _causal_bias(T_q, T_k, q.dtype).T  # -inf where key j is in query i's future
    Pt -= Pt.max(axis=-2, keepdims=True)  # column max is finite: key 0 is never masked
    np.exp(Pt, out=Pt)
    Pt /= Pt.sum(axis=-2, keepdims=True)  # each column (one query) sums to 1
    O = np.swapaxes(Pt, -1, -2) @ v  # (..., T_q, hs)
    return O, Pt, scale


def _backward(gO, O, Pt, q, k, v, scale, out=None):
    """dQ, dK, dV from dO, following the module docstring (with $P^\\top$ stored).

    ``out``, if given, is a (3, ...) array the three gradients are written into (saves
    `causal_self_attention` stacking them: a copy of 3 B T C floats per layer).
    """
    gQ, gK, gV = (None, None, None) if out is None else out
    gV = np.matmul(Pt, gO, out=gV)  # (..., T_k, hs) = P^T dO
    gSt = v @ np.swapaxes(gO, -1, -2)  # (..., T_k, T_q) = (dO V^T)^T = dP^T
    gSt -= np.swapaxes((gO * O).sum(axis=-1, keepdims=True), -1, -2)  # minus delta_i
    gSt *= Pt  # dS^T
    gSt *= scale  # fold s in once, for both dQ and dK
    gQ = np.matmul(np.swapaxes(gSt, -1, -2), k, out=gQ)  # (..., T_q, hs) = s dS K
    gK = np.matmul(gSt, q, out=gK)  # (..., T_k, hs) = s dS^T Q
    return gQ, gK, gV


def causal_attention(q, k, v) -> Tensor:
    """Causal scaled dot-product attention, fused.

    ``q`` (..., T_q, hs), ``k`` and ``v`` (..., T_k, hs) with T_q <= T_k, usually
    (B, nh, T, hs). Returns (..., T_q, hs). See the module docstring for the math.
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check(q, k, v)
    dtype = np.result_type(q.dtype, k.dtype, v.dtype)
    qd, kd, vd = (t.data.astype(dtype, copy=False) for t in (q, k, v))
    O, Pt, scale = _forward(qd, kd, vd)

    def backward(gO):
        return _backward(gO, O, Pt, qd, kd, vd, scale)

    return make_result(O, (q, k, v), backward, "causal_attention")


def causal_self_attention(qkv, n_head: int, kv_cache=None) -> Tensor:
    """`causal_attention` on packed projections, with the head split and merge inside.

    ``qkv`` (B, T, 3C) holds $[Q \\mid K \\mid V]$ for all heads, as one Linear makes it;
    returns the heads concatenated, (B, T, C). The same maths as splitting ``qkv`` into
    (B, nh, T, hs) tensors with reshape/transpose/index ops and calling
    `causal_attention`, but one graph node instead of eight, and no zero-filled
    scatter of each piece's gradient back into a (B, T, 3C) array.

    ``kv_cache = (keys, values, start)``, for sampling without gradient: buffers
    (B, nh, T_max, hs) holding the keys and values of positions ``< start``. This
    call's keys and values are written at ``start .. start + T - 1`` and its queries
    attend to all of them. (Spelled out with ops, that is eight graph nodes per layer
    and token; fused, sampling a token costs about half the Python time.)
    """
    qkv = as_tensor(qkv)
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(
            f"causal_self_attention: qkv must be (B, T, 3C) with C divisible by n_head="
            f"{n_head}, got shape {qkv.shape}"
        )
    if kv_cache is not None:
        return _cached_self_attention(qkv, n_head, *kv_cache)
    B, T, C3 = qkv.shape
    hs = C3 // (3 * n_head)
    heads = qkv.data.reshape(B, T, 3, n_head, hs).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
    heads = np.ascontiguousarray(heads)  # one copy; each of q, k, v is then contiguous
    q, k, v = heads  # each (B, nh, T, hs)
    O, Pt, scale = _forward(q, k, v)
    out = O.transpose(0, 2, 1, 3).reshape(B, T, C3 // 3)  # (B, T, nh, hs) -> (B, T, C)

    def backward(g):
        gO = np.ascontiguousarray(
            g.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
        )  # (B, nh, T, hs)
        grads = np.empty_like(heads)  # (3, B, nh, T, hs): dQ, dK, dV written in place
        _backward(gO, O, Pt, q, k, v, scale, out=grads)
        return (
            grads.transpose(1, 3, 0, 2, 4).reshape(B, T, C3),
        )  # (B, T, 3, nh, hs) -> (B, T, 3C)

    return make_result(out, (qkv,), backward, "causal_self_attention")


def _cached_self_attention(qkv: Tensor, n_head: int, keys, values, start: int) -> Tensor:
    if is_grad_enabled() and qkv.requires_grad:
        raise RuntimeError("causal_self_attention: a kv_cache is for sampling, under no_grad()")
    B, T, C3 = qkv.shape
    if keys.shape[:2] != (B, n_head) or values.shape != keys.shape or start + T > keys.shape[2]:
        raise ValueError(
            f"causal_self_attention: kv_cache buffers {keys.shape} cannot take {T} positions "
            f"after {start} for qkv {qkv.shape} with {n_head} heads"
        )
    heads = qkv.data.reshape(B, T, 3, n_head, C3 // (3 * n_head)).transpose(2, 0, 3, 1, 4)
    q, k, v = heads  # each (B, nh, T, hs): views, no copy
    end = start + T
    keys[:, :, start:end] = k
    values[:, :, start:end] = v
    O, _, _ = _forward(q, keys[:, :, :end], values[:, :, :end])  # (B, nh, T, hs)
    return Tensor(O.transpose(0, 2, 1, 3).reshape(B, T, C3 // 3))  # (B, T, C)


def causal_attention_reference(q, k, v) -> Tensor:
    """The same attention composed from plain ops (several graph nodes), for tests and teaching.

    The softmax is spelled out too, $P = e^{S - m} / \\sum_j e^{S_j - m}$ with $m$ the row
    maximum (a constant shift, which leaves $P$ unchanged and keeps every exponent <= 0).
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check(q, k, v)
    T_q, T_k, hs = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = (q @ ops.swapaxes(k, -1, -2)) * (1.0 / np.sqrt(hs))  # (..., T_q, T_k)
    future = np.isinf(_causal_bias(T_q, T_k, np.dtype(np.float64)))  # (T_q, T_k)
    scores = ops.masked_fill(scores, future, -np.inf)
    e = ops.exp(scores - scores.data.max(axis=-1, keepdims=True))  # 0 where masked
    weights = e / e.sum(axis=-1, keepdims=True)  # (..., T_q, T_k), rows sum to 1
    return weights @ v  # (..., T_q, hs)
