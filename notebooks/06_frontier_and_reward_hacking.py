# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The reward–KL frontier, and reward hacking
#
# Every alignment method buys reward with distance from the reference model. This notebook
# puts PPO, GRPO, DPO and best-of-n on one chart, true reward against the KL divergence they
# spent (a miniature of Figure 2 of the DPO paper), and then shows what happens when the
# reward being optimised is a flawed *proxy* and nothing limits the KL: PPO keeps raising the
# proxy while the true reward rises, peaks and collapses (Gao, Schulman & Hilton 2022, "Scaling
# Laws for Reward Model Overoptimization"). You will watch the policy discover the exploit,
# fit Gao et al.'s two curves to the result, and see what the KL penalty $\beta$ in the seed's
# objective $J(\theta)$ buys.
#
# Runtime: about 30 seconds on a laptop CPU (2 cores), half of it in `run_demo`; fully seeded.
#
# 1. One yardstick: true reward and KL
# 2. The frontier: PPO, GRPO, DPO and best-of-n
# 3. A flawed reward model
# 4. Over-optimisation: PPO without a KL penalty
# 5. The anchor: the KL penalty in $J(\theta)$
# 6. Scaling laws for over-optimisation
# 7. What to take away
# 8. Try this

# %%
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
from minialign.demo import DemoConfig, run_demo
from minialign.nn import RewardModel, generate, sequence_logprobs
from minialign.objectives import kl_penalized_rewards
from minialign.plots import plot_frontier
from minialign.pretrained import load_reference, make_task
from minialign.train import (
    PPOConfig,
    RewardConfig,
    Sampling,
    best_of_n,
    best_of_n_kl,
    collect_rollout,
    evaluate_policy,
    make_eval_fn,
    reward_fn,
    train_ppo,
    train_reward_model,
)

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=3, suppress=True)
t_start = time.perf_counter()

task = make_task("sentiment")
tok = task.tokenizer
reference = load_reference("sentiment")
sampling = Sampling.for_task(task)  # up to 12 new tokens, END stops, PAD fills the rest
gen_kw = vars(sampling)  # the same three settings as keyword arguments of `generate`

# %% [markdown]
# ## 1. One yardstick: true reward and KL
#
# To compare methods we need two numbers per trained policy $\pi$, measured the same way for
# all of them. On the sentiment task the **true reward** $r(y)$ of a continuation is known
# exactly (mean word valence, minus a penalty for repeated adjectives; see notebook 02), so we
# can score samples with it even though no method is trained on it. The **cost** is the KL
# divergence from the reference, over whole responses:
#
# $$\mathrm{KL}(\pi \,\|\, \pi_{\rm ref}) = \mathbb{E}_{x,\; y \sim \pi(\cdot|x)}
#   \Big[\log \pi(y|x) - \log \pi_{\rm ref}(y|x)\Big],
#   \qquad \log \pi(y|x) = \sum_t \log \pi(y_t \mid x, y_{<t}).$$
#
# `evaluate_policy` estimates it the simplest way: sample one response per prompt from $\pi$,
# add up the per-token log-ratio, and average over prompts (the "k1" estimator: unbiased, but
# a single sample can be negative). Line by line, for the reference itself, where the answer
# must be exactly 0:

# %%
prompts = task.sample_prompts(8, np.random.default_rng(1))  # (8, 4)
gen = generate(reference, prompts, **gen_kw, rng=np.random.default_rng(2))
logp_pi = gen.logprobs.sum(axis=1)  # (8,) log pi(y|x), recorded while sampling
logp_ref = sequence_logprobs(reference, gen.tokens, gen.response_mask).total.data  # (8,)
kl_by_hand = np.mean(logp_pi - logp_ref)
true_by_hand = np.mean(task.true_reward(gen.tokens, gen.response_mask))

measured = evaluate_policy(reference, reference, prompts, task.true_reward, sampling,
                           rng=np.random.default_rng(2))  # fmt: skip
print(f"by hand:         true reward {true_by_hand:+.4f}, KL {kl_by_hand:+.2e}")
print(f"evaluate_policy: true reward {measured['true_reward']:+.4f}, KL {measured['kl']:+.2e}")
np.testing.assert_allclose(measured["kl"], kl_by_hand, atol=1e-6)
np.testing.assert_allclose(measured["true_reward"], true_by_hand, rtol=1e-12)
assert abs(kl_by_hand) < 1e-5  # pi = pi_ref: every log-ratio is 0 (up to float32 rounding)

