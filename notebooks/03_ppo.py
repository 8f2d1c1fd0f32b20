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
# # 03 · PPO: the clipped policy gradient behind RLHF
#
# Once a reward model $r_\phi(x, y)$ exists, RLHF treats the language model as a policy and
# pushes it toward responses that score well, with Proximal Policy Optimization. This notebook
# takes every PPO equation of the seed document in order: the objective $J(\theta)$, rollouts
# from the policy, the Monte-Carlo advantage $\hat{A}_t$ and its practical cousin GAE, the
# probability ratio, the clipped loss $L^{\text{CLIP}}$ and the KL-penalised objective. Each one
# is computed by hand on small numbers, then through `minialign.objectives`, with an `assert`
# that the two agree. Then a full PPO run on the sentiment task, the implementation details
# that make it work, and two things that puzzle everyone the first time.
#
# Runtime: about 10 seconds on a laptop CPU (2 cores), fully seeded.
#
# 1. The objective $J(\theta)$
# 2. Rollouts: sampling responses and their log-probabilities
# 3. Returns and advantages
# 4. Generalised advantage estimation
# 5. The probability ratio
# 6. The clipped objective
# 7. The KL-penalised reward
# 8. A full PPO run
# 9. Implementation details, and where they live
# 10. Two things that confuse everyone
# 11. Try this

# %%
import copy
import dataclasses
import inspect
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
from minialign.nn import RewardModel, ValueModel, generate, sequence_logprobs
from minialign.objectives import (
    categorical_kl,
    clip_fraction,
    discounted_returns,
    gae_advantages,
    kl_penalized_rewards,
    kl_penalty,
    kl_regularized_objective,
    mc_advantages,
    ppo_clip_loss,
    probability_ratio,
)
from minialign.plots import plot_history
from minialign.pretrained import load_reference, make_task
from minialign.train import (
    PPOConfig,
    RewardConfig,
    Sampling,
    collect_rollout,
    make_eval_fn,
    ppo_iteration,
    reward_fn,
    train_ppo,
    train_reward_model,
)
from minialign.train.rollout import policy_logprobs, truncated_rows

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The objective $J(\theta)$
#
# The policy $\pi_\theta$ writes a response one token at a time. Read each step as a state
# $x_t$ (the prompt and the tokens so far) and an action $y_t$ (the next token), with a reward
# $r_\phi(x_t, y_t)$ per step. PPO maximises the expected discounted sum of those rewards:
#
# $$J(\theta) \;=\; \mathbb{E}_{x,y\sim\pi_\theta}\Big[\sum_{t=0}^T \gamma^t\,r_\phi(x_t,y_t)\Big]$$
#
# In RLHF the reward model scores only the finished response, so every step's reward is 0
# except the last one, and $\gamma = 1$ is the usual choice. Inside the expectation, for one
# response of four tokens whose score $0.8$ lands on the last token:

# %%
rewards = np.array([0.0, 0.0, 0.0, 0.8])  # r_phi(x_t, y_t) for t = 0..3
gamma = 0.9
by_hand = sum(gamma**t * r for t, r in enumerate(rewards))  # 0.9^3 * 0.8
print(f"sum_t gamma^t r_t = {by_hand:.4f}")
G = discounted_returns(rewards[None], gamma)  # (1, T): the reward-to-go from every t
print("discounted_returns:", G[0], "-> its t = 0 entry is the sum above")
np.testing.assert_allclose(G[0, 0], by_hand, rtol=1e-12)

# %% [markdown]
# The expectation is over prompts $x$ and responses $y \sim \pi_\theta$, so we estimate it by
# sampling. With $\gamma = 1$ and only a final score, $J$ is the mean score of sampled
# responses. Here is $J$ of the shipped sentiment reference model under the task's *true*
# reward (the mean valence of the words, see `minialign.tasks.sentiment`), from 512 samples:

# %%
task = make_task("sentiment")
tok = task.tokenizer
reference = load_reference("sentiment")
sampling = Sampling.for_task(task)  # up to 12 new tokens, END stops, PAD fills the rest
GEN = dict(max_new_tokens=sampling.max_new_tokens, stop_token=tok.end_id, pad_id=tok.pad_id)

prompts = task.sample_prompts(512, np.random.default_rng(1))
gen = generate(reference, prompts, **GEN, rng=np.random.default_rng(2))
scores = task.true_reward(gen.tokens, gen.response_mask)
print(f"J(reference) ~ {scores.mean():+.3f} +- {scores.std() / np.sqrt(len(scores)):.3f}")

# %% [markdown]
# Near zero: the reference was pre-trained on a mix of positive and negative reviews. PPO's job
# is to raise this number.
#
# ## 2. Rollouts: sampling responses and their log-probabilities
#
# A PPO iteration starts with a **rollout**: sample responses from the current policy (called
# $\pi_{\theta_{\rm old}}$ from now on, because it is frozen while the batch is used) and keep the
# log-probability of every sampled token. `generate` returns three aligned arrays:

# %%
few = generate(reference, prompts[:4], **GEN, rng=np.random.default_rng(3))
for text, prompt, r in zip(
    tok.decode_batch(few.tokens, few.response_mask),
    tok.decode_batch(few.tokens[:, : few.prompt_length]),
    task.true_reward(few.tokens, few.response_mask),
):
    print(f"{prompt:>16} | {text:45s} true r = {r:+.2f}")
