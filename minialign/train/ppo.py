r"""PPO for a language model (RLHF): maximise a reward while staying near the reference.

The objective (maximised; docs/equations.md), with the KL estimated from samples:

$$J(\theta) = \mathbb{E}_{x,\,y\sim\pi_\theta}\big[r_\phi(x,y)\big]
             - \beta\,\mathrm{KL}\big(\pi_\theta(\cdot|x)\,\|\,\pi_{\rm ref}(\cdot|x)\big)$$

This file reads in the order of one iteration (`ppo_iteration`), stage by stage:

1. **Roll out** $y \sim \pi_{\theta_{\rm old}}(\cdot|x)$ for ``batch_size`` prompts (KV cache,
   no gradient), keeping $\log\pi_{\theta_{\rm old}}(y_t|x,y_{<t})$ (`collect_rollout`).
2. **Score**: $r_\phi(x, y)$ = ``reward_fn`` (a reward model = the proxy, or a true reward).
3. **Values** $V_w(s_t)$ of the state before each response token (`rollout_values`).
4. **KL-shaped rewards and GAE** (`ppo_targets`): $r_t = -\beta\,(\log\pi_{\theta_{\rm old}}(y_t)
   - \log\pi_{\rm ref}(y_t)) + [t = T]\,r_\phi(x,y)$, then $\delta_t = r_t + \gamma V(s_{t+1}) -
   V(s_t)$, $\hat A_t = \delta_t + \gamma\lambda\hat A_{t+1}$, returns $R_t = \hat A_t + V(s_t)$.
5. **Whiten** $\hat A$ over the batch's valid tokens (population variance).
6. **Update** (`ppo_update`): ``epochs`` passes over shuffled minibatches, each minimising
   (`ppo_loss`) $L = L^{\rm CLIP} - c_H\,H[\pi_\theta] + c_V\,L^V$ with
   $L^{\rm CLIP} = -\mathbb{E}_t[\min(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1\pm\epsilon)\hat A_t)]$,
   $\rho_t = \pi_\theta(y_t)/\pi_{\theta_{\rm old}}(y_t)$, and
   $L^V = \tfrac12\mathbb{E}_t[\max((V - R)^2, (\mathrm{clip}(V, V_{\rm old}\pm\epsilon_v) - R)^2)]$.
7. **Adapt** $\beta$ toward ``adaptive_kl_target`` if one is given.

Positions (P = prompt length; every array is in `sequence_logprobs`' (B, T-1) layout,
column $t$ belongs to token $t+1$, so ``logp``, ``mask``, rewards, values and advantages
line up column by column)::

    position t          0     1     2     3     4     5     6      (T = 7, P = 3)
    tokens[:, t]        x0    x1    x2    y0    y1    END   PAD
    response_mask       0     0     0     1     1     1     0
    column t of (B, T-1):                                      scores token t+1 given <= t
    mask[:, t]          0     0     1     1     1     0          = response_mask[:, t+1]
    logp[:, t]          .     .     y0    y1    END   .          log pi(token t+1 | <= t)
    values[:, t]        .     .     V2    V3    V4    .          V_t = V(tokens <= t), the state
                                                               BEFORE token t+1: V2 = V(x)
    response columns:  P-1 .. T-2 = 2, 3, 4; the score r_phi goes on column 4 (END)

So the value model runs on ``tokens[:, :-1]`` exactly like the policy, and GAE runs on
the response columns ``[P-1:]`` (right-padded rows, as `gae_advantages` needs). A row
with no END (cut off at ``max_new_tokens``) has its last token at position $P - 1 + n$
($n$ response tokens), often $T - 1$, which ``tokens[:, :-1]`` leaves out: its bootstrap
value $V(s_{T+1})$ = V(tokens <= P-1+n) needs the value model on all of ``tokens``.

The implementation details (docs/implementation_notes.md, notes ppo-1 to ppo-9): the score goes on the
last response token and every token pays $-\beta k_1$ (note ppo-1); GAE with $V = 0$ after
the end, returns before whitening, ``truncation`` "terminal" (as TRL) or "bootstrap"
(note ppo-2); population-variance whitening (note ppo-3); the clipped value loss (note ppo-4); a value
model that starts as the reference's trunk with a zero head, and no dropout: policy and
value model run in eval mode (note ppo-5); log-probs under the sampling ``temperature`` (note ppo-6);
pad id distinct from END (note ppo-7, checked by `Sampling`); the adaptive $\beta$ (note ppo-8);
shuffled minibatch epochs with an early stop on ``target_kl`` (note ppo-9).
Policy and value model are separate networks with separate AdamW optimisers (no weight
decay, constant rates) and one backward pass of $L$; each network's gradient is clipped
to ``max_grad_norm``. Adam undoes a gradient's scale, so $c_V$ acts only through the
clipping (kept for TRL/CleanRL parity). All randomness comes from ``rng``.

Logged metrics, per iteration (step = number of updates before the rollout):
``loss`` $L$, ``policy_loss`` $L^{\rm CLIP}$, ``value_loss`` $L^V$, ``entropy``
(nats per token) — each averaged over the minibatches run; ``reward`` mean score of the
rollout (the proxy when ``reward_fn`` is a reward model); ``kl`` mean per-sequence
$\sum_t k_1$ of the rollout vs the reference; ``beta`` the coefficient used;
``clip_fraction`` share of tokens with $|\rho - 1| > \epsilon$ and ``approx_kl``
$\mathbb{E}[k_3]$ of $\pi_{\theta_{\rm old}}\|\pi_\theta$ (both averaged over minibatches,
measured before each step); ``epochs_run`` (< ``epochs`` after an early stop);
``length`` mean response tokens (END included); ``advantage_std`` before whitening;
``seconds`` wall time since the run began; ``eval_*`` from ``eval_fn``; ``reward_*``
extra entries of the reward dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..nn import ValueModel
from ..nn.module import Module, training_mode
from ..objectives import (
    AdaptiveKLController,
    approx_kl,
    clip_fraction,
    entropy_bonus,
    gae_advantages,
    kl_penalized_rewards,
    ppo_clip_loss,
    value_loss,
    whiten,
)
from ..optim import AdamW
from .config import RolloutConfig, knob
from .history import History
from .rollout import RewardFn, Rollout, Sampling, collect_rollout, policy_logprobs
from .run import Run, get_rng, optimizer_step


@dataclass(frozen=True)
class PPOConfig(RolloutConfig):
    """Every setting of `train_ppo` (TRL's ``PPOConfig`` names where TRL has the knob)."""

    steps: int = knob(40, "PPO iterations, each one rollout then `epochs` passes of updates", min=1)
    batch_size: int = knob(
        32, "responses sampled per iteration (the rollout batch)", min=1, max=65536
    )
    num_mini_batches: int = knob(
        2, "minibatches per pass over the rollout, one optimiser step each", min=1, max=65536
    )
    epochs: int = knob(
        2, "passes over each rollout, reshuffled each time (TRL: num_ppo_epochs)", min=1, max=10_000
    )
    learning_rate: float = knob(1e-3, "AdamW learning rate of the policy, constant", gt=0)
    value_learning_rate: float | None = knob(
        None, "AdamW learning rate of the value model (None: learning_rate)", gt=0
    )
    gamma: float = knob(1.0, "γ, discount of future per-token rewards", min=0, max=1)
    lam: float = knob(0.95, "λ of GAE (1: Monte-Carlo advantages)", min=0, max=1)
    epsilon: float = knob(0.2, "ε, clip range of the probability ratio (TRL: cliprange)", min=0)
    cliprange_value: float | None = knob(
        0.2, "ε_v, clip range of the value around the old value (None: no clipping)", min=0
    )
    vf_coef: float = knob(0.5, "c_V, weight of the value loss", min=0)
    entropy_coef: float = knob(0.0, "c_H, weight of the entropy bonus (0: logged only)", min=0)
    beta: float = knob(
        0.05, "β, coefficient of the per-token k1 KL penalty in the reward (TRL: kl_coef)", min=0
    )
    adaptive_kl_target: float | None = knob(
        None, "adapt β so the rollout KL tracks this target (None: fixed β)", gt=0
    )
    kl_horizon: float = knob(10_000.0, "horizon of the adaptive β update, in responses", gt=0)
    target_kl: float | None = knob(
        None, "stop an iteration's updates once approx_kl exceeds this (None: never)", gt=0
    )
    whiten_advantages: bool = knob(True, "whiten advantages over the rollout's valid tokens")
    truncation: str = knob(
        "terminal",
        "a response cut off at max_new_tokens counts as ended ('terminal') or bootstraps V ('bootstrap')",
        choices=("terminal", "bootstrap"),
    )
    max_grad_norm: float | None = knob(
        1.0, "clip each network's gradient to this norm (None: no clipping)", gt=0
    )

    def check(self) -> None:
        self.check_divides("batch_size", "num_mini_batches")

    @property
    def mini_batch_size(self) -> int:
        """Responses per minibatch: ``batch_size // num_mini_batches``."""
        return self.batch_size // self.num_mini_batches


@dataclass
class PPOState:
    """What PPO trains and carries from one iteration to the next."""

    policy: Module
    reference: Module  # frozen
    value_model: Module
    policy_optimizer: AdamW
    value_optimizer: AdamW
    kl_ctl: AdaptiveKLController  # the current β (adapted only with adaptive_kl_target)

    @classmethod
    def create(cls, policy, reference, config: PPOConfig, value_model=None) -> PPOState:
        """Fresh optimisers; ``value_model`` defaults to the reference's trunk with a zero head."""
        if policy is reference:
            raise ValueError("policy and reference are the same object; train a copy of it")
        if value_model is None:
            value_model = ValueModel.from_policy(reference, rng=np.random.default_rng(0))
        value_lr = config.value_learning_rate or config.learning_rate
        return cls(
            policy,
            reference,
            value_model,
            AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0),
            AdamW(value_model.parameters(), lr=value_lr, weight_decay=0.0),
            AdaptiveKLController(config.beta, config.adaptive_kl_target or 1.0, config.kl_horizon),
        )

    def saved(self) -> dict:
        """What a checkpoint holds (see `Run`)."""
        return {"policy": self.policy, "value": self.value_model, "kl": self.kl_ctl,
                "policy_optimizer": self.policy_optimizer, "value_optimizer": self.value_optimizer}  # fmt: skip