# %% [markdown]
# Best-of-n is the exception. It trains nothing: it draws $n$ samples from $\pi_{\rm ref}$ and
# keeps the one the reward model likes best, so there is no $\log\pi(y|x)$ to evaluate. Its KL
# is taken from the standard formula
#
# $$\mathrm{KL}(\pi_{\rm BoN} \,\|\, \pi_{\rm ref}) \le \log n - \frac{n-1}{n},$$
#
# which is exact only when no two samples are ever equal. On our small task identical responses
# are common, so the true KL is smaller: best-of-n's points sit at most as far right as drawn
# (Beirami et al. 2024).

# %%
ns = np.array([1, 2, 4, 8, 16, 32, 64])
bound_by_hand = np.log(ns) - (ns - 1) / ns
print("n         ", ns)
print("KL bound  ", bound_by_hand)
np.testing.assert_allclose([best_of_n_kl(int(n)) for n in ns], bound_by_hand, rtol=1e-12)

# %% [markdown]
# ## 2. The frontier: PPO, GRPO, DPO and best-of-n
#
# `minialign.demo.run_demo` runs the whole pipeline that `minialign demo` runs from the command
# line: a simulated annotator labels 2000 preference pairs; a reward model (the **proxy**) is
# trained on them; PPO and GRPO maximise the proxy at three KL penalties $\beta$ each; DPO
# learns from the same pairs at three temperatures $\tau$ (the DPO paper's $\beta = 1/\tau$);
# best-of-n picks the proxy's favourite of $n$ reference samples. Every policy is then scored
# by `evaluate_policy` on the same 256 held-out prompts with the same sampling seed. The quick
# configuration takes about 12 seconds and writes `summary.json`, `metrics.jsonl` and two
# figures into a run directory (a temporary one here).

# %%
with tempfile.TemporaryDirectory() as run_dir:
    t0 = time.perf_counter()
    records = run_demo(run_dir, DemoConfig.quick(), seed=0, progress=False, log=lambda _: None)
    t_demo = time.perf_counter() - t0
    written = sorted(p.name for p in Path(run_dir).iterdir())
    assert json.loads((Path(run_dir) / "summary.json").read_text()) == records
print(f"run_demo: {t_demo:.1f} s; wrote {written}")

ref_record = records[0]
base = ref_record["true_reward"]


def knob(rec):
    if rec["method"] in ("ppo", "grpo"):
        return f"β = {rec['beta']:g}"
    if rec["method"] == "dpo":
        return f"τ = {rec['tau']:g} (β = {rec['beta']:g})"
    return f"n = {rec['n']}" if rec["method"] == "best_of_n" else ""


rows = ["| method | setting | true reward | KL (nats) | gain per nat | proxy reward |",
        "|---|---|---:|---:|---:|---:|"]  # fmt: skip
for rec in records:
    per_nat = f"{(rec['true_reward'] - base) / rec['kl']:.2f}" if rec["kl"] > 0.05 else "–"
    rows.append(f"| {rec['method']} | {knob(rec)} | {rec['true_reward']:+.3f} | {rec['kl']:.3f}"
                f" | {per_nat} | {rec.get('proxy_reward', float('nan')):+.2f} |")  # fmt: skip
display(Markdown("\n".join(rows)))
print(f"reward model's held-out preference accuracy: {ref_record['preference_accuracy']:.3f}")

# %%
ax = plot_frontier(records)
ax.figure.set_size_inches(7, 4.5)
ax.set_title("True reward against KL spent (sentiment task, 256 held-out prompts)")
ax.axhline(base, color="gray", lw=0.8, ls=":")
ax.text(0.98, 0.03, "best-of-n: KL is the bound log n − (n−1)/n", transform=ax.transAxes,
        fontsize=8, color="tab:purple", ha="right")  # fmt: skip
plt.show()

# %% [markdown]
# **How to read it.** Each point is one trained policy; up is better, right is more expensive.
# A method's curve traces what it can reach for each KL budget, so at equal KL the higher curve
# wins, and the *slope* from the reference (the "gain per nat" column) says how much true
# reward each nat of divergence bought. Things to notice in this run:
#
# * **Best-of-n** is the most efficient at small KL: choosing among reference samples moves
#   probability only towards responses the reference already writes, and its KL is an upper
#   bound, so its real points lie even further left.
# * **PPO** reaches the highest true reward, but spends the most KL to get there; its three
#   $\beta$ values slide it along its curve (larger $\beta$, less KL).
# * **GRPO** (groups of 8, the same number of samples per iteration as PPO) moved less far than
#   PPO in the same 30 iterations.
# * **DPO** gets there from the preference pairs alone, with no reward model and no sampling
#   during training. Its $\tau$ plays the part of PPO's $\beta$ in reverse: a larger $\tau$
#   (the paper's smaller $\beta$) is a weaker pull towards the reference, so more KL.
#
# This is a miniature, not a replication: the DPO paper found DPO's frontier *above* PPO's on
# IMDb with GPT-2. Here, with a 2-layer model, a 15-second budget and one seed, PPO reaches
# furthest. The numbers are one sample per prompt on 256 prompts, so expect
# noise of a few hundredths in the true reward and more in the KL. And the proxy column shows
# what each method *thought* it was getting: the reward model's score, on an arbitrary scale.