print("tokens", few.tokens.shape, " response_mask", few.response_mask.shape,
      " logprobs", few.logprobs.shape)  # fmt: skip

# %% [markdown]
# The first of these rows that ended with END, position by position. `logprobs` has one column
# fewer: its column $t$ holds
# $\log\pi(\text{token}_{t+1} \mid \text{tokens}_{\le t})$, the prediction made *at* position $t$.
# The prompt is never scored, the END token is (the policy chose to stop), and padding after END
# has mask 0 and log-prob 0:

# %%
ended = [i for i in range(len(few.tokens)) if tok.end_id in few.tokens[i][few.response_mask[i]]]
row = ended[0]  # a row where the policy chose to stop (assert: there is one)
print(f"row {row}:")
print(f"{'t':>3} {'token':>8} {'resp_mask':>9} {'log pi(token_t | <t)':>22}")
for t in range(few.tokens.shape[1]):
    lp = few.logprobs[row, t - 1] if t > 0 else float("nan")
    word = tok.tokens[few.tokens[row, t]]
    print(f"{t:>3} {word:>8} {int(few.response_mask[row, t]):>9} {lp:>22.4f}")

# %% [markdown]
# The same numbers, recomputed with a full forward pass (the one that carries gradient during
# the update), must agree with what the sampler recorded, or the ratio of section 5 would be
# wrong from the very first step:

# %%
recomputed = sequence_logprobs(reference, few.tokens, few.response_mask).per_token.data
print("max |sampler - forward pass| =", np.abs(recomputed - few.logprobs).max())
np.testing.assert_allclose(recomputed, few.logprobs, atol=1e-5)
print("log pi(y|x) per response:", few.logprobs.sum(axis=1))

# %% [markdown]
# ## 3. Returns and advantages
#
# Raising the probability of every sampled response in proportion to its reward works, but
# noisily. PPO instead asks, at each token, whether things went **better than expected**. The
# seed's advantage subtracts a learned value $V_w(x_t)$ (the expected reward-to-go from state
# $x_t$) from the reward-to-go that was actually collected:
#
# $$\hat{A}_t \;=\; \sum_{t'=t}^T \gamma^{\,t'-t}r_\phi(x_{t'},y_{t'}) \;-\; V_w(x_t)$$
#
# This is the **Monte-Carlo** advantage: the reward-to-go is an actual sample, so it is unbiased
# but noisy. On five tokens with a score of $1.0$ at the end, a small KL penalty on every token
# (section 7) and some value estimates:

# %%
r = np.array([-0.02, 0.01, -0.03, -0.01, 1.0])  # per-token rewards r_phi(x_t, y_t)
V = np.array([0.30, 0.45, 0.50, 0.70, 0.90])  # V_w(x_t) from a value model
gamma = 0.95
T = len(r)
returns_by_hand = np.array([sum(gamma ** (k - t) * r[k] for k in range(t, T)) for t in range(T)])
A_mc_by_hand = returns_by_hand - V
print("reward-to-go :", returns_by_hand)
print("A_hat_t      :", A_mc_by_hand)

np.testing.assert_allclose(discounted_returns(r[None], gamma)[0], returns_by_hand, rtol=1e-12)
np.testing.assert_allclose(mc_advantages(r[None], V[None], gamma)[0], A_mc_by_hand, rtol=1e-12)
print("objectives.discounted_returns and objectives.mc_advantages agree")

# %% [markdown]
# Real batches are right-padded: a `mask` marks the real tokens, and padding never changes a
# result (it may even hold NaN). Two rows of different lengths:

# %%
r2 = np.array([[0.0, 0.0, 1.0, np.nan], [0.0, 0.0, 0.0, -1.0]])  # row 0 has 3 tokens
m2 = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
V2 = np.array([[0.2, 0.4, 0.6, np.nan], [0.1, 0.0, -0.2, -0.5]])
A2 = mc_advantages(r2, V2, 1.0, m2)
print(A2)
np.testing.assert_allclose(A2[0, :3], mc_advantages(r2[:1, :3], V2[:1, :3], 1.0)[0])
assert A2[0, 3] == 0.0

# %% [markdown]
# ## 4. Generalised advantage estimation
#
# In practice PPO trades some of the Monte-Carlo noise for a little bias with **GAE** (Schulman
# et al. 2016). The one-step TD error compares what one step actually gave with what the value
# model predicted, and the advantage is a discounted sum of TD errors, computed backwards:
#
# $$\delta_t = r_t + \gamma V_{t+1} - V_t, \qquad A_t = \delta_t + \gamma\lambda A_{t+1},$$
#
# with $V = 0$ and $A = 0$ after the last token. $\lambda$ slides between the two extremes:
# $\lambda = 1$ telescopes back to the Monte-Carlo $\hat{A}_t$ above, and $\lambda = 0$ keeps only
# the one-step $\delta_t$, which leans entirely on the value model. By hand, on the same five tokens:


# %%
def gae_by_hand(r, V, gamma, lam):
    V_next = np.append(V[1:], 0.0)  # V_{t+1}, 0 after the last token
    delta = r + gamma * V_next - V
    A = np.zeros_like(r)
    running = 0.0
    for t in reversed(range(len(r))):
        running = delta[t] + gamma * lam * running  # A_t = delta_t + gamma lam A_{t+1}
        A[t] = running
    return A, delta


