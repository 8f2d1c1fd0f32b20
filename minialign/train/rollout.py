r"""What the PPO and GRPO loops share: rollouts, rewards, the policy's forward pass, the loop.

* `collect_rollout` samples responses with the KV cache, scores them with ``reward_fn``
  and the reference's log-probs, all without gradient.
* `score_responses` calls ``reward_fn``: it may return a (B,) array, or a dict with a
  ``"reward"`` entry (what is optimised) and other (B,) entries that are only logged
  (their means, as ``reward_<name>``), e.g. `minialign.train.grpo.arithmetic_reward_fn`.
* `policy_logprobs` is `minialign.nn.sequence_logprobs` that also hands back the
  temperature-scaled logits, so the entropy needs no second forward pass.
* `run_iterations` is the loop both trainers run: progress bar, Ctrl-C, NaN guard,
  evaluation, checkpoints and resumption.
* `make_eval_fn` builds the ``eval_fn`` the loops accept, on `common.evaluate_policy`.

**Steps.** ``history`` step $k$ means "the policy after $k$ updates": iteration $k$'s
rollout metrics (reward, KL, length) and losses are logged at step $k$, an evaluation
run after iteration $k$ at step $k + 1$, and the baseline evaluation at step 0.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .. import functional as F
from ..autograd import Tensor, no_grad
from ..nn import generate, sequence_logprobs
from ..nn.module import Module
from ..optim import clip_grad_norm
from .common import evaluate_policy, interruptible, load_run_state, save_run_state
from .history import History

RewardFn = Callable[[np.ndarray, np.ndarray], "np.ndarray | Mapping[str, np.ndarray]"]


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


def collect_rollout(
    policy, reference, reward_fn, prompts, *, max_new_tokens, temperature, stop_token, pad_id, rng
) -> Rollout:
    """Sample one response per prompt row and measure it; no gradient anywhere."""
    gen = generate(
        policy,
        prompts,
        max_new_tokens,
        temperature=temperature,
        rng=rng,
        stop_token=stop_token,
        pad_id=pad_id,
    )
    scores, extra = score_responses(reward_fn, gen.tokens, gen.response_mask)
    with no_grad():
        logp_ref = sequence_logprobs(reference, gen.tokens, gen.response_mask, temperature)
    return Rollout(
        gen.tokens,
        gen.response_mask,
        gen.response_mask[:, 1:],
        gen.logprobs,
        logp_ref.per_token.data,
        scores,
        gen.prompt_length,
        extra,
    )


def policy_logprobs(policy, tokens, response_mask, temperature) -> tuple[Tensor, Tensor]:
    r"""``(logp, scaled_logits)``: per-token $\log\pi_\theta$ (B, T-1), 0 off the response,
    and $z/\tau$ (B, T-1, V), both with gradient. Same numbers as `sequence_logprobs`."""
    logits = policy(tokens[:, :-1])  # (B, T-1, V): position t predicts token t+1
    logp = F.token_logprobs(logits, tokens[:, 1:], temperature)  # (B, T-1)
    mask = np.asarray(response_mask[:, 1:], dtype=logp.dtype)
    return logp * mask, logits * (1.0 / temperature)


def optimizer_step(loss: Tensor, pairs, max_grad_norm: float) -> None:
    """Backpropagate ``loss`` once, then for each ``(optimizer, model)`` clip the model's
    gradient to ``max_grad_norm`` and step. A non-finite gradient is a FloatingPointError."""
    for opt, _ in pairs:
        opt.zero_grad()
    loss.backward()
    for opt, model in pairs:
        try:
            clip_grad_norm(model.parameters(), max_grad_norm)
        except ValueError as e:
            raise FloatingPointError(str(e)) from e
        opt.step()


def make_eval_fn(
    policy: Module,
    reference: Module,
    prompts: np.ndarray,
    true_reward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    max_new_tokens: int,
    stop_token: int,
    pad_id: int,
    seed: int = 0,
    reward_model: Callable | None = None,
    temperature: float = 1.0,
) -> Callable[[int], dict[str, float]]:
    """An ``eval_fn(step)`` for the loops: `evaluate_policy` on fixed held-out ``prompts``.

    Each call draws from its own generator ``default_rng([seed, step])``, never from the
    training generator, so evaluating does not change training and a resumed run
    evaluates exactly as an uninterrupted one. Keys get an ``eval_`` prefix.
    """

    def eval_fn(step: int) -> dict[str, float]:
        metrics = evaluate_policy(
            policy,
            reference,
            prompts,
            true_reward,
            max_new_tokens=max_new_tokens,
            stop_token=stop_token,
            pad_id=pad_id,
            rng=np.random.default_rng([seed, step]),
            reward_model=reward_model,
            temperature=temperature,
        )
        return {f"eval_{k}": v for k, v in metrics.items()}

    return eval_fn


def run_iterations(
    name: str,
    step_fn: Callable[[int], dict[str, float]],
    *,
    iterations: int,
    rng: np.random.Generator,
    modules: dict[str, Module],
    optimizers: dict,
    get_extra: Callable[[], dict],
    set_extra: Callable[[dict], None],
    eval_fn: Callable[[int], dict[str, float]] | None,
    eval_every: int,
    progress: bool,
    checkpoint_path,
    checkpoint_every: int | None,
    resume: bool,
) -> History:
    """Run ``step_fn(iteration) -> metrics`` for each iteration and log everything.

    ``metrics["loss"]`` is checked to be finite; ``seconds`` (wall time of the iteration)
    is added. With ``resume`` and an existing ``checkpoint_path`` the run restarts from
    the saved state (models, optimisers, generator, history, ``extra``); without one it
    starts from scratch. A checkpoint is written every ``checkpoint_every`` iterations.
    """
    if iterations < 1 or eval_every < 1 or (checkpoint_every is not None and checkpoint_every < 1):
        raise ValueError(
            f"{name}: iterations, eval_every and checkpoint_every must be >= 1, got "
            f"{iterations}, {eval_every}, {checkpoint_every}"
        )
    history, start = History(), 0
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        start, history, extra = load_run_state(
            checkpoint_path, modules=modules, optimizers=optimizers, rng=rng
        )
        set_extra(extra)
    elif eval_fn is not None:
        history.log(0, **eval_fn(0))  # the starting point (the reference, usually)
    bar = tqdm(range(start, iterations), desc=name, disable=not progress)
    with contextlib.closing(bar), interruptible(history, name):
        for it in bar:
            t0 = time.perf_counter()
            try:
                metrics = step_fn(it)
            except FloatingPointError as e:
                raise FloatingPointError(f"{name}: iteration {it}: {e}") from e
            loss = metrics["loss"]
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"{name}: the loss became {loss} at iteration {it}; "
                    f"lower the learning rate or check the rewards"
                )
            history.log(it, **metrics, seconds=time.perf_counter() - t0)
            bar.set_postfix(
                reward=f"{metrics['reward']:.3f}", kl=f"{metrics['kl']:.3f}", refresh=False
            )
            done = it + 1
            if eval_fn is not None and (done % eval_every == 0 or done == iterations):
                history.log(done, **eval_fn(done))
            if checkpoint_path is not None and checkpoint_every and done % checkpoint_every == 0:
                save_run_state(
                    checkpoint_path,
                    step=done,
                    modules=modules,
                    optimizers=optimizers,
                    rng=rng,
                    history=history,
                    extra=get_extra(),
                )
    return history
