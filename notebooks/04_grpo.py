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
# every GRPO equation of the seed document on a task where answers can be checked exactly:
# single-digit sums solved step by step (`7+5=` → `7+3=10;10+2=12;a12`). You will compute the
# mixed outcome/process reward, the group-normalised advantage, the ratio and the GRPO objective by
# hand and through `minialign.objectives`; see what goes wrong when a group's rewards are all equal,
# why the ratio level and the loss aggregation matter, and how a process reward catches an answer
# that is right for the wrong reasons. Then two short GRPO runs compare outcome-only and mixed
# rewards.
#
# Runtime: about 10 seconds on a laptop CPU (2 cores), fully seeded.
#
# 1. Outcome and process rewards
# 2. Group-relative advantages
# 3. When every reward in a group is equal
# 4. The ratio and the GRPO objective
# 5. Sequence-level and token-level ratios
# 6. The length bias of the loss aggregation
# 7. A right answer with a bogus trace
# 8. A short GRPO run: outcome only, or outcome and process
# 9. Why the GRPO loss stays near 0 while it learns
# 10. Try this

# %%
import copy
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
from minialign.nn import generate
from minialign.objectives import (
    combined_reward,
    frac_zero_std_groups,
    group_advantages,
    grpo_loss,
)
from minialign.plots import plot_history
from minialign.pretrained import load_reference, make_task
from minialign.tasks import correct_trace, corrupted_trace, hacked_response, score
from minialign.train import GRPOConfig, Sampling, arithmetic_reward_fn, collect_rollout, train_grpo
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
# progress; the answer line counts as one more step; see `minialign.tasks.arithmetic`). The seed
# mixes them with a weight $\lambda$:
#
# $$r_i = \lambda\,r_{\rm outcome}(o_i, x) + (1 - \lambda)\,r_{\rm process}(\tau_i, x)$$
#
# Here $o_i$ is the $i$-th sampled output for prompt $x$ and $\tau_i$ its reasoning trace. (The
# seed's prose calls the trace $\mu_i$ once; the equation's $\tau_i$ is the one we use, as $\mu$
# is about to mean the group mean.) A group of $N = 8$ answers from the shipped reference model
# to `7+5=`:

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

# %% [markdown]
# The last column sorts the outputs. The outcome reward gives every wrong answer 0, while the
# mixed reward gives partial credit to a wrong answer reached through some sound steps and ranks
# it above a wrong answer with none. Conversely, an answer that is right for the wrong reasons
# (outcome 1, unsound steps) gets full marks from the outcome reward alone, exactly like a sound
# one; only the process term tells them apart. Whether such a hack turns up in a group of 8 is
# luck, so section 7 builds one by hand.
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
sigma = np.sqrt(((r - mu) ** 2).sum() / N)  # 1/N, as the seed writes it (not 1/(N-1))
A_by_hand = (r - mu) / sigma
print(f"mu = {mu:.4f}, sigma = {sigma:.4f}")
print("A_i by hand            :", A_by_hand)
A = group_advantages(r)
print("objectives.group_advantages:", A)
np.testing.assert_allclose(A, A_by_hand, rtol=1e-6)  # the library adds eps = 1e-8 to sigma
np.testing.assert_allclose([A.mean(), (A**2).mean()], [0.0, 1.0], atol=1e-6)

# %% [markdown]
# The advantages have mean 0 and mean square 1 in every group: half the outputs are pushed up,
# half down, whatever the absolute reward level. Note the choice of $\sigma$: TRL divides by
# $N - 1$ (Bessel), which shrinks every advantage by $\sqrt{(N-1)/N}$ (`ddof=1`). A batch holds
# many groups, one per row; normalisation happens within each row only:

# %%
batch = np.array([[1.0, 0.0, 0.5, 0.5], [0.9, 0.8, 0.85, 0.8]])  # 2 prompts x N = 4
print(group_advantages(batch))
print("Bessel (ddof=1):", group_advantages(batch, ddof=1)[0])
np.testing.assert_allclose(group_advantages(batch)[1], group_advantages(batch[1:])[0])
np.testing.assert_allclose(group_advantages(batch, ddof=1), group_advantages(batch) * np.sqrt(3 / 4),
                           rtol=1e-6)  # fmt: skip