lam = 0.95
A_gae, delta = gae_by_hand(r, V, gamma, lam)
print("delta_t        :", delta)
print("A_t (lam=0.95) :", A_gae)

A_lib, R_lib = gae_advantages(r[None], V[None], gamma, lam)
np.testing.assert_allclose(A_lib[0], A_gae, rtol=1e-12)
np.testing.assert_allclose(R_lib[0], A_gae + V, rtol=1e-12)  # returns = A + V (value targets)

A_lam1, _ = gae_advantages(r[None], V[None], gamma, 1.0)
A_lam0, _ = gae_advantages(r[None], V[None], gamma, 0.0)
np.testing.assert_allclose(A_lam1[0], A_mc_by_hand, rtol=1e-10)  # lambda = 1: Monte-Carlo
np.testing.assert_allclose(A_lam0[0], delta, rtol=1e-12)  # lambda = 0: one-step TD
print("lambda = 1 gives the Monte-Carlo A_hat; lambda = 0 gives delta_t")

# %% [markdown]
# What $\lambda$ does to a real response: a 10-token response whose only reward is the final
# score, with a value model that has learnt to expect about half of it. With $\lambda = 1$ every
# token sees the final surprise in full; with $\lambda = 0$ a token sees only how much the value
# estimate moved across it, so the credit is local (and only as good as $V$).

# %%
T = 10
r_seq = np.zeros(T)
r_seq[-1] = 1.0  # the reward model's score on the last token
V_seq = 0.5 + 0.04 * np.arange(T) + 0.05 * np.sin(np.arange(T))  # an imperfect value model
fig, ax = plt.subplots(figsize=(7, 3.5))
for lam_ in (0.0, 0.5, 0.95, 1.0):
    A_, _ = gae_advantages(r_seq[None], V_seq[None], 1.0, lam_)
    ax.plot(np.arange(T), A_[0], marker="o", label=rf"$\lambda$ = {lam_}")
ax.axhline(0, color="gray", lw=0.8)
ax.set_xlabel("response token t")
ax.set_ylabel(r"advantage $A_t$")
ax.set_title(r"GAE per token: $\lambda$ = 1 is Monte-Carlo, $\lambda$ = 0 is one-step TD")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# minialign's PPO uses $\gamma = 1$, $\lambda = 0.95$ (TRL's defaults), then **whitens** the
# advantages over the batch's valid tokens (mean 0, std 1, population variance) before the
# update. The value model is trained toward the returns $R_t = A_t + V_t$, computed before
# whitening.
#
# ### Truncation or termination?
#
# "$V = 0$ after the last token" assumes the response **terminated**: the policy emitted END
# and nothing follows. But a response can also be **truncated**: the sampler hit
# `max_new_tokens` before END, and the text would have gone on. Its unseen continuation is
# worth about $V(s_{T+1})$, the value model's estimate of the state after the last token, so
# a truncated row should *bootstrap* from it instead of pretending the future is worth 0.
# Only the last TD error changes,
#
# $$\delta_T = r_T + \gamma V(s_{T+1}) - V(s_T),$$
#
# and the recursion carries the difference back: every $A_t$ of the row gains
# $(\gamma\lambda)^{T-t}\,\gamma V(s_{T+1})$. The same five tokens as above, now cut off,
# with the value model expecting a little more to come:

# %%
V_boot = 0.6  # V(s_{T+1}): the value of the state after the last (cut-off) token
n = len(r)
V_next = np.append(V[1:], V_boot)  # V_{t+1}; the last entry is now V_boot, not 0
delta_trunc = r + gamma * V_next - V
A_trunc = np.zeros_like(r)
running = 0.0
for t in reversed(range(n)):
    running = delta_trunc[t] + gamma * lam * running  # A_t = delta_t + gamma lam A_{t+1}
    A_trunc[t] = running
print("A_t terminated:", A_gae)
print("A_t truncated :", A_trunc)
print("difference    :", A_trunc - A_gae)
np.testing.assert_allclose(
    A_trunc - A_gae, (gamma * lam) ** np.arange(n)[::-1] * gamma * V_boot, rtol=1e-12
)

A_lib, _ = gae_advantages(r[None], V[None], gamma, lam, truncated=[True], bootstrap_values=[V_boot])
np.testing.assert_allclose(A_lib[0], A_trunc, rtol=1e-12)
print("objectives.gae_advantages(..., truncated=, bootstrap_values=) agrees")

# %% [markdown]
# How often does it happen? Of the reference's samples in section 1, the rows that reached
# `max_new_tokens` without END (`Rollout.truncated` in the loops):

# %%
cut = truncated_rows(gen.tokens, gen.response_mask, tok.end_id)
print(f"{cut.sum()} of {len(cut)} responses truncated ({cut.mean():.1%})")
assert np.array_equal(cut, ~((gen.tokens == tok.end_id) & gen.response_mask).any(axis=1))
assert cut.mean() < 0.05  # rare here: the task leaves room after its longest response

