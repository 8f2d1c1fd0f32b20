"""Models that output one number instead of a next token: a reward model and a critic.

Both are a `TinyGPT` trunk (usually copied from the reference policy, so they start
out understanding the language) with a scalar head on its hidden states.

* `RewardModel.score(tokens, response_mask)` is $r_\\phi(x, y)$: the head's value at the
  **last response token** (the END token when the response ended), one number per row.
* `ValueModel.values(tokens)` is $V_w(x_t)$ at **every** position (B, T), for PPO's
  advantages. Its head starts at exactly zero (implementation note ppo-5).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from .gpt import GPTConfig, TinyGPT
from .heads import RewardHead, ValueHead
from .module import Module


def last_response_index(response_mask: np.ndarray) -> np.ndarray:
    """Column of the last response token in each row, (B,). Every row needs one."""
    mask = np.asarray(response_mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"response_mask must be (B, T), got shape {mask.shape}")
    if not mask.any(axis=1).all():
        empty = np.flatnonzero(~mask.any(axis=1)).tolist()
        raise ValueError(f"response_mask: rows {empty} have no response token to score")
    T = mask.shape[1]
    return T - 1 - np.argmax(mask[:, ::-1], axis=1)  # (B,)


class _TrunkWithHead(Module):
    """A TinyGPT trunk and a scalar head: one number per position, (B, T)."""

    def __init__(self, config: GPTConfig, make_head, rng=None):
        self.config = config
        self.trunk = TinyGPT(config, rng=rng)
        self.head = make_head()  # after the trunk: the trunk draws from ``rng`` first

    @classmethod
    def from_policy(cls, policy: TinyGPT, rng=None):
        """A model whose trunk starts as a copy of ``policy``'s weights."""
        model = cls(policy.config, rng=rng)
        model.trunk.load_state_dict(policy.state_dict())
        return model

    def forward(self, tokens) -> Tensor:
        return self.head(self.trunk.hidden_states(tokens))  # (B, T)


class RewardModel(_TrunkWithHead):
    """$r_\\phi(x, y)$: a TinyGPT trunk and a `RewardHead`, read at the last response token.

    ``model(tokens)`` gives a reward for every prefix, (B, T); `score` reads the one that
    matters.
    """

    def __init__(self, config: GPTConfig, rng=None):
        super().__init__(config, lambda: RewardHead(config.n_embd, rng=rng), rng=rng)

    def score(self, tokens, response_mask, length: int | None = None) -> Tensor:
        """$r_\\phi(x, y)$ per row, (B,): the prefix reward at the last response token.

        The model reads the first ``length`` columns (default: up to the last response
        token of any row; a causal model ignores what follows)."""
        tokens = np.asarray(tokens)
        last = last_response_index(response_mask)  # (B,)
        T = int(last.max()) + 1 if length is None else length
        rewards = self(tokens[:, :T])  # (B, T)
        return rewards[np.arange(len(last)), last]  # (B,)


class ValueModel(_TrunkWithHead):
    """$V_w(x_t)$: a TinyGPT trunk and a zero-initialised `ValueHead`, one value per position.

    ``model(tokens)[:, t]`` estimates the return after seeing tokens ``<= t``.
    """

    def __init__(self, config: GPTConfig, rng=None):
        super().__init__(config, lambda: ValueHead(config.n_embd), rng=rng)