# %%
by_method = {m: [r for r in records if r["method"] == m] for m in ("ppo", "grpo", "dpo")}
best = {m: max(r["true_reward"] for r in rs) for m, rs in by_method.items()}
bon = [r for r in records if r["method"] == "best_of_n"]
assert all(r["true_reward"] > base + 0.1 for r in records[1:])  # every method improved
assert best["ppo"] == max(best.values())
assert bon[0]["true_reward"] - base > 0.5 * bon[0]["kl"]  # best-of-2: > 0.5 reward per nat
assert max(r["kl"] for r in by_method["grpo"]) < max(r["kl"] for r in by_method["ppo"])
assert max(r["kl"] for r in records) == max(r["kl"] for r in by_method["ppo"])  # PPO spends most
most_efficient = max(records[1:], key=lambda r: (r["true_reward"] - base) / max(r["kl"], 1e-9))
assert most_efficient["method"] == "best_of_n"  # the largest gain per nat
for m, knob_key, sign in (("ppo", "beta", -1), ("dpo", "tau", +1)):  # PPO: larger beta, less KL
    kls = [
        r["kl"] for r in sorted(by_method[m], key=lambda r: r[knob_key])
    ]  # DPO: larger tau, more
    assert np.all(sign * np.diff(kls) > 0), (m, kls)

# %% [markdown]
# ## 3. A flawed reward model
#
# The demo's reward model was trained on 2000 pairs from a fairly reliable annotator, and it
# served PPO well. Now we make one that is worse in a realistic way: only **300** pairs, labelled
# by a **noisy** annotator ($\beta_{BT} = 2$: two responses whose true rewards differ by 0.25
# are ordered correctly only 62% of the time). As in notebook 02, the training pairs come from
# the corpus generator, which never repeats an adjective, so the reward model never sees the
# repetition that the true reward punishes.

# %%
rng_data = np.random.default_rng(2)
rm_pairs = task.make_preference_pairs(300, rng_data, beta_bt=2.0)
rm_eval_pairs = task.make_preference_pairs(500, rng_data, beta_bt=2.0)
rm = RewardModel.from_policy(reference, rng=np.random.default_rng(0))
rm_config = RewardConfig(steps=200, batch_size=32, learning_rate=3e-3)
rm_history = train_reward_model(rm, rm_pairs, rm_config, eval_pairs=rm_eval_pairs, rng=1,
                                progress=False)  # fmt: skip
proxy = reward_fn(rm)  # (tokens, response_mask) -> (B,): what PPO will maximise
print(f"held-out accuracy vs the annotator's labels: {rm_history.last('eval_accuracy'):.3f}")
print(f"held-out accuracy vs the true ordering:      {rm_history.last('eval_true_accuracy'):.3f}")


def score_texts(texts):
    """(proxy, true reward) of continuations of the prompt 'the movie was'."""
    prompt = np.tile(tok.encode("the movie was", add_bos=True), (len(texts), 1))  # (n, 4)
    batch = tok.pack(prompt, [tok.encode(t, add_end=True) for t in texts], pad_to=task.block_size)
    return proxy(batch.ids, batch.response_mask), task.true_reward(batch.ids, batch.response_mask)


probes = ["wonderful", "great and wonderful", "wonderful wonderful", "wonderful wonderful wonderful",
          "wonderful wonderful wonderful wonderful wonderful", "awful", "the film was okay"]  # fmt: skip
probe_proxy, probe_true = score_texts(probes)
print(f"\n{'continuation of: the movie was':52s} {'true r':>7s} {'proxy':>7s}")
for text, t, p in zip(probes, probe_true, probe_proxy):
    print(f"{text:52s} {t:+7.2f} {p:+7.2f}")

# %% [markdown]
# It ranks only about two thirds of held-out pairs in the true order, and it rates a
# repeated "wonderful" about as highly as a genuine one-word rave, while the true reward calls
# it worse than neutral. An optimiser with no reason to stay near the reference will find
# that.
#
# ## 4. Over-optimisation: PPO without a KL penalty
#
# Run PPO against the proxy with $\beta = 0$ (no KL penalty at all), 160 iterations of 64
# prompts, and evaluate every 8 iterations on 256 held-out prompts, recording both the proxy
# and the true reward. The wrapper around `make_eval_fn` also keeps a copy of the policy's
# weights at each evaluation, so that we can read its samples afterwards. Following Gao et
# al., we plot against $d = \sqrt{\mathrm{KL}}$, the distance travelled from the reference.

