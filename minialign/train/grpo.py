r"""GRPO: PPO's clipped update with a group baseline instead of a value network.

For each prompt $x$ the policy samples a group of $N$ outputs $o_1..o_N$; each output's
advantage is its reward standardised within its group (population $\sigma$):

$$A_i = \frac{r_i - \mu}{\sigma}, \quad \mu = \tfrac1N\sum_j r_j, \quad
  \sigma = \sqrt{\tfrac1N\sum_j (r_j - \mu)^2}, \qquad A_i = 0 \text{ if all } r_j \text{ are equal}$$

$$\rho_i = \frac{\pi_\theta(o_i|x)}{\pi_{\theta_{\rm old}}(o_i|x)}, \qquad
  L^{\rm GRPO}(\theta) = \mathbb{E}_i\big[\min(\rho_i A_i,\ \mathrm{clip}(\rho_i, 1\pm\epsilon)A_i)\big]$$

and the loop minimises $-L^{\rm GRPO} + \beta\,\mathbb{E}_t[k_3] - c_H\,H[\pi_\theta]$
(`objectives.grpo_loss`; the entropy bonus $c_H$ = ``entropy_coef`` is 0 by default).
For a task with checkable answers the reward can mix outcome and process,
$r_i = \lambda r_{\rm outcome} + (1-\lambda) r_{\rm process}$ (`arithmetic_reward_fn`).

This file reads in the order of one iteration (`grpo_iteration`):

1. **Sample groups**: draw ``batch_size / num_generations`` prompts, repeat each
   ``num_generations`` times (group members adjacent), sample, score (`collect_rollout`).
2. **Group advantages**: reshape the scores to (prompts, $N$) and standardise each row
   (`group_advantages`).
3. **Update** (`grpo_update`): ``epochs`` ($\mu$) gradient steps on the whole batch.

The implementation details (docs/implementation_notes.md): population $\sigma$ plus
``std_eps`` by default, ``std_ddof=1, std_eps=1e-4`` for TRL's Bessel $\sigma$ and ε,
``scale_rewards="none"`` for Dr. GRPO's $A = r - \mu$ (note grpo-1); a group whose rewards are
all equal gets $A = 0$ exactly and ``frac_zero_std`` counts them (note grpo-2); ``loss_type``
picks the aggregation, "grpo" (per-output token mean, then batch mean: length-biased),
"bnpo"/"dapo" (token sum / token count) or "dr_grpo" (token sum / ($B\cdot$
``max_new_tokens``)) (note grpo-3); ``importance_sampling_level`` "token" (DeepSeekMath, TRL)
or "sequence" (one $\rho_i$ per output, a product of token ratios) (note grpo-4); with
``epochs=1`` the ratio is exactly 1 when the loss is computed, so the clip never binds
(note grpo-5); $\beta\,k_3$ per token goes into the *loss*, not the reward, default
$\beta = 0$ as TRL now defaults (note grpo-6); log-ratios are capped at 20 inside the
exponentials (note kl-3). Log-probs use the sampling ``temperature`` and the policy runs in
eval mode, no dropout (notes ppo-5 and ppo-6). One AdamW optimiser (no weight decay, constant rate),
gradient clipped to ``max_grad_norm``. All randomness comes from ``rng``.

Logged metrics, per iteration (step = number of updates before the rollout):
``loss`` the minimised loss of the first epoch (near 0 while learning: the advantages are
centred; $\approx\beta\,$KL when $\beta>0$), ``policy_loss`` $-L^{\rm GRPO}$ alone (no
KL or entropy term), ``reward`` mean reward of the rollout, ``reward_std`` mean within-group std,
``frac_zero_std`` fraction of groups with equal rewards, ``kl`` mean per-sequence
$\sum_t k_1$ of the rollout vs the reference, ``beta``, ``clip_fraction`` and
``approx_kl`` (averaged over epochs, measured before each step, at the ratio level),
``entropy`` (nats per token), ``length`` mean response tokens (END included),
``seconds`` wall time since the run began; ``reward_*`` extra entries of the reward
dict; ``eval_*`` from ``eval_fn``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.module import Module, training_mode
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
from .config import RolloutConfig, knob
from .history import History
from .rollout import RewardFn, Rollout, Sampling, collect_rollout, policy_logprobs
from .run import Run, get_rng, optimizer_step


@dataclass(frozen=True)
class GRPOConfig(RolloutConfig):
    """Every setting of `train_grpo` (TRL's ``GRPOConfig`` names where TRL has the knob)."""

    steps: int = knob(40, "GRPO iterations, each one rollout of groups then `epochs` steps", min=1)
    batch_size: int = knob(
        64,
        "outputs sampled per iteration: prompts × num_generations (TRL: generation_batch_size)",
        min=2,
        max=65536,
    )
    num_generations: int = knob(8, "N, outputs per prompt: the group", min=2, max=4096)
    epochs: int = knob(
        1, "μ, gradient steps on each rollout (TRL: num_iterations)", min=1, max=10_000
    )
    learning_rate: float = knob(1e-3, "AdamW learning rate, constant", gt=0)
    epsilon: float = knob(0.2, "ε, clip range of the ratio", min=0)
    beta: float = knob(0.0, "β, coefficient of the per-token k3 KL term in the loss", min=0)
    entropy_coef: float = knob(
        0.0, "c_H, weight of the entropy bonus subtracted from the loss (0: logged only)", min=0
    )
    importance_sampling_level: str = knob(
        "token",
        "one ratio per token ('token') or per output ('sequence')",
        choices=("token", "sequence"),
    )
    loss_type: str = knob(
        "grpo",
        "how token losses are averaged (grpo_loss's aggregation)",
        choices=("grpo", "bnpo", "dr_grpo", "dapo"),
    )
    scale_rewards: str = knob(
        "group",
        "divide by the group σ ('group') or not ('none': Dr. GRPO)",
        choices=("group", "none"),
    )
    std_ddof: int = knob(0, "0: population σ (the equation); 1: Bessel's σ (TRL)", min=0, max=1)
    std_eps: float = knob(1e-8, "added to σ before dividing (TRL: 1e-4)", gt=0)
    max_grad_norm: float | None = knob(
        1.0, "clip the gradient to this norm (None: no clipping)", gt=0
    )

    def check(self) -> None:
        self.check_divides("batch_size", "num_generations")

    @property
    def num_prompts(self) -> int:
        """Prompts per iteration: ``batch_size // num_generations``."""
        return self.batch_size // self.num_generations


def arithmetic_reward_fn(task, lam: float = 0.5):
    r"""A ``reward_fn`` for `minialign.tasks.ArithmeticTask`: $\lambda r_{\rm outcome} +
    (1-\lambda) r_{\rm process}$, returned as a dict so the loops log both parts
    (``reward_outcome`` = accuracy, ``reward_process``) next to the combined ``reward``."""

    def reward_fn(tokens, response_mask) -> dict[str, np.ndarray]:
        r_outcome, r_process = task.rewards(tokens, tokens, response_mask)  # (B,), (B,)
        reward = combined_reward(r_outcome, r_process, lam)
        return {"reward": reward, "outcome": r_outcome, "process": r_process}

    return reward_fn


def sample_groups(policy, reference, reward_fn, prompt_fn, sampling: Sampling,
                  config: GRPOConfig, rng) -> Rollout:  # fmt: skip
    """Stage 1: ``num_generations`` outputs for each of ``num_prompts`` prompts, scored."""
    prompts = np.repeat(prompt_fn(config.num_prompts, rng), config.num_generations, axis=0)
    return collect_rollout(policy, reference, reward_fn, prompts, sampling, rng,
                           temperature=config.temperature,
                           missing_eos_penalty=config.missing_eos_penalty)  # fmt: skip


def grpo_advantages(scores: np.ndarray, config: GRPOConfig) -> np.ndarray:
    """Stage 2: (B,) scores, adjacent rows one group -> (B,) advantages $A_i$."""
    groups = scores.reshape(config.num_prompts, config.num_generations)  # (n, N)
    advantages = group_advantages(groups, eps=config.std_eps, ddof=config.std_ddof,
                                  scale=config.scale_rewards == "group")  # fmt: skip
    return advantages.reshape(-1)  # (nN,)


def grpo_update(policy, optimizer, rollout: Rollout, advantages, config: GRPOConfig,
                max_completion_length: int) -> dict[str, float]:  # fmt: skip
    """Stage 3: ``epochs`` steps of $-L^{\\rm GRPO} + \\beta k_3$ on the whole batch.

    Returns the first epoch's losses and entropy, and clip fraction and approx KL
    averaged over the epochs (each measured before its step)."""
    options = dict(level=config.importance_sampling_level, aggregation=config.loss_type,
                   max_completion_length=max_completion_length)  # fmt: skip
    old, m, first, sums = rollout.logp_old, rollout.mask, {}, dict(clip_fraction=0.0, approx_kl=0.0)
    for epoch in range(config.epochs):
        logp, scaled_logits = policy_logprobs(policy, rollout.tokens, rollout.response_mask,
                                              config.temperature)  # fmt: skip
        loss = grpo_loss(logp, old, advantages, config.epsilon, m, beta=config.beta,
                         logp_ref=rollout.logp_ref, **options)  # fmt: skip
        if config.entropy_coef > 0:  # TRL's GRPOConfig.entropy_coef: -c_H H[pi] in the loss
            loss = loss - config.entropy_coef * entropy_bonus(scaled_logits, m)
        if config.importance_sampling_level == "sequence":  # one ratio per output
            new_, old_, m_ = logp.data.sum(axis=1), old.sum(axis=1), None
        else:
            new_, old_, m_ = logp.data, old, m
        sums["clip_fraction"] += clip_fraction(new_, old_, config.epsilon, m_)
        sums["approx_kl"] += approx_kl(new_, old_, m_)
        if epoch == 0:
            first["loss"] = float(loss.item())
            first["entropy"] = float(entropy_bonus(scaled_logits.data, m).item())
            policy_only = grpo_loss(logp.data, old, advantages, config.epsilon, m, **options)
            first["policy_loss"] = float(policy_only.item())  # the loss without its KL term
        optimizer_step(loss, [(optimizer, policy)], config.max_grad_norm)
    return dict(first, **{k: v / config.epochs for k, v in sums.items()})


def grpo_iteration(policy, reference, optimizer, reward_fn: RewardFn, prompt_fn,
                   sampling: Sampling, config: GRPOConfig, rng) -> dict[str, float]:  # fmt: skip
    """One whole GRPO iteration, stages 1-3 of the module docstring; returns its metrics."""
    rollout = sample_groups(policy, reference, reward_fn, prompt_fn, sampling, config, rng)
    advantages = grpo_advantages(rollout.scores, config)
    metrics = grpo_update(policy, optimizer, rollout, advantages, config, sampling.max_new_tokens)
    groups = rollout.scores.reshape(config.num_prompts, config.num_generations)  # (n, N)
    return dict(metrics, reward=float(rollout.scores.mean()),
                reward_std=float(groups.std(axis=1).mean()),
                frac_zero_std=frac_zero_std_groups(groups), kl=float(rollout.kl.mean()),
                beta=config.beta, length=float(rollout.mask.sum(axis=1).mean()),
                **rollout.reward_metrics)  # fmt: skip


def train_grpo(
    policy: Module,
    reference: Module,
    reward_fn: RewardFn,
    prompt_fn,
    sampling: Sampling,
    config: GRPOConfig = GRPOConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    *,
    rng: np.random.Generator | int | None = None,
    eval_fn=None,
    checkpoint_path=None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``policy`` in place with GRPO; see the module docstring.

    ``reward_fn(tokens, response_mask) -> (B,)`` (or a dict with a ``"reward"`` entry,
    like `arithmetic_reward_fn`'s), ``prompt_fn(n, rng) -> (n, P)`` int prompts,
    ``sampling`` how outputs are drawn; ``missing_eos_penalty`` applies before the group
    statistics. ``eval_fn``, ``checkpoint_path`` and ``resume`` as in `train_ppo`.
    """
    if policy is reference:
        raise ValueError("policy and reference are the same object; train a copy of it")
    rng = get_rng(rng)
    optimizer = AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
    saved = {"policy": policy, "optimizer": optimizer}
    with (
        training_mode(False, policy),  # no dropout (note ppo-5)
        Run(
            "grpo",
            config,
            rng=rng,
            saved=saved,
            eval_fn=eval_fn,
            unit="iteration",
            checkpoint_path=checkpoint_path,
            resume=resume,
            progress=progress,
            postfix=("reward", "kl"),
        ) as run,  # fmt: skip
    ):
        for step in run.steps():
            metrics = grpo_iteration(policy, reference, optimizer, reward_fn, prompt_fn,
                                     sampling, config, rng)  # fmt: skip
            run.log(step, metrics)
    return run.history
