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
# puts PPO, GRPO, DPO, best-of-n and the DPO paper's baselines on one chart, true reward against
# the KL divergence they spent: first as the quick demo draws it, then as the DPO paper's
# Figure 2 does (Rafailov et al. 2023: preference pairs sampled from the reference, a curve per
# method, here with three seeds and the best achievable curve beside them), and it answers the
# paper's question on this toy with its uncertainty: does DPO's frontier dominate PPO's? Then it
# shows what happens when the reward being optimised is a flawed *proxy* and nothing limits the
# KL: PPO keeps raising the proxy while the true reward rises, peaks and collapses (Gao, Schulman
# & Hilton 2022, "Scaling Laws for Reward Model Overoptimization"). You will watch the policy
# discover the exploit, fit Gao et al.'s two curves to the result, and see what the KL penalty
# $\beta$ in the objective $J(\theta)$ buys.
#
# Runtime: about 30 seconds on a laptop CPU (2 cores), a third of it in `run_demo`; fully
# seeded. The three-seed frontier of sections 3–4 takes far longer, so this notebook reads its
# committed results (`python tools/frontier_figures.py` regenerates them).
#
# 1. One yardstick: true reward and KL
# 2. The demo's frontier: PPO, GRPO, DPO and best-of-n
# 3. The paper's experiment: on-policy pairs, every checkpoint, three seeds
# 4. Why DPO stops short here: ablations
# 5. A flawed reward model
# 6. Over-optimisation: PPO without a KL penalty
# 7. The anchor: the KL penalty in $J(\theta)$
# 8. Scaling laws for over-optimisation
# 9. Exercises
# 10. Recap
#
# ## Notation
#
# | Symbol | Meaning in this notebook | In code |
# |---|---|---|
# | $x$, $y$ | a prompt (the opening of a review); a response (its continuation) | `prompts`, `tokens` |
# | $\pi$, $\pi_{\rm ref}$ | a policy; the shipped reference every method starts from | `policy`, `reference` |
# | $r(x, y)$ | the task's **true** reward, known exactly on this toy | `task.true_reward` |
# | $r_\phi(x, y)$ | a reward model fitted to preference pairs: the **proxy** | `proxy` |
# | $\mathrm{KL}(\pi \,\|\, \pi_{\rm ref})$ | KL over whole responses, in nats per response | `evaluate_policy(...)["kl"]` |
# | $k_1$, $k_3$ | per-sample KL estimators, $k_1 = \log\frac{\pi}{\pi_{\rm ref}}$, $k_3 = \rho - 1 - \log\rho$ with $\rho = \frac{\pi_{\rm ref}}{\pi}$ | |
# | $\beta$ (PPO) | weight of $k_1$ inside PPO's **reward**: the KL penalty of $J(\theta)$, in proxy units per nat | `PPOConfig.beta` |
# | $\beta$ (GRPO) | weight of $k_3$ inside GRPO's **loss** | `GRPOConfig.beta` |
# | $\tau$ | DPO's temperature, the DPO paper's $\beta = 1/\tau$ | `DPOConfig.tau` |
# | $\beta_{BT}$ | the simulated annotator's sharpness, $P(y_1 \succ y_2) = \sigma(\beta_{BT}(r_1 - r_2))$ | `beta_bt` |
# | $\pi^*_\beta$ | the KL-regularised optimum, $\propto \pi_{\rm ref}\,e^{r/\beta}$ | `tilted` |
# | $E(c)$ | a method's frontier: the best true reward among its points with KL $\le c$ | `envelope` |
# | $n$ | best-of-$n$: reference samples drawn per prompt | `n` |
# | $\alpha$ | Unlikelihood's weight on the rejected response's tokens (section 3) | `alpha` |
# | $\beta^*$ | the break-even KL penalty of section 7 | `beta_star` |
# | $d$ | $\sqrt{\mathrm{KL}}$, Gao et al.'s distance from the reference | `d0` |
# | $\alpha_{\rm RL}, \beta_{\rm RL}, \alpha_{\rm BoN}, \beta_{\rm BoN}$ | shape parameters of Gao et al.'s laws (section 8) | `alpha_rl`, ... |
#
# **$\beta$ means five different things here**, and none of them converts into another: PPO's
# KL penalty ($k_1$ in the reward), GRPO's weight of $k_3$ in the loss (section 2 shows these two
# regularise *different* KLs), the DPO paper's $1/\tau$, the annotator's $\beta_{BT}$ (notebook 02)
# and Gao et al.'s shape parameters. $\alpha$ is both Unlikelihood's weight and Gao et al.'s
# slope. $\tau$ is DPO's temperature here; in notebook 01 it is the *sampling* temperature and
# in notebook 04 a reasoning trace.

# %%
import copy
import json
import sys
import tempfile
import warnings
from importlib import resources
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
from minialign.frontier import envelope, frontier_table, seed_envelopes, table_markdown
from minialign.frontier_curves import plot_frontier_curves
from minialign.frontier_methods import make_pairs, tilted
from minialign.nn import RewardModel, generate, sequence_logprobs
from minialign.objectives import kl_penalized_rewards
from minialign.plots import Slider, interactive_figure, plot_frontier
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
    reference_logprobs,
    reward_fn,
    train_ppo,
    train_reward_model,
)

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=3, suppress=True)

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
# ## 2. The demo's frontier: PPO, GRPO, DPO and best-of-n
#
# `minialign.demo.run_demo` runs the whole pipeline that `minialign demo` runs from the command
# line: a simulated annotator labels 2000 preference pairs (responses from the task's corpus
# generator); a reward model (the **proxy**) is trained on them; PPO and GRPO maximise the proxy
# at three KL coefficients $\beta$ each; DPO learns from the same pairs at three temperatures
# $\tau$ (the DPO paper's $\beta = 1/\tau$); best-of-n picks the proxy's favourite of $n$
# reference samples. Every policy is then scored by `evaluate_policy` on the same 256 held-out
# prompts with the same sampling seed. The quick configuration takes about 12 seconds and writes
# `summary.json`, `metrics.jsonl` and two figures into a run directory (a temporary one here).
# In the browser (Pyodide, several times slower) the cell reads the same run's committed
# `summary.json` instead of repeating it; a test keeps that file equal to a fresh run.