# %% [markdown]
# Rare on this task, whose `max_new_tokens` leaves room after the longest review, so the choice
# barely matters here; with a tight length limit it can touch a large share of the batch.
#
# What the libraries do. TRL's `PPOTrainer` treats every response as terminated and offers
# `missing_eos_penalty` instead: a constant subtracted from the score of each response
# without END, which teaches the policy to finish rather than correcting the estimate.
# minialign's loops do the same by default (`truncation="terminal"`, `missing_eos_penalty=None`);
# `train_ppo(..., truncation="bootstrap")` reads $V(s_{T+1})$ from the same value-model pass as
# the old values, and both `train_ppo` and `train_grpo` accept `missing_eos_penalty`. Note that
# the fresh value head is 0 (section 10), so the bootstrap adds nothing until the critic has
# learnt something.
#
# ## 5. The probability ratio
#
# The update reuses the rollout for several gradient steps, so the policy being trained,
# $\pi_\theta$, drifts away from the one that sampled the data, $\pi_{\theta_{\rm old}}$. The
# ratio of their probabilities of each sampled token measures the drift (it is 1 before the first
# step):
#
# $$r_{\theta}(x,y) \;=\; \frac{\pi_\theta(y_t\!\mid\!x_t)}{\pi_{\theta_{\rm old}}(y_t\!\mid\!x_t)}$$
#
# (The seed's $r_\theta$ here is a ratio, not a reward: we call it `ratio` in code.) minialign
# computes it as $\exp(\log\pi_\theta - \log\pi_{\theta_{\rm old}})$:

# %%
p_new = np.array([0.30, 0.05, 0.60, 0.010])
p_old = np.array([0.25, 0.10, 0.60, 0.012])
ratio_by_hand = p_new / p_old
ratio = probability_ratio(np.log(p_new), np.log(p_old))
print("pi_theta / pi_old       :", ratio_by_hand)
print("objectives.probability_ratio:", ratio.data)
np.testing.assert_allclose(ratio.data, ratio_by_hand, rtol=1e-12)

# %% [markdown]
# **Why the logarithm.** Models produce log-probabilities directly (`log_softmax` of the logits),
# and probabilities of whole responses are products of many token probabilities: they underflow.
# A 1,000-token response whose tokens have probability about $e^{-0.8}$ each has probability
# $e^{-800}$, which is 0 in float64, so the quotient is $0/0$. The difference of log-probabilities
# is an ordinary number. (minialign also clamps the log-ratio at $\pm 20$ before `exp`, so a wild
# policy cannot overflow; beyond that the gradient is 0, as PPO's clip would make it anyway.)

# %%
logp_old_seq = np.full(1000, -0.8)  # per-token log-probs of a long response under pi_old
logp_new_seq = logp_old_seq + 0.0005  # pi_theta likes each token slightly more
with np.errstate(invalid="ignore", under="ignore"):
    naive = np.exp(logp_new_seq.sum()) / np.exp(logp_old_seq.sum())
stable = np.exp(logp_new_seq.sum() - logp_old_seq.sum())
print(f"pi(y|x) = exp({logp_old_seq.sum():.0f}) = {np.exp(logp_old_seq.sum())}")
print(f"quotient of probabilities: {naive}   exp of log difference: {stable:.4f}")
assert np.isnan(naive) and np.isclose(stable, np.exp(0.5))

# %% [markdown]
# ## 6. The clipped objective
#
# Multiplying the ratio by the advantage gives a surrogate whose gradient at ratio 1 is the
# policy gradient. Left alone, maximising it would push the ratio as far as the advantage says,
# far outside the region where the old samples say anything reliable. PPO removes the incentive to
# go further than $1 \pm \epsilon$:
#
# $$L^{\text{CLIP}}(\theta) \;=\; -\mathbb{E}_{x,y \sim \pi_{\theta_{\text{old}}}}\Big[\min\big(r_{\theta}(x,y)\,\hat{A}_t,\;\mathrm{clip}(r_{\theta}(x,y),\,1-\epsilon,\,1+\epsilon)\,\hat{A}_t\big)\Big]$$
#
# The seed writes it with a leading minus, so it is already a loss to minimise (and so is
# `ppo_clip_loss`). The `min` picks the more pessimistic of the two terms. For $\hat{A} > 0$ the
# objective stops rising once the ratio passes $1 + \epsilon$; for $\hat{A} < 0$ it stops rising once
# the ratio falls below $1 - \epsilon$. There the gradient is exactly zero. The plot takes those
# gradients from autograd, through `ppo_clip_loss` itself:

# %%
eps = 0.2
grid = np.linspace(0.3, 1.7, 281)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=False)
for ax, adv in zip(axes, (1.0, -1.0)):
    logp = ma.tensor(np.log(grid), requires_grad=True)  # one "token" per ratio value
    loss = ppo_clip_loss(logp, np.zeros_like(grid), np.full_like(grid, adv), eps)
    loss.backward()
    surrogate = np.minimum(grid * adv, np.clip(grid, 1 - eps, 1 + eps) * adv)
    zero_grad = logp.grad == 0.0
    ax.plot(grid, surrogate, color="tab:blue", label=r"$\min(r\hat A,\ \mathrm{clip}(r)\hat A)$")
    ax.plot(grid, grid * adv, ":", color="gray", label=r"unclipped $r\hat A$")
    ax.fill_between(grid, surrogate.min() - 0.1, surrogate.max() + 0.1, where=zero_grad,
                    color="tab:red", alpha=0.15, label="gradient = 0 (autograd)")  # fmt: skip
    for edge in (1 - eps, 1 + eps):
        ax.axvline(edge, color="gray", lw=0.8, ls="--")
    ax.set_title(rf"$\hat A = {adv:+.0f}$: the objective inside $L^{{CLIP}}$ (maximised)")
    ax.set_xlabel(r"ratio $r_\theta = \pi_\theta / \pi_{\theta_{old}}$")
    ax.set_ylabel("surrogate objective")
    ax.legend(fontsize=8, loc="upper left" if adv > 0 else "lower left")
    ax.grid(alpha=0.3)
    # the zero-gradient region is exactly where the clip binds
    binds = grid > 1 + eps if adv > 0 else grid < 1 - eps
    assert np.array_equal(zero_grad, binds)
