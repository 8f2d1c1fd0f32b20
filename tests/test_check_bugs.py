"""Planted bugs, one or more per objective: `check` must catch each one, in the property
that names the mistake, with a small counterexample a person can read."""

import numpy as np
import pytest

import minialign as ma
from minialign.autograd import engine
from minialign.check import check


def _log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


def bt_wrong_sign(chosen_rewards, rejected_rewards):
    return -np.mean(_log_sigmoid(rejected_rewards - chosen_rewards))  # σ(r- - r+)


def returns_off_by_one(rewards, gamma):
    t = np.arange(rewards.shape[1])
    power = t[:, None] - t[None, :] + 1  # γ^(t'-t+1): the current reward is discounted too
    return rewards @ np.where(power >= 1, float(gamma) ** np.maximum(power, 0), 0.0)


def mc_next_value(rewards, values, gamma):
    G = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running
        G[:, t] = running
    v_next = np.concatenate([values[:, 1:], np.zeros_like(values[:, :1])], axis=1)
    return G - v_next  # V_{t+1} where the seed subtracts V_t


def gae_off_by_one(rewards, values, gamma, lam):
    A = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * values[:, t] - values[:, t]  # should be values[:, t + 1]
        last = delta + gamma * lam * last
        A[:, t] = last
    return A, A + values


def whiten_bessel(x):
    return (x - x.mean()) / np.sqrt(x.var(ddof=1) + 1e-8)


def k3_reversed(logp, logp_ref):
    log_ratio = logp - logp_ref  # log(π/π_ref): the ratio of the wrong direction
    return np.expm1(log_ratio) - log_ratio


def score_on_first_token(score, logp, logp_ref, beta):
    rewards = -beta * (logp - logp_ref)
    rewards[:, 0] += score
    return rewards


def ratio_as_quotient(logp_new, logp_old):
    return np.exp(logp_new) / np.exp(logp_old)


def ppo_max_for_min(logp_new, logp_old, advantages, epsilon):
    r = np.exp(logp_new - logp_old)
    return -np.mean(np.maximum(r * advantages, np.clip(r, 1 - epsilon, 1 + epsilon) * advantages))


def value_min_for_max(values, old_values, returns, clip=0.2):
    clipped = old_values + ma.clip(values - old_values, -clip, clip)
    return 0.5 * ma.minimum((values - returns) ** 2, (clipped - returns) ** 2).mean()


def combined_swapped(r_outcome, r_process, lam):
    return lam * r_process + (1 - lam) * r_outcome


def group_without_guard(rewards):
    mu, sigma = rewards.mean(axis=-1, keepdims=True), rewards.std(axis=-1, keepdims=True)
    return (rewards - mu) / sigma


def grpo_wrong_sign(logp_new, logp_old, advantages, epsilon):
    rho = np.exp((logp_new - logp_old).sum(axis=-1))
    return np.mean(
        np.minimum(rho * advantages, np.clip(rho, 1 - epsilon, 1 + epsilon) * advantages)
    )


def grpo_detached(logp_new, logp_old, advantages, epsilon):
    rho = ma.exp(ma.tensor(logp_new.data - logp_old.data).sum(axis=-1))  # .data: off the graph
    clipped = ma.clip(rho, 1 - epsilon, 1 + epsilon)
    return -ma.minimum(rho * advantages, clipped * advantages).mean()


def dpo_times_tau(pc, pr, rc, rr, tau):
    return -np.mean(_log_sigmoid(tau * ((pc - rc) - (pr - rr))))  # τ used as β


def dpo_unstable(pc, pr, rc, rr, tau):
    return -np.mean(np.log(1 / (1 + np.exp(-((pc - rc) - (pr - rr)) / tau))))


