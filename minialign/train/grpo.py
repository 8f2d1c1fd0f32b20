r"""GRPO: PPO's clipped update with a group baseline instead of a value network.

For each prompt $x$ the policy samples a group of $N$ outputs $o_1..o_N$; each output's
advantage is its reward standardised within its group (population $\sigma$):

$$A_i = \frac{r_i - \mu}{\sigma}, \quad \mu = \tfrac1N\sum_j r_j, \quad
  \sigma = \sqrt{\tfrac1N\sum_j (r_j - \mu)^2}, \qquad A_i = 0 \text{ if all } r_j \text{ are equal}$$

$$\rho_i = \frac{\pi_\theta(o_i|x)}{\pi_{\theta_{\rm old}}(o_i|x)}, \qquad
  L^{\rm GRPO}(\theta) = \mathbb{E}_i\big[\min(\rho_i A_i,\ \mathrm{clip}(\rho_i, 1\pm\epsilon)A_i)\big]$$

and the loop minimises $-L^{\rm GRPO} + \beta\,\mathbb{E}_t[k_3]$ (`objectives.grpo_loss`).
For a task with checkable answers the reward can mix outcome and process,
$r_i = \lambda r_{\rm outcome} + (1-\lambda) r_{\rm process}$ (`arithmetic_reward_fn`).

One iteration: draw ``prompts_per_iteration`` prompts, repeat each ``group_size`` times
(one batch of $B = n N$ rows, group members adjacent), sample, score, reshape rewards to
$(n, N)$, compute $A$, then take ``epochs`` ($\mu$) gradient steps on the whole batch.

Implementation details (RLHF_NOTES, "GRPO choices"):

1. Population $\sigma$ ($1/N$, the seed's), $A = (r-\mu)/(\sigma + 10^{-8})$; a group whose
   rewards are all equal gets $A = 0$ exactly, and ``frac_zero_std`` reports how many.
   ``std_ddof=1, std_eps=1e-4`` gives TRL's Bessel $\sigma$ and epsilon;
   ``scale_rewards=False`` gives Dr. GRPO's $A = r - \mu$ (TRL ``scale_rewards="none"``).
2. With ``epochs=1`` the ratio is exactly 1 when the loss is computed, so the clip never
   binds and the update is the plain policy gradient $-\mathbb{E}[A\,\nabla\log\pi]$;
   the clip matters only from the second epoch on.
3. ``level="token"`` (DeepSeekMath, TRL): one ratio per token; ``"sequence"``: the seed's
   $\rho_i$ for the whole output, a product of token ratios (explodes for long outputs).
4. ``aggregation`` (TRL ``loss_type``): ``"grpo"`` per-output token mean then batch mean
   (length-biased), ``"bnpo"``/``"dapo"`` token sum / token count, ``"dr_grpo"`` token sum
   / ($B\cdot$ ``max_new_tokens``), a constant.
5. KL: $\beta\,k_3$ per token in the *loss* (not in the reward as PPO does), default
   $\beta = 0$ (as TRL now defaults); log-ratios are capped at 20 inside the exponentials.
6. Log-probs for the loss use the sampling ``temperature``; the policy runs in eval mode
   (no dropout); ``pad_id`` must differ from ``stop_token``.
7. One AdamW optimiser (``lr``, no weight decay, constant), gradient clipped to
   ``max_grad_norm``. All randomness comes from ``rng``.

Logged metrics, per iteration (step = number of updates before the rollout):
``loss`` the minimised loss of the first epoch (near 0 while learning: the advantages are
centred; $\approx\beta\,$KL when $\beta>0$), ``policy_loss`` the same with the KL term
removed, ``reward`` mean reward of the rollout, ``reward_std`` mean within-group std,
``frac_zero_std`` fraction of groups with equal rewards, ``kl`` mean per-sequence
$\sum_t k_1$ of the rollout vs the reference, ``beta``, ``clip_fraction`` and
``approx_kl`` (averaged over epochs, measured before each step, at the ratio ``level``),
``entropy`` (nats per token), ``length`` mean response tokens (END included),
``seconds`` wall time since the run began (`common.run_loop`); ``reward_*`` extra
entries of the reward dict; ``eval_*`` from ``eval_fn``.
"""

from __future__ import annotations

import numpy as np

from ..objectives import (
    approx_kl,
    clip_fraction,
    combined_reward,
    entropy_bonus,
    frac_zero_std_groups,
    group_advantages,
    grpo_loss,
)
from ..optim import AdamW
from .history import History
from .loop import as_rng, optimizer_step, run_loop, training_mode
from .ppo import _check
from .rollout import collect_rollout, policy_logprobs


def arithmetic_reward_fn(task, lam: float = 0.5):
    r"""A ``reward_fn`` for `minialign.tasks.ArithmeticTask`: $\lambda r_{\rm outcome} +
    (1-\lambda) r_{\rm process}$, returned as a dict so the loops log both parts
    (``reward_outcome`` = accuracy, ``reward_process``) next to the combined ``reward``."""

    def reward_fn(tokens, response_mask) -> dict[str, np.ndarray]:
        r_outcome, r_process = task.rewards(tokens, tokens, response_mask)  # (B,), (B,)
        reward = combined_reward(r_outcome, r_process, lam)
        return {"reward": reward, "outcome": r_outcome, "process": r_process}

    return reward_fn


