"""Independent PyTorch implementations of every name `minialign.check` knows.

Written the way an engineer porting TRL-style code would (masked means, a backward loop
for GAE), to show that correct code in another framework passes `check(framework="torch")`.
Imported only by tests that have already skipped when torch is absent.
"""

import torch
import torch.nn.functional as TF


def _mask(x, mask):
    return torch.ones_like(x) if mask is None else mask


def _masked_mean(x, m):
    return (x * m).sum() / m.sum()


def bradley_terry_loss(chosen_rewards, rejected_rewards, margin=None):
    z = chosen_rewards - rejected_rewards - (0 if margin is None else margin)
    return -TF.logsigmoid(z).mean()


def discounted_returns(rewards, gamma, mask=None):
    m = _mask(rewards, mask)
    r = rewards * m
    running, out = torch.zeros_like(r[:, 0]), []
    for t in reversed(range(r.shape[1])):
        running = r[:, t] + gamma * running
        out.append(running)
    return torch.stack(out[::-1], dim=1) * m


def mc_advantages(rewards, values, gamma, mask=None):
    m = _mask(rewards, mask)
    return (discounted_returns(rewards, gamma, mask) - values) * m


def gae_advantages(rewards, values, gamma, lam, mask=None):
    m = _mask(rewards, mask)
    r, v = rewards * m, values * m
    T = r.shape[1]
    last, out = torch.zeros_like(r[:, 0]), []
    for t in reversed(range(T)):
        v_next = v[:, t + 1] if t + 1 < T else torch.zeros_like(v[:, 0])
        delta = r[:, t] + gamma * v_next - v[:, t]
        last = delta + gamma * lam * last
        out.append(last)
    advantages = torch.stack(out[::-1], dim=1) * m
    return advantages, (advantages + v) * m


def whiten(x, mask=None, shift_mean=True):
    m = _mask(x, mask)
    mean = _masked_mean(x, m)
    var = _masked_mean((x - mean) ** 2, m)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * m


def kl_penalty(logp, logp_ref, estimator="k1", mask=None):
    log_ratio = (logp_ref - logp) * _mask(logp, mask)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.expm1(log_ratio) - log_ratio


def kl_penalized_rewards(score, logp, logp_ref, beta, mask=None, score_offset=0):
    m = _mask(logp, mask)
    rewards = -beta * kl_penalty(logp, logp_ref, "k1", mask) * m
    T = m.shape[1]
    last = (m.sum(dim=1).long() - 1 + score_offset).clamp(max=T - 1)
    return rewards.index_put((torch.arange(len(score)), last), score, accumulate=True)


def probability_ratio(logp_new, logp_old, mask=None):
    return torch.exp((logp_new - logp_old) * _mask(logp_new, mask))


def ppo_clip_loss(logp_new, logp_old, advantages, epsilon, mask=None):
    m = _mask(logp_new, mask)
    ratio = torch.exp((logp_new - logp_old) * m)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    return -_masked_mean(torch.min(ratio * advantages, clipped * advantages), m)


def value_loss(values, old_values, returns, clip=None, mask=None):
    m = _mask(values, mask)
    loss = (values - returns) ** 2
    if clip is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip, clip)
        loss = torch.max(loss, (clipped - returns) ** 2)
    return 0.5 * _masked_mean(loss, m)


def combined_reward(r_outcome, r_process, lam):
    return lam * r_outcome + (1 - lam) * r_process


def group_advantages(rewards, ddof=0):
    mu = rewards.mean(dim=-1, keepdim=True)
    sigma = rewards.std(dim=-1, keepdim=True, correction=ddof)
    equal = rewards.amax(dim=-1, keepdim=True) == rewards.amin(dim=-1, keepdim=True)
    return torch.where(equal, 0.0, (rewards - mu) / (sigma + 1e-8))


def grpo_loss(logp_new, logp_old, advantages, epsilon, mask=None, level="sequence",
              aggregation="grpo"):  # fmt: skip
    m = _mask(logp_new, mask)
    log_ratio = (logp_new - logp_old) * m
    if level == "sequence":
        log_ratio = log_ratio.sum(dim=1, keepdim=True)
    ratio = torch.exp(log_ratio)
    A = advantages[:, None]
    per_token = -torch.min(ratio * A, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * A)
    per_token = per_token.expand_as(m) * m
    if aggregation == "grpo":
        return (per_token.sum(dim=1) / m.sum(dim=1).clamp(min=1)).mean()
    if aggregation in ("bnpo", "dapo"):
        return per_token.sum() / m.sum()
    return per_token.sum() / (m.shape[0] * m.shape[1])


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, tau):
    delta = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return -TF.logsigmoid(delta / tau).mean()


def softmax(x):
    return torch.softmax(x, dim=-1)


IMPLEMENTATIONS = {
    name: globals()[name]
    for name in (
        "bradley_terry_loss", "discounted_returns", "mc_advantages", "gae_advantages", "whiten",
        "kl_penalty", "kl_penalized_rewards", "probability_ratio", "ppo_clip_loss", "value_loss",
        "combined_reward", "group_advantages", "grpo_loss", "dpo_loss", "softmax",
    )
}  # fmt: skip