# %%
eval_prompts = task.sample_prompts(256, np.random.default_rng(1))


def run_ppo(beta, iterations=160, eval_every=8):
    """PPO on the flawed proxy; returns (history, {step: weights at that evaluation})."""
    policy = copy.deepcopy(reference).train().requires_grad_(True)
    base_eval = make_eval_fn(policy, reference, eval_prompts, task.true_reward, sampling,
                             seed=3, reward_model=proxy)  # fmt: skip
    snapshots = {}

    def eval_fn(step):
        snapshots[step] = {k: v.copy() for k, v in policy.state_dict().items()}
        return base_eval(step)

    config = PPOConfig(steps=iterations, batch_size=64, num_mini_batches=2, learning_rate=5e-4,
                       beta=beta, eval_steps=eval_every)  # fmt: skip
    history = train_ppo(policy, reference, proxy, task.sample_prompts, sampling, config,
                        eval_fn=eval_fn, rng=np.random.default_rng(2), progress=False)  # fmt: skip
    return history, snapshots


def curves(history):
    """Evaluation steps, d = sqrt(KL), true and proxy reward, as arrays."""
    kl = history["eval_kl"]
    d = np.sqrt(np.maximum(kl, 0.0))  # a k1 estimate can dip just below 0 near the reference
    return (history.steps("eval_kl"), d, history["eval_true_reward"],
            history["eval_proxy_reward"])  # fmt: skip


t0 = time.perf_counter()
hist0, snaps0 = run_ppo(beta=0.0)
print(f"PPO, beta = 0: {time.perf_counter() - t0:.1f} s")
steps0, d0, true0, proxy0 = curves(hist0)
peak = int(np.argmax(true0))
print(f"{'step':>5s} {'d=sqrt(KL)':>11s} {'true':>7s} {'proxy':>7s}")
for s, d, t, p in zip(steps0, d0, true0, proxy0):
    print(f"{s:5d} {d:11.2f} {t:+7.3f} {p:+7.3f}" + ("   <- true reward peaks" if s == steps0[peak] else ""))  # fmt: skip

# %%
fig, (ax_p, ax_t) = plt.subplots(1, 2, figsize=(11, 4))
ax_p.plot(d0, proxy0, "o-", color="tab:orange")
ax_p.set_title("Proxy reward (the reward model) keeps rising")
ax_p.set_ylabel("proxy reward (RM score)")
ax_t.plot(d0, true0, "o-", color="tab:blue")
ax_t.axhline(true0[0], color="gray", ls=":", lw=0.8, label="reference")
ax_t.set_title("True reward rises, peaks, then collapses")
ax_t.set_ylabel("true reward")
for ax in (ax_p, ax_t):
    ax.axvline(d0[peak], color="gray", ls="--", lw=0.8)
    ax.set_xlabel(r"$d = \sqrt{\mathrm{KL}(\pi \,\|\, \pi_{\rm ref})}$  (√nats)")
    ax.grid(alpha=0.3)
ax_t.annotate(f"peak {true0[peak]:+.2f}\nat step {steps0[peak]}", (d0[peak], true0[peak]),
              xytext=(d0[peak] + 0.6, true0[peak] - 0.25), arrowprops=dict(arrowstyle="->"))  # fmt: skip
ax_t.legend()
fig.suptitle(r"PPO on a flawed reward model, $\beta = 0$")
fig.tight_layout()

# %% [markdown]
# What was the policy writing? Samples for the same four prompts at the start, at the true
# reward's peak, and at the end (the weights saved by the wrapper):


# %%
def samples(weights, n=4):
    policy = copy.deepcopy(reference)
    policy.load_state_dict(weights)
    g = generate(policy, eval_prompts[:n], **gen_kw, rng=np.random.default_rng(0))
    texts = tok.decode_batch(g.tokens[:, task.prompt_len :], g.response_mask[:, task.prompt_len :])
    return [f"{tok.decode(p[1:])} | {t}" for p, t in zip(eval_prompts[:n], texts)]


for label, i in (("start", 0), ("true-reward peak", peak), ("end", len(steps0) - 1)):
    print(f"{label} (step {steps0[i]}): true {true0[i]:+.2f}, proxy {proxy0[i]:+.2f}, "
          f"KL {d0[i] ** 2:.1f}")  # fmt: skip
    for line in samples(snaps0[steps0[i]]):
        print("    ", line)

