r"""PPO for a language model (RLHF): maximise a reward while staying near the reference.

The seed's objective (maximised), with the KL estimated from samples:

$$J(\theta) = \mathbb{E}_{x,\,y\sim\pi_\theta}\big[r_\phi(x,y)\big]
             - \beta\,\mathrm{KL}\big(\pi_\theta(\cdot|x)\,\|\,\pi_{\rm ref}(\cdot|x)\big)$$

One iteration, stage by stage:

1. **Roll out** $y \sim \pi_{\theta_{\rm old}}(\cdot|x)$ for ``batch_size`` prompts (KV cache,
   no gradient), keeping $\log\pi_{\theta_{\rm old}}(y_t|x,y_{<t})$.
2. **Score**: $r_\phi(x, y)$ = ``reward_fn`` (a reward model = the proxy, or a true reward).
3. **Penalised per-token rewards**: $r_t = -\beta\,(\log\pi_{\theta_{\rm old}}(y_t) -
   \log\pi_{\rm ref}(y_t)) + [t = T]\,r_\phi(x,y)$ (`kl_penalized_rewards`, k1).
4. **Values** $V_w(s_t)$ of the state before each response token (old values, no gradient).
5. **GAE**: $\delta_t = r_t + \gamma V(s_{t+1}) - V(s_t)$, $\hat A_t = \delta_t +
   \gamma\lambda\hat A_{t+1}$, returns $R_t = \hat A_t + V(s_t)$ (`gae_advantages`).
6. **Whiten** $\hat A$ over the batch's valid tokens (population variance, ``ddof=0``).
7. **Update**, ``epochs`` passes over shuffled minibatches, minimising
   $L = L^{\rm CLIP} - c_H\,H[\pi_\theta] + c_V\,L^V$ with
   $L^{\rm CLIP} = -\mathbb{E}_t[\min(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1\pm\epsilon)\hat A_t)]$,
   $\rho_t = \pi_\theta(y_t)/\pi_{\theta_{\rm old}}(y_t)$, and
   $L^V = \tfrac12\mathbb{E}_t[\max((V - R)^2, (\mathrm{clip}(V, V_{\rm old}\pm\epsilon_v) - R)^2)]$.
8. **Adapt** $\beta$ toward ``adaptive_kl_target`` if one is given.

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

A row with no END (cut off at ``max_new_tokens``) has its last token at position
$P - 1 + n$ ($n$ response tokens), often $T - 1$, which ``tokens[:, :-1]`` leaves out: the
bootstrap value $V(s_{T+1})$ = V(tokens <= P-1+n) needs the value model on all of
``tokens`` (B, T); its first T-1 columns are then the old values (`rollout_values`).

so the value model runs on ``tokens[:, :-1]`` exactly like the policy, and GAE runs on
the response columns ``[P-1:]`` (right-padded rows, as `gae_advantages` needs).

Implementation details (RLHF_NOTES, PPO items 1-9):

1. The score goes on the last response token; every token pays $-\beta\,k_1$.
2. GAE with $V = 0$ after the last token; returns are $\hat A + V$ *before* whitening.
   A response that hit ``max_new_tokens`` without END was *truncated*, not ended; by
   default (``truncation="terminal"``, as TRL) it is still treated as ended.
   ``truncation="bootstrap"`` uses $V(s_{T+1})$, the value model's estimate of the state
   after the last token, in its last $\delta_T$ (`gae_advantages`' ``bootstrap_values``);
   ``missing_eos_penalty`` $c$ (TRL's knob) scores those rows $r_\phi - c$ instead.
3. Advantages whitened over valid tokens with the population variance (``ddof=0``).
4. Clipped value loss with ``value_clip`` $=\epsilon_v$ (``None`` turns it off).
5. The value model starts as the reference's trunk with a **zero** head, so
   $V \equiv 0$ at first; no dropout: the loop runs policy and value model in eval mode.
6. Log-probs for the loss use the sampling ``temperature`` ($z/\tau$).
7. ``pad_id`` must differ from ``stop_token`` (checked).
8. Adaptive $\beta$ (Ziegler et al.): $\beta \leftarrow \beta(1 + \mathrm{clip}(\mathrm{KL}/
   \mathrm{target} - 1, \pm0.2)\cdot B/\text{horizon})$, with KL the batch's mean k1.
9. ``epochs`` passes over shuffled minibatches; with ``target_kl`` the update stops
   at the first minibatch whose ``approx_kl`` exceeds it (SB3 style, checked before the step).

Also: policy and value model are separate networks with **separate AdamW optimisers**
(``lr``, ``value_lr``, no weight decay, constant rates) and one backward pass of $L$; each
network's gradient is clipped to norm ``max_grad_norm``. Because Adam is invariant to
the scale of a gradient, $c_V$ matters only through the clipping (kept for TRL/CleanRL
parity). All randomness (prompts, samples, shuffles) comes from ``rng``.

Logged metrics, per iteration (step = number of updates before the rollout):
``loss`` $L$, ``policy_loss`` $L^{\rm CLIP}$, ``value_loss`` $L^V$, ``entropy``
(nats per token) — each averaged over the minibatches run; ``reward`` mean score of the
rollout (the proxy when ``reward_fn`` is a reward model); ``kl`` mean per-sequence
$\sum_t k_1$ of the rollout vs the reference; ``beta`` the coefficient used;
``clip_fraction`` share of tokens with $|\rho - 1| > \epsilon$ and ``approx_kl``
$\mathbb{E}[k_3]$ of $\pi_{\theta_{\rm old}}\|\pi_\theta$ (both averaged over minibatches,
measured before each step); ``epochs_run`` (< ``epochs`` after an early stop);
``length`` mean response tokens (END included); ``advantage_std`` before whitening;
``seconds`` wall time since the run began (`common.run_loop`); ``eval_*`` from
``eval_fn``; ``reward_*`` extra reward entries.
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..nn import ValueModel
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
from .history import History
from .loop import as_rng, optimizer_step, run_loop, training_mode
from .rollout import collect_rollout, policy_logprobs


def _check(policy, reference, stop_token, pad_id, **positive):
    if policy is reference:
        raise ValueError("policy and reference are the same object; train a copy of it")
    if stop_token == pad_id:
        raise ValueError(f"pad_id ({pad_id}) must differ from stop_token (RLHF_NOTES item 7)")
    bad = {k: v for k, v in positive.items() if v is not None and not v > 0}
    if bad:
        raise ValueError(f"these must be > 0: {bad}")


TRUNCATION = ("terminal", "bootstrap")


def rollout_values(value_model, tokens, response_mask, prompt_length, truncation="terminal"):
    r"""Stage 4: old values $V(s_t)$ (B, T-1), 0 off the response, and $V(s_{T+1})$ (B,).

    ``"terminal"``: one forward pass on ``tokens[:, :-1]``, the bootstrap is ``None``.
    ``"bootstrap"``: one pass on all of ``tokens`` (B, T); column $t$ is V(tokens $\le t$),
    so the old values are its first T-1 columns and row $b$'s $V(s_{T+1})$ sits at the
    column of its last response token, $P - 1 + n_b$ (module docstring, "Positions").
    """
    mask = np.asarray(response_mask[:, 1:], bool)  # (B, T-1)
    with no_grad():
        if truncation == "terminal":
            return value_model(tokens[:, :-1]).data * mask, None
        full = value_model(tokens).data  # (B, T): V(tokens <= t)
    last = prompt_length - 1 + mask.sum(axis=1)  # (B,) position of each row's last token
    return full[:, :-1] * mask, full[np.arange(len(tokens)), last]


def ppo_targets(
    scores, logp_old, logp_ref, values, mask, prompt_length, beta, gamma, lam, *,
    truncated=None, bootstrap_values=None,
):  # fmt: skip
    r"""Stages 3 and 5: per-token rewards, GAE advantages and returns, (B, T-1) each.

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