def rollout_values(value_model, rollout: Rollout, truncation: str = "terminal"):
    r"""Stage 3: old values $V(s_t)$ (B, T-1), 0 off the response, and $V(s_{T+1})$ (B,).

    ``"terminal"``: one forward pass on ``tokens[:, :-1]``, the bootstrap is ``None``.
    ``"bootstrap"``: one pass on all of ``tokens`` (B, T); column $t$ is V(tokens $\le t$),
    so the old values are its first T-1 columns and row $b$'s $V(s_{T+1})$ sits at the
    column of its last response token, $P - 1 + n_b$ (module docstring, "Positions").
    """
    tokens, mask = rollout.tokens, rollout.mask  # (B, T), (B, T-1)
    with no_grad():
        if truncation == "terminal":
            return value_model(tokens[:, :-1]).data * mask, None
        full = value_model(tokens).data  # (B, T): V(tokens <= t)
    last = rollout.prompt_length - 1 + mask.sum(axis=1)  # (B,) position of each row's last token
    return full[:, :-1] * mask, full[np.arange(len(tokens)), last]


def ppo_targets(
    scores, logp_old, logp_ref, values, mask, prompt_length, beta, gamma, lam, *,
    truncated=None, bootstrap_values=None,
):  # fmt: skip
    r"""Stage 4: per-token rewards, GAE advantages and returns, (B, T-1) each.

    Inputs are in the (B, T-1) layout (column $t$ = token $t+1$; ``values[:, t]`` =
    $V$ of the prefix $\le t$); only the response columns ``[prompt_length - 1:]`` are
    used, and every output is 0 elsewhere. ``scores`` (B,) is $r_\phi(x, y)$.
    ``truncated`` / ``bootstrap_values`` (B,) go to `gae_advantages`: a truncated row's
    $\delta_T$ gains $\gamma V(s_{T+1})$ (the rewards returned do not include it).
    """
    response = slice(prompt_length - 1, None)  # response columns of the (B, T-1) layout
    m = mask[:, response]  # (B, R), right-padded: y_0 .. END, then padding
    rewards = np.zeros(mask.shape, np.float32)  # (B, T-1)
    rewards[:, response] = kl_penalized_rewards(
        scores, logp_old[:, response], logp_ref[:, response], beta, m
    )
    advantages, returns = np.zeros_like(rewards), np.zeros_like(rewards)
    advantages[:, response], returns[:, response] = gae_advantages(
        rewards[:, response], values[:, response], gamma, lam, m,
        truncated=truncated, bootstrap_values=bootstrap_values,
    )  # fmt: skip
    return rewards, advantages, returns


