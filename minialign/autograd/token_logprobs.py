"""The log-probability of chosen tokens: ``log_softmax`` and a gather, fused.

Every alignment objective consumes $\\log \\pi_\\theta(y_t \\mid x, y_{<t})$ for the
tokens that were actually sampled. With logits $z \\in \\mathbb{R}^V$ at one position,
a sampling temperature $\\tau$ and the chosen token $y$:

$$\\ell = \\frac{z_y}{\\tau} - \\log \\sum_{v} e^{z_v / \\tau}, \\qquad
  \\frac{\\partial \\ell}{\\partial z_v} = \\frac{1}{\\tau}\\big([v = y] - p_v\\big), \\quad
  p = \\mathrm{softmax}(z / \\tau).$$

Composing ``log_softmax(z / tau)`` with ``take_along_axis`` builds three nodes and keeps
two (..., V) arrays alive until backward; this op keeps only the scaled logits and one
number per position, and builds $p$ once, in the backward, where it *is* the gradient.
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, data_of, make_result

__all__ = ["token_logprobs"]


def token_logprobs(logits, targets, temperature: float = 1.0) -> Tensor:
    """$\\log \\mathrm{softmax}(z / \\tau)_{y}$ at every position.

    ``logits`` (..., V) floats, ``targets`` (...) integers in [0, V). Returns (...).
    """
    logits = as_tensor(logits)
    targets = np.asarray(data_of(targets))
    if logits.ndim < 1 or targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"token_logprobs: targets shape {targets.shape} must equal logits shape "
            f"{logits.shape} without its last axis"
        )
    if targets.dtype.kind not in "iu":
        raise TypeError(f"token_logprobs: targets must be integers, got dtype {targets.dtype}")
    V = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(
            f"token_logprobs: targets must lie in [0, {V}), got range "
            f"[{targets.min()}, {targets.max()}]"
        )
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"token_logprobs: temperature must be > 0 and finite, got {temperature}")

    inv_tau = logits.dtype.type(1.0 / temperature)  # dtype scalar: float32 stays float32
    z = logits.data * inv_tau if temperature != 1.0 else logits.data  # (..., V)
    index = targets[..., None]  # (..., 1)
    m = z.max(axis=-1, keepdims=True)  # (..., 1)
    e = np.exp(z - m)  # (..., V), every exponent <= 0
    s = e.sum(axis=-1, keepdims=True)  # (..., 1)
    out = (np.take_along_axis(z, index, axis=-1) - m - np.log(s))[..., 0]  # (...)

    def backward(g):
        coef = g[..., None] * inv_tau  # (..., 1)
        grad = e / s  # p = softmax(z / tau), exact even where z is huge (no rounded lse)
        grad *= -coef
        picked = np.take_along_axis(grad, index, axis=-1)  # (..., 1)
        np.put_along_axis(grad, index, picked + coef, axis=-1)  # + [v = y] / tau
        return (grad,)

    return make_result(out, (logits,), backward, "token_logprobs")