def train_grpo(
    policy,
    reference,
    reward_fn,
    prompt_fn,
    *,
    stop_token: int,
    pad_id: int,
    max_new_tokens: int,
    group_size: int = 8,
    prompts_per_iteration: int = 8,
    iterations: int = 40,
    epochs: int = 1,
    epsilon: float = 0.2,
    beta: float = 0.0,
    level: str = "token",
    aggregation: str = "grpo",
    scale_rewards: bool = True,
    std_ddof: int = 0,
    std_eps: float = 1e-8,
    missing_eos_penalty: float | None = None,
    lr: float = 1e-3,
    temperature: float = 1.0,
    max_grad_norm: float = 1.0,
    rng: np.random.Generator | int | None = None,
    eval_fn=None,
    eval_every: int = 10,
    progress: bool = True,
    checkpoint_path=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> History:
    """Train ``policy`` in place with GRPO; see the module docstring.

    ``reward_fn(tokens, response_mask) -> (B,)`` (or a dict with a ``"reward"`` entry,
    like `arithmetic_reward_fn`'s), ``prompt_fn(n, rng) -> (n, P)`` int prompts.
    ``missing_eos_penalty`` $c$ (TRL's knob): outputs that reached ``max_new_tokens``
    without ``stop_token`` score $r_i - c$, before the group statistics.
    """
    _check(policy, reference, stop_token, pad_id, iterations=iterations,
           prompts_per_iteration=prompts_per_iteration, epochs=epochs, lr=lr,
           temperature=temperature)  # fmt: skip
    if group_size < 2:
        raise ValueError(
            f"group_size must be >= 2 (a group of one has no baseline), got {group_size}"
        )
    if level not in ("token", "sequence"):
        raise ValueError(f"level must be 'token' or 'sequence', got {level!r}")
    rng = as_rng(rng)
    opt = AdamW(policy.parameters(), lr=lr, weight_decay=0.0)

    def step(it: int) -> dict[str, float]:
        prompts = np.repeat(prompt_fn(prompts_per_iteration, rng), group_size, axis=0)  # (nN, P)
        ro = collect_rollout(policy, reference, reward_fn, prompts, max_new_tokens=max_new_tokens,
                             temperature=temperature, stop_token=stop_token, pad_id=pad_id,
                             rng=rng, missing_eos_penalty=missing_eos_penalty)  # fmt: skip
        groups = ro.scores.reshape(prompts_per_iteration, group_size)  # (n, N)
        advantages = group_advantages(groups, eps=std_eps, ddof=std_ddof, scale=scale_rewards)
        advantages = advantages.reshape(-1)  # (nN,), adjacent rows = one group
        sums = dict(clip_fraction=0.0, approx_kl=0.0)
        first = {}
        for epoch in range(epochs):
            logp, scaled_logits = policy_logprobs(policy, ro.tokens, ro.response_mask, temperature)
            loss = grpo_loss(logp, ro.logp_old, advantages, epsilon, ro.mask, beta=beta,
                             logp_ref=ro.logp_ref, level=level, aggregation=aggregation,
                             max_completion_length=max_new_tokens)  # fmt: skip
            new, old, m = logp.data, ro.logp_old, ro.mask
            if level == "sequence":
                new, old, m = new.sum(axis=1), old.sum(axis=1), None
            sums["clip_fraction"] += clip_fraction(new, old, epsilon, m)
            sums["approx_kl"] += approx_kl(new, old, m)
            if epoch == 0:
                first["loss"] = float(loss.item())
                first["entropy"] = float(entropy_bonus(scaled_logits.data, ro.mask).item())
                first["policy_loss"] = float(  # the same loss without its KL term
                    grpo_loss(logp.data, ro.logp_old, advantages, epsilon, ro.mask, level=level,
                              aggregation=aggregation, max_completion_length=max_new_tokens)
                    .item()
                )  # fmt: skip
            optimizer_step(loss, [(opt, policy)], max_grad_norm)
        return dict(first, **{k: v / epochs for k, v in sums.items()},
                    reward=float(ro.scores.mean()), reward_std=float(groups.std(axis=1).mean()),
                    frac_zero_std=frac_zero_std_groups(groups), kl=float(ro.kl.mean()),
                    beta=beta, length=float(ro.mask.sum(axis=1).mean()),
                    **ro.reward_metrics)  # fmt: skip

    with training_mode(False, policy):  # no dropout (detail 6)
        return run_loop(
            "train_grpo", step, steps=iterations, desc="grpo", unit="iteration",
            postfix=("reward", "kl"), eval_fn=eval_fn, eval_every=eval_every,
            progress=progress, rng=rng, modules={"policy": policy}, optimizers={"policy": opt},
            checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
        )  # fmt: skip