def ppo_loss(state: PPOState, rollout: Rollout, rows, advantages, returns, old_values,
             config: PPOConfig):  # fmt: skip
    r"""$L = L^{\rm CLIP} - c_H H + c_V L^V$ on minibatch ``rows``; returns ``(L, parts)``.

    ``parts``: the three terms as Tensors, and the current per-token log-probs (B, T-1).
    """
    tokens, m, logp_old = rollout.tokens[rows], rollout.mask[rows], rollout.logp_old[rows]
    logp, scaled_logits = policy_logprobs(
        state.policy, tokens, rollout.response_mask[rows], config.temperature
    )
    policy_loss = ppo_clip_loss(logp, logp_old, advantages[rows], config.epsilon, m)
    if config.entropy_coef > 0:
        entropy = entropy_bonus(scaled_logits, m)
    else:
        entropy = entropy_bonus(scaled_logits.data, m)  # logged only, no graph
    values = state.value_model(tokens[:, :-1])  # (b, T-1)
    v_loss = value_loss(values, old_values[rows], returns[rows], config.cliprange_value, m)
    loss = policy_loss - config.entropy_coef * entropy + config.vf_coef * v_loss
    return loss, dict(policy_loss=policy_loss, value_loss=v_loss, entropy=entropy, logp=logp)


