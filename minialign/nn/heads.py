"""Scalar heads on the trunk: a value $V(x_{\\le t})$ or a reward $r(x_{\\le t})$ per position.

Both read the hidden states ``h = model.hidden_states(idx)`` (B, T, C) and return
$h_t^\\top w + b$ of shape (B, T). Which position matters is the caller's choice: a
reward model scores the *last* response token; a PPO critic uses every response
position.

Initialisation (implementation note ppo-5):

* `ValueHead`: $w = 0$, $b = 0$, so every value starts at exactly 0. The first
  advantages are then the returns themselves and the critic cannot inject noise
  before it has learned anything. (The gradient w.r.t. $w$ is $h^\\top \\bar V \\ne 0$,
  so it still learns.)
* `RewardHead`: $w \\sim \\mathcal N(0, \\sigma^2)$ with a small $\\sigma$ (default
  $1/\\sqrt{C + 1}$, so a LayerNorm-ed $h$ gives scores of order 1), $b = 0$.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor, get_rng
from .module import Module, Parameter


class _ScalarHead(Module):
    def __init__(self, n_embd: int, weight: np.ndarray):
        self.weight = Parameter(weight.reshape(n_embd, 1))  # (C, 1)
        self.bias = Parameter(np.zeros(1))  # (1,)

    def forward(self, h: Tensor) -> Tensor:
        if h.ndim < 1 or h.shape[-1] != self.weight.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: hidden states must be (..., {self.weight.shape[0]}), "
                f"got shape {h.shape}"
            )
        out = h @ self.weight + self.bias  # (..., 1)
        return out.reshape(h.shape[:-1])  # (...), e.g. (B, T)


class ValueHead(_ScalarHead):
    """$V_t = h_t^\\top w + b$, initialised to exactly 0."""

    def __init__(self, n_embd: int):
        super().__init__(n_embd, np.zeros(n_embd))


class RewardHead(_ScalarHead):
    """$r_t = h_t^\\top w + b$ with small random $w$ (std ``std``, default $1/\\sqrt{C+1}$)."""

    def __init__(self, n_embd: int, *, rng=None, std: float | None = None):
        rng = get_rng(rng)
        std = 1.0 / np.sqrt(n_embd + 1) if std is None else std
        super().__init__(n_embd, rng.normal(0.0, std, size=n_embd))