assert true0[peak] > true0[0] + 0.3  # it rose ...
assert true0[-1] < true0[peak] - 0.3  # ... then fell
assert proxy0[-1] > proxy0[peak] + 0.2  # while the proxy ended higher than at the peak
end_words = [line.split(" | ")[1].split() for line in samples(snaps0[steps0[-1]])]
assert any(len(set(w)) < len(w) for w in end_words)  # the exploit: a word said over and over

# %% [markdown]
# That is reward hacking. For the first few dozen iterations the proxy and the truth agree:
# the policy learns to write short, positive reviews and the true reward climbs. Past the
# peak the proxy still finds more to gain, but only by moving into territory its training
# data never covered, one adjective said over and over, which the true reward punishes. Each
# step of PPO is a sound improvement *of the proxy*; nothing in the loop can see the truth.
# With nothing pulling it back, the policy also drifts towards a single string, and the KL of
# a policy that always writes $y$ is $-\log\pi_{\rm ref}(y|x)$, many nats for an odd string.
#
# This is not a lucky seed. Rerunning PPO with four other training seeds
# (`np.random.default_rng(s)` for $s = 3, \dots, 6$ in `run_ppo`; the same reward model), the
# true reward always peaked and then fell while the proxy kept climbing to about 7.2. At the
# time of writing, the peaks were between $+0.52$ and $+0.90$ at $d \approx 1.9$ to $2.4$, and
# the final true rewards between $-0.33$ and $+0.11$.
#
# ## 5. The anchor: the KL penalty in $J(\theta)$
#
# The seed writes the objective PPO maximises for a language model as
#
# $$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta.\,\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$
#
# With $\beta = 0$, $J$ is just the proxy, and the run above maximised exactly that. With
# $\beta > 0$ every nat of divergence costs $\beta$ units of proxy reward, so a policy can only
# move far from $\pi_{\rm ref}$, into the region where the reward model is untested, if the
# proxy pays for the trip.
#
# `train_ppo` never computes $J$ as one number. It spreads it over the tokens
# (`kl_penalized_rewards`): each response token pays $-\beta\,(\log\pi_\theta(y_t) -
# \log\pi_{\rm ref}(y_t))$ and the last token also receives $r_\phi(x, y)$, so the sum of a
# response's token rewards is $r_\phi(x, y) - \beta\,\big(\log\pi_\theta(y|x) -
# \log\pi_{\rm ref}(y|x)\big)$, whose average over samples is an estimate of $J$. Let's
# estimate $J$ at the true-reward peak and at the end of the $\beta = 0$ run, from 256 samples
# each, by hand and through the library:


# %%
def estimate_j(weights, beta):
    """J(theta) estimated on one rollout: by hand and via kl_penalized_rewards."""
    policy = copy.deepcopy(reference)
    policy.load_state_dict(weights)
    ro = collect_rollout(policy, reference, proxy, eval_prompts, sampling,
                         np.random.default_rng(4))  # fmt: skip
    k1 = ((ro.logp_old - ro.logp_ref) * ro.mask).sum(axis=1)  # (B,) log pi(y|x) - log pi_ref(y|x)
    by_hand = ro.scores.mean() - beta * k1.mean()
    response = slice(ro.prompt_length - 1, None)  # response columns of the (B, T-1) layout
    token_rewards = kl_penalized_rewards(ro.scores, ro.logp_old[:, response],
                                         ro.logp_ref[:, response], beta, ro.mask[:, response])  # fmt: skip
    np.testing.assert_allclose(token_rewards.sum(axis=1).mean(), by_hand, rtol=1e-5, atol=1e-5)
    return by_hand, ro.scores.mean(), k1.mean()


print(f"{'policy':18s} {'beta':>5s} {'E[r_phi]':>9s} {'KL':>7s} {'J':>8s}")
J, r_phi, kl = {}, {}, {}
for beta in (0.0, 0.1, 0.3):
    for label, i in (("true-reward peak", peak), ("end (hacked)", len(steps0) - 1)):
        J[label, beta], r_phi[label], kl[label] = estimate_j(snaps0[steps0[i]], beta)
        print(f"{label:18s} {beta:5.1f} {r_phi[label]:9.3f} {kl[label]:7.2f} {J[label, beta]:8.3f}")
# J is linear in beta, so the two policies tie at beta* = (extra proxy reward) / (extra KL):
beta_star = (r_phi["end (hacked)"] - r_phi["true-reward peak"]) / (
    kl["end (hacked)"] - kl["true-reward peak"]
)
print(f"break-even penalty beta* = {beta_star:.3f}: above it, J prefers the policy at the peak")
assert J["end (hacked)", 0.0] > J["true-reward peak", 0.0] and 0 < beta_star < 0.3
assert J["end (hacked)", 0.3] < J["true-reward peak", 0.3]