def ppo_update(state: PPOState, rollout: Rollout, advantages, returns, old_values,
               config: PPOConfig, rng) -> dict[str, float]:  # fmt: skip
    """Stage 6: ``epochs`` passes over shuffled minibatches, one optimiser step each.

    With ``target_kl`` the update stops at the first minibatch whose ``approx_kl``
    exceeds it, before stepping. Returns the losses averaged over the minibatches run."""
    pairs = [(state.policy_optimizer, state.policy), (state.value_optimizer, state.value_model)]
    keys = ("loss", "policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl")
    sums, n, epochs_run = dict.fromkeys(keys, 0.0), 0, 0
    for _ in range(config.epochs):
        order = rng.permutation(len(rollout.tokens))
        for start in range(0, len(order), config.mini_batch_size):
            rows = order[start : start + config.mini_batch_size]
            loss, parts = ppo_loss(state, rollout, rows, advantages, returns, old_values, config)
            logp_new, logp_old, m = (
                parts.pop("logp").data,
                rollout.logp_old[rows],
                rollout.mask[rows],
            )
            kl_step = approx_kl(logp_new, logp_old, m)
            if config.target_kl is not None and kl_step > config.target_kl:
                return _means(sums, n, epochs_run)
            optimizer_step(loss, pairs, config.max_grad_norm)
            for key, value in dict(parts, loss=loss).items():
                sums[key] += float(value.item())
            sums["clip_fraction"] += clip_fraction(logp_new, logp_old, config.epsilon, m)
            sums["approx_kl"] += kl_step
            n += 1
        epochs_run += 1
    return _means(sums, n, epochs_run)