plt.tight_layout()
plt.show()

# %% [markdown]
# Note what the clip does *not* do: with $\hat{A} > 0$ and a ratio that has fallen below
# $1 - \epsilon$ (the update made a good token less likely), the gradient is still there, pulling
# the ratio back up. The clip only removes the incentive to overshoot.
#
# Now by hand on six tokens, including both binding cases. Each token's term is
# $\min(r\hat A, \mathrm{clip}(r)\hat A)$; its derivative with respect to $\log\pi_\theta$ is
# $r\hat A$ when the unclipped term is the smaller one, and 0 when the clipped (constant) term is.

# %%
ratios = np.array([0.50, 0.90, 1.00, 1.30, 1.50, 0.70])
adv = np.array([1.0, -1.0, 2.0, 1.0, -0.5, -2.0])
logp_old = np.log(np.array([0.2, 0.4, 0.1, 0.3, 0.05, 0.5]))
logp_new_np = logp_old + np.log(ratios)

clipped = np.clip(ratios, 1 - eps, 1 + eps)
terms = np.minimum(ratios * adv, clipped * adv)
binding = clipped * adv < ratios * adv  # the constant, clipped term wins the min
loss_by_hand = -terms.mean()
grad_by_hand = np.where(binding, 0.0, -ratios * adv / len(ratios))  # d loss / d log pi_theta
print("ratio        :", ratios)
print("advantage    :", adv)
print("clip binds   :", binding)
print(f"L^CLIP by hand = {loss_by_hand:.6f}")

logp_new = ma.tensor(logp_new_np, requires_grad=True)
loss = ppo_clip_loss(logp_new, logp_old, adv, eps)
loss.backward()
print(f"objectives.ppo_clip_loss = {loss.item():.6f}")
print("autograd gradient :", logp_new.grad)
np.testing.assert_allclose(loss.item(), loss_by_hand, rtol=1e-12)
np.testing.assert_allclose(logp_new.grad, grad_by_hand, rtol=1e-10, atol=1e-15)
assert (logp_new.grad[binding] == 0).all() and (logp_new.grad[~binding] != 0).all()
print("clip fraction (|r - 1| > eps):", clip_fraction(logp_new_np, logp_old, eps))

# %% [markdown]
# Tokens 3 (ratio 1.3, $\hat A > 0$) and 5 (ratio 0.7, $\hat A < 0$) went past the clip in the
# direction their advantage pushes: zero gradient. Tokens 0 (ratio 0.5, $\hat A > 0$) and 4
# (ratio 1.5, $\hat A < 0$) are outside $1 \pm \epsilon$ too, but on the other side, so the
# *unclipped* term is the smaller one and the loss keeps pulling them back. `clip_fraction`
# (CleanRL's `clipfrac`) counts every ratio outside $1 \pm \epsilon$: 4 of 6 here, although only
# two tokens have their gradient blocked.
#
# ## 7. The KL-penalised reward
#
# A policy that only chases $r_\phi$ will find the reward model's blind spots (notebook 06). So
# the objective RLHF actually maximises subtracts a penalty for drifting away from the reference
# model $\pi_{\rm ref}$ (the pre-trained policy PPO started from):
#
# $$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta.\,\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$
#
# For a policy over a handful of answers both terms are exact sums, and
# `kl_regularized_objective` computes them (notebook 07 takes this much further):

# %%
logits_theta = np.array([1.0, 0.2, -0.5, 0.8])  # pi_theta over 4 possible responses
logits_ref = np.array([0.3, 0.3, 0.0, 0.0])  # pi_ref
r_phi = np.array([1.0, -0.5, 0.0, 0.6])  # r_phi(x, y) for each response
beta = 0.5
pi = np.exp(logits_theta) / np.exp(logits_theta).sum()
pi_ref = np.exp(logits_ref) / np.exp(logits_ref).sum()
kl_exact = np.sum(pi * np.log(pi / pi_ref))
J_by_hand = np.sum(pi * r_phi) - beta * kl_exact
J_lib = kl_regularized_objective(logits_theta, logits_ref, r_phi, beta).item()
print(f"E[r] = {np.sum(pi * r_phi):.4f}, KL = {kl_exact:.4f}, J = {J_by_hand:.4f}")
np.testing.assert_allclose(J_lib, J_by_hand, rtol=1e-12)
np.testing.assert_allclose(categorical_kl(logits_theta, logits_ref).item(), kl_exact, rtol=1e-12)

