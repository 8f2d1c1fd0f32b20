"""Sequence log-probabilities: the quantity every alignment objective consumes.

For a sequence $s = (s_0, \\dots, s_{T-1})$ = prompt $x$ then response $y$, right-padded,
and a ``response_mask`` $m$ marking the response tokens:

$$\\ell_t = m_{t+1} \\log \\pi_\\theta(s_{t+1} \\mid s_{\\le t}) \\quad (t = 0, \\dots, T-2),
  \\qquad \\log \\pi_\\theta(y \\mid x) = \\sum_t \\ell_t,$$

with $\\pi_\\theta(\\cdot \\mid s_{\\le t}) = \\mathrm{softmax}(z_t / \\tau)$ for the
model's logits $z_t$ and the sampling temperature $\\tau$ (implementation note ppo-6:
score with the temperature that generated the tokens). Index $t$ of the per-token array is
the prediction made *at* position $t$ of the token at $t + 1$: the same layout as
``Generation.logprobs`` from `generate`, so the two can be compared element-wise.

The prompt is never scored: $m_0$ must be 0 and prompt positions carry $m = 0$.
Padding never changes the result: a causal model's logits at position $t$ do not
depend on later tokens, and padded positions have $m = 0$.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..autograd import Tensor, data_of


class SequenceLogprobs(NamedTuple):
    """``per_token`` (B, T-1), zero where not a response token; ``total`` (B,) its row sums."""

    per_token: Tensor
    total: Tensor


def sequence_logprobs(model, tokens, response_mask, temperature: float = 1.0) -> SequenceLogprobs:
    """Per-token and summed $\\log \\pi(y_t \\mid x, y_{<t})$ of the response tokens.

    ``tokens`` (B, T) integers; ``response_mask`` (B, T) of 0/1 (or bools), 1 at the
    response tokens (including a stop token), 0 at the prompt and at padding.
    Both outputs are Tensors in the model's dtype that carry gradient to its parameters.
    """
    tokens = np.asarray(data_of(tokens))
    mask = np.asarray(data_of(response_mask))
    if tokens.ndim != 2 or tokens.shape[1] < 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(
            f"sequence_logprobs: tokens must be integers of shape (B, T) with T >= 2, got "
            f"shape {tokens.shape} and dtype {tokens.dtype}"
        )
    if mask.shape != tokens.shape:
        raise ValueError(
            f"sequence_logprobs: response_mask shape {mask.shape} != tokens shape {tokens.shape}"
        )
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError("sequence_logprobs: response_mask must hold only 0 and 1")
    if np.any(mask[:, 0]):
        raise ValueError(
            "sequence_logprobs: response_mask[:, 0] must be 0 (the first token has no context "
            "to be predicted from; it belongs to the prompt)"
        )
    logits = model(tokens[:, :-1])  # (B, T-1, V): position t predicts token t+1
    logp = F.token_logprobs(logits, tokens[:, 1:], temperature)  # (B, T-1)
    per_token = logp * mask[:, 1:].astype(logp.dtype)  # (B, T-1), 0 off the response
    return SequenceLogprobs(per_token, per_token.sum(axis=-1))