# %%
if sys.platform == "emscripten":  # the browser site: the committed result of this very call
    shipped = resources.files("minialign") / "data" / "demo_quick_summary.json"
    records = json.loads(shipped.read_text())
    print("read the quick demo's committed summary.json")
else:
    with tempfile.TemporaryDirectory() as run_dir:
        records = run_demo(run_dir, DemoConfig.quick(), seed=0, progress=False, log=lambda _: None)
        written = sorted(p.name for p in Path(run_dir).iterdir())
        assert json.loads((Path(run_dir) / "summary.json").read_text()) == records
    print(f"run_demo wrote {written}")

ref_record = records[0]
base = ref_record["true_reward"]


def knob(rec):
    if rec["method"] == "ppo":
        return f"β = {rec['beta']:g} ($k_1$ in the reward)"
    if rec["method"] == "grpo":
        return f"β = {rec['beta']:g} ($k_3$ in the loss)"
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
#   PPO in the same 30 iterations. Its $\beta$ column is **not** comparable with PPO's: see below.
# * **DPO** gets there from the preference pairs alone, with no reward model and no sampling
#   during training. Its $\tau$ plays the part of PPO's $\beta$ in reverse: a larger $\tau$
#   (the paper's smaller $\beta$) is a weaker pull towards the reference, so more KL.
#
# This is a miniature, not a replication: the DPO paper found DPO's frontier *above* PPO's on
# IMDb with GPT-2. Here, with a 2-layer model, a 15-second budget and one seed, PPO reaches
# furthest. But this run is not the paper's experiment either (its pairs come from the corpus
# generator, each method contributes three end points, there is one seed); section 3 runs the
# paper's version. The numbers are one sample per prompt on 256 prompts, so expect noise of a
# few hundredths in the true reward and more in the KL. And the proxy column shows what each
# method *thought* it was getting: the reward model's score, on an arbitrary scale.


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
for m, knob_key, sign in (("ppo", "beta", -1), ("dpo", "tau", +1)):
    kls = [r["kl"] for r in sorted(by_method[m], key=lambda r: r[knob_key])]
    assert np.all(sign * np.diff(kls) > 0), (m, kls)  # PPO: larger beta, less KL; DPO: larger tau, more

# %% [markdown]
# **PPO's $\beta$ and GRPO's $\beta$ are different knobs.** Both are called "the KL
# coefficient", and the table above puts them side by side, but they regularise different
# things. PPO puts $-\beta\,k_1$ into the *reward* of every token; the policy gradient of that
# reward is $-\beta\,\nabla\mathrm{KL}(\pi\,\|\,\pi_{\rm ref})$, the reverse KL of $J(\theta)$. GRPO adds
# $\beta\,k_3$ to the *loss* and differentiates it at the sampled tokens: since
# $\nabla k_3 = (1 - \rho)\,\nabla\log\pi$ with $\rho = \pi_{\rm ref}/\pi$, its expected gradient is
# $\beta\sum_y(\pi - \pi_{\rm ref})\nabla\log\pi = \beta\,\nabla\mathrm{KL}(\pi_{\rm ref}\,\|\,\pi)$, the
# **forward** KL, which punishes the policy for dropping what the reference writes rather than
# for writing what the reference would not. The scales differ too: PPO's $\beta$ is in
# proxy-reward units per nat of a whole response; GRPO's weighs a per-token average against
# group-standardised advantages of size about 1. So "$\beta = 0.05$" is a different strength of
# a different pull in each row. Here are the two expected gradients, exactly, for a policy over
# four outcomes with softmax logits $\theta$ and a uniform reference, each checked against the
# numerical gradient of the KL it claims to be. (Notebook 03 measures all three estimators used
# as losses; docs/implementation_notes.md, KL 2.)

# %%
softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
theta = np.array([1.0, 0.2, -0.5, -1.5])  # the policy's logits
pi_cat, pi_ref_cat = softmax(theta), np.full(4, 0.25)  # (4,), (4,)
score = np.eye(4) - pi_cat  # row y: grad_theta log pi(y) = e_y - pi
rho = pi_ref_cat / pi_cat
grad_ppo = (pi_cat * -np.log(rho)) @ score  # E_pi[k1 grad log pi]: beta k1 as a reward
grad_grpo = (pi_cat * (1 - rho)) @ score  # E_pi[grad k3] = E_pi[(1 - rho) grad log pi]: k3 in the loss


def kl_div(p, q):
    return float(np.sum(p * np.log(p / q)))


def numeric_grad(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(len(x))])


grad_reverse = numeric_grad(lambda z: kl_div(softmax(z), pi_ref_cat), theta)  # KL(pi || pi_ref)
grad_forward = numeric_grad(lambda z: kl_div(pi_ref_cat, softmax(z)), theta)  # KL(pi_ref || pi)
print(f"PPO:  E[k1 grad log pi] = {grad_ppo}   grad KL(pi || pi_ref) = {grad_reverse}")
print(f"GRPO: E[grad k3]        = {grad_grpo}   grad KL(pi_ref || pi) = {grad_forward}")
np.testing.assert_allclose(grad_ppo, grad_reverse, atol=1e-8)
np.testing.assert_allclose(grad_grpo, grad_forward, atol=1e-8)
np.testing.assert_allclose(grad_grpo, pi_cat - pi_ref_cat, atol=1e-12)  # the closed form
assert np.abs(grad_ppo - grad_grpo).max() > 0.1  # two different pulls

