r"""What PPO and GRPO share: how responses are sampled, scored and scored again with gradient.

* `Sampling` says how a response is drawn: at most ``max_new_tokens`` tokens, ending at
  ``stop_token``, right-padded with ``pad_id`` (`Sampling.for_task` reads them off a task).
* `collect_rollout` samples one response per prompt row with the KV cache, scores it with
  ``reward_fn`` and measures its log-probs under the policy and the reference, all
  without gradient: a `Rollout`.
* `score_responses` calls ``reward_fn``: it may return a (B,) array, or a dict with a
  ``"reward"`` entry (what is optimised) and other (B,) entries that are only logged
  (their means, as ``reward_<name>``), e.g. `minialign.train.grpo.arithmetic_reward_fn`.
* A response that reached ``max_new_tokens`` without emitting ``stop_token`` was
  **truncated** (``Rollout.truncated``), not ended. ``missing_eos_penalty`` (TRL's knob of
  that name) subtracts a constant from the score of those rows.
* `policy_logprobs` is `minialign.nn.sequence_logprobs` that also hands back the
  temperature-scaled logits, so the entropy needs no second forward pass.

**Steps.** In a history, step $k$ means "the policy after $k$ updates": iteration $k$'s
rollout metrics and losses are logged at step $k$, an evaluation run after iteration
$k$ at step $k + 1$, and the baseline evaluation at step 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..autograd import Tensor, no_grad
from ..nn import generate, sequence_logprobs
from ..nn.module import Module

RewardFn = Callable[[np.ndarray, np.ndarray], "np.ndarray | Mapping[str, np.ndarray]"]


@dataclass(frozen=True)
class Sampling:
    """How responses are drawn: up to ``max_new_tokens``, ``stop_token`` ends a response
    (and is kept), ``pad_id`` fills the rest of the row. The pad id must differ from the
    stop token, or the model never learns to stop (note ppo-7 of docs/implementation_notes.md)."""

    max_new_tokens: int
    stop_token: int
    pad_id: int

    def __post_init__(self):
        for name in ("max_new_tokens", "stop_token", "pad_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Sampling.{name} must be an integer >= 0, got {value!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"Sampling.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.stop_token == self.pad_id:
            raise ValueError(
                f"Sampling: pad_id ({self.pad_id}) must differ from stop_token "
                "(note ppo-7 of docs/implementation_notes.md: otherwise the model never learns to stop)"
            )

    @classmethod
    def for_task(cls, task) -> Sampling:
        """The task's own limits: fill its ``block_size`` after a prompt of ``prompt_len``."""
        tok = task.tokenizer
        return cls(task.block_size - task.prompt_len, tok.end_id, tok.pad_id)


def sample_with_reference(policy: Module, reference: Module, prompts, sampling: Sampling, rng,
                          temperature: float = 1.0):  # fmt: skip
    """Sample one response per prompt row from ``policy`` (KV cache) and score its tokens
    under ``reference``, without gradient: ``(Generation, SequenceLogprobs of reference)``."""
    with no_grad():
        gen = generate(policy, prompts, sampling.max_new_tokens, temperature=temperature, rng=rng,
                       stop_token=sampling.stop_token, pad_id=sampling.pad_id)  # fmt: skip
        ref_logp = sequence_logprobs(reference, gen.tokens, gen.response_mask, temperature)
    return gen, ref_logp


