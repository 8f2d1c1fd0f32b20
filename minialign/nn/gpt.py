"""TinyGPT: a GPT-2-shaped decoder small enough to train in seconds on a CPU.

::

    idx (B, T) ──wte──┐
                      + ── Block × n_layer ── LayerNorm ── h (B, T, C) ── h Wᵀ_te ── logits (B, T, V)
    positions ──wpe───┘                                     └── ValueHead / RewardHead

Choices, stated once:

* **Tied LM head.** The output projection reuses the token embedding:
  $\\mathrm{logits} = h\\, W_{te}^\\top$ (as GPT-2 and nanoGPT). It saves V·C
  parameters and ties "which vector means token v" on the way in and out. The
  gradient of ``wte.weight`` is the sum of both uses (the engine accumulates).
* **Pre-LayerNorm blocks** and a final LayerNorm; `hidden_states` returns the
  normalised (B, T, C) states that the value and reward heads read.
* **GPT-2 initialisation** with an explicit ``rng``: the same seed gives bitwise the
  same weights. Residual projections use std $0.02/\\sqrt{2 n_\\text{layer}}$.
* **Dropout defaults to 0.** Alignment compares log-probabilities of the same tokens
  under the policy, the old policy and a frozen reference (ratios, KL, DPO margins).
  Dropout would make each of those a random variable, so a ratio that should be
  exactly 1 is not, and the KL is noise (implementation note ppo-5). When ``dropout > 0``
  it applies (in training mode only) to the embeddings and to each residual branch,
  not to the attention weights.
* **KV cache.** `KVCache` keeps the keys and values of past positions so that sampling
  a token costs one position's work, not a re-run over the whole prefix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from .. import functional as F
from ..autograd import Tensor, data_of, get_rng, is_grad_enabled
from .layers import Block, Embedding, LayerNorm
from .module import Module


@dataclass
class GPTConfig:
    """Sizes of a TinyGPT. Stored as JSON inside checkpoints (`to_dict` / `from_dict`)."""

    vocab_size: int
    block_size: int  # the longest sequence (prompt + response) the model can see
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0  # keep 0 for RL: see the module docstring

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
            setattr(self, name, int(value))
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        self.dropout = float(self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GPTConfig:
        return cls.from_dict(json.loads(text))


class KVCache:
    """Keys and values of every layer for the positions seen so far, for sampling.

    Buffers are allocated once, (B, nh, block_size, hs) per layer, and filled left to
    right; ``length`` is how many positions are stored. Only valid under ``no_grad``.
    """

    def __init__(self, config: GPTConfig, batch_size: int, dtype=np.float32):
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hs)  # (B, nh, block, hs)
        self.keys = [np.zeros(shape, dtype) for _ in range(config.n_layer)]
        self.values = [np.zeros(shape, dtype) for _ in range(config.n_layer)]
        self.length = 0

    def layer(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Layer ``i``'s key and value buffers and the number of positions they hold, in the
        form `F.causal_self_attention` takes (it writes the new positions; `TinyGPT`
        advances ``length`` once every layer has)."""
        return self.keys[i], self.values[i], self.length


class TinyGPT(Module):
    """``TinyGPT(GPTConfig(...), rng=seed_or_generator)``; ``model(idx)`` gives logits (B, T, V).

    ``rng`` may be an int seed, a ``np.random.Generator``, or None (the generator that
    ``ma.seed`` resets).
    """

    def __init__(self, config: GPTConfig, rng: np.random.Generator | int | None = None):
        if not isinstance(config, GPTConfig):
            raise ValueError(f"TinyGPT: config must be a GPTConfig, got {type(config).__name__}")
        rng = get_rng(rng)
        self.config = config
        C, proj_std = config.n_embd, 0.02 / np.sqrt(2 * config.n_layer)
        self.wte = Embedding(config.vocab_size, C, rng=rng)
        self.wpe = Embedding(config.block_size, C, rng=rng)
        self.blocks = [
            Block(C, config.n_head, rng=rng, proj_std=proj_std, dropout=config.dropout)
            for _ in range(config.n_layer)
        ]
        self.ln_f = LayerNorm(C)

    def new_cache(self, batch_size: int) -> KVCache:
        return KVCache(self.config, batch_size, dtype=self.wte.weight.dtype)

    def hidden_states(self, idx, cache: KVCache | None = None) -> Tensor:
        """The trunk's output after the final LayerNorm, (B, T, n_embd).

        With a ``cache``, ``idx`` holds only the *new* tokens; they are placed after the
        ``cache.length`` positions already stored, and the cache is extended.
        """
        idx = self._check_idx(idx)
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        if start + T > self.config.block_size:
            raise ValueError(
                f"TinyGPT: {start} cached + {T} new positions exceed block_size "
                f"{self.config.block_size}"
            )
        if cache is not None and is_grad_enabled():
            raise RuntimeError("TinyGPT: a KVCache is for sampling; run it under ma.no_grad()")
        x = self.wte(idx) + self.wpe.weight[start : start + T]  # (B, T, C) + (T, C)
        x = F.dropout(x, self.config.dropout, training=self.training)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)  # (B, T, C)
        if cache is not None:
            cache.length += T
        return self.ln_f(x)  # (B, T, C)

    def forward(self, idx, cache: KVCache | None = None) -> Tensor:
        """Next-token logits (B, T, vocab_size): position t scores token t+1 given tokens <= t."""
        h = self.hidden_states(idx, cache)  # (B, T, C)
        return h @ self.wte.weight.T  # (B, T, V): the tied LM head

    def _check_idx(self, idx) -> np.ndarray:
        idx = np.asarray(data_of(idx))
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(
                f"TinyGPT: idx must be a 2-D integer array (B, T), got shape {idx.shape} "
                f"and dtype {idx.dtype}"
            )
        if idx.shape[1] == 0:
            raise ValueError("TinyGPT: idx has no positions (T = 0)")
        V = self.config.vocab_size
        if idx.size and (idx.min() < 0 or idx.max() >= V):
            raise ValueError(
                f"TinyGPT: token ids must lie in [0, {V}), got range [{idx.min()}, {idx.max()}]"
            )
        return idx