def _means(sums: dict, n: int, epochs_run: int) -> dict[str, float]:
    return dict({k: v / n if n else 0.0 for k, v in sums.items()}, epochs_run=epochs_run)


def ppo_iteration(state: PPOState, reward_fn: RewardFn, prompt_fn, sampling: Sampling,
                  config: PPOConfig, rng) -> dict[str, float]:  # fmt: skip
    """One whole PPO iteration, stages 1-7 of the module docstring; returns its metrics."""
    prompts = prompt_fn(config.batch_size, rng)  # (B, P)
    rollout = collect_rollout(state.policy, state.reference, reward_fn, prompts, sampling, rng,
                              temperature=config.temperature,
                              missing_eos_penalty=config.missing_eos_penalty)  # fmt: skip
    old_values, v_boot = rollout_values(state.value_model, rollout, config.truncation)
    beta = state.kl_ctl.value
    _, advantages, returns = ppo_targets(
        rollout.scores, rollout.logp_old, rollout.logp_ref, old_values, rollout.mask,
        rollout.prompt_length, beta, config.gamma, config.lam,
        truncated=None if v_boot is None else rollout.truncated, bootstrap_values=v_boot,
    )  # fmt: skip
    advantage_std = float(advantages[rollout.mask].std())
    if config.whiten_advantages:
        advantages = whiten(advantages, rollout.mask)
    losses = ppo_update(state, rollout, advantages, returns, old_values, config, rng)
    kl = float(rollout.kl.mean())
    if config.adaptive_kl_target is not None:
        state.kl_ctl.update(kl, config.batch_size)
    epochs_run = losses.pop("epochs_run")
    return dict(losses, reward=float(rollout.scores.mean()), kl=kl, beta=beta,
                epochs_run=epochs_run, length=float(rollout.mask.sum(axis=1).mean()),
                advantage_std=advantage_std, **rollout.reward_metrics)  # fmt: skip


def train_ppo(
    policy: Module,
    reference: Module,
    reward_fn: RewardFn,
    prompt_fn,
    sampling: Sampling,
    config: PPOConfig = PPOConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    *,
    value_model: Module | None = None,
    rng: np.random.Generator | int | None = None,
    eval_fn=None,
    checkpoint_path=None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``policy`` in place with PPO; see the module docstring for every stage.

    ``reward_fn(tokens, response_mask) -> (B,)`` (or a dict with a ``"reward"`` entry),
    ``prompt_fn(n, rng) -> (n, P)`` int prompts, ``sampling`` how responses are drawn.
    ``reference`` stays frozen. ``value_model`` defaults to the reference's trunk with a
    zero head and is trained too. ``eval_fn(step) -> dict`` (e.g. `make_eval_fn`) runs
    every ``config.eval_steps``; ``checkpoint_path``/``resume`` save and continue a run.
    """
    rng = get_rng(rng)
    state = PPOState.create(policy, reference, config, value_model)
    with (
        training_mode(False, state.policy, state.value_model),  # no dropout (note ppo-5)
        Run(
            "ppo",
            config,
            rng=rng,
            saved=state.saved(),
            eval_fn=eval_fn,
            unit="iteration",
            checkpoint_path=checkpoint_path,
            resume=resume,
            progress=progress,
            postfix=("reward", "kl"),
        ) as run,  # fmt: skip
    ):
        for step in run.steps():
            run.log(step, ppo_iteration(state, reward_fn, prompt_fn, sampling, config, rng))
    return run.history
