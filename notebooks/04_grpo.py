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
# # 04 · GRPO: a group of samples instead of a critic
#
# PPO needs a second network, the value model, just to say how good a state is expected to be.
# Group Relative Policy Optimization (DeepSeekMath, then DeepSeek-R1) drops it: for each prompt it
# samples a *group* of answers and judges each one against the others. This notebook steps through
# every GRPO equation of the equation sheet (docs/equations.md) on a task where answers can be
# checked exactly: single-digit sums solved step by step (`7+5=` → `7+3=10;10+2=12;a12`). You will
# compute the mixed outcome/process reward, the group-normalised advantage, the ratio and the GRPO
# objective by hand and through `minialign.objectives`; see what goes wrong when a group's rewards
# are all equal, why the ratio level and the loss aggregation matter, and what DeepSeekMath's KL
# term adds. Then one GRPO iteration written out by hand, checked bitwise against the library's;
# how a process reward catches an answer that is right for the wrong reasons; and two short runs
# comparing outcome-only and mixed rewards.
#
# Runtime: about 12 seconds on a quiet laptop CPU (2 cores), fully seeded.
#
# 1. Outcome and process rewards
# 2. Group-relative advantages
# 3. When every reward in a group is equal
# 4. The ratio and the GRPO objective
# 5. Sequence-level and token-level ratios
# 6. The length bias of the loss aggregation
# 7. DeepSeekMath's KL term: β·k3 in the loss, averaged per token
# 8. One GRPO iteration by hand
# 9. A right answer with a bogus trace
# 10. A short GRPO run: outcome only, or outcome and process
# 11. Why the GRPO loss stays near 0 while it learns
# 12. Exercises
# 13. Recap
#
# ## Notation
#
# | Symbol | Meaning | In code |
# |---|---|---|
# | $x$; $o_i$ | a prompt; the $i$-th sampled output for it | `prompts`, `tokens` |
# | $N$ | group size, outputs per prompt (DeepSeekMath writes $G$) | `num_generations` |
# | $r_{\rm outcome}$, $r_{\rm process}$, $r_i$ | answer right or not; share of sound steps; their mix | `r_outcome`, `r_process`, `r` |
# | $\tau_i$ | the reasoning trace of output $i$: the model's own steps before the answer | part of `tokens` |
# | $\lambda$ | weight of the outcome in $r_i$ (not GAE's $\lambda$ of notebook 03) | `lam` |
# | $\mu$, $\sigma$ | mean and population standard deviation of a group's rewards | `mu`, `sigma` |
# | $A_i$ | group-relative advantage of output $i$, shared by all its tokens | `A`, `advantages` |
# | $\rho_i$, $\rho_{i,t}$ | ratio $\pi_\theta/\pi_{\theta_{\rm old}}$ of a whole output, of one token | `level="sequence"`, `"token"` |
# | $\epsilon$ | clip range of the ratio | `eps`, `GRPOConfig.epsilon` |
# | $\beta$ | coefficient of the per-token $k_3$ KL term **in the loss** | `GRPOConfig.beta` |
# | $\lvert o_i\rvert$ | number of tokens of output $i$ | `mask.sum(axis=1)` |
# | $L^{\rm GRPO}$ | the objective, **maximised**; `grpo_loss` returns $-L^{\rm GRPO}$ | `grpo_loss` |
#
# Clashes to watch. $\tau$ is a reasoning trace here, but the sampling temperature in notebooks
# 01 and 03 and DPO's temperature in notebook 05. $\mu$ is the group mean here; the source's
# prose once uses $\mu_i$ for the trace, and DeepSeekMath uses $\mu$ for the number of gradient
# steps per batch (`GRPOConfig.epochs`). $\rho_i$ is a probability ratio here, while inside the
# KL estimators (notebook 03, section 8) $\rho = \pi_{\rm ref}/\pi_\theta$. And $\beta$ here weighs
# $k_3$ inside the loss, averaged over tokens, while PPO's $\beta$ weighs $k_1$ inside the reward,
# summed over tokens: the two pull toward different KLs (notebook 03, section 9; section 7 here).
# DPO's $\beta = 1/\tau$ and the annotator's $\beta_{\rm BT}$ are different things again.

# %%
import copy
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
from minialign.nn import generate, sequence_logprobs
from minialign.objectives import (
    combined_reward,
    frac_zero_std_groups,
    group_advantages,
    grpo_loss,
)
from minialign.optim import AdamW, clip_grad_norm
from minialign.plots import Slider, interactive_figure, plot_bars, plot_curves, plot_history_grid
from minialign.pretrained import load_reference, make_task
from minialign.tasks import correct_trace, corrupted_trace, hacked_response, score
from minialign.train import (
    GRPOConfig,
    Sampling,
    arithmetic_reward_fn,
    collect_rollout,
    grpo_iteration,
    train_grpo,
)
from minialign.train.rollout import policy_logprobs

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True)

task = make_task("arithmetic")
tok = task.tokenizer
reference = load_reference("arithmetic")
sampling = Sampling.for_task(task)  # up to 27 new characters, END stops, PAD fills the rest
GEN = dict(max_new_tokens=sampling.max_new_tokens, stop_token=tok.end_id, pad_id=tok.pad_id)

# %% [markdown]
# ## 1. Outcome and process rewards
#
# The arithmetic task has two rewards that a program can check: $r_{\rm outcome} \in \{0, 1\}$,
# whether the final answer (after `a`) is right, and $r_{\rm process} \in [0, 1]$, the fraction of
# sound lines in the worked solution (each step true, connected to the previous one and making
# progress; the answer line counts as one more step; see `minialign.tasks.arithmetic`). The
# equation sheet mixes them with a weight $\lambda$:
#
# $$r_i = \lambda\,r_{\rm outcome}(o_i, x) + (1 - \lambda)\,r_{\rm process}(\tau_i, x)$$
#
# Here $o_i$ is the $i$-th sampled output for prompt $x$ and $\tau_i$ its reasoning trace. Two
# slips of the source to correct. Its prose calls the trace $\mu_i$ once; the equation's $\tau_i$
# is the one we use, as $\mu$ is about to mean the group mean. And it says the trace comes "from
# the dataset". It does not: $\tau_i$ is the **model's own** chain of thought, sampled together
# with its answer, so each of the $N$ outputs below has its own. That is the point of a process
# reward: it grades what the policy wrote (a trace from a dataset would not depend on $\theta$,
# and rewarding it would teach the policy nothing). A group of $N = 8$ answers from the shipped
# reference model to `7+5=`:

# %%
N = 8
problem = (7, "+", 5)
prompts = np.repeat(task.encode_prompts([problem]), N, axis=0)  # (N, P): one prompt, N times
group = generate(reference, prompts, **GEN, rng=np.random.default_rng(0))
texts = tok.decode_batch(group.tokens, group.response_mask)
r_outcome, r_process = task.rewards(group.tokens, group.tokens, group.response_mask)