# %% [markdown]
# ## 3. The paper's experiment: on-policy pairs, every checkpoint, three seeds
#
# The DPO paper's Figure 2 (left) was made like this (Rafailov et al. 2023, section 6.1): the
# prompts are prefixes of IMDb reviews; the SFT model **samples** two completions per prefix; a
# sentiment classifier, the ground-truth reward, labels which is better; then DPO, PPO with a
# reward model learned from those pairs, PPO on the ground-truth reward (PPO-GT), Unlikelihood
# and Preferred-FT (fine-tuning on the chosen completions) are each run at several $\beta$, and
# every point of the figure is one checkpoint: expected true reward against
# $\mathrm{KL}(\pi\,\|\,\pi_{\rm ref})$. The demo of section 2 differs in three ways: its pairs come
# from the corpus generator, each method contributes three end points, and there is one seed.
# `minialign frontier` runs the paper's design on the sentiment task:
#
# * **pairs**: for each prompt, two responses sampled from $\pi_{\rm ref}$, labelled by the
#   Bradley–Terry annotator on the true reward, $P(y_1 \succ y_2) = \sigma(\beta_{BT}(r_1 - r_2))$;
# * **methods**: `dpo` (six $\tau$), `ppo` on a reward model fitted to the same pairs (six
#   $\beta$, each $1/\tau$ of a DPO run: the same target $\pi^*$ if the reward model learned
#   $\beta_{BT} r$), `ppo_gt` on the true reward (its $\beta$ divided by $\beta_{BT}$, likewise),
#   `preferred_ft` (maximum likelihood on $y^+$), `unlikelihood` (the same, minus $\alpha$ times
#   the mean of $\log(1 - \pi(y^-_t))$ over the rejected response's tokens, Welleck et al. 2019),
#   `grpo` on the same reward model, and `best_of_n` under it (with its KL *bound*);
# * **curves**: every training run is evaluated 11 times along the way on the demo's held-out
#   prompts, with the yardstick of section 1;
# * **seeds**: everything that is random (pairs, reward model, training, evaluation) is redrawn
#   for each of 3 seeds; the held-out prompts stay the same.
#
# First, what "on-policy" means here. `make_pairs` draws both responses from the reference
# (`"on-policy"`), from the corpus generator as the demo does (`"off-policy"`), or from the
# reference at sampling temperature 2 (`"tempered"`, a distribution the reference would rarely
# produce). How likely is each kind of response under $\pi_{\rm ref}$?

# %%
rng_pairs = np.random.default_rng(0)
sources = {name: make_pairs(task, reference, sampling, 400, rng_pairs, pairs=name, beta_bt=10.0)
           for name in ("on-policy", "off-policy", "tempered")}


def show_pair(pp, i):
    texts = [tok.decode_batch(b.ids[i : i + 1, task.prompt_len :], b.response_mask[i : i + 1, task.prompt_len :])[0]
             for b in (pp.chosen, pp.rejected)]
    return f"{tok.decode(pp.prompt_ids[i][1:])} | {texts[0]} ({pp.chosen_reward[i]:+.2f}) ≻ {texts[1]} ({pp.rejected_reward[i]:+.2f})"


per_token = {}
for name, pp in sources.items():
    ref_c, ref_r = reference_logprobs(reference, pp)  # (400,) each: log pi_ref(y | x), summed
    n_tokens = pp.chosen.response_mask.sum() + pp.rejected.response_mask.sum()
    per_token[name] = (ref_c.sum() + ref_r.sum()) / n_tokens
    print(f"{name:10s}  log pi_ref per response token {per_token[name]:+.3f}   {show_pair(pp, 1)}")
assert abs(per_token["on-policy"] - per_token["off-policy"]) < 0.05
assert per_token["tempered"] < per_token["on-policy"] - 0.5

# %% [markdown]
# The reference finds the corpus generator's responses as likely as its own samples (within a
# few hundredths of a nat per token): it was pre-trained to imitate exactly that generator. So
# on this toy the demo's pairs were only nominally off-policy; the tempered pairs are the ones
# that really come from elsewhere (about a nat per token less likely). Section 4 trains on all
# three.
#
# **The best any method can do.** Among all policies with a given KL, the one with the highest
# expected true reward is the KL-regularised optimum (derived in notebook 05; notebook 07 computes
# it exactly on a bandit)
#
# $$\pi^*_\beta(y\mid x) = \frac{\pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}}{Z(x)}, \qquad
#   \mathrm{KL}(\pi^*_\beta\,\|\,\pi_{\rm ref}) = \frac{\mathbb{E}_{\pi^*_\beta}[r]}{\beta} - \log Z(x),$$
#
# and sweeping $\beta$ traces the ideal frontier. We cannot enumerate every response, but we can
# sample: with $y_1, \dots, y_m \sim \pi_{\rm ref}$, weights $w_i = e^{r_i/\beta}$ turn the samples
# into $\pi^*_\beta$ (self-normalised importance sampling), $Z \approx \frac1m\sum_i w_i$. By hand
# for one prompt and $\beta = 0.3$, then with `tilted`, which the frontier uses for every prompt:

# %%
prompt = np.tile(tok.encode("the movie was", add_bos=True), (4096, 1))  # (4096, 4)
g = generate(reference, prompt, **gen_kw, rng=np.random.default_rng(8))
r = task.true_reward(g.tokens, g.response_mask)  # (4096,) rewards of reference samples
beta_opt = 0.3
w = np.exp(r / beta_opt)
q = w / w.sum()  # pi*'s probability of each sample
mean_by_hand = q @ r
kl_by_hand = mean_by_hand / beta_opt - np.log(w.mean())
print(f"reference:  E[r] = {r.mean():+.3f}")
print(f"pi*, beta = {beta_opt}: E[r] = {mean_by_hand:+.3f}, KL = {kl_by_hand:.3f} nats (by hand)")
print(f"tilted:                E[r] = {tilted(r, beta_opt)[0]:+.3f}, KL = {tilted(r, beta_opt)[1]:.3f}")
np.testing.assert_allclose(tilted(r, beta_opt), (mean_by_hand, kl_by_hand), rtol=1e-9)
np.testing.assert_allclose(kl_by_hand, q @ np.log(q * len(r)), rtol=1e-9)  # = KL(q || uniform)
texts = tok.decode_batch(g.tokens[:, task.prompt_len :], g.response_mask[:, task.prompt_len :])
mass = {}
for text, qi in zip(texts, q):
    mass[text] = mass.get(text, 0.0) + qi