# %% [markdown]
# Both rows get the same spread of advantages even though the second group's rewards differ by
# at most 0.1: dividing by $\sigma$ makes GRPO blind to how big the differences are (Dr. GRPO,
# below, drops the division for that reason).
#
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
# more groups are all right and teach nothing, so each batch carries less signal (section 8
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
# Unlike the seed's $L^{\text{CLIP}}$, this has no leading minus: it is an objective to
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
          f"  {status[i]}")  # fmt: skip
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
# The seed's $\rho_i$ compares the probabilities of whole outputs. An output's probability is the
# product of its token probabilities, so $\rho_i$ is the **product of the token ratios**:
# $\log\rho_i = \sum_t (\log\pi_\theta(y_t) - \log\pi_{\theta_{\rm old}}(y_t))$. Small per-token
# changes compound with length. DeepSeekMath and TRL use one ratio **per token** instead, each
# clipped on its own (`level="token"`; `level="sequence"` is the seed's).

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
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(lengths, outside, label=r"sequence ratio $\rho_i$ (seed)")
ax.axhline(outside_tok, color="tab:orange", label="token ratios (DeepSeekMath, TRL)")
ax.set_xlabel("output length (tokens)")
ax.set_ylabel(r"share with $|\rho - 1| > \epsilon$")
ax.set_title(r"Per-token log-ratio drift N(0, 0.03$^2$): the sequence ratio leaves the clip range")
ax.legend()
ax.grid(alpha=0.3)
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
          f" on the 12-token output {lp.grad[1, 0]:+.4f}")  # fmt: skip
print(f"sequence ratios: {1.05**3:.3f} (inside the clip) and {1.05**12:.3f} (clipped: no gradient)")

# %% [markdown]
# At the sequence level the short output's tokens get a larger gradient each, since every one of
# them moves the whole $\rho_i$; the long output gets none at all. Per-token ratios treat both
# alike.
#
# (TRL's `importance_sampling_level="sequence"` is GSPO's *length-normalised* ratio, the geometric
# mean of the token ratios, which avoids this blow-up; minialign's is the seed's plain product.)
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
                     aggregation=aggregation, max_completion_length=L_max)  # fmt: skip
    loss.backward()
    weight = np.abs(lp.grad[:, 0])  # |d loss / d log pi(y_0)| = weight x |A| (ratio 1)
    np.testing.assert_allclose(weight, w, rtol=1e-6)
    print(f"{aggregation:>12}{weight[0]:20.4f}{weight[1]:19.4f}{weight[1] * 12:12.3f}")

# %% [markdown]
# Under `"grpo"` each token of the long wrong answer is pushed down 4 times less than each token
# of the short right answer is pushed up; `"bnpo"` and `"dr_grpo"` treat every token alike. (At
# the sequence level with `"grpo"` the loss is exactly the seed's $\mathbb{E}_i$ over outputs.)
# minialign's `train_grpo` defaults to `"grpo"`; the runs below use `"bnpo"`.
#
# ## 7. A right answer with a bogus trace
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
          f"{combined_reward(o, p, 0.5):12.2f}")  # fmt: skip
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
# ## 8. A short GRPO run: outcome only, or outcome and process
#
# Two runs from the same reference and the same seed, 60 iterations of 16 prompts × 8 samples,
# learning rate $3\cdot10^{-4}$, token-level ratios, `"bnpo"` aggregation, one gradient step per
# batch (so the ratio is 1 when the loss is computed), $\beta = 0$ (no KL term). The reward is the
# task's exact outcome/process reward (`arithmetic_reward_fn`), so there is no reward model to
# fool; the only question is what each reward teaches.