lam = 0.5
r_by_hand = lam * r_outcome + (1 - lam) * r_process
r = combined_reward(r_outcome, r_process, lam)
kind = np.select(
    [(r_outcome == 1) & (r_process == 1), r_outcome == 1, r_process > 0],
    ["right, sound steps", "right, unsound steps", "wrong, some sound steps"],
    "wrong, no sound step",
)
print(f"{'i':>2}  {'output o_i':22}{'outcome':>8}{'process':>9}{'r_i':>8}  kind")
for i in range(N):
    print(f"{i:>2}  {texts[i]:22}{r_outcome[i]:8.0f}{r_process[i]:9.3f}{r[i]:8.3f}  {kind[i]}")
np.testing.assert_allclose(r, r_by_hand, rtol=1e-12)
assert {"right, sound steps", "wrong, some sound steps"} <= set(kind)  # the text below needs both
assert len(set(texts)) > 1  # eight samples, not one trace copied eight times

# %% [markdown]
# The last column sorts the outputs. The outcome reward gives every wrong answer 0, while the
# mixed reward gives partial credit to a wrong answer reached through some sound steps and ranks
# it above a wrong answer with none. Conversely, an answer that is right for the wrong reasons
# (outcome 1, unsound steps) gets full marks from the outcome reward alone, exactly like a sound
# one; only the process term tells them apart. Whether such a hack turns up in a group of 8 is
# luck, so section 9 builds one by hand.
#
# ## 2. Group-relative advantages
#
# GRPO's baseline is the group itself. Its mean and (population) standard deviation,
#
# $$\mu = \frac{1}{N}\sum_{i=1}^N r_i, \quad \sigma = \sqrt{\frac{1}{N}\sum_{i=1}^N (r_i - \mu)^2}$$
#
# turn each reward into a score relative to its siblings:
#
# $$A_i = \frac{r_i - \mu}{\sigma}$$
#
# Line by line on the group above:

# %%
mu = r.sum() / N
sigma = np.sqrt(((r - mu) ** 2).sum() / N)  # 1/N, as the equation sheet writes it (not 1/(N-1))
A_by_hand = (r - mu) / sigma
print(f"mu = {mu:.4f}, sigma = {sigma:.4f}")
print("A_i by hand            :", A_by_hand)
A = group_advantages(r)
print("objectives.group_advantages:", A)
np.testing.assert_allclose(A, A_by_hand, rtol=1e-6)  # the library adds eps = 1e-8 to sigma
np.testing.assert_allclose([A.sum(), (A**2).mean()], [0.0, 1.0], atol=1e-6)
print(f"sum of A = {A.sum():+.1e}; {(A > 0).sum()} outputs above the group mean (A > 0), "
      f"{(A < 0).sum()} below; largest A {A.max():+.2f}, smallest {A.min():+.2f}")
assert np.array_equal(A > 0, r > mu) and (A > 0).sum() == 2 and (A < 0).sum() == 6

# %% [markdown]
# The advantages sum to zero and have mean square 1 in every group. Every output above the
# group's mean reward is pushed up and every one below it pushed down, whatever the absolute
# reward level. That is not "half up, half down": in this group 2 outputs are above the mean
# and 6 below, and the 2 carry the larger advantages, so the sum still balances. Note the
# choice of $\sigma$: TRL divides by $N - 1$ (Bessel), which shrinks every advantage by
# $\sqrt{(N-1)/N}$ (`ddof=1`). A batch holds many groups, one per row; normalisation happens
# within each row only:

# %%
batch = np.array([[1.0, 0.0, 0.5, 0.5], [0.9, 0.8, 0.85, 0.8]])  # 2 prompts x N = 4
print(group_advantages(batch))
print("Bessel (ddof=1):", group_advantages(batch, ddof=1)[0])
np.testing.assert_allclose(group_advantages(batch)[1], group_advantages(batch[1:])[0])
np.testing.assert_allclose(group_advantages(batch, ddof=1), group_advantages(batch) * np.sqrt(3 / 4),
                           rtol=1e-6)

# %% [markdown]
# Both rows get the same spread of advantages even though the second group's rewards differ by
# at most 0.1: dividing by $\sigma$ makes GRPO blind to how big the differences are (Dr. GRPO,
# below, drops the division for that reason).
#
# **Moving $\lambda$.** Back to the group of section 1. In a live notebook (JupyterLab, or the
# browser site) a slider above the next figure sets $\lambda$; GitHub shows $\lambda = 0.5$.
# Slide it to 1 and only the outcome counts: the six wrong answers tie, however many sound
# steps they took, and share one advantage. Lower it and the wrong answers with some sound
# steps ("partial" on the axis) climb above those without, until at $\lambda = 0$ only the
# steps count and a wrong answer with two sound steps of three is pushed *up*. The bars of
# $A_i$ keep a mean of 0 and a mean square of 1 throughout: $\lambda$ changes which outputs
# are pushed up and how far apart they sit, never the overall scale.

# %%
short = {"right, sound steps": "right", "right, unsound steps": "right?",
         "wrong, some sound steps": "partial", "wrong, no sound step": "wrong"}
outputs = [f"{i}\n{short[k]}" for i, k in enumerate(kind)]


def mixed_group(axes, lam):
    r_lam = combined_reward(r_outcome, r_process, lam)
    plot_bars({"outcome": r_outcome, "process": r_process, r"$r_i$ (the mix)": r_lam}, axes[0],
              labels=outputs, title=rf"Rewards of the group, $\lambda$ = {lam:.2f}",
              ylabel="reward", fontsize=8)
    plot_bars({"A_i": group_advantages(r_lam)}, axes[1], labels=outputs, hlines={"": 0.0},
              legend=False, title=rf"Advantages $A_i$, $\lambda$ = {lam:.2f}", ylabel="advantage")


interactive_figure(mixed_group, ncols=2, width=6.0, lam=Slider(lam, 0.0, 1.0, 0.05, label="λ"))
wrong = r_outcome == 0
for lam_ in (1.0, lam, 0.0):
    A_lam = group_advantages(combined_reward(r_outcome, r_process, lam_))
    print(f"lam = {lam_}: the {wrong.sum()} wrong answers get {len(np.unique(A_lam[wrong].round(6)))}"
          f" different advantages, {np.unique(A_lam[wrong].round(2))}")
    np.testing.assert_allclose([A_lam.mean(), (A_lam**2).mean()], [0.0, 1.0], atol=1e-6)
assert np.ptp(group_advantages(r_outcome)[wrong]) < 1e-9 < np.ptp(A[wrong])  # tied only at lam = 1
assert group_advantages(r_process)[wrong].max() > 0  # lam = 0: a wrong answer pushed up

# %% [markdown]
# ## 3. When every reward in a group is equal
#
# If all $N$ answers get the same reward (all right, or all wrong), then $\sigma = 0$ and the
# formula reads $0/0$. Such a group carries no information about which answer is better, so the
# right advantage is exactly 0. Written naively it is NaN, and one NaN poisons the whole update:

# %%
all_right = np.ones(N)  # every answer in the group correct
with np.errstate(invalid="ignore"):
    naive = (all_right - all_right.mean()) / all_right.std()
print("naive (r - mu) / sigma :", naive)
print("group_advantages       :", group_advantages(all_right))
assert np.isnan(naive).all() and (group_advantages(all_right) == 0.0).all()