top = sorted(mass.items(), key=lambda kv: -kv[1])[:5]
print("pi* writes most often:", ", ".join(f"'{t}' ({m:.1%})" for t, m in top))
p_best = np.mean(r == r.max())
print(f"reference samples with the best possible reward ({r.max():+.0f}): {p_best:.1%}")
assert 0.01 < p_best < 0.05

# %% [markdown]
# Now the committed results of the full run (`python tools/frontier_figures.py`, which runs
# `minialign frontier --seeds 3`; its settings are printed first):

# %%
def shipped(name):
    """A JSON file shipped in minialign/data (written by tools/frontier_figures.py)."""
    return json.loads(resources.files("minialign.data").joinpath(name).read_text())


frontier = shipped("frontier_summary.json")
points, meta = frontier["points"], frontier["meta"]
cfg = meta["config"]
print(f"pairs: {cfg['n_pairs']} {cfg['pairs']}, beta_BT = {cfg['beta_bt']}; reward model: "
      f"{cfg['rm_steps']} steps; batch {cfg['batch_size']}, learning rate {cfg['lr']}")
print(f"DPO: {cfg['dpo_steps']} steps, tau in {cfg['dpo_taus']}")
print(f"PPO: {cfg['ppo_iterations']} iterations, beta in {cfg['ppo_betas']} (= 1/tau)")
print(f"PPO-GT: beta in {cfg['ppo_gt_betas']} (= PPO's / beta_BT: the same target optimum)")
print(f"GRPO: {cfg['grpo_iterations']} iterations, groups of {cfg['group_size']}, beta in {cfg['grpo_betas']}")
print(f"Preferred-FT and Unlikelihood: {cfg['sft_steps']} steps, alpha in {cfg['unlikelihood_alphas']}; best-of-n: n in {cfg['bon_ns']}")
print(f"each run evaluated {cfg['n_evals']} + 1 times on {cfg['n_eval_prompts']} held-out prompts; "
      f"{meta['seeds']} seeds; the optimum from {cfg['optimum_samples']} reference samples per prompt")
print(f"{len(points)} points; the run took {meta['wall_seconds'] / 60:.0f} min wall, {meta['cpu_seconds'] / 60:.0f} min CPU")
rm_true_order = np.array(meta["reward_model"]["true_accuracy"])  # one per seed
print(f"reward models: held-out accuracy {np.round(meta['reward_model']['accuracy'], 3)} against the "
      f"annotator's labels, {np.round(rm_true_order, 3)} against the true order")

# %%
ax = plot_frontier_curves(points)
ax.figure.set_size_inches(9, 6)
plt.show()

# %% [markdown]
# Each faint point is one checkpoint of one run; each bold line is a method's frontier $E(c)$,
# the best true reward among its points with KL $\le c$, averaged over the three seeds (the band
# is ± one standard deviation across seeds); the labels sit at each knob's final checkpoint.
# The table reads the frontiers at three KL budgets:

# %%
budgets = (1.0, 2.0, 4.0)
table = frontier_table(points, budgets)
display(Markdown(table_markdown(table)))
env = {m: seed_envelopes(points, m, budgets)[1] for m in ("dpo", "ppo", "ppo_gt", "optimum")}
diff = env["dpo"] - env["ppo"]  # (seeds, budgets), paired by seed: the same pairs and proxy
for j, c in enumerate(budgets):
    print(f"KL <= {c:g}: DPO - PPO per seed {np.round(diff[:, j], 3)}, "
          f"mean {diff[:, j].mean():+.3f} ± {diff[:, j].std(ddof=1):.3f}; "
          f"the optimum {env['optimum'][0, j]:+.3f}")
seed_mean = {m: seed_envelopes(points, m, budgets)[1].mean(0) for m in dict.fromkeys(p["method"] for p in points)}
assert all(abs(diff[:, j].mean()) < 2 * diff[:, j].std(ddof=1) for j in (0, 1))  # a tie, within noise
assert (diff[:, 2] < -0.15).all()  # at KL <= 4 PPO is ahead on every seed
assert seed_mean["ppo"][2] > seed_mean["optimum"][2] - 0.05  # ... and close to the optimum
assert all((seed_mean[m] <= seed_mean["optimum"] + 0.03).all() for m in seed_mean)  # nobody beats it

# %% [markdown]
# The table reads the frontiers at three budgets; the slider reads them at any. Move it from
# 0.5 to 6 nats and watch the order change: at small budgets DPO, PPO-GT and best-of-$n$ are
# level with PPO; from about 2.5 nats on, PPO pulls ahead and DPO's bar stops growing, because
# no DPO checkpoint spent more KL than that.

# %%
methods = [m for m in dict.fromkeys(p["method"] for p in points) if m != "optimum"]


def best_within(ax, budget):
    """Each method's frontier at KL <= budget: the mean over seeds, with the seeds' spread."""
    values = {m: seed_envelopes(points, m, [budget])[1][:, 0] for m in methods}
    ceiling = seed_envelopes(points, "optimum", [budget])[1][0, 0]
    means = [np.nanmean(v) for v in values.values()]
    ax.bar(methods, means, yerr=[np.nanstd(v) for v in values.values()], color="tab:blue", alpha=0.7)
    ax.axhline(ceiling, color="black", ls="--", lw=1, label=f"optimum {ceiling:+.2f}")
    ax.set_ylim(min(0.0, np.nanmin(means)) - 0.05, 1.1)
    ax.set_ylabel("best true reward")
    ax.set_title(rf"Best true reward within KL $\leq$ {budget:g} nats (mean ± sd over seeds)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(loc="upper left")


interactive_figure(best_within, width=8, budget=Slider(2.0, options=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0), label="KL ≤"))
at = {c: {m: seed_envelopes(points, m, [c])[1][:, 0].mean() for m in ("dpo", "ppo")} for c in (1.0, 6.0)}
print(f"KL <= 1: DPO {at[1.0]['dpo']:+.2f}, PPO {at[1.0]['ppo']:+.2f};  KL <= 6: DPO {at[6.0]['dpo']:+.2f}, PPO {at[6.0]['ppo']:+.2f}")
assert abs(at[1.0]["dpo"] - at[1.0]["ppo"]) < 0.1 and at[6.0]["ppo"] > at[6.0]["dpo"] + 0.2