# %%
runs = {}
for lam_ in (1.0, 0.5):
    policy = copy.deepcopy(reference).train().requires_grad_(True)
    config = GRPOConfig(steps=60, num_generations=8, batch_size=128, learning_rate=3e-4,
                        loss_type="bnpo")  # fmt: skip
    runs[lam_] = (policy, train_grpo(
        policy, reference, arithmetic_reward_fn(task, lam_), task.sample_prompts, sampling,
        config, rng=np.random.default_rng(0), progress=False,
    ))  # fmt: skip
    h = runs[lam_][1]
    print(f"lam = {lam_}: {h.last('seconds'):.1f} s; training-batch accuracy "
          f"{h['reward_outcome'][:5].mean():.2f} -> {h['reward_outcome'][-5:].mean():.2f}, process "
          f"{h['reward_process'][:5].mean():.2f} -> {h['reward_process'][-5:].mean():.2f}")  # fmt: skip
    for key in ("reward_outcome", "reward_process"):  # both runs raise both
        assert h[key][-5:].mean() > h[key][:5].mean() + 0.1, (lam_, key)

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for key, ax, title in [("reward_outcome", axes[0], "Accuracy (outcome reward)"),
                       ("reward_process", axes[1], "Process reward"),
                       ("frac_zero_std", axes[2], "Groups with equal rewards (no signal)")]:  # fmt: skip
    for lam_, (_, h) in runs.items():
        plot_history({"step": h.steps(key), rf"$\lambda$ = {lam_}": h[key]},
                     rf"$\lambda$ = {lam_}", ax=ax, smooth=5, title=title, ylabel=key)  # fmt: skip
    ax.set_xlabel("iteration")
plt.tight_layout()
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
# ## 9. Why the GRPO loss stays near 0 while it learns
#
# The loss curve of a GRPO run looks like nothing is happening:

# %%
_, h = runs[0.5]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
plot_history(h, "loss", ax=axes[0], title="GRPO loss (minimised)", ylabel="loss")
plot_history(h, "reward", ax=axes[1], title=r"Mean reward of the rollouts, $\lambda$ = 0.5",
             ylabel="reward", smooth=5)  # fmt: skip
plt.tight_layout()
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
                     sampling, np.random.default_rng(8))  # fmt: skip
A_batch = group_advantages(ro.scores.reshape(16, 8)).reshape(-1)  # (128,), groups adjacent
lengths_b = ro.mask.sum(axis=1)  # |o_i|
for level, aggregation in (("sequence", "grpo"), ("token", "bnpo")):
    policy.zero_grad()
    logp, _ = policy_logprobs(policy, ro.tokens, ro.response_mask, 1.0)
    loss = grpo_loss(logp, ro.logp_old, A_batch, eps, ro.mask, level=level, aggregation=aggregation)
    loss.backward()
    grad_norm = np.sqrt(sum((p.grad**2).sum() for p in policy.parameters() if p.grad is not None))
    print(
        f"{level:>8} / {aggregation:<5} loss = {loss.item():+.2e}, gradient norm = {grad_norm:.3f}"
    )
    if aggregation == "grpo":  # -mean(A_i): exactly 0 up to rounding
        np.testing.assert_allclose(loss.item(), -A_batch.mean(), atol=1e-6)
        assert abs(loss.item()) < 1e-5 and grad_norm > 1e-2
    else:  # the length-weighted mean of -A_i
        np.testing.assert_allclose(loss.item(), -(A_batch * lengths_b).sum() / lengths_b.sum(),
                                   rtol=1e-4, atol=1e-6)  # fmt: skip

# %% [markdown]
# (The two gradient norms differ because of the per-token weights of sections 5 and 6; Adam is
# nearly blind to such a constant scale.) So watch the reward, the accuracy and `frac_zero_std`,
# not the loss. (With a KL term,
# $\beta > 0$, the loss is about $\beta$ times the KL and rises as the policy drifts, which looks
# even more alarming and is just as harmless.)
#
# ## 10. Try this
#
# Keep the $\lambda = 0.5$ run's budget of 128 samples per iteration, but split it as 64 prompts ×
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