groups = np.array([np.ones(N), np.zeros(N), r, r_outcome])  # 4 groups of N rewards
print("fraction of groups with equal rewards:", frac_zero_std_groups(groups))
assert frac_zero_std_groups(groups) == 0.5

# %% [markdown]
# `frac_zero_std_groups` (TRL's `frac_reward_zero_std`) is worth logging: as the policy improves,
# more groups are all right and teach nothing, so each batch carries less signal (section 10
# plots it).
#
# **A tiny $\sigma$ is worse than a zero one.** The division rescales whatever spread there is to
# unit size. A group whose rewards differ only by rounding noise or a negligible partial credit gets
# advantages as large as a group that separates right from wrong:

# %%
almost = np.full(N, 0.5)
almost[2] += 1e-4  # one answer better by a negligible ten-thousandth
A_almost = group_advantages(almost)
print("A with a 1e-4 difference:", A_almost)
print("A with a 0/1 difference :", group_advantages(np.eye(N)[2]))
np.testing.assert_allclose(A_almost, group_advantages(np.eye(N)[2]), rtol=1e-3)
floored = group_advantages(almost, std_floor=0.1)  # NeMo-RL-style floor on sigma
print("with std_floor=0.1      :", floored)
assert np.abs(floored).max() < 1e-2

# %% [markdown]
# Both give $A = \sqrt{N-1} \approx 2.65$ to the odd one out. The library's small `eps` only guards
# against $\sigma$ at the level of float rounding (and an exact-equality test catches equal
# groups); a `std_floor` bounds the advantages when rewards can differ by tiny amounts.
#
# ## 4. The ratio and the GRPO objective
#
# GRPO then borrows PPO's clipped update, with one ratio per output:
#
# $$\rho_i = \frac{\pi_\theta(o_i \mid x)}{\pi_{\theta_{\rm old}}(o_i \mid x)}$$
#
# $$L^{\rm GRPO}(\theta) = \mathbb{E}_i\Big[\min\big(\rho_i\,A_i,\;\mathrm{clip}(\rho_i,\,1 - \epsilon,\,1 + \epsilon)\,A_i\big)\Big]$$
#
# Unlike PPO's $L^{\text{CLIP}}$, this has no leading minus: it is an objective to
# **maximise**. `grpo_loss` returns $-L^{\rm GRPO}$, a loss to minimise, like every `*_loss` in
# minialign. On our group, with the log-probabilities of whole outputs under the old policy and a
# slightly updated one:
# %%
eps = 0.2
logp_old = group.logprobs.sum(axis=1)  # log pi_old(o_i | x), (N,)
shift = np.array([0.10, 0.05, -0.30, 0.25, -0.02, 0.0, 0.15, -0.10])
logp_new_np = logp_old + shift  # log pi_theta(o_i | x) after some update
rho = np.exp(logp_new_np - logp_old)
L_by_hand = np.mean(np.minimum(rho * A, np.clip(rho, 1 - eps, 1 + eps) * A))
print("rho_i   :", rho)
print(f"L^GRPO by hand = {L_by_hand:.6f}  (maximised)")

logp_new = ma.tensor(logp_new_np, requires_grad=True)
loss = grpo_loss(logp_new, logp_old, A, eps, level="sequence", aggregation="grpo")
print(f"objectives.grpo_loss = {loss.item():.6f}  (= -L^GRPO, minimised)")
np.testing.assert_allclose(loss.item(), -L_by_hand, rtol=1e-6)

# %% [markdown]
# **Why the sign matters.** A minimiser moves downhill. On `grpo_loss` that raises the
# probability of outputs with $A_i > 0$ (the gradient with respect to $\log\pi_\theta(o_i)$ is
# $-\rho_i A_i / N$ where the clip is inactive). Hand $L^{\rm GRPO}$ itself to a minimiser and
# every step goes the other way, toward the *worst* answers of each group. One gradient step on
# the log-probabilities, each way:

# %%
loss.backward()
grad = logp_new.grad
active = np.minimum(rho * A, np.clip(rho, 1 - eps, 1 + eps) * A) == rho * A
np.testing.assert_allclose(grad, np.where(active, -rho * A / N, 0.0), rtol=1e-5, atol=1e-12)
step = 0.5
beyond = np.abs(rho - 1) > eps  # outside 1 +- eps
status = np.where(~beyond, "", np.where(active, "outside the clip, pulled back", "clip binds"))
print(f"{'i':>2}{'rho_i':>7}{'A_i':>7}{'minimise -L (right)':>21}{'minimise +L (wrong sign)':>26}")
for i in range(N):
    print(f"{i:>2}{rho[i]:7.2f}{A[i]:7.2f}{-step * grad[i]:+21.4f}{+step * grad[i]:+26.4f}"
          f"  {status[i]}")
assert np.all(np.sign(-grad[active]) == np.sign(A[active]))
assert np.all(grad[~active] == 0) and (beyond & active).any() and (beyond & ~active).any()

# %% [markdown]
# The two columns are the change in each $\log\pi_\theta(o_i)$. The outputs whose ratio is
# outside $1 \pm \epsilon$ come in two kinds (last column). Where the ratio has already moved
# the way its advantage pushes ($A_i < 0$ and $\rho_i < 1 - \epsilon$, or $A_i > 0$ and
# $\rho_i > 1 + \epsilon$), the clip binds and the gradient is exactly zero. Where it moved the
# *other* way, the loss still pulls it back.
#
# ## 5. Sequence-level and token-level ratios
#
# The equation sheet's $\rho_i$ compares the probabilities of whole outputs. An output's probability is the
# product of its token probabilities, so $\rho_i$ is the **product of the token ratios**:
# $\log\rho_i = \sum_t (\log\pi_\theta(y_t) - \log\pi_{\theta_{\rm old}}(y_t))$. Small per-token
# changes compound with length. DeepSeekMath and TRL use one ratio **per token** instead, each
# clipped on its own (`level="token"`; `level="sequence"` is the equation sheet's).

# %%
rng = np.random.default_rng(0)
token_log_ratio = rng.normal(0.0, 0.03, size=(2000, 200))  # small per-token drift
token_ratios = np.exp(token_log_ratio[0, :12])
seq_ratio = np.exp(token_log_ratio[0, :12].sum())
print("12 token ratios :", token_ratios)
print(f"their product = {np.prod(token_ratios):.4f} = sequence ratio {seq_ratio:.4f}")
np.testing.assert_allclose(np.prod(token_ratios), seq_ratio, rtol=1e-12)

lengths = np.arange(1, 201)
seq_log_ratio = np.cumsum(token_log_ratio, axis=1)  # (2000, 200): log rho of the first L tokens
outside = np.mean(np.abs(np.exp(seq_log_ratio) - 1) > eps, axis=0)
outside_tok = np.mean(np.abs(np.exp(token_log_ratio) - 1) > eps)
plot_curves({r"sequence ratio $\rho_i$ (the equation sheet)": (lengths, outside),
             "token ratios (DeepSeekMath, TRL)": (lengths, np.full(len(lengths), outside_tok))},
            xlabel="output length (tokens)", ylabel=r"share with $|\rho - 1| > \epsilon$",
            title=r"Per-token log-ratio drift N(0, 0.03$^2$): the sequence ratio leaves the clip range")