# %% [markdown]
# **Estimating the KL from samples.** A language model's KL is a sum over every possible
# response, so it is estimated from the sampled ones. With $\log\rho = \log\pi_{\rm ref}(y) -
# \log\pi_\theta(y)$ for $y \sim \pi_\theta$, Schulman's three estimators ("Approximating KL
# Divergence", 2020) are $k_1 = -\log\rho$, $k_2 = \tfrac12(\log\rho)^2$ and
# $k_3 = (\rho - 1) - \log\rho$. All three on 20,000 samples of the 4-answer policy above:

# %%
rng = np.random.default_rng(0)
y = rng.choice(4, size=20_000, p=pi)  # samples from pi_theta
logp_s, logp_ref_s = np.log(pi[y]), np.log(pi_ref[y])
log_rho = logp_ref_s - logp_s
by_hand = {"k1": -log_rho, "k2": 0.5 * log_rho**2, "k3": np.expm1(log_rho) - log_rho}
print(f"exact KL = {kl_exact:.4f}")
print(f"{'':4}{'mean':>8}{'std':>8}{'share < 0':>11}")
for name, k in by_hand.items():
    k_lib = kl_penalty(logp_s, logp_ref_s, name).data
    np.testing.assert_allclose(k_lib, k, rtol=1e-10, atol=1e-14)
    print(f"{name:4}{k.mean():8.4f}{k.std():8.4f}{np.mean(k < 0):11.2%}")

# %% [markdown]
# $k_1$ and $k_3$ are unbiased (their means match the exact KL); $k_2$ is biased. $k_1$ is
# **negative on a large share of samples**: whenever a sampled answer is more likely under the
# reference than under the policy. A negative per-sample KL is not a bug. $k_3$ is never negative
# and has a smaller spread.
#
# **Per-token rewards.** PPO for language models (InstructGPT, TRL's `PPOTrainer`) turns $J$ into a
# reward per token: every token pays $-\beta k_1$, and the reward model's score is added on the
# last token of the response, $r_t = -\beta\,k_1(y_t) + [t = T]\,r_\phi(x, y)$. Summed over a
# response that is $r_\phi(x, y) - \beta \sum_t k_1$, whose expectation is $J$. Two responses of
# different lengths:

# %%
score = np.array([0.9, -0.4])  # r_phi(x, y) per response
logp_pol = np.array([[-1.2, -0.3, -2.0, -0.1], [-0.5, -0.9, 0.0, 0.0]])  # log pi_theta(y_t)
logp_ref_tok = np.array([[-1.0, -0.6, -2.4, -0.1], [-0.7, -0.6, 0.0, 0.0]])  # log pi_ref(y_t)
mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
beta = 0.1
k1 = logp_pol - logp_ref_tok
rewards_by_hand = -beta * k1 * mask
rewards_by_hand[0, 3] += score[0]  # last valid token of row 0
rewards_by_hand[1, 1] += score[1]  # last valid token of row 1
rewards_lib = kl_penalized_rewards(score, logp_pol, logp_ref_tok, beta, mask)
print(rewards_lib)
np.testing.assert_allclose(rewards_lib, rewards_by_hand, rtol=1e-12)
np.testing.assert_allclose(rewards_lib.sum(1), score - beta * (k1 * mask).sum(1), rtol=1e-12)
assert k1[0, 0] < 0 and rewards_lib[0, 0] > 0  # the "penalty" of row 0's first token is a bonus

# %% [markdown]
# Row 0's first token (and row 1's second) is more likely under the reference than under the
# policy, so its k1 is negative and its "penalty" is a small bonus.
#
# ## 8. A full PPO run
#
# Now all of it together on the sentiment task. The reward PPO optimises is a **learned reward
# model** (the proxy), trained for a few seconds with Bradley–Terry on 2,000 preference pairs
# labelled by a simulated annotator (notebook 02 does this step slowly). We measure progress
# with the task's **true reward** on 128 held-out prompts, through `make_eval_fn`, the yardstick
# every method in minialign shares. `train_ppo` runs every stage of the previous sections; its
# docstring lists them.

# %%
rng = np.random.default_rng(0)
pairs = task.make_preference_pairs(2000, rng, beta_bt=8.0)
rm = RewardModel.from_policy(reference, rng=rng)
rm_history = train_reward_model(rm, pairs, RewardConfig(steps=200, batch_size=64, learning_rate=3e-3),
                                rng=rng, progress=False)  # fmt: skip
proxy = reward_fn(rm)  # (tokens, response_mask) -> r_phi(x, y), no gradient
print(f"reward model: training accuracy over the last 20 steps "
      f"{rm_history['accuracy'][-20:].mean():.3f}")  # fmt: skip

policy = copy.deepcopy(reference).train().requires_grad_(True)  # the reference stays frozen
eval_prompts = task.sample_prompts(128, np.random.default_rng(10))
eval_fn = make_eval_fn(policy, reference, eval_prompts, task.true_reward, sampling, seed=11,
                       reward_model=proxy)  # fmt: skip
config = PPOConfig(steps=40, batch_size=64, num_mini_batches=2, epochs=2, learning_rate=1e-3,
                   beta=0.05, eval_steps=4)  # fmt: skip