# %% [markdown]
# **Does DPO dominate PPO here? Not with this budget.** Read the printed differences, paired by
# seed (each seed's DPO and PPO learned from the same pairs). At KL $\le 1$ and $\le 2$ the two
# frontiers tie: the mean difference is smaller than twice its seed-to-seed spread, and both lie
# about 0.1 below the optimum, as PPO on the *true* reward does. Beyond that DPO's frontier stops:
# its runs end between 2 and 3.5 nats with a true reward near 0.7, while PPO goes on to the
# optimum's 1.0 (a single strong adjective) on every seed. Best-of-$n$ keeps up with PPO even
# with its KL drawn at the upper bound. Preferred-FT barely moves: the chosen half of a pair of
# reference samples is only a little better than the reference's average, so imitating it gains
# little. Unlikelihood spends more KL (pushing down the rejected response's tokens also pushes
# down words the good responses share) for no more reward. GRPO on the same reward model stays
# below PPO. Section 4 asks why DPO stops where it does.

# %% [markdown]
# ## 4. Why DPO stops short here: ablations
#
# Each ablation changes one setting of section 3 and reruns DPO, and PPO too when its reward model
# changes (other pairs), on the same three seeds. The table gives DPO $-$ PPO at each budget,
# paired by seed, as mean ± standard deviation, and each method's own frontier (mean); the figure
# draws DPO's frontier (mean of the seeds) under each one against PPO's. The settings are in
# `tools/frontier_figures.py` (`VARIANTS`); "main" is section 3; the figure shows a selection. Two of the variants train PPO
# longer or on more pairs, and compare it with section 3's DPO.

# %%
ablations = shipped("frontier_ablations.json")
rows = ["| variant | what changes | DPO − PPO at KL ≤ 1 | KL ≤ 2 | KL ≤ 4 | DPO's frontier at 1 / 2 / 4 | PPO's |",
        "|---|---|---:|---:|---:|---:|---:|"]
gap = {}  # variant -> (seeds, budgets) DPO - PPO, paired by seed
for name, v in ablations["variants"].items():
    gap[name] = np.array(v["dpo_minus_ppo"])
    means = {row["method"]: " / ".join(f"{m:.2f}" for m in row["mean"]) for row in v["table"]}
    cells = [f"{m:+.2f} ± {sd:.2f}" for m, sd in zip(gap[name].mean(0), gap[name].std(0, ddof=1))]
    rows.append(f"| {name} | {v['what']} | " + " | ".join(cells) + f" | {means['dpo']} | {means['ppo']} |")
display(Markdown("\n".join(rows)))

# %%
grid = np.array(ablations["grid"])
fig, ax = plt.subplots(figsize=(8, 5))
optimum = sorted((p["kl"], p["true_reward"]) for p in points if p["method"] == "optimum")
ax.plot(*zip(*optimum), "k--", lw=1.2, label="KL-regularised optimum (estimate)")
for name, method, style in (("main", "ppo", dict(color="tab:blue", lw=3)),
                            ("16000 pairs, 10x PPO iterations", "ppo", dict(color="tab:blue", lw=1.5, ls=":")),
                            ("main", "dpo", dict(color="tab:red", lw=3)),
                            ("tempered pairs", "dpo", dict(color="tab:orange", lw=1.5)),
                            ("1000 pairs", "dpo", dict(color="tab:brown", lw=1.5)),
                            ("beta_bt = 2", "dpo", dict(color="tab:gray", lw=1.5)),
                            ("3x DPO steps", "dpo", dict(color="tab:pink", lw=1.5)),
                            ("16000 pairs, 10x DPO steps", "dpo", dict(color="tab:purple", lw=2.5))):
    curve = np.array(ablations["variants"][name]["envelopes"][method]).mean(0)  # mean over seeds
    ax.plot(grid, curve, label=f"{method.upper()}, {name}", **style)
ax.set_xlim(0, 4.5)
ax.set_xlabel(r"KL($\pi\,\|\,\pi_{\rm ref}$)  (nats per response)")
ax.set_ylabel("best true reward at KL ≤ c (mean of 3 seeds)")
ax.set_title("DPO's frontier under the ablations, against PPO's")
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="lower right")
plt.show()

# %%
def at_budgets(name, method):
    """(seeds, budgets) frontier values of ``method`` in ablation ``name``, read off its grid."""
    columns = [int(np.argmin(np.abs(grid - c))) for c in budgets]
    return np.array(ablations["variants"][name]["envelopes"][method])[:, columns]


long_dpo = at_budgets("16000 pairs, 10x DPO steps", "dpo")
long_ppo = at_budgets("16000 pairs, 10x PPO iterations", "ppo")
best_ppo = np.max([at_budgets(name, "ppo") for name in ("main", "16000 pairs", "16000 pairs, 10x PPO iterations")], axis=0)
for label, other in (("PPO trained 10x longer on the same pairs", long_ppo), ("the best PPO run in any variant", best_ppo)):
    d = long_dpo - other
    print(f"DPO (16000 pairs, 3000 steps) - {label}:")
    print("   " + "   ".join(f"KL <= {c:g}: {m:+.3f} ± {sd:.3f}" for c, m, sd in zip(budgets, d.mean(0), d.std(0, ddof=1))))