plt.show()
assert outside[-1] > 0.5  # a 200-token output: outside the clip most of the time

# %% [markdown]
# With the same per-token drift, a 200-token output's sequence ratio is outside $1 \pm 0.2$ most
# of the time, and wherever the clip binds the whole output's gradient is zero. Through
# `grpo_loss` on two outputs of 3 and 12 tokens, each token 5% more likely than before:

# %%
mask = np.zeros((2, 12), dtype=bool)
mask[0, :3], mask[1, :] = True, True  # a 3-token and a 12-token output
old_tok = np.where(mask, -1.0, 0.0)
new_tok = old_tok + np.log(1.05) * mask
A2 = np.array([1.0, 1.0])
for level in ("sequence", "token"):
    lp = ma.tensor(new_tok, requires_grad=True)
    grpo_loss(lp, old_tok, A2, eps, mask, level=level, aggregation="bnpo").backward()
    print(f"{level:>8}: gradient on the 3-token output {lp.grad[0, 0]:+.4f} per token,"
          f" on the 12-token output {lp.grad[1, 0]:+.4f}")
print(f"sequence ratios: {1.05**3:.3f} (inside the clip) and {1.05**12:.3f} (clipped: no gradient)")

# %% [markdown]
# At the sequence level the short output's tokens get a larger gradient each, since every one of
# them moves the whole $\rho_i$; the long output gets none at all. Per-token ratios treat both
# alike.
#
# (TRL's `importance_sampling_level="sequence"` is GSPO's *length-normalised* ratio, the geometric
# mean of the token ratios, which avoids this blow-up; minialign's is the equation sheet's plain product.)
#
# ## 6. The length bias of the loss aggregation
#
# With token-level ratios every token of output $i$ carries the same term, and the loss has to
# average over tokens somehow. Three choices (TRL's `loss_type`):
#
# * `"grpo"`: average over each output's $|o_i|$ tokens, then over the $B$ outputs. Token weight
#   $1/(B\,|o_i|)$.
# * `"bnpo"`: sum over all tokens of the batch, divided by their number. Token weight
#   $1/\sum_j |o_j|$.
# * `"dr_grpo"`: sum divided by a constant, $B \cdot L_{\max}$. Token weight $1/(B\,L_{\max})$.
#
# Liu et al. (2025), "Understanding R1-Zero-Like Training: A Critical Perspective" (Dr. GRPO),
# point out that `"grpo"` weighs each *output* equally, so the tokens of a long output each get
# less weight: a long wrong answer is penalised less per token than a short one, and the model
# drifts toward long wrong answers. A short right answer (3 tokens, $A = +1$) against a long wrong
# one (12 tokens, $A = -1$), at ratio 1, with $L_{\max} = 16$; the weights come from autograd:

# %%
B, L_max = 2, 16
lengths_ = np.array([3, 12])
mask = np.arange(L_max)[None, :] < lengths_[:, None]  # (2, 16)
A_pair = np.array([1.0, -1.0])  # short right, long wrong
expected = {
    "grpo": 1 / (B * lengths_),
    "bnpo": np.full(2, 1 / lengths_.sum()),
    "dr_grpo": np.full(2, 1 / (B * L_max)),
}
print(f"{'aggregation':>12}{'weight/token short':>20}{'weight/token long':>19}{'total long':>12}")
for aggregation, w in expected.items():
    lp = ma.tensor(np.where(mask, -1.0, 0.0), requires_grad=True)
    loss = grpo_loss(lp, lp.data.copy(), A_pair, eps, mask, level="token",
                     aggregation=aggregation, max_completion_length=L_max)
    loss.backward()
    weight = np.abs(lp.grad[:, 0])  # |d loss / d log pi(y_0)| = weight x |A| (ratio 1)
    np.testing.assert_allclose(weight, w, rtol=1e-6)
    print(f"{aggregation:>12}{weight[0]:20.4f}{weight[1]:19.4f}{weight[1] * 12:12.3f}")

# %% [markdown]
# Under `"grpo"` each token of the long wrong answer is pushed down 4 times less than each token
# of the short right answer is pushed up; `"bnpo"` and `"dr_grpo"` treat every token alike. (At
# the sequence level with `"grpo"` the loss is exactly the equation sheet's $\mathbb{E}_i$ over outputs.)
# minialign's `train_grpo` defaults to `"grpo"`; the runs below use `"bnpo"`.
#
# ## 7. DeepSeekMath's KL term: β·k3 in the loss, averaged per token
#
# The equation sheet's $L^{\rm GRPO}$ has no KL term. DeepSeekMath's GRPO (Shao et al. 2024)
# has one, inside the average over each output's tokens:
#
# $$\mathcal{J}_{\rm GRPO}(\theta) = \mathbb{E}\Bigg[\frac1N\sum_{i=1}^N\frac1{|o_i|}\sum_{t=1}^{|o_i|}
#   \Big\{\min\big(\rho_{i,t}A_i,\ \mathrm{clip}(\rho_{i,t}, 1-\epsilon, 1+\epsilon)A_i\big)
#   - \beta\,\mathbb{D}_{\rm KL}\big[\pi_\theta\|\pi_{\rm ref}\big]_{i,t}\Big\}\Bigg],
# \qquad
# \mathbb{D}_{\rm KL}[\pi_\theta\|\pi_{\rm ref}]_{i,t} = \frac{\pi_{\rm ref}(o_{i,t})}{\pi_\theta(o_{i,t})}
#   - \log\frac{\pi_{\rm ref}(o_{i,t})}{\pi_\theta(o_{i,t})} - 1$$
#
# with per-token ratios $\rho_{i,t}$ (section 5), every token of output $i$ sharing $A_i$, and
# the per-token KL written as Schulman's $k_3$ (notebook 03, section 8), conditioned on each
# token's prefix. It differs from PPO's penalty in three ways, and the third is easy to miss:
#
# 1. It sits in the **loss**, not in the rewards, so the group statistics see clean rewards.
# 2. It is differentiated **as a loss**, so it pulls toward the forward KL
#    $\mathrm{KL}(\pi_{\rm ref}\|\pi_\theta)$, not the reverse KL of $J$ (notebook 03, section 9).
# 3. It is **averaged over each output's tokens**: an output pays $\beta$ times its *mean*
#    $k_3$ per token, about $\beta\,\mathrm{KL}/|o_i|$ for the whole output, where PPO charges
#    $\beta$ times the *sum* over the response. At the same $\beta$ and the same per-token KL,
#    GRPO's penalty on a response is $|o_i|$ times smaller than PPO's.
#
# `grpo_loss(..., beta=, logp_ref=, level="token", aggregation="grpo")` returns
# $-\mathcal{J}_{\rm GRPO}$. By hand on two outputs of 3 and 6 tokens, then the KL term alone
# and its gradient per token, $\partial(\beta\,k_3)/\partial\log\pi_\theta = \beta\,(1 - \pi_{\rm ref}/\pi_\theta)$,
# weighted by $1/(N|o_i|)$:

# %%
beta = 0.04  # DeepSeekMath's coefficient
mask_k = np.arange(6)[None, :] < np.array([3, 6])[:, None]  # outputs of 3 and 6 tokens
rng = np.random.default_rng(3)
logp_old_k = np.where(mask_k, rng.uniform(-2.0, -0.1, (2, 6)), 0.0)
logp_new_k = logp_old_k + np.where(mask_k, rng.normal(0.0, 0.1, (2, 6)), 0.0)  # after a step
logp_ref_k = logp_old_k + np.where(mask_k, rng.normal(0.0, 0.3, (2, 6)), 0.0)
A_k = np.array([1.0, -1.0])

ratio_k = np.exp(logp_new_k - logp_old_k)  # rho_{i,t}
surrogate = np.minimum(ratio_k * A_k[:, None], np.clip(ratio_k, 1 - eps, 1 + eps) * A_k[:, None])
log_ref_ratio = logp_ref_k - logp_new_k  # log pi_ref / pi_theta
k3 = np.exp(log_ref_ratio) - log_ref_ratio - 1  # D_KL per token
inner = np.where(mask_k, surrogate - beta * k3, 0.0)
J_by_hand = np.mean(inner.sum(axis=1) / mask_k.sum(axis=1))  # 1/N sum_i 1/|o_i| sum_t
options = dict(level="token", aggregation="grpo")
lp = ma.tensor(logp_new_k, requires_grad=True)
loss_kl = grpo_loss(lp, logp_old_k, A_k, eps, mask_k, beta=beta, logp_ref=logp_ref_k, **options)
loss_kl.backward()
lp0 = ma.tensor(logp_new_k, requires_grad=True)
loss_0 = grpo_loss(lp0, logp_old_k, A_k, eps, mask_k, **options)  # the same without the KL term
loss_0.backward()
print(f"-J_GRPO by hand {-J_by_hand:+.6f}   grpo_loss {loss_kl.item():+.6f}")
np.testing.assert_allclose(loss_kl.item(), -J_by_hand, rtol=1e-10)

kl_term = loss_kl.item() - loss_0.item()
per_output_mean = [k3[i][mask_k[i]].mean() for i in range(2)]
per_output_sum = [k3[i][mask_k[i]].sum() for i in range(2)]
print(f"KL term of the loss {kl_term:.6f} = beta x mean over outputs of the mean k3 per token")
print(f"sum of k3 per output (what PPO's beta would multiply): {np.round(per_output_sum, 4)}")
print(f"mean of k3 per output (what GRPO's beta multiplies)  : {np.round(per_output_mean, 4)}")
np.testing.assert_allclose(kl_term, beta * np.mean(per_output_mean), rtol=1e-6)
np.testing.assert_allclose(per_output_mean, np.array(per_output_sum) / [3, 6], rtol=1e-12)
grad_kl = lp.grad - lp0.grad  # d(KL term)/d log pi_theta, per token
expected = beta * (1 - np.exp(log_ref_ratio)) / (2 * mask_k.sum(axis=1, keepdims=True)) * mask_k
print("gradient of the KL term per token:\n", grad_kl)
np.testing.assert_allclose(grad_kl, expected, rtol=1e-6, atol=1e-12)

# %% [markdown]
# A token of the 3-token output carries twice the KL weight of a token of the 6-token output,
# and each output's whole KL term is $\beta$ times a per-token *mean*. So when notebook 06 puts
# PPO's $\beta$ (a per-response sum of $k_1$, in the reward) and GRPO's $\beta$ (a per-token mean
# of $k_3$, in the loss) on one chart, the same number is a different knob: it penalises a
# response about $|o_i|$ times less, and pulls toward the other KL. (TRL's GRPO default is now $\beta = 0$, and so is minialign's;
# the runs of section 10 use it.)
#
# ## 8. One GRPO iteration by hand
#
# `train_grpo` repeats one iteration of three stages (docs/implementation_notes.md, GRPO 1–6):
#
# 1. **Sample groups**: draw prompts, repeat each $N$ times (group members adjacent), sample,
#    and score every output with $r_i = \lambda r_{\rm outcome} + (1-\lambda) r_{\rm process}$.
# 2. **Group advantages**: reshape the rewards to (prompts, $N$) and standardise each row.
# 3. **Update**: $\mu$ gradient steps on the whole batch, each on section 7's
#    $-\mathcal{J}_{\rm GRPO}$ (token ratios, $\beta\,k_3$, per-output token means), then AdamW
#    after clipping the gradient norm to 1.
#
# Here with 4 prompts × 8 outputs, $\lambda = 0.5$, $\beta = 0.04$ and $\mu = 2$ steps, so the
# second step sees a ratio that is no longer 1. Each step's loss is also computed by hand, as in
# section 7, and checked against `grpo_loss`. One generator feeds every random choice in the
# library's order (prompts, then samples).

# %%
config = GRPOConfig(batch_size=32, num_generations=8, epochs=2, learning_rate=3e-4, beta=0.04)
policy = copy.deepcopy(reference).requires_grad_(True)  # theta_old = the reference, to start
optimizer = AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
rng = np.random.default_rng(40)

# 1. sample N outputs for each prompt, no gradient; column t of (B, T-1) belongs to token t+1
prompts_it = np.repeat(task.sample_prompts(config.num_prompts, rng), N, axis=0)  # (4N, P)
with ma.no_grad():
    gen = generate(policy, prompts_it, **GEN, rng=rng)
    tokens, mask, logp_old = gen.tokens, gen.response_mask[:, 1:], gen.logprobs
    logp_ref = sequence_logprobs(reference, tokens, gen.response_mask).per_token.data
r_o, r_p = task.rewards(tokens, tokens, gen.response_mask)
rewards = combined_reward(r_o, r_p, lam)  # (4N,)
# 2. standardise within each group of N adjacent outputs
advantages = group_advantages(rewards.reshape(-1, N)).reshape(-1)  # (4N,)
# 3. mu steps on the whole batch
steps_log = []
for _ in range(config.epochs):  # mu = epochs steps
    logp = sequence_logprobs(policy, tokens, gen.response_mask).per_token  # (4N, T-1)
    loss = grpo_loss(logp, logp_old, advantages, config.epsilon, mask, beta=config.beta,
                     logp_ref=logp_ref, level="token", aggregation="grpo",
                     max_completion_length=sampling.max_new_tokens)
    ratio = ma.exp(logp - logp_old)  # the same loss by hand, term by term
    A_col = advantages[:, None]
    clipped_obj = ma.minimum(ratio * A_col, ma.clip(ratio, 1 - eps, 1 + eps) * A_col)
    log_ref_ratio = logp_ref - logp
    k3_t = ma.exp(log_ref_ratio) - log_ref_ratio - 1
    by_hand = ((-clipped_obj + config.beta * k3_t) * mask).sum(axis=1) / mask.sum(axis=1)
    np.testing.assert_allclose(by_hand.mean().item(), loss.item(), rtol=1e-4, atol=1e-8)
    steps_log.append(dict(loss=loss.item(), kl=(k3_t.data * mask).sum() / mask.sum(),
                          ratio_dev=np.abs(ratio.data - 1)[mask].max()))
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm(policy.parameters(), config.max_grad_norm)
    optimizer.step()
