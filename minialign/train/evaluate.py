r"""One yardstick for every method: sample from a policy, measure true reward and KL.

`evaluate_policy` samples responses from a policy for a fixed set of prompts and reports
the *true* reward of the task, the proxy (reward-model) reward if a reward model is
given, and the KL to the reference measured the same way for every method (PPO, GRPO,
DPO, best-of-n):

$$\widehat{\mathrm{KL}}(\pi \| \pi_{\rm ref}) = \frac1B \sum_{b=1}^{B} \sum_{t \in y_b}
   \big[\log \pi(y_{b,t} \mid x_b, y_{b,<t}) - \log \pi_{\rm ref}(y_{b,t} \mid x_b, y_{b,<t})\big],
   \qquad y_b \sim \pi(\cdot \mid x_b),$$

the sequence-level k1 estimator: unbiased for the KL between the two distributions over
whole responses (per sample it can be negative; the average is not, in expectation).

`make_eval_fn` wraps it into the ``eval_fn(step)`` every loop accepts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..nn.module import Module
from .rollout import Sampling, sample_with_reference

Reward = Callable[[np.ndarray, np.ndarray], np.ndarray]


def evaluate_policy(
    policy: Module,
    reference: Module,
    prompts: np.ndarray,
    true_reward: Reward,
    sampling: Sampling,
    *,
    rng: np.random.Generator,
    reward_model: Reward | None = None,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Sample one response per prompt and measure it: true reward, proxy reward, KL, length.

    ``true_reward(tokens, response_mask) -> (B,)`` and ``reward_model(tokens,
    response_mask) -> (B,)`` score whole sequences; KL is the sequence-level k1 above.
    """
    gen, ref_logp = sample_with_reference(policy, reference, prompts, sampling, rng, temperature)
    kl = gen.logprobs.sum(axis=1) - ref_logp.total.data  # (B,)
    out = {
        "true_reward": float(np.mean(true_reward(gen.tokens, gen.response_mask))),
        "kl": float(np.mean(kl)),
        "length": float(gen.response_mask.sum(axis=1).mean()),
    }
    if reward_model is not None:
        out["proxy_reward"] = float(np.mean(reward_model(gen.tokens, gen.response_mask)))
    return out


def make_eval_fn(
    policy: Module,
    reference: Module,
    prompts: np.ndarray,
    true_reward: Reward,
    sampling: Sampling,
    *,
    seed: int = 0,
    reward_model: Reward | None = None,
    temperature: float = 1.0,
) -> Callable[[int], dict[str, float]]:
    """An ``eval_fn(step)`` for the loops: `evaluate_policy` on fixed held-out ``prompts``.

    Each call draws from its own generator ``default_rng([seed, step])``, never from the
    training generator, so evaluating does not change training and a resumed run
    evaluates exactly as an uninterrupted one. Keys get an ``eval_`` prefix.
    """

    def eval_fn(step: int) -> dict[str, float]:
        rng = np.random.default_rng([seed, step])
        metrics = evaluate_policy(policy, reference, prompts, true_reward, sampling, rng=rng,
                                  reward_model=reward_model, temperature=temperature)  # fmt: skip
        return {f"eval_{k}": v for k, v in metrics.items()}

    return eval_fn