@dataclass
class Rollout:
    """One batch of sampled responses, in the (B, T-1) layout of `sequence_logprobs`:
    column $t$ belongs to token $t+1$. ``mask`` (B, T-1) bool marks response tokens."""

    tokens: np.ndarray  # (B, T) prompt then response, right-padded with pad_id
    response_mask: np.ndarray  # (B, T) bool
    mask: np.ndarray  # (B, T-1) bool, response_mask[:, 1:]
    logp_old: np.ndarray  # (B, T-1) log pi_old of each sampled token, 0 elsewhere
    logp_ref: np.ndarray  # (B, T-1) log pi_ref of the same tokens, 0 elsewhere
    scores: np.ndarray  # (B,) reward_fn's "reward"
    prompt_length: int
    reward_metrics: dict[str, float]  # means of reward_fn's other entries
    truncated: np.ndarray | None = None  # (B,) bool: no stop_token in the response

    @property
    def kl(self) -> np.ndarray:
        r"""Per-sequence k1, $\sum_t \log\pi_{\rm old} - \log\pi_{\rm ref}$, (B,)."""
        return (self.logp_old - self.logp_ref).sum(axis=1)


def score_responses(reward_fn: RewardFn, tokens, response_mask) -> tuple[np.ndarray, dict]:
    """``reward_fn`` -> (rewards (B,) float64, {"reward_<name>": mean} of its other entries)."""
    out = reward_fn(tokens, response_mask)
    extra = {}
    if isinstance(out, Mapping):
        if "reward" not in out:
            raise ValueError(
                f"reward_fn returned a dict without a 'reward' entry (keys {sorted(out)})"
            )
        extra = {f"reward_{k}": float(np.mean(v)) for k, v in out.items() if k != "reward"}
        out = out["reward"]
    rewards = np.asarray(out, dtype=np.float64)
    if rewards.shape != (len(tokens),):
        raise ValueError(
            f"reward_fn must return shape ({len(tokens)},), one reward per row, got {rewards.shape}"
        )
    if not np.isfinite(rewards).all():
        bad = np.flatnonzero(~np.isfinite(rewards))[:5].tolist()
        raise FloatingPointError(f"reward_fn returned non-finite rewards in rows {bad}")
    return rewards, extra


def truncated_rows(tokens, response_mask, stop_token: int) -> np.ndarray:
    """(B,) bool: the rows whose response holds no ``stop_token`` (cut off, not ended)."""
    return ~((np.asarray(tokens) == stop_token) & np.asarray(response_mask, bool)).any(axis=1)


def collect_rollout(policy, reference, reward_fn: RewardFn, prompts, sampling: Sampling, rng, *,
                    temperature: float = 1.0, missing_eos_penalty: float | None = None) -> Rollout:  # fmt: skip
    r"""Sample one response per prompt row and measure it; no gradient anywhere.

    With ``missing_eos_penalty`` $c$, truncated rows score $r_\phi(x, y) - c$ (TRL's knob)."""
    gen, logp_ref = sample_with_reference(policy, reference, prompts, sampling, rng, temperature)
    scores, extra = score_responses(reward_fn, gen.tokens, gen.response_mask)
    truncated = truncated_rows(gen.tokens, gen.response_mask, sampling.stop_token)
    if missing_eos_penalty is not None:
        scores = scores - float(missing_eos_penalty) * truncated  # only rows without END
    return Rollout(
        tokens=gen.tokens,
        response_mask=gen.response_mask,
        mask=gen.response_mask[:, 1:],
        logp_old=gen.logprobs,
        logp_ref=logp_ref.per_token.data,
        scores=scores,
        prompt_length=gen.prompt_length,
        reward_metrics=extra,
        truncated=truncated,
    )


def policy_logprobs(policy, tokens, response_mask, temperature) -> tuple[Tensor, Tensor]:
    r"""``(logp, scaled_logits)``: per-token $\log\pi_\theta$ (B, T-1), 0 off the response,
    and $z/\tau$ (B, T-1, V), both with gradient. Same numbers as `sequence_logprobs`."""
    logits = policy(tokens[:, :-1])  # (B, T-1, V): position t predicts token t+1
    logp = F.token_logprobs(logits, tokens[:, 1:], temperature)  # (B, T-1)
    mask = np.asarray(response_mask[:, 1:], dtype=logp.dtype)
    return logp * mask, logits * (1.0 / temperature)
