"""The affine map of a Linear layer, fused: $y = x W + b$.

Composed as ``x @ W + b`` it is two graph nodes and two (N, out) arrays; fused, the
bias is added in place and the backward is three products of 2-D matrices. With the
batch axes of ``x`` folded into its rows, $X$ (N, in), $\\bar Y$ (N, out):

$$\\bar X = \\bar Y W^\\top, \\qquad \\bar W = X^\\top \\bar Y, \\qquad \\bar b = \\mathbf 1^\\top \\bar Y.$$
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, as_tensor, make_result

__all__ = ["linear"]


def linear(x, weight, bias=None) -> Tensor:
    """``x`` (..., in), ``weight`` (in, out), ``bias`` (out,) or None -> (..., out)."""
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"linear: expected x (..., in) and weight (in, out), got {x.shape} and {weight.shape}"
        )
    k, m = weight.shape
    parents = (x, weight)
    if bias is not None:
        bias = as_tensor(bias)
        if bias.shape != (m,):
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({m},)")
        parents = (x, weight, bias)
    x2 = x.data.reshape(-1, k)  # (N, in), N = prod(batch axes)
    y = x2 @ weight.data  # (N, out)
    if bias is not None:
        y += bias.data

    def backward(g):
        g2 = g.reshape(-1, m)  # (N, out)
        gx = (g2 @ weight.data.T).reshape(x.shape) if x.requires_grad else None
        gw = x2.T @ g2 if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, (np.add.reduce(g2, axis=0) if bias.requires_grad else None)

    return make_result(y.reshape(x.shape[:-1] + (m,)), parents, backward, "linear")
