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

from .engine import Tensor, as_tensor, make_result

__all__ = ["causal_attention", "causal_attention_reference"]


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


def causal_attention(q, k, v) -> Tensor:
    """Causal scaled dot-product attention, fused.

    ``q`` (..., T_q, hs), ``k`` and ``v`` (..., T_k, hs) with T_q <= T_k, usually
    (B, nh, T, hs). Returns (..., T_q, hs). See the module docstring for the math.
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check(q, k, v)
    T_q, T_k, hs = q.shape[-2], k.shape[-2], q.shape[-1]
    dtype = np.result_type(q.dtype, k.dtype, v.dtype)
    scale = dtype.type(1.0 / np.sqrt(hs))  # a dtype scalar: no float64 upcast of float32 data

    P = q.data @ np.swapaxes(k.data, -1, -2)  # (..., T_q, T_k)
    P *= scale
    P += _causal_bias(T_q, T_k, dtype)
    P -= P.max(axis=-1, keepdims=True)  # row max is finite: key 0 is never masked
    np.exp(P, out=P)
    P /= P.sum(axis=-1, keepdims=True)  # now the attention weights, rows sum to 1
    O = P @ v.data  # (..., T_q, hs)

    def backward(gO):
        gV = np.swapaxes(P, -1, -2) @ gO if v.requires_grad else None  # (..., T_k, hs)
        gS = gO @ np.swapaxes(v.data, -1, -2)  # (..., T_q, T_k), this is dL/dP for now
        gS -= (gO * O).sum(axis=-1, keepdims=True)  # minus delta_i
        gS *= P  # dL/dS
        gS *= scale  # fold s into dS once, for both dQ and dK
        gQ = gS @ k.data if q.requires_grad else None  # (..., T_q, hs)
        gK = np.swapaxes(gS, -1, -2) @ q.data if k.requires_grad else None  # (..., T_k, hs)
        return gQ, gK, gV

    return make_result(O, (q, k, v), backward, "causal_attention")


def causal_attention_reference(q, k, v) -> Tensor:
    """The same attention composed from plain ops (several graph nodes), for tests and teaching."""
    from . import ops
    from .functional import softmax

    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check(q, k, v)
    T_q, T_k, hs = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = (q @ ops.swapaxes(k, -1, -2)) * (1.0 / np.sqrt(hs))  # (..., T_q, T_k)
    future = np.isinf(_causal_bias(T_q, T_k, np.dtype(np.float64)))  # (T_q, T_k)
    weights = softmax(ops.masked_fill(scores, future, -np.inf), axis=-1)
    return weights @ v  # (..., T_q, hs)