print(f"{len(rewards)} outputs, mean reward {rewards.mean():.3f}, "
      f"groups with equal rewards {frac_zero_std_groups(rewards.reshape(-1, N)):.2f}")
print(f"{'step':>4}{'loss':>12}{'mean k3/token':>15}{'max |rho - 1|':>15}")
for i, s in enumerate(steps_log):
    print(f"{i:4d}{s['loss']:+12.2e}{s['kl']:15.2e}{s['ratio_dev']:15.2e}")
assert steps_log[0]["kl"] == 0.0 and steps_log[0]["ratio_dev"] < 1e-5  # policy = ref = old
assert abs(steps_log[0]["loss"]) < 1e-6  # centred advantages at ratio 1 (section 11)
assert steps_log[1]["kl"] > 0 and steps_log[1]["ratio_dev"] > 1e-3

# %% [markdown]
# And one seeded `grpo_iteration` (`minialign.train.grpo`) from a fresh copy of the same start,
# with a generator in the same state and the same reward:

# %%
policy_lib = copy.deepcopy(reference).requires_grad_(True)
optimizer_lib = AdamW(policy_lib.parameters(), lr=config.learning_rate, weight_decay=0.0)
grpo_iteration(policy_lib, reference, optimizer_lib, arithmetic_reward_fn(task, lam),
               task.sample_prompts, sampling, config, np.random.default_rng(40))
triples = list(zip(policy.parameters(), policy_lib.parameters(), reference.parameters()))
bitwise = all(np.array_equal(p.data, q.data) for p, q, _ in triples)
moved = max(np.abs(p.data - s.data).max() for p, _, s in triples)
print(f"bitwise equal to grpo_iteration's: {bitwise}; largest change in the iteration {moved:.2e}")
assert bitwise and moved > 1e-5

# %% [markdown]
# Bitwise equal: the same float32 operations in the same order (one BLAS thread fixes the order
# of every sum). The log shows the first step at ratio 1 with a zero KL term (the policy *is*
# the reference and the sampler), so the loss is $-\frac1N\sum_i A_i = 0$ up to rounding even
# though the gradient is not (section 11); on the second step the ratio has moved and $k_3$ is
# no longer 0. The hand-written loss matches `grpo_loss` to float32 rounding (`expm1` versus
# `exp(x) - 1` inside $k_3$, and a different order of the sums); the step itself uses
# `grpo_loss`'s gradient, which is why the parameters agree bit for bit.
#
# ## 9. A right answer with a bogus trace
#
# The outcome reward checks only the final line, so it pays the same for `7+3=10;10+2=12;a12`
# and for an answer that reaches 12 through nonsense. `hacked_response` writes such answers: one
# or two false, unconnected steps, then the right result. The process reward sees through them:

# %%
rng = np.random.default_rng(0)
examples = {
    "correct trace": correct_trace(problem),
    "bogus trace, right answer": hacked_response(problem, rng),
    "no work, right answer": corrupted_trace(problem, "skip", rng),
    "good steps, wrong answer": corrupted_trace(problem, "wrong_answer", rng),
}
print(f"{'':27}{'response':22}{'outcome':>8}{'process':>9}{'r (lam=1)':>10}{'r (lam=0.5)':>12}")
for name, text in examples.items():
    o, p = score(problem, text)
    print(f"{name:27}{text:22}{o:8.0f}{p:9.3f}{combined_reward(o, p, 1.0):10.2f}"
          f"{combined_reward(o, p, 0.5):12.2f}")
assert score(problem, examples["bogus trace, right answer"]) == (1.0, 0.0)

# %% [markdown]
# Put one in a group of four answers to the same problem: two sound traces, the hack, and sound
# steps that end on a wrong answer. (A group built by hand, so the point does not depend on what
# the reference happens to sample.) The hack's advantage, with and without the process reward:

# %%
group = [
    examples["correct trace"],
    examples["bogus trace, right answer"],
    examples["correct trace"],
    examples["good steps, wrong answer"],
]
r_o_group, r_p_group = map(np.array, zip(*(score(problem, text) for text in group)))
for lam_ in (1.0, 0.5):
    A_ = group_advantages(combined_reward(r_o_group, r_p_group, lam_))
    print(f"lam = {lam_}: A = {np.round(A_, 2)}   (hack, output 1: {A_[1]:+.2f})")
assert (
    group_advantages(r_o_group)[1]
    > 0
    > group_advantages(combined_reward(r_o_group, r_p_group, 0.5))[1]
)

# %% [markdown]
# With outcome only, the hack is reinforced exactly as much as real work. With $\lambda = 0.5$ its
# advantage turns negative: it is now worse than the group's average.
#
# ## 10. A short GRPO run: outcome only, or outcome and process
#
# Two runs from the same reference and the same seed, 60 iterations of 16 prompts × 8 samples
# (30 in the browser site, where Python runs several times slower; the checks below hold for both),
# learning rate $3\cdot10^{-4}$, token-level ratios, `"bnpo"` aggregation, one gradient step per
# batch (so the ratio is 1 when the loss is computed), $\beta = 0$ (no KL term). The reward is the
# task's exact outcome/process reward (`arithmetic_reward_fn`), so there is no reward model to
# fool; the only question is what each reward teaches.

# %%
STEPS = 30 if sys.platform == "emscripten" else 60  # emscripten: Pyodide, in the browser site
runs = {}
for lam_ in (1.0, 0.5):
    policy = copy.deepcopy(reference).requires_grad_(True)
    config = GRPOConfig(steps=STEPS, num_generations=8, batch_size=128, learning_rate=3e-4,
                        loss_type="bnpo")
    h = train_grpo(policy, reference, arithmetic_reward_fn(task, lam_), task.sample_prompts,
                   sampling, config, rng=np.random.default_rng(0), progress=False)
    runs[lam_] = (policy, h)
    print(f"lam = {lam_}: training-batch accuracy "
          f"{h['reward_outcome'][:5].mean():.2f} -> {h['reward_outcome'][-5:].mean():.2f}, process "
          f"{h['reward_process'][:5].mean():.2f} -> {h['reward_process'][-5:].mean():.2f}")
    for key in ("reward_outcome", "reward_process"):  # both runs raise both
        assert h[key][-5:].mean() > h[key][:5].mean() + 0.1, (lam_, key)
plot_history_grid({rf"$\lambda$ = {lam_}": h for lam_, (_, h) in runs.items()}, [
    ("reward_outcome", "Accuracy (outcome reward)", "accuracy"),
    ("reward_process", "Process reward", "process reward"),
    ("frac_zero_std", "Groups with equal rewards (no signal)", "share of groups"),
], ncols=3, smooth=5)
plt.show()

# %% [markdown]
# Both runs raise accuracy and process reward: on this task most right answers come with right
# steps, so rewarding the answer also rewards the steps on average. The curves are from the
# training batches, so they are noisy. A held-out check on 512 fresh problems counts what the
# outcome reward cannot see, right answers reached with unsound steps:

# %%
held_out = task.sample_prompts(512, np.random.default_rng(100))