print("DPO (16000 pairs, 3000 steps):", np.round(long_dpo.mean(0), 3), " the optimum:", np.round(env["optimum"][0], 3))
cpu = {name: ablations["variants"][name]["cpu_seconds"] for name in ("16000 pairs, 10x DPO steps", "16000 pairs, 10x PPO iterations")}
print("CPU seconds of the two long ablations (3 seeds each):", {k: round(v) for k, v in cpu.items()})

mean_gap = {name: g.mean(0) for name, g in gap.items()}
frontier_of = {name: {row["method"]: np.array(row["mean"]) for row in v["table"]} for name, v in ablations["variants"].items()}
assert abs(mean_gap["off-policy pairs"] - mean_gap["main"]).max() < 0.05  # the corpus is on-policy here
assert frontier_of["tempered pairs"]["dpo"][0] < frontier_of["main"]["dpo"][0] - 0.05  # off-policy hurts DPO
assert abs(frontier_of["tempered pairs"]["ppo"] - frontier_of["main"]["ppo"]).max() < 0.03  # ... not PPO
assert mean_gap["1000 pairs"][1] < mean_gap["main"][1] - 0.05  # fewer pairs: DPO falls behind
assert (mean_gap["beta_bt = 2"] < mean_gap["main"]).all()  # noisier labels hurt DPO more
for name in ("beta_bt = 100", "16000 pairs", "tau up to 32"):  # no real help for DPO
    assert abs(frontier_of[name]["dpo"] - frontier_of["main"]["dpo"]).max() < 0.05, name
for name in ("16000 pairs", "16000 pairs, 10x PPO iterations"):  # nor for PPO
    assert abs(frontier_of[name]["ppo"] - frontier_of["main"]["ppo"]).max() < 0.06, name
steps = ["main", "3x DPO steps", "16000 pairs, 3x DPO steps", "16000 pairs, 10x DPO steps"]
assert np.all(np.diff([mean_gap[name][2] for name in steps]) > 0)  # more steps, a smaller gap at KL <= 4
assert ((long_dpo - best_ppo)[:, 0] > 0).all() and ((long_dpo - long_ppo)[:, :2] > 0).all()
assert abs((long_dpo - long_ppo)[:, 2].mean()) < 0.1 and (long_dpo.mean(0) > env["optimum"][0] - 0.06).all()
assert 1.5 < cpu["16000 pairs, 10x DPO steps"] / cpu["16000 pairs, 10x PPO iterations"] < 2.5
assert 0.9 < rm_true_order.mean() < 0.96 and sampling.max_new_tokens == 12  # the toy's easy regime

# %% [markdown]
# What each ablation says:
#
# * **Where the pairs come from.** Corpus pairs (the demo's) leave the gap between DPO and PPO
#   where it was, as section 3's likelihoods predicted: on this toy they are on-policy in all but
#   name. Pairs from the tempered
#   reference, really off-policy, cost DPO about 0.08 at KL $\le 1$ (its frontier, second-last
#   column), while PPO, which only learns a reward model from them, does not notice.
# * **How many pairs, and how noisy.** A quarter of the pairs (1000) or a noisier annotator
#   ($\beta_{BT} = 2$) hurt DPO more than PPO: the reward model generalises from fewer or noisier
#   labels better than DPO's direct fit does. Nearly deterministic labels ($\beta_{BT} = 100$, as the
#   paper's classifier gives) do not help DPO; neither do four times the pairs at the default step
#   count, nor larger temperatures ($\tau$ up to 32).
# * **How long DPO trains.** This is what stops it. With 3x the steps the gap at KL $\le 4$ halves.
#   With 16000 pairs and 10x the steps (3000), DPO's frontier lies **above** PPO's at KL $\le 1$
#   on every seed, even above the best PPO run of any variant; at KL $\le 2$ it is above PPO
#   trained as long on the same pairs on every seed (level with the best PPO run on one); at
#   KL $\le 4$ the two tie; and DPO comes within about 0.05 of the optimum at every budget
#   (printed above). PPO gains nothing from ten times the iterations or four times the pairs: its
#   frontier was already where its reward model can take it (the long PPO runs were evaluated
#   every 60 iterations, so their early, small-KL checkpoints are sparser; the short runs of
#   section 3 cover that part). The long DPO runs took about twice the CPU time of the long PPO
#   runs.
#
# So the paper's finding does reproduce in miniature, but only when DPO is given many more pairs
# and optimisation steps than PPO needs: at the default budget (300 DPO steps, 60 PPO
# iterations) the two tie at small KL and PPO reaches further. What this toy
# **can** show: the frontier of each method with its seed-to-seed spread, against the best
# achievable curve, and how DPO's depends on the pairs and its training length. What it
# **cannot**: the paper's regime. Its responses are at most 12 tokens, its reward models order
# about 93% of held-out pairs as the true reward does, and about 2% of the reference's samples
# already have the best possible reward (all printed in section 3), so PPO finds the optimum by
# sampling; with GPT-2 on IMDb the reward model
# is cruder, the optimum is rarer and PPO is harder to tune, and whether those tip the balance
# toward DPO is beyond a 2-layer model. The envelope also flatters every method a little: it is a
# maximum over noisy evaluations (256–512 samples each), though with the same number of
# checkpoints per method.

# %% [markdown]
# ## 5. A flawed reward model
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
# ## 6. Over-optimisation: PPO without a KL penalty
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


hist0, snaps0 = run_ppo(beta=0.0)
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
# ## 7. The anchor: the KL penalty in $J(\theta)$
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
assert J["end (hacked)", 0.0] > J["true-reward peak", 0.0] and 0.1 < beta_star < 0.3
assert J["end (hacked)", 0.1] > J["true-reward peak", 0.1]  # below beta*: the exploit still wins
assert J["end (hacked)", 0.3] < J["true-reward peak", 0.3]  # above it: the peak wins