def softmax_forgets_upstream(x):
    x = engine.as_tensor(x)
    e = np.exp(x.data - x.data.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return engine.make_result(y, (x,), lambda g: (y * (1 - y),), "softmax")  # ignores g


BUGS = [
    # name, function, framework, options, the property that must fail, text in its report
    ("bradley_terry_loss", bt_wrong_sign, "numpy", {}, "closed form", "loss: expected"),
    ("discounted_returns", returns_off_by_one, "numpy", {}, "γ = 0: G_t = r_t", "G: expected 1, got 0"),
    ("mc_advantages", mc_next_value, "numpy", {}, "γ = 0: Â_t = r_t - V_t", "Â: expected -1, got 0"),
    ("gae_advantages", gae_off_by_one, "numpy", {}, "λ = 0", "value (advantages): expected"),
    ("whiten", whiten_bessel, "numpy", {}, "mean 0 and std 1", "std (ddof=0)"),
    ("kl_penalty", k3_reversed, "numpy", {"estimator": "k3"}, "Σ_y π(y) k(y)", "Σ_y π(y) k(y)"),
    ("kl_penalized_rewards", score_on_first_token, "numpy", {}, "β = 0", "rewards at index"),
    ("probability_ratio", ratio_as_quotient, "numpy", {}, "log-probs near -1e4", "got nan"),
    ("ppo_clip_loss", ppo_max_for_min, "numpy", {}, "L = -E[min(", "L^CLIP: expected"),
    ("value_loss", value_min_for_max, "minialign", {"value_clip": 0.2}, "L = ½E[max(", "L^V"),
    ("combined_reward", combined_swapped, "numpy", {}, "λ = 1: r = r_outcome", "r: expected 0, got 1"),
    ("group_advantages", group_without_guard, "numpy", {}, "a group of equal rewards", "got nan"),
    ("grpo_loss", grpo_wrong_sign, "numpy", {}, "ratio 1", "loss: expected"),
    ("grpo_loss", grpo_detached, "minialign", {}, "gradient = minialign's",
     "no gradient reached logp_new"),
    ("dpo_loss", dpo_times_tau, "numpy", {}, "L = mean log(1 + exp(-Δ/τ))", "L_DPO: expected"),
    ("dpo_loss", dpo_unstable, "numpy", {}, "margins Δ/τ of ±1e4", "got inf"),
    ("softmax", softmax_forgets_upstream, "minialign", {}, "gradient = central differences",
     "gradients of sum(G * output) with G ="),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, fn, framework, options, prop, text", BUGS, ids=lambda v: getattr(v, "__name__", None)
)
def test_a_planted_bug_is_caught_with_a_readable_counterexample(
    name, fn, framework, options, prop, text
):
    report = check(name, fn, framework, **options)
    assert not report.passed
    failing = [p for p, ok in report.properties.items() if p.startswith(prop) and not ok]
    assert failing, f"{prop!r} did not fail:\n{report}"
    failure = next(f for f in report.failures if f.property == failing[0])
    shown = str(failure)
    assert text in shown, shown
    assert "  inputs:" in shown and ("expected" in shown or "no gradient reached" in shown)
    assert "Traceback" not in str(report)
    assert len(shown.splitlines()) < 40, shown  # shrunk: a few small arrays, not a wall of numbers


def test_a_convention_that_matches_the_bug_makes_it_pass():
    """Bessel σ and β = 1/τ are conventions (TRL's), not bugs: the options accept them."""
    assert check("whiten", whiten_bessel, ddof=1).passed
    assert check("dpo_loss", dpo_times_tau, dpo_beta=True).passed


def test_trl_style_group_advantages_in_torch_need_the_bessel_options():
    torch = pytest.importorskip("torch")

    def trl_group_advantages(rewards):  # TRL: std with Bessel's correction, + 1e-4
        mu, sigma = rewards.mean(dim=-1, keepdim=True), rewards.std(dim=-1, keepdim=True)
        return (rewards - mu) / (sigma + 1e-4)

    default = check("group_advantages", trl_group_advantages, "torch")
    assert not default.passed and "population σ" in str(default)
    assert check("group_advantages", trl_group_advantages, "torch", ddof=1, eps=1e-4).passed
    assert torch.is_grad_enabled()


def test_a_detached_policy_term_in_torch_is_a_missing_gradient():
    torch = pytest.importorskip("torch")

    def ppo_detached(logp_new, logp_old, advantages, epsilon):
        ratio = torch.exp(logp_new.detach() - logp_old)
        clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
        return -torch.min(ratio * advantages, clipped * advantages).mean()

    report = check("ppo_clip_loss", ppo_detached, "torch")
    assert report.properties["value = minialign's ppo_clip_loss"]
    assert not report.properties["gradient = minialign's ppo_clip_loss"]
    assert "no gradient reached logp_new: the output is not connected" in str(report)