def measure(model):
    g = generate(model, held_out, **GEN, rng=np.random.default_rng(101))
    o, p = task.rewards(g.tokens, g.tokens, g.response_mask)
    return o.mean(), p.mean(), np.mean((o == 1) & (p < 1))


print(f"{'':14}{'accuracy':>9}{'process':>9}{'right answer, unsound steps':>29}")
results = {"reference": measure(reference)}
results.update({f"GRPO lam={lam_}": measure(policy) for lam_, (policy, _) in runs.items()})
for name, (acc, proc, hack) in results.items():
    print(f"{name:14}{acc:9.3f}{proc:9.3f}{hack:29.3f}")
for lam_ in (1.0, 0.5):  # both improve by a wide margin, and cut the unsound-but-right answers
    assert results[f"GRPO lam={lam_}"][0] > results["reference"][0] + 0.1
    assert results[f"GRPO lam={lam_}"][2] < results["reference"][2]
assert results["GRPO lam=0.5"][2] < results["GRPO lam=1.0"][2]  # the process term cuts them more

# %% [markdown]
# Both GRPO runs improve on the reference by a wide margin. With $\lambda = 0.5$ the unsound-but-right
# answers, which the outcome reward pays in full, are pushed down faster; with outcome only they
# shrink only because sound traces happen to be right more often. On a real model with a real
# grader the gap can be much larger: nothing forces an outcome-only policy to keep honest steps.
#
# ## 11. Why the GRPO loss stays near 0 while it learns
#
# The loss curve of a GRPO run looks like nothing is happening:

# %%
_, h = runs[0.5]
plot_history_grid(h, [("loss", "GRPO loss (minimised)", "loss"),
                      ("reward", r"Mean reward of the rollouts, $\lambda$ = 0.5", "reward")],
                  smooth=5)
plt.show()
assert np.mean(h["loss"] < 0) > 0.5  # mostly negative: the better answers tend to be longer

# %% [markdown]
# With one gradient step per batch the ratio is exactly 1 when the loss is computed, so each
# output contributes $-A_i$ (the clip cannot bind). The advantages are centred in every group, so
# averaged per output (`"grpo"` at the sequence level) the loss is exactly 0, and with `"bnpo"` it
# is the length-weighted mean $-\sum_i A_i |o_i| / \sum_i |o_i|$: not 0, but small, and its sign
# only says whether the better answers were longer or shorter (here mostly negative: a full
# trace is longer than a bare `a11`). The **gradient** is not zero: it is
# $-\sum_i A_i \nabla\log\pi_\theta(o_i)$, the policy gradient. On one fresh batch:

# %%
policy = runs[0.5][0]
ro = collect_rollout(policy, reference, arithmetic_reward_fn(task, 0.5),
                     np.repeat(task.sample_prompts(16, np.random.default_rng(7)), 8, axis=0),
                     sampling, np.random.default_rng(8))
A_batch = group_advantages(ro.scores.reshape(16, 8)).reshape(-1)  # (128,), groups adjacent
lengths_b = ro.mask.sum(axis=1)  # |o_i|
for level, aggregation in (("sequence", "grpo"), ("token", "bnpo")):
    policy.zero_grad()
    logp, _ = policy_logprobs(policy, ro.tokens, ro.response_mask, 1.0)
    loss = grpo_loss(logp, ro.logp_old, A_batch, eps, ro.mask, level=level, aggregation=aggregation)
    loss.backward()
    grad_norm = np.sqrt(sum((p.grad**2).sum() for p in policy.parameters() if p.grad is not None))
    print(f"{level:>8} / {aggregation:<5} loss = {loss.item():+.2e}, gradient norm = {grad_norm:.3f}")
    if aggregation == "grpo":  # -mean(A_i): exactly 0 up to rounding
        np.testing.assert_allclose(loss.item(), -A_batch.mean(), atol=1e-6)
        assert abs(loss.item()) < 1e-5 and grad_norm > 1e-2
    else:  # the length-weighted mean of -A_i
        np.testing.assert_allclose(loss.item(), -(A_batch * lengths_b).sum() / lengths_b.sum(),
                                   rtol=1e-4, atol=1e-6)

# %% [markdown]
# (The two gradient norms differ because of the per-token weights of sections 5 and 6; Adam is
# nearly blind to such a constant scale.) So watch the reward, the accuracy and `frac_zero_std`,
# not the loss. With a KL term, $\beta > 0$, the loss is about $\beta$ times the mean $k_3$ per
# token and rises as the policy drifts (section 8's second step), which looks even more
# alarming and is just as harmless.
#
# ## 12. Exercises
#
# Each exercise cell starts out calling the library, so the notebook runs as committed (and CI
# stays green); replace that line with your own code, and the cell after it checks your version
# against the library.
#
# **Exercise 1 (implement it): group advantages for a batch.** Write `my_group_advantages` for
# rewards of shape (prompts, $N$), one group per row: $(r_i - \mu)/\sigma$ with the population
# $\sigma$ of each row, and exactly 0 for a group whose rewards are all equal (no NaN, no
# warning).


# %%
def my_group_advantages(rewards):
    """(n, N) rewards, one group per row -> (n, N) advantages; equal groups give exactly 0."""
    # Your code here: replace the next line.
    return group_advantages(rewards)


# %%
rng = np.random.default_rng(6)
cases = np.array([rng.normal(size=N), np.ones(N), np.eye(N)[3], rng.integers(0, 2, N),
                  np.full(N, 0.25)], dtype=float)  # includes two equal-reward groups
A_mine = my_group_advantages(cases)
np.testing.assert_allclose(A_mine, group_advantages(cases), rtol=1e-6, atol=1e-12)
assert (A_mine[1] == 0).all() and (A_mine[4] == 0).all()
print("my_group_advantages agrees with objectives.group_advantages")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_group_advantages(rewards):
#     r = np.asarray(rewards, dtype=float)
#     mu = r.mean(axis=-1, keepdims=True)
#     sigma = r.std(axis=-1, keepdims=True)  # ddof=0: the population sigma, 1/N
#     equal = r.max(axis=-1, keepdims=True) == r.min(axis=-1, keepdims=True)
#     return np.where(equal, 0.0, (r - mu) / np.where(equal, 1.0, sigma))
# ```
#
# Test the rewards for equality rather than $\sigma = 0$: the float $\sigma$ of eight equal
# rewards such as 0.25 can come out as a tiny non-zero number, and dividing by it turns
# rounding noise into advantages of $\pm 1$. Dividing by 1 where the group is equal keeps the
# NaN (and its warning) out of the arithmetic altogether.
#
# </details>
#
# **Exercise 2 (find the bug).** This is section 7's $-\mathcal{J}_{\rm GRPO}$ written in NumPy,
# with one bug. It agrees with `grpo_loss` whenever $\beta = 0$, and whenever the policy equals
# the reference. Find the bug, explain what the wrong term does to the gradient, and write
# `fixed_grpo_loss`.