# %% [markdown]
# With $\beta = 0$ the hacked policy has the higher $J$, so PPO was right to go there. But each
# extra nat of KL it spent bought only about $\beta^*$ units of proxy reward (printed above),
# so for any penalty above $\beta^*$ the ranking flips: the end policy's extra proxy reward no
# longer covers the price of its KL, and the policy at the peak is the better one. A penalty
# keeps the optimum of $J$ near the reference, where the proxy is still trustworthy. Does PPO with $\beta = 0.1$
# actually stay there? Same seed, same everything else:

# %%
t0 = time.perf_counter()
hist1, snaps1 = run_ppo(beta=0.1)
print(f"PPO, beta = 0.1: {time.perf_counter() - t0:.1f} s")
steps1, d1, true1, proxy1 = curves(hist1)

fig, (ax_p, ax_t) = plt.subplots(1, 2, figsize=(11, 4))
for d, t, p, label in ((d0, true0, proxy0, r"$\beta = 0$"), (d1, true1, proxy1, r"$\beta = 0.1$")):
    ax_p.plot(d, p, "o-", label=label, markersize=4)
    ax_t.plot(d, t, "o-", label=label, markersize=4)
ax_p.set_title("Proxy reward")
ax_p.set_ylabel("proxy reward (RM score)")
ax_t.set_title("True reward")
ax_t.set_ylabel("true reward")
for ax in (ax_p, ax_t):
    ax.set_xlabel(r"$d = \sqrt{\mathrm{KL}}$  (√nats)")
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle("The same PPO run with and without a KL penalty")
fig.tight_layout()
best1 = int(np.argmax(true1))
print(
    f"beta = 0.1, best: true {true1[best1]:+.2f} at step {steps1[best1]} (KL {d1[best1] ** 2:.1f})"
)
print(f"beta = 0.1, end:  true {true1[-1]:+.2f}, proxy {proxy1[-1]:+.2f}, KL {d1[-1] ** 2:.1f}")
end_samples = samples(snaps1[steps1[-1]])
for line in end_samples:
    print("    ", line)
assert d1[-1] < d0[-1] and true1[-1] > true0[-1] + 0.1
assert true1[-1] < true1[best1]  # overshoots its own best
assert any(len(line.split(" | ")[1].split()) > 1 for line in end_samples)  # stray extra words

# %% [markdown]
# With the penalty the KL levels off (the $\beta = 0.1$ curves stop early on the $d$ axis) and
# the true reward ends well above the $\beta = 0$ run's instead of sliding back to zero. It is
# not a perfect guard: the run still overshoots its own best evaluation (compare the two
# printed lines), and some samples pick up stray words after the adjective that this proxy
# does not mind. But the far-away region where the repetition
# exploit lives is now too expensive to reach.
#
# ## 6. Scaling laws for over-optimisation
#
# Gao et al. trained reward models of many sizes against a "gold" reward model and found that
# the gold reward, as a function of $d = \sqrt{\mathrm{KL}}$, follows two simple forms:
#
# $$R_{\rm BoN}(d) = d\,(\alpha_{\rm BoN} - \beta_{\rm BoN}\, d), \qquad
#   R_{\rm RL}(d) = d\,(\alpha_{\rm RL} - \beta_{\rm RL} \log d),$$
#
# with $R$ measured from the reference's reward ($R(0) = 0$). These $\beta$s are shape
# parameters of the curves, not the KL penalty. Both forms are **linear** in $(\alpha, \beta)$:
# $R = \alpha\cdot d - \beta\cdot d^2$ and $R = \alpha \cdot d - \beta\cdot d\log d$, so one
# least-squares solve fits each. First the RL curve, on the $\beta = 0$ PPO run (points at
# $d = 0$ carry no information, since both forms are 0 there):


# %%
def fit_linear(features, target):
    """Least squares: coefficients c minimising |features @ c - target|^2."""
    coef, *_ = np.linalg.lstsq(features, target, rcond=None)
    return coef


gain0 = true0 - true0[0]  # R(d): true reward gained over the reference
keep = d0 > 0
dk, gk = d0[keep], gain0[keep]
X_rl = np.stack([dk, -dk * np.log(dk)], axis=1)  # (k, 2): columns d, -d log d
alpha_rl, beta_rl = fit_linear(X_rl, gk)
rms_rl = np.sqrt(np.mean((gk - X_rl @ np.array([alpha_rl, beta_rl])) ** 2))
d_star = np.exp(alpha_rl / beta_rl - 1)  # dR/dd = alpha - beta (log d + 1) = 0
print(f"RL form:  R(d) = d ({alpha_rl:.3f} - {beta_rl:.3f} log d)   RMS error {rms_rl:.3f}, "
      f"peak at d = {d_star:.2f} (KL {d_star**2:.1f})")  # fmt: skip

