"""The layers of a GPT: Linear, Embedding, LayerNorm, MLP, CausalSelfAttention, Block.

Each layer owns parameters (`Parameter`) and calls fused ops from `minialign.functional`, whose
backward passes are derived by hand and proved against finite differences.

Initialisation follows GPT-2: weights $\\sim \\mathcal N(0, 0.02^2)$, biases 0,
LayerNorm scale 1 and shift 0; the two projections that write into the residual
stream get a smaller ``std`` (TinyGPT passes $0.02/\\sqrt{2 n_\\text{layer}}$) so the
residual's variance does not grow with depth. Every layer takes an explicit
``rng`` (a ``np.random.Generator``); the same generator state gives bitwise the
same weights.

Shapes: B batch, T time, C = n_embd channels, nh heads, hs = C / nh head size.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import Tensor, get_rng
from .module import Module, Parameter


def _normal(rng: np.random.Generator, std: float, shape) -> np.ndarray:
    return rng.normal(0.0, std, size=shape).astype(np.float32)


class Linear(Module):
    """$y = x W + b$ with ``weight`` $W$ of shape (in_features, out_features).

    (PyTorch stores the transpose, (out, in), and computes $x W^\\top$; we keep the
    orientation of the equation. Transpose when moving weights between the two.)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, rng=None, std: float = 0.02
    ):
        rng = get_rng(rng)
        self.weight = Parameter(_normal(rng, std, (in_features, out_features)))
        self.bias = Parameter(np.zeros(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., out), one fused node


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` (num_embeddings, dim) is the vector of id ``i``."""

    def __init__(self, num_embeddings: int, dim: int, *, rng=None, std: float = 0.02):
        self.weight = Parameter(_normal(get_rng(rng), std, (num_embeddings, dim)))

    def forward(self, idx) -> Tensor:
        return F.embedding(self.weight, idx)  # (..., dim)


class LayerNorm(Module):
    """$y = w \\odot (x - \\mu)/\\sqrt{\\sigma^2 + \\epsilon} + b$ over the last axis (fused op)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        self.weight = Parameter(np.ones(dim))
        self.bias = Parameter(np.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)


class MLP(Module):
    """Position-wise feed-forward: $\\mathrm{GELU}(x W_1 + b_1) W_2 + b_2$, hidden size 4C."""

    def __init__(self, n_embd: int, *, rng=None, proj_std: float = 0.02):
        rng = get_rng(rng)
        self.fc = Linear(n_embd, 4 * n_embd, rng=rng)
        self.proj = Linear(4 * n_embd, n_embd, rng=rng, std=proj_std)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))  # (B, T, 4C) -> (B, T, C)


class CausalSelfAttention(Module):
    """Multi-head causal self-attention.

    $$\\mathrm{head}_h = \\mathrm{softmax}\\Big(\\frac{Q_h K_h^\\top}{\\sqrt{hs}} + M\\Big) V_h,
      \\qquad y = [\\mathrm{head}_1, \\dots, \\mathrm{head}_{nh}]\\, W_O + b_O$$

    One Linear makes Q, K and V for all heads at once; splitting them into heads,
    attending and merging the heads back is one fused op, `F.causal_self_attention`
    (the same steps as `F.causal_attention` on (B, nh, T, hs) pieces). With a `KVCache`
    (sampling, under ``no_grad``) the new keys and values are stored in the cache and
    the queries attend to every position stored so far.
    """

    def __init__(self, n_embd: int, n_head: int, *, rng=None, proj_std: float = 0.02):
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        rng = get_rng(rng)
        self.n_head = n_head
        self.qkv = Linear(n_embd, 3 * n_embd, rng=rng)
        self.proj = Linear(n_embd, n_embd, rng=rng, std=proj_std)

    def forward(self, x: Tensor, cache=None, layer: int = 0) -> Tensor:
        qkv = self.qkv(x)  # (B, T, 3C)
        kv = None if cache is None else cache.layer(layer)  # sampling: this layer's cache
        return self.proj(F.causal_self_attention(qkv, self.n_head, kv))  # (B, T, C)


class Block(Module):
    """A pre-LayerNorm transformer block: $x + \\mathrm{attn}(\\mathrm{LN}(x))$, then
    $x + \\mathrm{MLP}(\\mathrm{LN}(x))$. The residual stream itself is never normalised."""

    def __init__(
        self, n_embd: int, n_head: int, *, rng=None, proj_std: float = 0.02, dropout: float = 0.0
    ):
        rng = get_rng(rng)
        self.ln1 = LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, rng=rng, proj_std=proj_std)
        self.ln2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, rng=rng, proj_std=proj_std)
        self.dropout = dropout

    def forward(self, x: Tensor, cache=None, layer: int = 0) -> Tensor:
        x = x + self._drop(self.attn(self.ln1(x), cache, layer))
        return x + self._drop(self.mlp(self.ln2(x)))

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, training=self.training)