# %%
def buggy_grpo_loss(logp_new, logp_old, logp_ref, advantages, epsilon, beta, mask):
    ratio = np.exp(logp_new - logp_old)
    A = advantages[:, None]
    surrogate = np.minimum(ratio * A, np.clip(ratio, 1 - epsilon, 1 + epsilon) * A)
    log_ratio = logp_new - logp_ref
    k3 = np.exp(log_ratio) - log_ratio - 1
    per_token = np.where(mask, -surrogate + beta * k3, 0.0)
    return np.mean(per_token.sum(axis=1) / mask.sum(axis=1))


def fixed_grpo_loss(logp_new, logp_old, logp_ref, advantages, epsilon, beta, mask):
    # Your code here: replace the next line with a corrected copy of buggy_grpo_loss.
    return grpo_loss(logp_new, logp_old, advantages, epsilon, mask, beta=beta, logp_ref=logp_ref,
                     level="token", aggregation="grpo").item()


# %%
def library(logp_new, logp_old, logp_ref, advantages, epsilon, beta, mask):
    return grpo_loss(logp_new, logp_old, advantages, epsilon, mask, beta=beta, logp_ref=logp_ref,
                     level="token", aggregation="grpo").item()


section7 = (logp_new_k, logp_old_k, logp_ref_k, A_k, eps)  # section 7's two outputs
for name, beta_ in (("beta = 0", 0.0), ("beta = 0.04", 0.04)):
    args = (*section7, beta_, mask_k)
    print(f"{name:12}: library {library(*args):+.6f}  buggy {buggy_grpo_loss(*args):+.6f}"
          f"  yours {fixed_grpo_loss(*args):+.6f}")
    np.testing.assert_allclose(fixed_grpo_loss(*args), library(*args), rtol=1e-10)
np.testing.assert_allclose(buggy_grpo_loss(*section7, 0.0, mask_k),
                           library(*section7, 0.0, mask_k), rtol=1e-10)
assert not np.isclose(buggy_grpo_loss(*section7, 0.04, mask_k), library(*section7, 0.04, mask_k))

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# The log-ratio inside $k_3$ points the wrong way: $k_3$ needs
# $\log(\pi_{\rm ref}/\pi_\theta)$ = `logp_ref - logp_new`. The flipped term
# $(\pi_\theta/\pi_{\rm ref} - 1) - \log(\pi_\theta/\pi_{\rm ref})$ is still $\ge 0$ per token, so
# it looks plausible in a log, but with samples from $\pi_\theta$ its expectation is not a KL,
# and its gradient per token, $\pi_\theta/\pi_{\rm ref} - 1$, grows without bound wherever the
# policy has raised a token far above the reference (the right one, $1 - \pi_{\rm ref}/\pi_\theta$,
# never exceeds 1).
#
# ```python
# def fixed_grpo_loss(logp_new, logp_old, logp_ref, advantages, epsilon, beta, mask):
#     ratio = np.exp(logp_new - logp_old)
#     A = advantages[:, None]
#     surrogate = np.minimum(ratio * A, np.clip(ratio, 1 - epsilon, 1 + epsilon) * A)
#     log_ratio = logp_ref - logp_new  # log pi_ref / pi_theta
#     k3 = np.exp(log_ratio) - log_ratio - 1
#     per_token = np.where(mask, -surrogate + beta * k3, 0.0)
#     return np.mean(per_token.sum(axis=1) / mask.sum(axis=1))
# ```
#
# </details>
#
# **Exercise 3 (predict, then run).** Keep the $\lambda = 0.5$ run's budget of 128 samples per iteration, but split it as 64 prompts ×
# groups of 2 instead of 16 × 8. Predict what happens to the share of groups with equal rewards
# and to the final accuracy, then run it.
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# pairs_policy = copy.deepcopy(reference).train().requires_grad_(True)
# h2 = train_grpo(pairs_policy, reference, arithmetic_reward_fn(task, 0.5), task.sample_prompts,
#                 sampling, GRPOConfig(steps=60, num_generations=2, batch_size=128,
#                                      learning_rate=3e-4, loss_type="bnpo"),
#                 rng=np.random.default_rng(0), progress=False)
# for name, hist, model in (("groups of 2", h2, pairs_policy),
#                           ("groups of 8", runs[0.5][1], runs[0.5][0])):
#     zero = hist["frac_zero_std"]
#     acc, proc, _ = measure(model)
#     print(f"{name}: no-signal groups {zero[:5].mean():.2f} -> {zero[-5:].mean():.2f}; "
#           f"held-out accuracy {acc:.3f}, process {proc:.3f}")
# ```
#
# Two samples agree far more often than eight do: from the start a large share of the pairs
# carry no signal, against almost none of the groups of 8, and by the end most pairs are wasted.
# A group of 2 can also only say which of its two answers is better ($A = \pm 1$). Yet the run
# still learns about as well: it sees four times as many prompts per iteration, and the pairs
# that do disagree are exactly the informative ones. A larger group gives a better baseline;
# more prompts per batch give more variety; on this easy task the two roughly cancel. (At the
# time of writing: no-signal pairs 0.42 -> 0.73 against 0.01 -> 0.31 for groups of 8; held-out
# accuracy 0.93 against 0.91, a gap within the run-to-run noise of one seed.)
#
# </details>
#
# ## 13. Recap
#
# The equations, in the order one iteration uses them:
#
# | | |
# |---|---|
# | reward | $r_i = \lambda\,r_{\rm outcome}(o_i, x) + (1-\lambda)\,r_{\rm process}(\tau_i, x)$, $\tau_i$ the model's own trace |
# | group advantage | $A_i = (r_i - \mu)/\sigma$, $\mu$ and population $\sigma$ of the group; 0 if all $r_i$ are equal |
# | ratio | $\rho_i = \pi_\theta(o_i\mid x)/\pi_{\theta_{\rm old}}(o_i\mid x)$, or one $\rho_{i,t}$ per token |
# | objective (maximised) | $L^{\rm GRPO} = \mathbb{E}_i[\min(\rho_i A_i,\ \mathrm{clip}(\rho_i, 1\pm\epsilon)A_i)]$ |
# | DeepSeekMath | $\mathcal{J}_{\rm GRPO} = \frac1N\sum_i \frac1{\lvert o_i\rvert}\sum_t \{\min(\rho_{i,t}A_i,\ \mathrm{clip}(\rho_{i,t}, 1\pm\epsilon)A_i) - \beta\,k_{3,i,t}\}$ |
#
# What to remember:
#
# 1. The group is the baseline: the advantages of a group sum to zero, outputs above the
#    group's mean go up and those below go down, and no value model is needed.
# 2. A group of equal rewards must give $A = 0$ exactly and teaches nothing; a tiny $\sigma$
#    blows noise up to full-size advantages.
# 3. A sequence ratio is a product of token ratios and leaves the clip range on long outputs;
#    per-output token means (`"grpo"`) weigh a long output's tokens less than a short one's.
# 4. GRPO's $\beta\,k_3$ sits in the loss, averaged per token, and pulls toward the forward KL:
#    it is not PPO's $\beta$, which weighs $k_1$ summed over the response inside the reward.
# 5. With one step per batch the ratio is 1, the clip never binds and the loss hovers near 0
#    while the policy learns: watch the reward, not the loss.