# For comparison, the best-of-n form on the same PPO points:
X_q = np.stack([dk, -(dk**2)], axis=1)  # (k, 2): columns d, -d^2
alpha_q, beta_q = fit_linear(X_q, gk)
rms_q = np.sqrt(np.mean((gk - X_q @ np.array([alpha_q, beta_q])) ** 2))
print(f"BoN form: R(d) = d ({alpha_q:.3f} - {beta_q:.3f} d)       RMS error {rms_q:.3f}, "
      f"peak at d = {alpha_q / (2 * beta_q):.2f}")  # fmt: skip
print(f"measured: peak at d = {d0[peak]:.2f} (KL {d0[peak] ** 2:.1f}), gain {gain0[peak]:.3f}")

# %% [markdown]
# Now best-of-n with the same flawed proxy, for $n \in \{1, 2, 4, \dots, 64\}$ on the 256
# held-out prompts, with the true reward against $d = \sqrt{\log n - (n-1)/n}$ (the bound):

# %%
t0 = time.perf_counter()
bon_true, bon_proxy = [], []
for n in ns:
    _, res = best_of_n(reference, proxy, eval_prompts, int(n), sampling,
                       rng=np.random.default_rng(5), true_reward=task.true_reward)  # fmt: skip
    bon_true.append(res["true_reward"])
    bon_proxy.append(res["proxy_reward"])
bon_true, bon_proxy = np.array(bon_true), np.array(bon_proxy)
d_bon = np.sqrt(bound_by_hand)
print(f"best-of-n over {len(ns)} values of n: {time.perf_counter() - t0:.1f} s")
print("n           ", ns)
print("d (bound)   ", d_bon)
print("true reward ", bon_true)
print("proxy       ", bon_proxy)

gain_bon = bon_true - bon_true[0]  # n = 1 is plain sampling from the reference
X_bon = np.stack([d_bon[1:], -(d_bon[1:] ** 2)], axis=1)  # (6, 2): columns d, -d^2
alpha_bon, beta_bon = fit_linear(X_bon, gain_bon[1:])
print(f"BoN fit: R(d) = d ({alpha_bon:.3f} - {beta_bon:.3f} d); peak at d = "
      f"{alpha_bon / (2 * beta_bon):.2f}")  # fmt: skip

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
grid = np.linspace(1e-3, d0.max() * 1.02, 300)
ax.plot(d0, gain0, "o", color="tab:blue", label=r"PPO, $\beta = 0$ (measured)")
ax.plot(grid, grid * (alpha_rl - beta_rl * np.log(grid)), color="tab:blue",
        label=rf"RL form: $d\,({alpha_rl:.2f} - {beta_rl:.2f}\log d)$")  # fmt: skip
ax.plot(grid, grid * (alpha_q - beta_q * grid), color="tab:blue", ls="--", lw=1,
        label=rf"BoN form on the PPO run: $d\,({alpha_q:.2f} - {beta_q:.2f}\,d)$")  # fmt: skip
ax.plot(d_bon, gain_bon, "D", color="tab:purple", label="best-of-n (measured, KL bound)")
grid_bon = np.linspace(0, d_bon.max() * 1.5, 100)
ax.plot(grid_bon, grid_bon * (alpha_bon - beta_bon * grid_bon), color="tab:purple",
        label=rf"BoN form: $d\,({alpha_bon:.2f} - {beta_bon:.3f}\,d)$")  # fmt: skip
ax.axhline(0, color="gray", lw=0.8)
ax.set_xlabel(r"$d = \sqrt{\mathrm{KL}(\pi \,\|\, \pi_{\rm ref})}$  (√nats)")
ax.set_ylabel("true reward gained over the reference")
ax.set_title("Gao et al.'s functional forms fitted to the flawed proxy")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
assert alpha_rl > 0 and beta_rl > 0 and 1.0 < d_star < d0.max() and rms_q < rms_rl + 0.02