history = train_ppo(policy, reference, proxy, task.sample_prompts, sampling, config,
                    rng=np.random.default_rng(12), eval_fn=eval_fn, progress=False)  # fmt: skip
print(f"true reward {history['eval_true_reward'][0]:+.3f} -> {history.last('eval_true_reward'):+.3f}"
      f", KL to the reference {abs(history['eval_kl'][0]):.3f} -> {history.last('eval_kl'):.3f} nats"
      f", {history.last('seconds'):.1f} s")  # fmt: skip
print(f"proxy reward r_phi {history['eval_proxy_reward'][0]:+.2f} -> "
      f"{history.last('eval_proxy_reward'):+.2f}")  # fmt: skip

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 7))
plot_history(history, "eval_true_reward", ax=axes[0, 0],
             title="True reward on held-out prompts", ylabel="mean true reward")  # fmt: skip
plot_history(history, ["kl", "eval_kl"], ax=axes[0, 1],
             title=r"KL($\pi_\theta \| \pi_{ref}$) per response", ylabel="nats")  # fmt: skip
plot_history(history, "clip_fraction", ax=axes[1, 0],
             title=r"Share of tokens with $|r_\theta - 1| > \epsilon$", ylabel="clip fraction")  # fmt: skip
plot_history(history, "value_loss", ax=axes[1, 1], title="Value loss", ylabel="value loss")
plt.tight_layout()
plt.show()
assert history.last("eval_true_reward") > history["eval_true_reward"][0] + 0.3
assert history.last("eval_kl") > 2.0  # several nats
assert history.last("eval_proxy_reward") - history["eval_proxy_reward"][0] > 2.0  # proxy: further
v_loss = history["value_loss"]
assert v_loss.max() > 2 * v_loss[0] and v_loss[-5:].mean() < v_loss[0]  # rises, then falls

# %% [markdown]
# The true reward climbs from about 0 to nearly its maximum of 1, while the KL to the reference
# grows to several nats per response. The proxy reward (printed above, not drawn) rose much
# further: a reward model's scale is arbitrary, as only differences of scores are trained. The clip fraction is not zero because each batch is used for two epochs of two
# minibatches (the ratio moves after the first step). The value loss first *rises*: the critic
# starts at 0 (section 10) and the rewards it must predict grow as the policy improves; once the
# policy settles, the critic catches up.
#
# The policy found the proxy's favourite: one strong positive adjective, nearly every time. Its
# samples, and a look at per-sample KL on real data. As in section 7, $k_1$ is negative wherever
# a sampled token is likelier under the reference than under the policy. That is common while the
# policy is close to the reference (here after 3 iterations) and rare once it has moved far:

# %%
early = copy.deepcopy(reference).train().requires_grad_(True)
train_ppo(early, reference, proxy, task.sample_prompts, sampling, dataclasses.replace(config, steps=3),
          rng=np.random.default_rng(12), progress=False)  # fmt: skip
negative_share = {}
for name, model in (("after 3 iterations", early), ("after 40 iterations", policy)):
    ro = collect_rollout(model, reference, task.true_reward, eval_prompts, sampling,
                         np.random.default_rng(13))  # fmt: skip
    k1_tok = (ro.logp_old - ro.logp_ref)[ro.mask]  # per token
    k1_seq = ro.kl  # per response: the sum of its tokens' k1
    negative_share[name] = np.mean(k1_tok < 0)
    samples = tok.decode_batch(ro.tokens, ro.response_mask)
    print(f"{name}: e.g. {samples[:3]}")
    print(f"   k1 < 0 on {np.mean(k1_tok < 0):.0%} of tokens and {np.mean(k1_seq < 0):.0%} of"
          f" responses; mean KL per response {k1_seq.mean():.3f} nats")  # fmt: skip
one_word = np.mean([len(text.split()) == 1 for text in samples])
print(f"one-word responses after 40 iterations: {one_word:.0%}")
assert one_word > 0.8  # the proxy's favourite: one strong adjective
assert negative_share["after 3 iterations"] > 0.2 > 0.05 > negative_share["after 40 iterations"]

# %% [markdown]
# ## 9. Implementation details, and where they live
#
# The equations leave many choices open. These nine (docs/implementation_notes.md, PPO 1-9,
# after Ziegler et al., InstructGPT, CleanRL's "37 implementation details" and TRL) change
# results, and each is a few lines of `minialign/train/ppo.py`:
#
# | # | Detail | Where in `minialign/train/ppo.py` |
# |---|--------|-----------------------------------|
# | 1 | Score on the last response token, $-\beta k_1$ on every token | `ppo_targets` → `kl_penalized_rewards` |
# | 2 | GAE with $V = 0$ after the end; returns $= A + V$ before whitening | `ppo_targets` → `gae_advantages` |
# | 3 | Whiten advantages over valid tokens (population variance) | `ppo_iteration`: `whiten(advantages, rollout.mask)` |
# | 4 | Clipped value loss $\tfrac12\max((V-R)^2, (\mathrm{clip}(V, V_{\rm old}\pm\epsilon_v)-R)^2)$ | `ppo_loss`: `value_loss(..., config.cliprange_value, m)` |
# | 5 | Value head initialised to 0; no dropout (eval mode) | `PPOState.create` → `ValueModel.from_policy`; `training_mode(False, ...)` in `train_ppo` |
# | 6 | Log-probs for the loss at the sampling temperature | `ppo_loss` → `policy_logprobs(..., config.temperature)` |
# | 7 | Pad token distinct from the end token | `Sampling` raises if `pad_id == stop_token` |
# | 8 | Adaptive KL coefficient (Ziegler et al.) | `ppo_iteration`: `state.kl_ctl.update(kl, ...)` |
# | 9 | Several epochs of shuffled minibatches; early stop on a target KL | `ppo_update`: `rng.permutation`, `config.target_kl` |
#
# One whole iteration is `ppo_iteration`, and it reads in the order of the stages above:

# %%
source = inspect.getsource(ppo_iteration)
print(source)
for call in (
    "collect_rollout(",
    "rollout_values(",
    "ppo_targets(",
    "whiten(",
    "ppo_update(",
    "kl_ctl.update(",
):
    assert call in source, call

# %% [markdown]
# ## 10. Two things that confuse everyone
#
# **With one epoch the clip never binds.** The loss is computed at the parameters that sampled
# the batch, so on the first minibatch of every iteration the ratio is exactly 1 (up to float
# rounding between the sampler and the full forward pass), every token's surrogate is
# $\hat A_t$, and the clip fraction is 0. With `epochs=1` and one minibatch per batch, PPO is plain
# policy gradient with a value baseline; the clip starts to matter from the second step on the same
# batch. One rollout, then the first minibatch's ratio:

# %%
fresh = copy.deepcopy(reference).requires_grad_(True)
ro = collect_rollout(fresh, reference, proxy, task.sample_prompts(32, np.random.default_rng(20)),
                     sampling, np.random.default_rng(21))  # fmt: skip
logp, _ = policy_logprobs(fresh, ro.tokens, ro.response_mask, 1.0)
ratio = probability_ratio(logp, ro.logp_old, ro.mask).data[ro.mask]
print(f"first minibatch: max |ratio - 1| = {np.abs(ratio - 1).max():.1e}, "
      f"clip fraction = {clip_fraction(logp.data, ro.logp_old, 0.2, ro.mask)}")  # fmt: skip
assert clip_fraction(logp.data, ro.logp_old, 0.2, ro.mask) == 0.0

one_epoch = train_ppo(copy.deepcopy(reference).requires_grad_(True), reference, proxy,
                      task.sample_prompts, sampling,
                      PPOConfig(steps=8, batch_size=32, num_mini_batches=1, epochs=1),
                      rng=np.random.default_rng(22), progress=False)  # fmt: skip
print("clip fraction per iteration, 1 epoch x 1 minibatch:", one_epoch["clip_fraction"])
print("clip fraction per iteration, 2 epochs x 2 minibatches (section 8):",
      history["clip_fraction"][:8].round(3))  # fmt: skip
assert (one_epoch["clip_fraction"] == 0).all()

# %% [markdown]
# **The value head starts at 0.** `ValueModel.from_policy` copies the reference's trunk but gives
# the value head zero weights (docs/implementation_notes.md, PPO 5), so at the first iteration $V \equiv 0$: the
# advantages are just the (penalised) rewards-to-go, and the value loss is $\tfrac12\mathbb{E}[R_t^2]$.
# Early advantages are therefore as noisy as Monte-Carlo ones: the critic has to learn before
# GAE's baseline helps.

# %%
critic = ValueModel.from_policy(reference)
values = critic(ro.tokens[:, :-1]).data  # (B, T-1): V of every prefix
print("values of the fresh critic: min", values.min(), "max", values.max())
assert np.all(values == 0.0)
print(f"first logged value loss in section 8: {history['value_loss'][0]:.4f}, "
      f"last: {history.last('value_loss'):.4f}")  # fmt: skip

# %% [markdown]
# ## 11. Try this
#
# Train the same PPO run with the KL coefficient $\beta = 2$ instead of 0.05. Before running it,
# predict what happens to the final true reward and to the KL. Then check. Why does it take a
# $\beta$ this large to make a difference?
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# strict = copy.deepcopy(reference).train().requires_grad_(True)
# h = train_ppo(strict, reference, proxy, task.sample_prompts, sampling,
#               dataclasses.replace(config, beta=2.0), rng=np.random.default_rng(12),
#               progress=False,
#               eval_fn=make_eval_fn(strict, reference, eval_prompts, task.true_reward, sampling,
#                                    seed=11))
# for name, hist in (("beta = 0.05 (section 8)", history), ("beta = 2", h)):
#     print(f"{name}: true reward {hist.last('eval_true_reward'):+.2f}, "
#           f"KL {hist.last('eval_kl'):.2f} nats")
# ```
#
# With $\beta = 2$ the run stops well short of the $\beta = 0.05$ run on both counts: every nat
# of KL now costs 2 units of reward, so the policy settles closer to the reference, with less
# reward and much less drift. The coefficient is measured in units of the reward model's
# score, and this proxy's scores span several units (section 8), so a $\beta$ of a few tenths
# changes the result much less. Sweeping $\beta$ traces the reward–KL frontier that
# `minialign demo` draws. (At the time of writing: $\beta = 0.05$ ended at a true reward of
# 1.00 and 4.5 nats, $\beta = 2$ at 0.59 and 1.4 nats, $\beta = 0.5$ at 0.94 and 3.3 nats.)
#
# </details>