def train_ppo(
    policy,
    reference,
    reward_fn,
    prompt_fn,
    *,
    stop_token: int,
    pad_id: int,
    max_new_tokens: int,
    value_model=None,
    iterations: int = 40,
    batch_size: int = 32,
    minibatch_size: int = 16,
    epochs: int = 2,
    lr: float = 1e-3,
    value_lr: float | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
    epsilon: float = 0.2,
    value_clip: float | None = 0.2,
    vf_coef: float = 0.5,
    entropy_coef: float = 0.0,
    beta: float = 0.05,
    adaptive_kl_target: float | None = None,
    kl_horizon: float = 10_000,
    target_kl: float | None = None,
    whiten_advantages: bool = True,
    truncation: str = "terminal",
    missing_eos_penalty: float | None = None,
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
    """Train ``policy`` in place with PPO; see the module docstring for every stage.

    ``reward_fn(tokens, response_mask) -> (B,)`` (or a dict with a ``"reward"`` entry),
    ``prompt_fn(n, rng) -> (n, P)`` int prompts. ``reference`` stays frozen.
    ``value_model`` defaults to ``ValueModel.from_policy(reference)`` and is trained too.
    ``truncation`` ("terminal" or "bootstrap") and ``missing_eos_penalty`` decide how a
    response cut off at ``max_new_tokens`` is treated (implementation detail 2).
    """
    _check(policy, reference, stop_token, pad_id, iterations=iterations, batch_size=batch_size,
           minibatch_size=minibatch_size, epochs=epochs, lr=lr, value_lr=value_lr,
           temperature=temperature, target_kl=target_kl)  # fmt: skip
    if truncation not in TRUNCATION:
        raise ValueError(f"truncation must be one of {TRUNCATION}, got {truncation!r}")
    rng = as_rng(rng)
    if value_model is None:
        value_model = ValueModel.from_policy(reference, rng=np.random.default_rng(0))
    opt_policy = AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    opt_value = AdamW(value_model.parameters(), lr=value_lr or lr, weight_decay=0.0)
    pairs = ((opt_policy, policy), (opt_value, value_model))
    kl_ctl = AdaptiveKLController(beta, adaptive_kl_target or 1.0, kl_horizon)

    def step(it: int) -> dict[str, float]:
        prompts = prompt_fn(batch_size, rng)
        ro = collect_rollout(policy, reference, reward_fn, prompts, max_new_tokens=max_new_tokens,
                             temperature=temperature, stop_token=stop_token, pad_id=pad_id,
                             rng=rng, missing_eos_penalty=missing_eos_penalty)  # fmt: skip
        tokens, mask, P = ro.tokens, ro.mask, ro.prompt_length
        # (B, T-1) V(s_t), 0 off the response; (B,) V(s_{T+1}) or None
        old_values, v_boot = rollout_values(value_model, tokens, ro.response_mask, P, truncation)
        _, advantages, returns = ppo_targets(
            ro.scores, ro.logp_old, ro.logp_ref, old_values, mask, P, kl_ctl.value, gamma, lam,
            truncated=None if v_boot is None else ro.truncated, bootstrap_values=v_boot,
        )  # fmt: skip
        advantage_std = float(advantages[mask].std())
        if whiten_advantages:
            advantages = whiten(advantages, mask)

        sums = dict(loss=0.0, policy_loss=0.0, value_loss=0.0, entropy=0.0,
                    clip_fraction=0.0, approx_kl=0.0)  # fmt: skip
        n, epochs_run, stop = 0, 0, False
        for _ in range(epochs):
            order = rng.permutation(len(tokens))
            for start in range(0, len(tokens), minibatch_size):
                mb = order[start : start + minibatch_size]
                m = mask[mb]
                logp, scaled_logits = policy_logprobs(
                    policy, tokens[mb], ro.response_mask[mb], temperature
                )
                kl_step = approx_kl(logp.data, ro.logp_old[mb], m)
                if target_kl is not None and kl_step > target_kl:
                    stop = True
                    break
                policy_loss = ppo_clip_loss(logp, ro.logp_old[mb], advantages[mb], epsilon, m)
                if entropy_coef > 0:
                    entropy = entropy_bonus(scaled_logits, m)
                else:
                    entropy = entropy_bonus(scaled_logits.data, m)  # logged only, no graph
                values = value_model(tokens[mb, :-1])  # (b, T-1)
                v_loss = value_loss(values, old_values[mb], returns[mb], value_clip, m)
                loss = policy_loss - entropy_coef * entropy + vf_coef * v_loss
                optimizer_step(loss, pairs, max_grad_norm)
                for key, value in (("loss", loss), ("policy_loss", policy_loss),
                                   ("value_loss", v_loss), ("entropy", entropy)):  # fmt: skip
                    sums[key] += float(value.item())
                sums["clip_fraction"] += clip_fraction(logp.data, ro.logp_old[mb], epsilon, m)
                sums["approx_kl"] += kl_step
                n += 1
            if stop:
                break
            epochs_run += 1

        kl = float(ro.kl.mean())
        beta_used = kl_ctl.value
        if adaptive_kl_target is not None:
            kl_ctl.update(kl, batch_size)
        means = {k: v / n for k, v in sums.items()} if n else {k: 0.0 for k in sums}
        return dict(means, reward=float(ro.scores.mean()), kl=kl, beta=beta_used,
                    epochs_run=epochs_run, length=float(mask.sum(axis=1).mean()),
                    advantage_std=advantage_std, **ro.reward_metrics)  # fmt: skip

    def set_extra(extra: dict) -> None:
        kl_ctl.value = float(extra["beta"])

    with training_mode(False, policy, value_model):  # no dropout anywhere (detail 5)
        return run_loop(
            "train_ppo", step, steps=iterations, desc="ppo", unit="iteration",
            postfix=("reward", "kl"), eval_fn=eval_fn, eval_every=eval_every,
            progress=progress, rng=rng, modules={"policy": policy, "value": value_model},
            optimizers={"policy": opt_policy, "value": opt_value},
            get_extra=lambda: {"beta": kl_ctl.value}, set_extra=set_extra,
            checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
        )  # fmt: skip