# %% [markdown]
# The RL form captures the rise and fall: a positive $\alpha_{\rm RL}$ (early gains) and a
# positive $\beta_{\rm RL}$ (the over-optimisation that eventually wins). But it is a rough fit,
# and its peak comes earlier than the measured one: our run starts slowly (PPO spends about a
# nat of KL before the true reward moves much) and then turns down sharply, a bend the
# $d \log d$ term is too gentle to follow. On this one run the best-of-n form $d(\alpha - \beta d)$
# fits the PPO points at least as well (compare the RMS errors above). Gao et al. chose their forms from
# many runs with large models and a learned gold reward; one seed of a toy cannot tell the two
# forms apart reliably, and there is no reason the exact shapes must carry over. What carries
# over is the qualitative picture: gold reward rises, peaks, and falls as $d$ grows.
#
# Best-of-n barely reaches the region where this proxy goes wrong: even $n = 64$ costs at most
# $\log 64 - 63/64 \approx 3.2$ nats ($d \approx 1.8$), and its candidates are ordinary samples
# of the reference, which rarely repeats an adjective. Its true reward is only levelling off
# near $n = 32$, so the fitted $\beta_{\rm BoN}$ is tiny and the fitted peak lies far beyond
# the data. Since its KL grows only like $\log n$, seeing best-of-n over-optimise this proxy
# would take a far larger $n$ than our budget allows.

# %% [markdown]
# ## 7. What to take away
#
# * **KL is a budget.** Every method spends it; plot true reward against it to compare methods
#   fairly, and measure it the same way for all of them (here the sequence-level k1 estimate in
#   `evaluate_policy`; for best-of-n, the analytic bound, flagged as such).
# * **A reward model is only trustworthy near its training data.** An optimiser given unlimited
#   KL will leave that neighbourhood and find the reward model's mistakes: the proxy keeps rising
#   while the true reward falls. You cannot see this from the proxy alone, which is why a
#   held-out "gold" signal (human evaluation, a stronger reward model) matters.
# * **The defences** are the ones used in practice: a KL penalty $\beta$ large enough that the
#   exploit does not pay, early stopping on a held-out measure of quality (the peak in section 4
#   came long before the last iteration), and a better reward model (more, cleaner, more varied preference
#   data; see notebook 02).
# * **DPO has no reward model to hack, but it is not immune.** It optimises the preference pairs
#   directly, so it inherits whatever biases the annotators had (notebook 05, section 8: a taste
#   for long answers becomes longer answers), and it has its own KL knob $\tau$.

# %%
print(f"notebook runtime so far: {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## 8. Try this
#
# Rerun the over-optimisation experiment with small penalties, $\beta = 0.01$ and
# $\beta = 0.03$ (`run_ppo(beta=...)`, about 5 seconds each). Before you run them, predict:
# will the true reward still rise and fall? Will the peak come at a larger or smaller KL than
# with $\beta = 0$? How far will the KL go by the end, and how far will the true reward fall?
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# fig, ax = plt.subplots(figsize=(7, 4))
# ax.plot(d0, true0, "o-", label="beta = 0")
# for b in (0.01, 0.03):
#     hist_b, snaps_b = run_ppo(beta=b)
#     steps_b, d_b, true_b, proxy_b = curves(hist_b)
#     i = int(np.argmax(true_b))
#     print(f"beta = {b}: peak {true_b[i]:+.2f} at step {steps_b[i]} (KL {d_b[i] ** 2:.1f}); "
#           f"end {true_b[-1]:+.2f} at KL {d_b[-1] ** 2:.1f}, proxy {proxy_b[-1]:+.2f}")
#     print("    ", samples(snaps_b[steps_b[-1]])[0])
#     ax.plot(d_b, true_b, "o-", label=f"beta = {b}")
# ax.set_xlabel("d = sqrt(KL)")
# ax.set_ylabel("true reward")
# ax.set_title("PPO on the flawed proxy: true reward for three KL penalties")
# ax.legend()
# ```
#
# At the time of writing this printed: for $\beta = 0.01$, a peak of $+0.58$ at step 32 (KL
# 4.6), a dip to about 0 and $+0.37$ at the end, KL 9.3; for $\beta = 0.03$, a peak of $+0.60$
# at step 40 (KL 4.8) and $+0.46$ at the end, KL 7.2. Compare $\beta = 0$ (peak at KL 6.6, end
# at KL 12.2 and about 0) and $\beta = 0.1$ (end at KL 6.0 and $+0.53$).
#
# The peak stays at roughly the same KL (5 to 7 nats): *where* the proxy starts to mislead is a
# property of the reward model, not of $\beta$. What the penalty changes is how far past that
# point the policy goes: the final KL shrinks as $\beta$ grows (12, 9, 7 and 6 nats) and the
# final true reward rises (0, 0.37, 0.46, 0.53). A penalty works much like early stopping. To
# end near the peak, pick $\beta$ so that the KL levels off at or before the peak's KL, which
# you can only find with a held-out measure of true quality. (Single runs are noisy; other
# seeds move these numbers by a few tenths.)
#
# </details>