# %% [markdown]
# With $\beta = 0$ the hacked policy has the higher $J$, so PPO was right to go there. But each
# extra nat of KL it spent bought only about $\beta^*$ units of proxy reward (printed above), so
# for a penalty above $\beta^*$ the ranking of *these two* policies flips: the end policy's extra
# proxy reward no longer covers the price of its KL. The run below uses $\beta = 0.1$, which is
# **below** $\beta^*$: at $\beta = 0.1$, $J$ still ranks the hacked end above the peak (the two
# $\beta = 0.1$ rows above). If those two were the only candidates, this penalty would not help.
# They are not: PPO maximises $J$ over all policies, and the penalty acts on the whole path, not
# only on the two points of the $\beta = 0$ run. Does PPO with $\beta = 0.1$ stay nearer the
# reference? Same seed, same everything else; at the end we estimate $J$ at $\beta = 0.1$ for
# the policy it reaches.

# %%
hist1, snaps1 = run_ppo(beta=0.1)
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
J_end1, r_phi_end1, kl_end1 = estimate_j(snaps1[steps1[-1]], 0.1)
print(f"J at beta = 0.1: end of this run {J_end1:.3f} (proxy {r_phi_end1:.3f}, KL {kl_end1:.2f}); "
      f"peak {J['true-reward peak', 0.1]:.3f}; hacked {J['end (hacked)', 0.1]:.3f}")
assert d1[-1] < d0[-1] and true1[-1] > true0[-1] + 0.1
assert true1[-1] < true1[best1]  # overshoots its own best
assert any(len(line.split(" | ")[1].split()) > 1 for line in end_samples)  # stray extra words
assert J_end1 > max(J["true-reward peak", 0.1], J["end (hacked)", 0.1])  # a third, better policy

# %% [markdown]
# With the penalty the KL levels off (the $\beta = 0.1$ curves stop early on the $d$ axis) and
# the true reward ends well above the $\beta = 0$ run's instead of sliding back to zero. PPO did
# not have to prefer the peak to the exploit: it found a third policy with a higher $J$ than both
# (printed last), about as much proxy reward as the hacked one for about half its KL. It is not a
# perfect guard: the run still overshoots its own best evaluation (compare the first two printed
# lines), and some samples pick up stray words after the adjective that this proxy does not
# mind. But the far-away region where the repetition exploit lives is no longer worth the trip.
#
# ## 8. Scaling laws for over-optimisation
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
bon_true, bon_proxy = [], []
for n in ns:
    _, res = best_of_n(reference, proxy, eval_prompts, int(n), sampling,
                       rng=np.random.default_rng(5), true_reward=task.true_reward)  # fmt: skip
    bon_true.append(res["true_reward"])
    bon_proxy.append(res["proxy_reward"])
bon_true, bon_proxy = np.array(bon_true), np.array(bon_proxy)
d_bon = np.sqrt(bound_by_hand)
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
# ## 9. Exercises
#
# The notebook is committed with the exercises open so that CI can run it: an "implement it"
# stub raises `NotImplementedError` (its check then only says so), and a "find the bug" check
# asserts that the planted bug is still caught until you set `BUG_FIXED = True`; from then on
# the same cells assert your code against the library.
#
# **Exercise 1 (implement it).** Write a method's frontier, the upper envelope of its points:
# for each budget $c$, $E(c) = \max\{r_i : \mathrm{KL}_i \le c\}$, and NaN where no point has
# $\mathrm{KL}_i \le c$. The check compares it with `minialign.frontier.envelope` on random points
# and on section 3's DPO points.

# %%
def my_envelope(kl, reward, budgets):
    """E(c) for each c in budgets: the best reward among points with kl <= c (NaN if none)."""
    raise NotImplementedError("exercise 1: replace this line by your code")


# %%
rng_ex = np.random.default_rng(9)
kl_ex, reward_ex = rng_ex.exponential(1.5, size=50), rng_ex.normal(0.3, 0.3, size=50)
budgets_ex = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 4.0, 100.0])
dpo0 = [p for p in points if p["method"] == "dpo" and p["seed"] == 0]
cases = [(kl_ex, reward_ex), ([p["kl"] for p in dpo0], [p["true_reward"] for p in dpo0])]
try:
    for kl_c, reward_c in cases:
        np.testing.assert_array_equal(my_envelope(kl_c, reward_c, budgets_ex),
                                      envelope(kl_c, reward_c, budgets_ex))
    print("Exercise 1 passes: my_envelope agrees with minialign.frontier.envelope.")
