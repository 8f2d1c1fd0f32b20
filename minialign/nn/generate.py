"""Sampling from a TinyGPT, returning what RL needs: tokens, a response mask, log-probs.

At each step the next token is drawn from $\\mathrm{softmax}(z_t / \\tau)$, optionally
restricted to the ``top_k`` largest logits, with an explicit ``np.random.Generator``
(the same generator state gives the same samples, bitwise).

**Which log-probability is returned.** ``logprobs`` holds
$\\log \\mathrm{softmax}(z_t / \\tau)_{y}$ under the *full* temperature-scaled
distribution: top-k truncation is **not** included. That is the quantity
`sequence_logprobs` recomputes with gradient, so PPO's ``logp_old`` and ``logp_new``
agree exactly at the first step. With ``top_k`` set, tokens are drawn from a
different (truncated) distribution than the one scored, so importance ratios and KL
estimates are biased: use ``top_k=None`` for RL, and top-k only for demos.

**Stopping.** When a row samples ``stop_token`` it is done: that token is kept
(mask 1), every later position is ``pad_id`` (mask 0, log-prob 0). Sampling ends early
once every row is done, so ``tokens`` may be shorter than ``T_prompt + max_new_tokens``.
Pick a ``pad_id`` different from ``stop_token`` (implementation note ppo-7): a mask is
returned, but downstream code that infers padding from ``tokens == pad_id`` would
otherwise hide the stop token from the loss.

**Prompts** are one (B, T_prompt) array: every prompt in the batch has the same
length (left-aligned, no padding inside the prompt). Group prompts by length, or
repeat one prompt B times as GRPO does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import get_rng, no_grad
from .module import training_mode


@dataclass
class Generation:
    """``tokens`` (B, T) prompt then response, ``response_mask`` (B, T) 1 at sampled tokens up
    to and including the stop token, ``logprobs`` (B, T-1) where ``logprobs[:, t]`` is the
    log-prob of ``tokens[:, t+1]`` (0 off the response): the layout of `sequence_logprobs`."""

    tokens: np.ndarray
    response_mask: np.ndarray
    logprobs: np.ndarray
    prompt_length: int


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))


def _sample(logp: np.ndarray, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """One token per row from ``exp(logp)`` (B, V), restricted to the top k if given."""
    p = np.exp(logp.astype(np.float64))  # (B, V)
    if top_k is not None and top_k < p.shape[-1]:
        kth = np.partition(logp, -top_k, axis=-1)[:, -top_k, None]  # (B, 1) k-th largest
        p[logp < kth] = 0.0
    cdf = np.cumsum(p, axis=-1)  # (B, V)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]  # (B, 1), uniform on [0, total mass)
    return np.minimum((cdf <= u).sum(axis=-1), p.shape[-1] - 1)  # inverse CDF, (B,)


def _check_arguments(model, prompt_ids, max_new_tokens, temperature, top_k) -> np.ndarray:
    """The prompts as a (B, T_prompt) int array, or a ValueError naming the bad argument."""
    prompt = np.asarray(prompt_ids)
    if prompt.ndim == 1:
        prompt = prompt[None, :]  # one prompt -> a batch of one
    if prompt.ndim != 2 or prompt.shape[1] < 1 or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(
            f"generate: prompt_ids must be integers of shape (B, T_prompt) with T_prompt >= 1, "
            f"got shape {prompt.shape} and dtype {prompt.dtype}"
        )
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be a positive int, got {max_new_tokens!r}")
    dtype = model.wte.weight.dtype
    if (
        not temperature > 0
        or not np.isfinite(temperature)
        or 1.0 / temperature > np.finfo(dtype).max
    ):
        raise ValueError(
            f"generate: temperature must be > 0, finite, and >= {1 / np.finfo(dtype).max:.3g} "
            f"(1/temperature must fit in the model's {dtype}), got {temperature}"
        )
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1
    ):
        raise ValueError(f"generate: top_k must be None or an integer >= 1, got {top_k!r}")
    if prompt.shape[1] + max_new_tokens > model.config.block_size:
        raise ValueError(
            f"generate: prompt length {prompt.shape[1]} + max_new_tokens {max_new_tokens} "
            f"exceeds the model's block_size {model.config.block_size}"
        )
    return prompt


def generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    rng: np.random.Generator | int | None = None,
    stop_token: int | None = None,
    use_cache: bool = True,
    pad_id: int = 0,
) -> Generation:
    """Sample up to ``max_new_tokens`` after ``prompt_ids`` (B, T_prompt); see the module doc."""
    prompt = _check_arguments(model, prompt_ids, max_new_tokens, temperature, top_k)
    B, T_prompt = prompt.shape
    T_total = T_prompt + max_new_tokens
    rng = get_rng(rng)  # an int seeds a new generator
    tokens = np.full((B, T_total), pad_id, dtype=np.int64)
    tokens[:, :T_prompt] = prompt
    mask = np.zeros((B, T_total), dtype=bool)
    logprobs = np.zeros((B, T_total - 1), dtype=model.wte.weight.dtype)
    done = np.zeros(B, dtype=bool)

    with training_mode(False, model), no_grad():  # sampling never uses dropout
        cache = model.new_cache(B) if use_cache else None
        logits = model(prompt, cache).data[:, -1]  # (B, V)
        t = T_prompt  # the position being filled
        while True:
            logp = _log_softmax(logits * logits.dtype.type(1.0 / temperature))  # (B, V)
            if not np.isfinite(logp).all():
                raise ValueError(
                    f"generate: log-probabilities are not finite at position {t}: the "
                    f"model's logits are NaN/inf, or logits / temperature overflows "
                    f"{logits.dtype} at temperature={temperature}"
                )
            new = _sample(logp, top_k, rng)  # (B,)
            live = ~done
            tokens[live, t] = new[live]
            mask[live, t] = True
            logprobs[live, t - 1] = logp[live, new[live]]
            if stop_token is not None:
                done |= live & (new == stop_token)
            t += 1
            if t == T_total or done.all():
                break
            if use_cache:
                logits = model(tokens[:, t - 1 : t], cache).data[:, -1]  # (B, V)
            else:
                logits = model(tokens[:, :t]).data[:, -1]  # (B, V), the whole prefix again
    return Generation(tokens[:, :t], mask[:, :t], logprobs[:, : t - 1], T_prompt)