except NotImplementedError:
    print("Exercise 1 is open: write my_envelope above, then run this cell again.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_envelope(kl, reward, budgets):
#     kl, reward = np.asarray(kl), np.asarray(reward)
#     return np.array([reward[kl <= c].max() if np.any(kl <= c) else np.nan for c in budgets])
# ```
#
# One pass per budget is fine here. The library sorts the points by KL once, takes the running
# maximum of their rewards (`np.maximum.accumulate`), and finds each budget's place in the sorted
# KLs with `np.searchsorted`: $O((n + k)\log n)$ instead of $O(nk)$. Note what the envelope
# does *not* do: it never interpolates between points, so a method is credited only with
# rewards one of its checkpoints actually reached.
#
# </details>
#
# **Exercise 2 (find the bug).** This function estimates $\mathrm{KL}(\pi\,\|\,\pi_{\rm ref})$ per
# response. To save time it samples the responses once, from the reference, and scores them
# under both models. It returns a positive, plausible number, and exactly 0 when the policy is
# the reference. It is wrong. Find the bug, fix it, set `BUG_FIXED = True`, and run the check: it
# compares with `evaluate_policy` on the hacked policy of section 6.

# %%
BUG_FIXED = False  # set to True once you have fixed sequence_kl


def sequence_kl(policy, prompts, rng):
    """KL(policy || reference) in nats per response, averaged over ``prompts``."""
    gen = generate(reference, prompts, **gen_kw, rng=rng)  # the responses to score
    logp_policy = sequence_logprobs(policy, gen.tokens, gen.response_mask).total.data  # (B,)
    logp_ref = gen.logprobs.sum(axis=1)  # (B,) recorded while sampling
    return float(np.mean(logp_ref - logp_policy))


# %%
hacked = copy.deepcopy(reference)
hacked.load_state_dict(snaps0[steps0[-1]])
expected = evaluate_policy(hacked, reference, eval_prompts, task.true_reward, sampling,
                           rng=np.random.default_rng(2))["kl"]
got = sequence_kl(hacked, eval_prompts, np.random.default_rng(2))
agrees = bool(np.isclose(got, expected, rtol=1e-4))
print(f"sequence_kl {got:.3f}   evaluate_policy {expected:.3f}")
if BUG_FIXED:
    assert agrees, "still different from evaluate_policy: whose samples does a KL(pi || pi_ref) average over?"
    print("Exercise 2 passes.")
else:
    assert not agrees, "sequence_kl agrees with evaluate_policy now: set BUG_FIXED = True"
    print("Exercise 2 is open: the two estimates differ.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# $\mathrm{KL}(\pi\,\|\,\pi_{\rm ref}) = \mathbb{E}_{y\sim\pi}[\log\pi(y) - \log\pi_{\rm ref}(y)]$ is an
# average over the **policy's** samples. Averaged over the reference's samples, the same
# log-ratio (with its sign flipped, as here) is $\mathbb{E}_{y\sim\pi_{\rm ref}}[\log\pi_{\rm ref} - \log\pi]
# = \mathrm{KL}(\pi_{\rm ref}\,\|\,\pi)$, the forward KL: the one GRPO's $k_3$ pulls on (section 2), not
# the one $J(\theta)$ penalises. For the hacked policy, which writes almost nothing but
# "wonderful and wonderful", the reference's varied samples are nearly impossible, so the
# forward KL is more than twice the reverse one (printed above). Sample from the policy:
#
# ```python
# def sequence_kl(policy, prompts, rng):
#     gen = generate(policy, prompts, **gen_kw, rng=rng)
#     logp_ref = sequence_logprobs(reference, gen.tokens, gen.response_mask).total.data
#     return float(np.mean(gen.logprobs.sum(axis=1) - logp_ref))
# ```
#
# With the same generator this draws exactly the responses `evaluate_policy` draws.
#
# </details>
#
# **Exercise 3 (try this).** Rerun the over-optimisation experiment with small penalties, $\beta = 0.01$ and
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

# %% [markdown]
# ## 10. Recap
#
# | | Equation |
# |---|---|
# | the yardstick | $\mathrm{KL}(\pi\,\|\,\pi_{\rm ref}) \approx \frac1B\sum_b\sum_t\big[\log\pi(y_{b,t}) - \log\pi_{\rm ref}(y_{b,t})\big]$, $\;y_b \sim \pi(\cdot\mid x_b)$ |
# | best-of-$n$ | $\mathrm{KL}(\pi_{\rm BoN}\,\|\,\pi_{\rm ref}) \le \log n - \frac{n-1}{n}$ (a bound) |
# | PPO's and GRPO's $\beta$ | $\mathbb{E}_\pi[k_1\nabla\log\pi] = \nabla\mathrm{KL}(\pi\,\|\,\pi_{\rm ref})$; $\;\mathbb{E}_\pi[\nabla k_3] = \nabla\mathrm{KL}(\pi_{\rm ref}\,\|\,\pi)$ |
# | the ideal frontier | $\pi^*_\beta \propto \pi_{\rm ref}\,e^{r/\beta}$, $\;\mathrm{KL}(\pi^*_\beta\,\|\,\pi_{\rm ref}) = \mathbb{E}_{\pi^*_\beta}[r]/\beta - \log Z$ |
# | a method's frontier | $E(c) = \max\{r_i : \mathrm{KL}_i \le c\}$ over its checkpoints, per seed |
# | the anchor | $J(\theta) = \mathbb{E}[r_\phi] - \beta\,\mathrm{KL}$; two policies tie at $\beta^* = \Delta\mathbb{E}[r_\phi]/\Delta\mathrm{KL}$ |
# | Gao et al. | $R_{\rm BoN}(d) = d(\alpha_{\rm BoN} - \beta_{\rm BoN} d)$, $\;R_{\rm RL}(d) = d(\alpha_{\rm RL} - \beta_{\rm RL}\log d)$, $\;d = \sqrt{\mathrm{KL}}$ |
#
# What to remember:
#
# 1. **KL is a budget.** Every method spends it; compare methods by true reward against KL,
#    measured the same way for all (here the sequence-level $k_1$ estimate on the policy's own
#    samples; for best-of-$n$ the analytic bound, flagged as such). (Sections 1–2, exercise 2.)
# 2. **The paper's frontier, in miniature.** With on-policy pairs and the default budget, DPO and
#    PPO tie at small KL and PPO reaches further; given four times the pairs and ten times the
#    steps, DPO's frontier lies above PPO's at small KL and near the optimum. Which method
#    "wins" depends on the budget, the pairs and the labels: report it with seeds. (Sections 3–4.)
# 3. **"β" is not one knob.** PPO's $\beta$ weighs $k_1$ in the reward and pulls on the reverse
#    KL; GRPO's weighs $k_3$ in the loss and pulls on the forward KL, on another scale; DPO's is
#    $1/\tau$. Compare methods by where they land, not by their $\beta$. (Section 2.)
# 4. **A reward model is only trustworthy near its training data.** Given unlimited KL, PPO
#    leaves that neighbourhood and finds its mistakes: the proxy keeps rising while the true
#    reward rises, peaks and falls, roughly as Gao et al.'s forms say. You cannot see it from the
#    proxy alone. (Sections 5, 6, 8.)
# 5. **The defences** are the ones used in practice: a KL penalty (which works on the whole path:
#    PPO found a nearer policy that $J$ prefers to both the peak and the exploit), early stopping
#    on a held-out measure of quality, and a better reward model. DPO has no reward model to hack,
#    but it inherits whatever biases its pairs carry (notebook 05). (Section 7.)

