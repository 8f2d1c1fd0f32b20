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
# derives the policy gradient PPO is built on, then takes every PPO equation of the equation
# sheet (docs/equations.md) in order: the objective $J(\theta)$, the advantage $\hat{A}_t$ and
# GAE, the probability ratio, the clipped loss $L^{\text{CLIP}}$ and the KL penalty. Each one is
# computed by hand on small numbers, then through `minialign.objectives`, with an `assert` that
# the two agree. Then one whole PPO iteration is written out by hand and checked bitwise against
# the library's, before a full run on the sentiment task.
#
# Runtime: about 10 seconds on a quiet laptop CPU (2 cores), fully seeded.
#
# 1. The objective $J(\theta)$
# 2. Rollouts: sampling responses and their log-probabilities
# 3. The policy gradient, derived on a bandit
# 4. Returns and advantages
# 5. Generalised advantage estimation
# 6. The probability ratio
# 7. The clipped objective
# 8. The KL-penalised reward
# 9. KL estimators as losses: which KL each one regularises
# 10. One PPO iteration by hand
# 11. A full PPO run
# 12. Implementation details, and where they live
# 13. Exercises
# 14. Recap
#
# ## Notation
#
# | Symbol | Meaning | In code |
# |---|---|---|
# | $x$, $y$; $x_t$, $y_t$ | prompt, response; the state (prompt and tokens so far) and the token chosen at step $t$ | `prompts`, `tokens` |
# | $\pi_\theta$, $\pi_{\theta_{\rm old}}$, $\pi_{\rm ref}$ | the policy being trained, the policy that sampled the batch, the frozen reference | `policy`, `logp_old`, `reference` |
# | $r_\phi(x, y)$ | reward-model score of a whole response ("the proxy") | `scores`, `proxy` |
# | $r_t$ | per-token reward: $-\beta k_1$ on every token, plus $r_\phi$ on the last | `rewards` |
# | $\gamma$, $\lambda$ | discount; GAE's bias–variance knob (notebook 04 uses $\lambda$ for its reward mix) | `gamma`, `lam` |
# | $V_w(x_t)$, $G_t$, $R_t$ | value model, reward-to-go, value target $R_t = \hat A_t + V_t$ | `values`, `returns` |
# | $\hat{A}_t$, $\delta_t$ | advantage, one-step TD error | `advantages`, `delta` |
# | $r_\theta(x, y)$ | probability ratio $\pi_\theta/\pi_{\theta_{\rm old}}$: **not** a reward, despite the letter | `ratio` |
# | $\epsilon$, $\epsilon_v$ | clip range of the ratio; of the value | `epsilon`, `cliprange_value` |
# | $k_1, k_2, k_3$; $\rho$ | per-sample KL estimators; inside them $\rho = \pi_{\rm ref}/\pi_\theta$ (GRPO's $\rho_i$ in notebook 04 is $\pi_\theta/\pi_{\theta_{\rm old}}$) | `kl_penalty(..., "k1")` |
# | $\beta$ | KL coefficient **in the reward**: $k_1$ per token, summed over the response | `PPOConfig.beta` |
#
# $\beta$ is the most overloaded letter of these notebooks. Here it multiplies $k_1$ inside the
# reward. GRPO's $\beta$ (notebook 04) multiplies $k_3$ inside the *loss*, averaged per token, and
# pulls toward a different KL (section 9). DPO's $\beta = 1/\tau$ (notebook 05) is a temperature,
# and the annotator's $\beta_{\rm BT}$ (notebook 02, `beta_bt` in section 11) is how sharply a
# simulated human prefers the better answer. $\tau$ is just as overloaded: the sampling
# temperature here (`temperature`, 1 throughout), a reasoning trace $\tau_i$ in notebook 04, and
# DPO's temperature in notebook 05.

# %%
import copy
import dataclasses
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
import minialign.functional as F
from minialign.nn import RewardModel, ValueModel, generate, sequence_logprobs
from minialign.objectives import (
    categorical_kl,
    clip_fraction,
    discounted_returns,
    gae_advantages,
    kl_penalized_rewards,
    kl_penalty,
    kl_regularized_objective,
    kl_regularized_optimum,
    mc_advantages,
    ppo_clip_loss,
    probability_ratio,
    value_loss,
    whiten,
)
from minialign.optim import AdamW, clip_grad_norm
from minialign.plots import (
    Slider,
    interactive_figure,
    plot_clipped_surrogate,
    plot_curves,
    plot_history_grid,
)
from minialign.pretrained import load_reference, make_task
from minialign.train import (
    PPOConfig,
    PPOState,
    RewardConfig,
    Sampling,
    collect_rollout,
    make_eval_fn,
    ppo_iteration,
    reward_fn,
    train_ppo,
    train_reward_model,
)
from minialign.train.rollout import truncated_rows

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
assert abs(scores.mean()) < 0.1

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
      " logprobs", few.logprobs.shape)

# %% [markdown]
# The first of these rows that ended with END, position by position. `logprobs` has one column
# fewer: its column $t$ holds
# $\log\pi(\text{token}_{t+1} \mid \text{tokens}_{\le t})$, the prediction made *at* position $t$.
# The prompt is never scored, the END token is (the policy chose to stop), and padding after END
# has mask 0 and log-prob 0. Section 10 works in exactly this (B, T-1) layout.

# %%
ended = [i for i in range(len(few.tokens)) if tok.end_id in few.tokens[i][few.response_mask[i]]]
row = ended[0]  # a row where the policy chose to stop (the list is not empty)
print(f"row {row}:")
print(f"{'t':>3} {'token':>8} {'resp_mask':>9} {'log pi(token_t | <t)':>22}")
for t in range(few.tokens.shape[1]):
    lp = few.logprobs[row, t - 1] if t > 0 else float("nan")
    word = tok.tokens[few.tokens[row, t]]
    print(f"{t:>3} {word:>8} {int(few.response_mask[row, t]):>9} {lp:>22.4f}")

# %% [markdown]
# The same numbers, recomputed with a full forward pass (the one that carries gradient during
# the update), must agree with what the sampler recorded, or the ratio of section 6 would be
# wrong from the very first step:

# %%
recomputed = sequence_logprobs(reference, few.tokens, few.response_mask).per_token.data
print("max |sampler - forward pass| =", np.abs(recomputed - few.logprobs).max())
np.testing.assert_allclose(recomputed, few.logprobs, atol=1e-5)
print("log pi(y|x) per response:", few.logprobs.sum(axis=1))

# %% [markdown]
# ## 3. The policy gradient, derived on a bandit
#
# Everything PPO does rests on one identity. Take the smallest policy there is: one prompt,
# $K = 4$ possible answers, $\pi_\theta = \mathrm{softmax}(\theta)$ over them, and a reward
# $r(y)$ per answer (a *bandit*; notebook 07 solves it exactly). Then
# $J(\theta) = \sum_y \pi_\theta(y)\,r(y)$, and its gradient needs $\nabla\pi_\theta(y)$ for
# every answer, while a sampler only hands us a few sampled $y$. The **log-derivative trick**,
# $\nabla\pi = \pi\,\nabla\log\pi$, turns the sum back into an expectation over samples:
#
# $$\nabla_\theta J = \sum_y \nabla_\theta\pi_\theta(y)\,r(y)
#   = \sum_y \pi_\theta(y)\,\nabla_\theta\log\pi_\theta(y)\,r(y)
#   = \mathbb{E}_{y\sim\pi_\theta}\big[r(y)\,\nabla_\theta\log\pi_\theta(y)\big]$$
#
# So the average of $r(y)\nabla\log\pi_\theta(y)$ over samples is an unbiased estimate of the
# gradient: nothing needs to differentiate the reward. For softmax logits the *score*
# $\nabla_\theta\log\pi_\theta(y) = e_y - \pi_\theta$ (one-hot minus the probabilities). The
# rewards below all sit near 5, as a reward model's scores may (only their differences are
# trained, notebook 02). The exact gradient from autograd, the same sum written out, and the
# sample average over 4,000 draws:

# %%
theta = np.array([0.5, -0.2, 0.1, 0.3])  # logits of pi_theta over K = 4 answers
r_bandit = np.array([6.0, 4.5, 5.0, 5.6])  # r(y), with a large common offset
K = len(theta)
pi = np.exp(theta) / np.exp(theta).sum()

z = ma.tensor(theta, requires_grad=True)
(F.softmax(z) * r_bandit).sum().backward()  # J(theta) = sum_y pi(y) r(y), exactly
grad_J = z.grad
score = np.eye(K) - pi  # row y: grad log pi(y) = e_y - pi
np.testing.assert_allclose(pi @ (r_bandit[:, None] * score), grad_J, rtol=1e-12)

rng = np.random.default_rng(0)
y = rng.choice(K, size=4000, p=pi)  # samples from pi_theta
g = r_bandit[y, None] * score[y]  # (4000, K): one gradient estimate per sample
se = g.std(axis=0) / np.sqrt(len(y))  # standard error of their mean
print("exact gradient        :", grad_J)
print("mean r grad log pi    :", g.mean(axis=0))
print("its standard error    :", se)
assert np.all(np.abs(g.mean(axis=0) - grad_J) < 3 * se)

# %% [markdown]
# **A baseline adds no bias.** The score has mean zero:
# $\mathbb{E}[\nabla\log\pi_\theta] = \sum_y \nabla\pi_\theta(y) = \nabla \sum_y \pi_\theta(y) = \nabla 1 = 0$.
# So any constant $b$ subtracted from the reward leaves the expected gradient unchanged,
# $\mathbb{E}[(r - b)\nabla\log\pi_\theta] = \mathbb{E}[r\nabla\log\pi_\theta] - b \cdot 0$.
# (The same holds for a $b$ that depends on the state but not on the action taken there,
# which is what a value model is.)

# %%
print(f"E[grad log pi] = sum_y pi(y) (e_y - pi): largest entry {np.abs(pi @ score).max():.1e}")
np.testing.assert_allclose(pi @ score, 0.0, atol=1e-15)
b = pi @ r_bandit  # the baseline: the expected reward, what a perfect value model would say
np.testing.assert_allclose(pi @ ((r_bandit - b)[:, None] * score), grad_J, rtol=1e-12, atol=1e-15)
print(f"with b = E[r] = {b:.3f} the expected gradient is unchanged")

# %% [markdown]
# **... and it removes variance.** Each sample's estimate $r(y)\,(e_y - \pi)$ is scaled by a
# reward near 5, so its sign and size are mostly the offset, not the information. Measured on
# the same 4,000 samples, the variance of one sample's estimate (summed over the $K$
# components), without and with the baseline:

# %%
g_base = (r_bandit[y] - b)[:, None] * score[y]
var_plain, var_base = g.var(axis=0).sum(), g_base.var(axis=0).sum()
print(f"variance per sample: no baseline {var_plain:.3f}, baseline b = E[r]: {var_base:.4f}"
      f"  ({var_plain / var_base:.0f}x smaller)")
print("mean with baseline    :", g_base.mean(axis=0), "(same target, smaller error:",
      g_base.std(axis=0) / np.sqrt(len(y)), ")")
assert var_base < var_plain / 100
assert np.all(np.abs(g_base.mean(axis=0) - grad_J) < 3 * g_base.std(axis=0) / np.sqrt(len(y)))

# %% [markdown]
# With the baseline, the same precision needs over a hundred times fewer samples. That is why
# PPO trains a value model $V_w(x_t)$: a learned, per-state baseline. The advantage
# $\hat{A}_t$ of section 4 is the reward-to-go minus it.
#
# **Sampling from $\theta_{\rm old}$ brings in the ratio.** PPO samples one batch and then takes
# several gradient steps on it. After the first step the parameters $\theta$ are no longer
# the $\theta_{\rm old}$ that sampled the batch, and the average of $\hat A\,\nabla\log\pi_\theta$
# over old samples is no longer $\nabla J(\theta)$. Importance sampling reweights each sample by
# how much more (or less) likely the new policy makes it: for any $f$,
# $\mathbb{E}_{\pi_\theta}[f] = \sum_y \pi_{\theta_{\rm old}}(y)\,\frac{\pi_\theta(y)}{\pi_{\theta_{\rm old}}(y)}\,f(y)$.
# With $\rho_\theta(y) = \pi_\theta(y)/\pi_{\theta_{\rm old}}(y)$ and
# $\rho_\theta\,\nabla\log\pi_\theta = \nabla\rho_\theta$:
#
# $$\nabla_\theta J = \mathbb{E}_{y\sim\pi_{\theta_{\rm old}}}\big[\rho_\theta(y)\,\hat A(y)\,\nabla_\theta\log\pi_\theta(y)\big]
#   = \nabla_\theta\,\mathbb{E}_{y\sim\pi_{\theta_{\rm old}}}\big[\rho_\theta(y)\,\hat A(y)\big]$$
#
# So the **surrogate** $\mathbb{E}_{\pi_{\theta_{\rm old}}}[\rho_\theta \hat A]$ has the policy
# gradient as its gradient at every $\theta$, using only old samples; at $\theta = \theta_{\rm old}$
# the ratio is 1 and its gradient is the plain $\mathbb{E}[\hat A\nabla\log\pi_\theta]$. Checked
# after an update that moved the logits, with $\hat A = r - b$: the exact sums, then autograd on
# the surrogate's sample mean over 4,000 draws from $\pi_{\theta_{\rm old}}$:

# %%
pi_old, A_bandit = pi, r_bandit - b  # the sampler, and the advantages of its answers
theta_new = theta + np.array([0.8, -0.6, 0.0, 0.4])  # the policy after some update steps
pi_new = np.exp(theta_new) / np.exp(theta_new).sum()
z = ma.tensor(theta_new, requires_grad=True)
(F.softmax(z) * r_bandit).sum().backward()
grad_J_new = z.grad  # what we want: the gradient at the NEW parameters
score_new = np.eye(K) - pi_new  # grad log pi_theta(y) at the new parameters
no_ratio = pi_old @ (A_bandit[:, None] * score_new)  # old samples, no reweighting
with_ratio = pi_old @ ((pi_new / pi_old * A_bandit)[:, None] * score_new)

y_old = rng.choice(K, size=4000, p=pi_old)  # one batch from pi_old, reused
z = ma.tensor(theta_new, requires_grad=True)
rho = ma.exp(F.log_softmax(z)[y_old] - np.log(pi_old[y_old]))  # rho_theta of each sample
(rho * A_bandit[y_old]).mean().backward()  # the surrogate's sample mean, differentiated
print("grad J(theta_new)           :", grad_J_new)
print("old samples, no ratio       :", no_ratio)
print("old samples, ratio (exact)  :", with_ratio)
print("autograd on mean(rho * A)   :", z.grad)
np.testing.assert_allclose(with_ratio, grad_J_new, rtol=1e-12, atol=1e-15)
assert np.abs(no_ratio - grad_J_new).max() > 0.05  # biased without the ratio
assert np.abs(z.grad - grad_J_new).max() < 0.02  # sample noise only

# %% [markdown]
# That ratio is the $r_\theta(x, y)$ of section 6, and section 7 clips it. For a language
# model the answer $y$ is a sequence of tokens, $\log\pi_\theta(y) = \sum_t \log\pi_\theta(y_t\mid x_t)$,
# and PPO applies the same argument per token, with the advantage $\hat A_t$ of each token.
#
# ## 4. Returns and advantages
#
# In a response, the baseline becomes a learned value $V_w(x_t)$ per state (the expected
# reward-to-go from $x_t$), and the advantage asks, at each token, whether things went
# **better than expected**. The equation sheet subtracts it from the reward-to-go that was
# actually collected:
#
# $$\hat{A}_t \;=\; \sum_{t'=t}^T \gamma^{\,t'-t}r_\phi(x_{t'},y_{t'}) \;-\; V_w(x_t)$$
#
# This is the **Monte-Carlo** advantage: the reward-to-go is an actual sample, so it is unbiased
# but noisy. On five tokens with a score of $1.0$ at the end, a small KL penalty on every token
# (section 8) and some value estimates:

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
# ## 5. Generalised advantage estimation
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
r_seq = np.zeros(10)
r_seq[-1] = 1.0  # the reward model's score on the last token
V_seq = 0.5 + 0.04 * np.arange(10) + 0.05 * np.sin(np.arange(10))  # an imperfect value model
A_by_lam = {rf"$\lambda$ = {l_}": gae_advantages(r_seq[None], V_seq[None], 1.0, l_)[0][0]
            for l_ in (0.0, 0.5, 0.95, 1.0)}
plot_curves({label: (np.arange(10), A) for label, A in A_by_lam.items()}, style="o-",
            hlines={"": 0.0}, xlabel="response token t", ylabel=r"advantage $A_t$",
            title=r"GAE per token: $\lambda$ = 1 is Monte-Carlo, $\lambda$ = 0 is one-step TD")
plt.show()
np.testing.assert_allclose(A_by_lam[r"$\lambda$ = 1.0"], 1.0 - V_seq, rtol=1e-12)

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
# a truncated row should *bootstrap* from it. Only the last TD error changes,
# $\delta_T = r_T + \gamma V(s_{T+1}) - V(s_T)$, and the recursion carries the difference back:
# every $A_t$ of the row gains $(\gamma\lambda)^{T-t}\,\gamma V(s_{T+1})$. The same five tokens,
# now cut off, with the value model expecting a little more to come:

# %%
V_boot = 0.6  # V(s_{T+1}): the value of the state after the last (cut-off) token
n = len(r)
A_trunc, _ = gae_by_hand(r + np.eye(n)[-1] * gamma * V_boot, V, gamma, lam)  # r_T + gamma V_boot
print("A_t terminated:", A_gae)
print("A_t truncated :", A_trunc)
np.testing.assert_allclose(
    A_trunc - A_gae, (gamma * lam) ** np.arange(n)[::-1] * gamma * V_boot, rtol=1e-12
)
A_lib, _ = gae_advantages(r[None], V[None], gamma, lam, truncated=[True], bootstrap_values=[V_boot])
np.testing.assert_allclose(A_lib[0], A_trunc, rtol=1e-12)
cut = truncated_rows(gen.tokens, gen.response_mask, tok.end_id)
print(f"of the reference's 512 samples in section 1, {cut.sum()} were truncated ({cut.mean():.1%})")
assert cut.mean() < 0.05  # rare here: the task leaves room after its longest response

# %% [markdown]
# Rare on this task, so the choice barely matters here; with a tight length limit it can touch
# a large share of the batch. TRL's `PPOTrainer` treats every response as terminated and offers
# `missing_eos_penalty` instead (a constant subtracted from the score of each response without
# END, which teaches the policy to finish). minialign's loops do the same by default
# (`truncation="terminal"`); `PPOConfig(truncation="bootstrap")` reads $V(s_{T+1})$ from the
# value model, and both PPO and GRPO accept `missing_eos_penalty`
# (docs/implementation_notes.md, PPO 2).
#
# ## 6. The probability ratio
#
# Section 3 showed why the ratio appears: the update reuses the rollout for several gradient
# steps, so the policy being trained, $\pi_\theta$, drifts away from the one that sampled the
# data, $\pi_{\theta_{\rm old}}$. Per token, the equation sheet writes it (1 before the first step):
#
# $$r_{\theta}(x,y) \;=\; \frac{\pi_\theta(y_t\!\mid\!x_t)}{\pi_{\theta_{\rm old}}(y_t\!\mid\!x_t)}$$
#
# (This $r_\theta$ is a ratio, not a reward: we call it `ratio` in code.) minialign computes it
# as $\exp(\log\pi_\theta - \log\pi_{\theta_{\rm old}})$:

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
# is an ordinary number:

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
# minialign also clamps the log-ratio at $\pm 20$ before `exp`, so a wild policy cannot
# overflow, and beyond the clamp that token's gradient is 0. That is a guard, not part of PPO,
# and it is not "what the clip would do anyway". With $\hat A > 0$ and a ratio far above
# $1 + \epsilon$ the clip has indeed already zeroed the gradient. With $\hat A < 0$ it has not:
# there the *unclipped* term $r\hat A$ is the smaller one and wins the min, so the gradient is
# $r\hat A$, and only the clamp stops it (docs/implementation_notes.md, KL 3). One token each:

# %%
print(f"{'log-ratio':>9}{'A':>6}  d loss / d log pi_theta")
grads = {}
for log_ratio, adv in ((19.0, +1.0), (19.0, -1.0), (25.0, -1.0)):
    lp = ma.tensor([log_ratio], requires_grad=True)
    ppo_clip_loss(lp, [0.0], [adv], 0.2).backward()
    grads[log_ratio, adv] = lp.grad[0]
    print(f"{log_ratio:9.0f}{adv:+6.0f}  {lp.grad[0] + 0.0:.4g}")
assert grads[19.0, +1.0] == 0.0  # A > 0, ratio e^19 >> 1.2: the clip binds
np.testing.assert_allclose(grads[19.0, -1.0], np.exp(19.0), rtol=1e-12)  # A < 0: r A wins
assert grads[25.0, -1.0] == 0.0  # beyond the clamp only

# %% [markdown]
# ## 7. The clipped objective
#
# Section 3's surrogate $\mathbb{E}_{\pi_{\theta_{\rm old}}}[r_\theta \hat A]$ has the policy
# gradient as its gradient, but only the old samples vouch for it: maximised without limit it
# would push the ratio as far as the advantages say, far outside the region where those samples
# say anything reliable. PPO removes the incentive to go further than $1 \pm \epsilon$:
#
# $$L^{\text{CLIP}}(\theta) \;=\; -\mathbb{E}_{x,y \sim \pi_{\theta_{\text{old}}}}\Big[\min\big(r_{\theta}(x,y)\,\hat{A}_t,\;\mathrm{clip}(r_{\theta}(x,y),\,1-\epsilon,\,1+\epsilon)\,\hat{A}_t\big)\Big]$$
#
# The equation sheet writes it with a leading minus, so it is already a loss to minimise (and
# so is `ppo_clip_loss`). The `min` picks the more pessimistic of the two terms. For
# $\hat{A} > 0$ the objective stops rising once the ratio passes $1 + \epsilon$; for
# $\hat{A} < 0$ it stops rising once the ratio falls below $1 - \epsilon$. There the gradient is
# exactly zero. The shaded regions are where autograd, through `ppo_clip_loss` itself, returns
# a zero gradient. Above the figure, in a live notebook (JupyterLab, or the browser site), a
# slider sets $\epsilon$ (GitHub shows $\epsilon = 0.2$). Move it and watch the objective turn
# flat at $1 \pm \epsilon$, with the shaded region following the edge: the smaller
# $\epsilon$, the more of these ratios get no gradient at all (the cell prints how many).

# %%
eps = 0.2
grid = np.linspace(0.3, 1.7, 281)


def zero_gradient(ratios, adv, epsilon):
    """Where d L^CLIP / d log pi_theta is exactly 0, measured with autograd."""
    logp = ma.tensor(np.log(ratios), requires_grad=True)  # one "token" per ratio value
    ppo_clip_loss(logp, np.zeros_like(ratios), np.full_like(ratios, adv), epsilon).backward()
    return logp.grad == 0.0


def clipped_objective(axes, epsilon):
    for ax, adv in zip(axes, (1.0, -1.0)):
        plot_clipped_surrogate(grid, adv, epsilon, zero_gradient(grid, adv, epsilon), ax=ax)


interactive_figure(clipped_objective, ncols=2, epsilon=Slider(eps, 0.05, 0.5, 0.05, label="ε"))
blocked = {}
for epsilon in (0.05, eps, 0.5):  # the slider's ends and its start
    for adv in (1.0, -1.0):  # the zero-gradient region is exactly where the clip binds
        zero_grad = zero_gradient(grid, adv, epsilon)
        assert np.array_equal(zero_grad, grid > 1 + epsilon if adv > 0 else grid < 1 - epsilon)
    blocked[epsilon] = zero_grad.mean()
    print(f"epsilon = {epsilon:4}: zero gradient on {blocked[epsilon]:.0%} of the ratios drawn")
assert blocked[0.05] > blocked[eps] > blocked[0.5]

# %% [markdown]
# Note what the clip does *not* do: with $\hat{A} > 0$ and a ratio that has fallen below
# $1 - \epsilon$ (the update made a good token less likely), the gradient is still there, pulling
# the ratio back up. The clip only removes the incentive to overshoot.
#
# The source behind the equation sheet says this objective "enforces" a trust region of size
# $\epsilon$. It does not enforce anything: nothing stops a ratio from leaving $1 \pm \epsilon$
# (several gradient steps on one batch move it wherever they move it, and section 10 counts the
# tokens that left), and once it has left on the side its advantage pushes toward, the clip
# simply stops pushing. TRPO enforces a KL constraint; PPO's clip only removes the incentive
# to cross it.
#
# Now by hand on six tokens, including both binding cases. Each token's term is
# $\min(r\hat A, \mathrm{clip}(r)\hat A)$; its derivative with respect to $\log\pi_\theta$ is
# $r\hat A$ when the unclipped term is the smaller one, and 0 when the clipped (constant) term is.

# %%
ratios6 = np.array([0.50, 0.90, 1.00, 1.30, 1.50, 0.70])
adv6 = np.array([1.0, -1.0, 2.0, 1.0, -0.5, -2.0])
logp_old6 = np.log(np.array([0.2, 0.4, 0.1, 0.3, 0.05, 0.5]))
logp_new6 = logp_old6 + np.log(ratios6)

clipped = np.clip(ratios6, 1 - eps, 1 + eps)
terms = np.minimum(ratios6 * adv6, clipped * adv6)
binding = clipped * adv6 < ratios6 * adv6  # the constant, clipped term wins the min
loss_by_hand = -terms.mean()
grad_by_hand = np.where(binding, 0.0, -ratios6 * adv6 / len(ratios6))  # d loss / d log pi
print("ratio        :", ratios6)
print("advantage    :", adv6)
print("clip binds   :", binding)
print(f"L^CLIP by hand = {loss_by_hand:.6f}")

logp_new = ma.tensor(logp_new6, requires_grad=True)
loss = ppo_clip_loss(logp_new, logp_old6, adv6, eps)
loss.backward()
print(f"objectives.ppo_clip_loss = {loss.item():.6f}")
print("autograd gradient :", logp_new.grad)
np.testing.assert_allclose(loss.item(), loss_by_hand, rtol=1e-12)
np.testing.assert_allclose(logp_new.grad, grad_by_hand, rtol=1e-10, atol=1e-15)
assert (logp_new.grad[binding] == 0).all() and (logp_new.grad[~binding] != 0).all()
print("clip fraction (|r - 1| > eps):", clip_fraction(logp_new6, logp_old6, eps))
assert clip_fraction(logp_new6, logp_old6, eps) == 4 / 6 and binding.sum() == 2

# %% [markdown]
# Tokens 3 (ratio 1.3, $\hat A > 0$) and 5 (ratio 0.7, $\hat A < 0$) went past the clip in the
# direction their advantage pushes: zero gradient. Tokens 0 (ratio 0.5, $\hat A > 0$) and 4
# (ratio 1.5, $\hat A < 0$) are outside $1 \pm \epsilon$ too, but on the other side, so the
# *unclipped* term is the smaller one and the loss keeps pulling them back. `clip_fraction`
# (CleanRL's `clipfrac`) counts every ratio outside $1 \pm \epsilon$: 4 of 6 here, although only
# two tokens have their gradient blocked.
#
# ## 8. The KL-penalised reward
#
# A policy that only chases $r_\phi$ will find the reward model's blind spots (notebook 06). So
# the objective RLHF actually maximises subtracts a penalty for drifting away from the reference
# model $\pi_{\rm ref}$ (the pre-trained policy PPO started from):
#
# $$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta\cdot\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$
#
# (The source writes "$\beta.\,\mathrm{KL}$"; the dot is a typo for a product.) For a policy
# over a handful of answers both terms are exact sums, and `kl_regularized_objective` computes
# them (notebook 07 takes this much further):

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
assert np.mean(by_hand["k1"] < 0) > 0.2 and (by_hand["k3"] >= 0).all()

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
beta_tok = 0.1
k1 = logp_pol - logp_ref_tok
rewards_by_hand = -beta_tok * k1 * mask
rewards_by_hand[0, 3] += score[0]  # last valid token of row 0
rewards_by_hand[1, 1] += score[1]  # last valid token of row 1
rewards_lib = kl_penalized_rewards(score, logp_pol, logp_ref_tok, beta_tok, mask)
print(rewards_lib)
np.testing.assert_allclose(rewards_lib, rewards_by_hand, rtol=1e-12)
np.testing.assert_allclose(rewards_lib.sum(1), score - beta_tok * (k1 * mask).sum(1), rtol=1e-12)
assert k1[0, 0] < 0 and rewards_lib[0, 0] > 0  # the "penalty" of row 0's first token is a bonus

# %% [markdown]
# Row 0's first token (and row 1's second) is more likely under the reference than under the
# policy, so its $k_1$ is negative and its "penalty" is a small bonus.
#
# ## 9. KL estimators as losses: which KL each one regularises
#
# Section 8 put $k_1$ into the **reward**. There it is a number, and the policy gradient of
# section 3 does the differentiating: $\mathbb{E}[(r_\phi - \beta k_1)\nabla\log\pi_\theta]$, and
# since $\mathbb{E}[k_1\nabla\log\pi_\theta] = \nabla\mathrm{KL}(\pi_\theta\|\pi_{\rm ref})$ (the
# second term of the KL's gradient is $\mathbb{E}[\nabla\log\pi_\theta] = 0$), that is exactly
# $\nabla J$. GRPO (notebook 04, section 7) instead adds $\beta k_3$ to the **loss** and lets
# autograd differentiate it through $\log\pi_\theta(y)$, the samples $y$ held fixed. Then the
# three estimators part ways. With $\nabla\log\rho = -\nabla\log\pi_\theta$ and $y \sim \pi_\theta$:
#
# | used as a loss | gradient of one sample | expected gradient |
# |---|---|---|
# | $k_1 = -\log\rho$ | $\nabla\log\pi_\theta(y)$ | $0$: the score has mean 0 (section 3) |
# | $k_2 = \tfrac12(\log\rho)^2$ | $-\log\rho\;\nabla\log\pi_\theta(y)$ | $\mathbb{E}[(\log\pi_\theta - \log\pi_{\rm ref})\nabla\log\pi_\theta] = \nabla\mathrm{KL}(\pi_\theta\|\pi_{\rm ref})$ |
# | $k_3 = (\rho - 1) - \log\rho$ | $(1 - \rho)\;\nabla\log\pi_\theta(y)$ | $-\sum_y \pi_{\rm ref}(y)\nabla\log\pi_\theta(y) = \nabla\mathrm{KL}(\pi_{\rm ref}\|\pi_\theta)$ |
#
# So $k_2$, the *biased* estimate of the KL's value, has the gradient of the KL in $J$, while
# $k_3$, unbiased in value, differentiates to the gradient of the **other** KL, the forward one
# (docs/implementation_notes.md, KL 2; TRL issue #4967). Measured on the 4-answer policy of
# section 8 with autograd through `kl_penalty`: the exact expectation
# $\sum_y \pi_\theta(y)\nabla k(y)$ (the weights $\pi_\theta(y)$ held constant, as sampling
# holds them), the average over 20,000 samples, and the gradients of the two exact KLs:


# %%
def expected_grad(name, samples=None):
    """d/d logits of E_pi[k(y)] with the weights pi fixed, or of the mean of k over samples."""
    z = ma.tensor(logits_theta, requires_grad=True)
    logp_all = F.log_softmax(z)  # log pi_theta of every answer, with gradient
    if samples is None:
        k_loss = (pi * kl_penalty(logp_all, np.log(pi_ref), name)).sum()
    else:
        k_loss = kl_penalty(logp_all[samples], np.log(pi_ref)[samples], name).mean()
    k_loss.backward()
    return z.grad


z = ma.tensor(logits_theta, requires_grad=True)
categorical_kl(z, logits_ref).backward()
grad_reverse = z.grad  # grad KL(pi_theta || pi_ref): the KL in J
z = ma.tensor(logits_theta, requires_grad=True)
categorical_kl(logits_ref, z).backward()
grad_forward = z.grad  # grad KL(pi_ref || pi_theta)
print(f"{'':22}{'d/d logit 0..3':>40}")
for name in ("k1", "k2", "k3"):
    print(f"E[grad {name}] exact     {expected_grad(name)}")
    print(f"E[grad {name}] 20k draws {expected_grad(name, y)}")
    assert np.abs(expected_grad(name, y) - expected_grad(name)).max() < 0.01
print(f"grad KL(pi || ref)    {grad_reverse}")
print(f"grad KL(ref || pi)    {grad_forward}")
np.testing.assert_allclose(expected_grad("k1"), 0.0, atol=1e-15)
np.testing.assert_allclose(expected_grad("k2"), grad_reverse, rtol=1e-10)
np.testing.assert_allclose(expected_grad("k3"), grad_forward, rtol=1e-10)

# %% [markdown]
# **Where each one pulls the policy.** Gradient ascent on $\mathbb{E}_{\pi_\theta}[r_\phi] -
# \beta\,(\text{KL term})$ with the exact expected gradients (no sampling noise), from
# $\pi_{\rm ref}$, $\beta = 0.5$, four ways: $k_1$ in the reward (PPO), and $k_1$, $k_2$, $k_3$ as
# losses. Two closed forms to compare with. The maximiser of $\mathbb{E}[r] -
# \beta\,\mathrm{KL}(\pi\|\pi_{\rm ref})$ is $\pi^* \propto \pi_{\rm ref}\,e^{r/\beta}$
# (`kl_regularized_optimum`; notebook 07 derives it). The maximiser of $\mathbb{E}[r] -
# \beta\,\mathrm{KL}(\pi_{\rm ref}\|\pi)$ sets the derivative of its Lagrangian to zero,
# $r(y) + \beta\,\pi_{\rm ref}(y)/\pi(y) = c$ for every $y$, so
# $\pi(y) = \beta\,\pi_{\rm ref}(y)/(c - r(y))$ with $c > \max_y r(y)$ chosen so the probabilities
# sum to 1 (found by bisection).

# %%
def ascend(kind, steps=1500, lr=1.0):
    """Gradient ascent on the logits, from pi_ref, with the exact expected gradient."""
    z_np = logits_ref.copy()
    for _ in range(steps):
        z = ma.tensor(z_np, requires_grad=True)
        logp_all = F.log_softmax(z)
        p = np.exp(logp_all.data)  # pi_theta, constant: the sampling weights
        if kind == "k1 in the reward":  # PPO: sum_y pi(y) (r - beta k1(y)) grad log pi(y)
            shaped = r_phi - beta * (logp_all.data - np.log(pi_ref))
            objective = (p * shaped * logp_all).sum()
        else:  # E[r], minus beta times the estimator used as a loss
            k = kl_penalty(logp_all, np.log(pi_ref), kind.split()[0])
            objective = (F.softmax(z) * r_phi).sum() - beta * (p * k).sum()
        objective.backward()
        z_np = z_np + lr * z.grad
    return np.exp(z_np) / np.exp(z_np).sum()


pi_star, _ = kl_regularized_optimum(logits_ref, r_phi, beta)  # reverse-KL optimum
low, high = r_phi.max(), r_phi.max() + beta  # sum_y beta pi_ref / (c - r) falls through 1 here
for _ in range(100):
    c = (low + high) / 2
    low, high = (c, high) if (beta * pi_ref / (c - r_phi)).sum() > 1 else (low, c)
pi_forward = beta * pi_ref / (c - r_phi)  # forward-KL optimum
np.testing.assert_allclose(pi_forward.sum(), 1.0, rtol=1e-12)


def kl(p, q):
    return float(np.sum(p * np.log(p / q)))


reached = {kind: ascend(kind) for kind in
           ("k1 in the reward", "k1 as a loss", "k2 as a loss", "k3 as a loss")}
print(f"{'':22}{'pi over the 4 answers':>28}{'E[r]':>8}{'KL(pi||ref)':>13}{'KL(ref||pi)':>13}")
for name, p in dict(reached, **{"pi* (reverse KL)": pi_star,
                                "forward-KL optimum": pi_forward}).items():
    print(f"{name:22}{np.array2string(p, precision=3):>28}{p @ r_phi:8.3f}"
          f"{kl(p, pi_ref):13.3f}{kl(pi_ref, p):13.3f}")
np.testing.assert_allclose(reached["k1 in the reward"], pi_star, atol=1e-6)
np.testing.assert_allclose(reached["k2 as a loss"], pi_star, atol=1e-6)
np.testing.assert_allclose(reached["k3 as a loss"], pi_forward, atol=1e-6)
assert reached["k1 as a loss"][0] > 0.99  # no regularisation at all: the best answer takes over
assert pi_forward[1] > 2 * pi_star[1]  # the forward KL keeps more of what the reference likes

# %% [markdown]
# $k_1$ in the reward (PPO) and $k_2$ as a loss land on $\pi^*$, the optimum of $J$ with its
# reverse KL. $k_3$ as a loss (GRPO) lands on the optimum of the **forward** KL instead: it keeps
# more than twice as much mass on answer 1, which the reference likes and the reward dislikes,
# because $\pi_{\rm ref}\log(\pi_{\rm ref}/\pi)$ charges the policy for *dropping* what the
# reference does. $k_1$ as a loss regularises nothing: the best answer takes over, as with
# $\beta = 0$. Near $\pi_{\rm ref}$ the two KLs agree to second order, which is why GRPO's $k_3$
# works in practice; far from it they pull toward different policies.
#
# So **PPO's $\beta$ and GRPO's $\beta$ are different knobs**: PPO's weighs $k_1$ summed over a
# response inside the reward (the reverse KL of $J$); GRPO's weighs $k_3$ *averaged over tokens*
# inside the loss (the forward KL, and per token: notebook 04, section 7). Comparing the two
# methods "at the same $\beta$" compares different things.
#
# ## 10. One PPO iteration by hand
#
# `train_ppo` (section 11) repeats one iteration of the stages above. Here that iteration is
# written out with nothing but `minialign.objectives`, `generate`/`sequence_logprobs` and the
# optimiser, on 16 prompts scored with the task's true reward (section 11 uses a learned reward
# model instead). The stages (docs/implementation_notes.md, PPO 1–9):
#
# 1. **Rollout** from $\pi_{\theta_{\rm old}}$ without gradient: keep $\log\pi_{\theta_{\rm old}}$
#    and $\log\pi_{\rm ref}$ of every sampled token, the score $r_\phi$ of every response, and the
#    old values $V(x_t)$ from the value model (the reference's trunk with a zero head).
# 2. **KL-shaped rewards** (section 8), then **GAE** and the returns (section 5), on the
#    response columns of the (B, T-1) layout (section 2).
# 3. **Whiten** the advantages over the batch's valid tokens.
# 4. **Minibatch epochs**: 2 passes over the batch, each reshuffled and cut into 2 minibatches,
#    each minibatch one step on $L^{\rm CLIP} + c_V L^V$ ($c_V = 0.5$) with the **clipped
#    value loss**
#    $$L^V = \tfrac12\,\mathbb{E}_t\Big[\max\big((V - R)^2,\ (\mathrm{clip}(V, V_{\rm old}-\epsilon_v, V_{\rm old}+\epsilon_v) - R)^2\big)\Big],$$
#    which, like the ratio's clip, takes away the incentive for a value to move more than
#    $\epsilon_v$ from its old estimate on one batch.
# 5. **AdamW step** for each network, after clipping each one's gradient norm to 1.
#
# One generator feeds every random choice in the library's order (prompts, samples, shuffles).

# %%
config = PPOConfig(batch_size=16, num_mini_batches=2, epochs=2, learning_rate=1e-3, beta=0.05)
policy = copy.deepcopy(reference).requires_grad_(True)  # theta_old = the reference, to start
value_model = ValueModel.from_policy(reference, rng=np.random.default_rng(0))  # zero head
policy_opt = AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
value_opt = AdamW(value_model.parameters(), lr=config.learning_rate, weight_decay=0.0)
rng = np.random.default_rng(30)

# 1. rollout, no gradient. tokens (B, T); the rest (B, T-1): column t belongs to token t+1
with ma.no_grad():
    gen_it = generate(policy, task.sample_prompts(config.batch_size, rng), **GEN, rng=rng)
    tokens, mask, logp_old = gen_it.tokens, gen_it.response_mask[:, 1:], gen_it.logprobs
    logp_ref = sequence_logprobs(reference, tokens, gen_it.response_mask).per_token.data
    old_values = value_model(tokens[:, :-1]).data * mask  # V of the state before each token
scores_it = task.true_reward(tokens, gen_it.response_mask)  # r_phi(x, y) per response

# 2. KL-shaped rewards and GAE on the response columns
resp = slice(gen_it.prompt_length - 1, None)
shaped = np.zeros(mask.shape, np.float32)
shaped[:, resp] = kl_penalized_rewards(scores_it, logp_old[:, resp], logp_ref[:, resp],
                                       config.beta, mask[:, resp])
advantages, returns = np.zeros_like(shaped), np.zeros_like(shaped)
advantages[:, resp], returns[:, resp] = gae_advantages(shaped[:, resp], old_values[:, resp],
                                                       config.gamma, config.lam, mask[:, resp])
# 3. whiten over every valid token of the batch (returns stay as they are: the value targets)
advantages = whiten(advantages, mask)
print(f"{mask.sum()} response tokens; mean score {scores_it.mean():+.3f}; old values all 0:",
      (old_values == 0).all())
assert (old_values == 0).all()  # the fresh critic's zero head (PPO 5)

# %%
eps_v = config.cliprange_value
steps_log = []
for epoch in range(config.epochs):
    order = rng.permutation(config.batch_size)  # 4. reshuffled every epoch
    for rows in np.split(order, config.num_mini_batches):
        m = mask[rows]
        logp = sequence_logprobs(policy, tokens[rows], gen_it.response_mask[rows]).per_token
        policy_loss = ppo_clip_loss(logp, logp_old[rows], advantages[rows], config.epsilon, m)
        V_new, V_old, R_t = value_model(tokens[rows, :-1]), old_values[rows], returns[rows]
        V_clip = V_old + ma.clip(V_new - V_old, -eps_v, eps_v)
        v_loss = 0.5 * (ma.maximum((V_new - R_t) ** 2, (V_clip - R_t) ** 2) * m).sum() / m.sum()
        np.testing.assert_allclose(v_loss.item(), value_loss(V_new, V_old, R_t, eps_v, m).item(),
                                   rtol=1e-6)
        loss = policy_loss + config.vf_coef * v_loss
        policy_opt.zero_grad()
        value_opt.zero_grad()
        loss.backward()
        for opt, model in ((policy_opt, policy), (value_opt, value_model)):  # 5.
            clip_grad_norm(model.parameters(), config.max_grad_norm)
            opt.step()
        steps_log.append(dict(epoch=epoch, rows=rows, policy_loss=policy_loss.item(),
                              value_loss=v_loss.item(),
                              ratio_dev=np.abs(np.exp(logp.data - logp_old[rows]) - 1)[m].max(),
                              clip_fraction=clip_fraction(logp.data, logp_old[rows],
                                                          config.epsilon, m)))
print(f"{'epoch':>5}{'L^CLIP':>10}{'L^V':>9}{'max |ratio-1|':>15}{'clip fraction':>15}")
for s in steps_log:
    print(f"{s['epoch']:5d}{s['policy_loss']:+10.4f}{s['value_loss']:9.4f}"
          f"{s['ratio_dev']:15.2e}{s['clip_fraction']:15.3f}")
first = steps_log[0]
assert first["ratio_dev"] < 1e-5 and first["clip_fraction"] == 0.0  # theta = theta_old
R_0, m_0 = returns[first["rows"]], mask[first["rows"]]
np.testing.assert_allclose(first["value_loss"], 0.5 * np.mean(R_0[m_0] ** 2), rtol=1e-5)  # V = 0

# %% [markdown]
# And one seeded `ppo_iteration` (`minialign.train.ppo`), from a fresh copy of the same start,
# with a generator in the same state:

# %%
state = PPOState.create(copy.deepcopy(reference).requires_grad_(True), reference, config)
ppo_iteration(state, task.true_reward, task.sample_prompts, sampling, config,
              np.random.default_rng(30))
fresh_critic = ValueModel.from_policy(reference, rng=np.random.default_rng(0))
for name, mine, lib, start in (("policy", policy, state.policy, reference),
                               ("value model", value_model, state.value_model, fresh_critic)):
    pairs = list(zip(mine.parameters(), lib.parameters(), start.parameters()))
    bitwise = all(np.array_equal(p.data, q.data) for p, q, _ in pairs)
    moved = max(np.abs(p.data - s.data).max() for p, _, s in pairs)
    print(f"{name:12}: bitwise equal to ppo_iteration's: {bitwise}; largest change in the"
          f" iteration {moved:.2e}")
    assert bitwise and moved > 1e-4

# %% [markdown]
# Bitwise equal, not just close: the same operations in the same order on the same float32
# numbers give the same bits, and one BLAS thread fixes the order of every sum. So those ~50
# lines *are* PPO's iteration; `ppo_iteration` only adds logging and options that are off here
# (an entropy bonus, an early stop on a target KL, the adaptive $\beta$, bootstrapped
# truncation).
#
# Three things the log above shows, each of which puzzles people the first time:
#
# * **On the first minibatch the ratio is 1** (up to the rounding between the sampler's
#   cached pass and the full forward pass), so nothing is clipped and $L^{\rm CLIP}$ is the
#   plain policy gradient with a baseline. With one epoch and one minibatch per batch that is
#   every step; the clip only starts to act from the second step on the same batch.
# * **The value head starts at 0** (docs/implementation_notes.md, PPO 5), so the first
#   advantages are the penalised rewards-to-go themselves, as noisy as Monte-Carlo ones, and
#   the first value loss is $\tfrac12\mathbb{E}[R_t^2]$ (asserted above). The critic has to
#   learn before GAE's baseline helps.
# * **Nothing keeps the ratio inside $1 \pm \epsilon$.** After the four steps, measured on the
#   whole batch:

# %%
with ma.no_grad():
    logp_after = sequence_logprobs(policy, tokens, gen_it.response_mask).per_token.data
outside = clip_fraction(logp_after, logp_old, config.epsilon, mask)
print(f"after one iteration, {outside:.1%} of the batch's tokens have |ratio - 1| > {config.epsilon}")
assert outside > 0

# %% [markdown]
# ## 11. A full PPO run
#
# Now all of it, 40 times over, on the sentiment task. The reward PPO optimises is a **learned
# reward model** (the proxy), trained for a few seconds with Bradley–Terry on 2,000 preference
# pairs labelled by a simulated annotator with $\beta_{\rm BT} = 8$ (notebook 02 does this step
# slowly). We measure progress with the task's **true reward** on 128 held-out prompts, through
# `make_eval_fn`, the yardstick every method in minialign shares.

# %%
rng = np.random.default_rng(0)
pairs = task.make_preference_pairs(2000, rng, beta_bt=8.0)
rm = RewardModel.from_policy(reference, rng=rng)
rm_history = train_reward_model(rm, pairs, RewardConfig(steps=200, batch_size=64,
                                learning_rate=3e-3), rng=rng, progress=False)
proxy = reward_fn(rm)  # (tokens, response_mask) -> r_phi(x, y), no gradient
print(f"reward model: training accuracy over the last 20 steps "
      f"{rm_history['accuracy'][-20:].mean():.3f}")

policy = copy.deepcopy(reference).requires_grad_(True)  # the reference stays frozen
eval_prompts = task.sample_prompts(128, np.random.default_rng(10))
eval_fn = make_eval_fn(policy, reference, eval_prompts, task.true_reward, sampling, seed=11,
                       reward_model=proxy)
config = PPOConfig(steps=40, batch_size=64, num_mini_batches=2, epochs=2, learning_rate=1e-3,
                   beta=0.05, eval_steps=4)
history = train_ppo(policy, reference, proxy, task.sample_prompts, sampling, config,
                    rng=np.random.default_rng(12), eval_fn=eval_fn, progress=False)
print(f"true reward {history['eval_true_reward'][0]:+.3f} -> {history.last('eval_true_reward'):+.3f}"
      f", KL to the reference {abs(history['eval_kl'][0]):.3f} -> {history.last('eval_kl'):.3f} nats")
print(f"proxy reward r_phi {history['eval_proxy_reward'][0]:+.2f} -> "
      f"{history.last('eval_proxy_reward'):+.2f}")
plot_history_grid(history, [
    ("eval_true_reward", "True reward on held-out prompts", "mean true reward"),
    (["kl", "eval_kl"], r"KL($\pi_\theta \| \pi_{ref}$) per response", "nats"),
    ("clip_fraction", r"Share of tokens with $|r_\theta - 1| > \epsilon$", "clip fraction"),
    ("value_loss", "Value loss", "value loss"),
])
plt.show()
assert history.last("eval_true_reward") > history["eval_true_reward"][0] + 0.3
assert history.last("eval_kl") > 2.0  # several nats
assert history.last("eval_proxy_reward") - history["eval_proxy_reward"][0] > 2.0  # proxy: further
v_loss_curve = history["value_loss"]
assert v_loss_curve.max() > 2 * v_loss_curve[0] and v_loss_curve[-5:].mean() < v_loss_curve[0]

# %% [markdown]
# The true reward climbs from about 0 to nearly its maximum of 1, while the KL to the reference
# grows to several nats per response. The proxy reward rose much further: a reward model's
# scale is arbitrary, as only differences of scores are trained. The clip fraction is not zero
# because each batch is used for two epochs of two minibatches. The value loss first *rises*:
# the critic starts at 0 and the rewards it must predict grow as the policy improves; once the
# policy settles, the critic catches up.
#
# The policy found the proxy's favourite: one strong positive adjective, nearly every time. As
# in section 8, $k_1$ is negative wherever a sampled token is likelier under the reference than
# under the policy. That is common while the policy is close to the reference (here after 3
# iterations) and rare once it has moved far:

# %%
early = copy.deepcopy(reference).requires_grad_(True)
train_ppo(early, reference, proxy, task.sample_prompts, sampling,
          dataclasses.replace(config, steps=3), rng=np.random.default_rng(12), progress=False)
negative_share = {}
for name, model in (("after 3 iterations", early), ("after 40 iterations", policy)):
    ro = collect_rollout(model, reference, task.true_reward, eval_prompts, sampling,
                         np.random.default_rng(13))
    k1_tok = (ro.logp_old - ro.logp_ref)[ro.mask]  # per token
    negative_share[name] = np.mean(k1_tok < 0)
    samples = tok.decode_batch(ro.tokens, ro.response_mask)
    print(f"{name}: e.g. {samples[:3]}")
    print(f"   k1 < 0 on {np.mean(k1_tok < 0):.0%} of tokens and {np.mean(ro.kl < 0):.0%} of"
          f" responses; mean KL per response {ro.kl.mean():.3f} nats")
one_word = np.mean([len(text.split()) == 1 for text in samples])
print(f"one-word responses after 40 iterations: {one_word:.0%}")
assert one_word > 0.8  # the proxy's favourite: one strong adjective
assert negative_share["after 3 iterations"] > 0.2 > 0.05 > negative_share["after 40 iterations"]

# %% [markdown]
# ## 12. Implementation details, and where they live
#
# The equations leave many choices open. These nine (docs/implementation_notes.md, PPO 1–9,
# after Ziegler et al., InstructGPT, CleanRL's "37 implementation details" and TRL) change
# results. Each is one or two lines of section 10, and of `minialign/train/ppo.py`:
#
# | # | Detail | Section 10 | `minialign/train/ppo.py` |
# |---|--------|------------|--------------------------|
# | 1 | Score on the last response token, $-\beta k_1$ on every token | stage 2 | `ppo_targets` → `kl_penalized_rewards` |
# | 2 | GAE with $V = 0$ after the end; returns $= A + V$ before whitening | stages 2–3 | `ppo_targets` → `gae_advantages` |
# | 3 | Whiten advantages over valid tokens (population variance) | stage 3 | `ppo_iteration`: `whiten(advantages, rollout.mask)` |
# | 4 | Clipped value loss | stage 4, `v_loss` | `ppo_loss`: `value_loss(..., config.cliprange_value, m)` |
# | 5 | Value head initialised to 0; no dropout | `ValueModel.from_policy` | `PPOState.create`; `training_mode(False, ...)` in `train_ppo` |
# | 6 | Log-probs for the loss at the sampling temperature | temperature 1 | `ppo_loss` → `policy_logprobs(..., config.temperature)` |
# | 7 | Pad token distinct from the end token | `GEN` | `Sampling` raises if `pad_id == stop_token` |
# | 8 | Adaptive KL coefficient (Ziegler et al.) | off | `ppo_iteration`: `state.kl_ctl.update(kl, ...)` |
# | 9 | Several epochs of shuffled minibatches; early stop on a target KL | stage 4 | `ppo_update`: `rng.permutation`; `approx_kl` against `config.target_kl` |
#
# `ppo_iteration` calls them as `collect_rollout` → `rollout_values` → `ppo_targets` → `whiten`
# → `ppo_update` (→ `ppo_loss`), the stages of section 10 in the same order.
#
# ## 13. Exercises
#
# Each exercise cell starts out calling the library, so the notebook runs as committed (and CI
# stays green); replace that line with your own code, and the cell after it checks your version
# against the library.
#
# **Exercise 1 (implement it): GAE for a padded batch.** Section 5's `gae_by_hand` handles one
# response. Write `my_gae` for a right-padded batch: one loop over time, vectorised over rows,
# with $V = 0$ and $A = 0$ after each row's last real token. Padding may hold anything, even NaN.
# Return the advantages and the returns $R = A + V$.


# %%
def my_gae(rewards, values, mask, gamma, lam):
    """GAE advantages and returns of a right-padded batch: (B, T) arrays, mask True at tokens."""
    # Your code here: replace the next line.
    return gae_advantages(rewards, values, gamma, lam, mask)


# %%
rng = np.random.default_rng(5)
mask_ex = np.arange(7)[None, :] < np.array([7, 3, 5, 1])[:, None]  # rows of 7, 3, 5, 1 tokens
rewards_ex = np.where(mask_ex, rng.normal(size=(4, 7)), np.nan)  # padding holds NaN ...
values_ex = np.where(mask_ex, rng.normal(size=(4, 7)), 9.0)  # ... or junk
for gamma_, lam_ in ((1.0, 0.95), (0.9, 0.0), (0.99, 1.0)):
    A_mine, R_mine = my_gae(rewards_ex, values_ex, mask_ex, gamma_, lam_)
    A_ref, R_ref = gae_advantages(rewards_ex, values_ex, gamma_, lam_, mask_ex)
    np.testing.assert_allclose(A_mine[mask_ex], A_ref[mask_ex], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(R_mine[mask_ex], R_ref[mask_ex], rtol=1e-10, atol=1e-12)
print("my_gae agrees with objectives.gae_advantages")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_gae(rewards, values, mask, gamma, lam):
#     r = np.where(mask, rewards, 0.0)  # padding -> 0 first, so NaN never reaches a sum
#     v = np.where(mask, values, 0.0)
#     v_next = np.concatenate([v[:, 1:], np.zeros((len(v), 1))], axis=1)  # V_{t+1}
#     delta = r + gamma * v_next - v  # 0 at padding; at a row's last token V_{t+1} = 0
#     A = np.zeros_like(delta)
#     running = np.zeros(len(delta))
#     for t in reversed(range(delta.shape[1])):
#         running = delta[:, t] + gamma * lam * running  # A_t = delta_t + gamma lam A_{t+1}
#         A[:, t] = running
#     return A * mask, (A + v) * mask
# ```
#
# Zeroing the padding first does two jobs: NaN never enters the arithmetic, and the value
# *after* each row's last token reads as 0 (it is that row's padding), so no per-row index is
# needed. Because rows are right-padded, the running sum is still 0 when the recursion reaches
# a row's last real token.
#
# </details>
#
# **Exercise 2 (find the bug).** This clipped loss passes every test whose ratios are 1, so it
# survives the first minibatch of every iteration. Find inputs where it is wrong, say which
# tokens it gets wrong and why, and write the corrected `fixed_clip_loss`.

# %%
def buggy_clip_loss(logp_new, logp_old, advantages, epsilon):
    ratio = np.exp(logp_new - logp_old)
    clipped = np.clip(ratio, 1 - epsilon, 1 + epsilon)
    return np.mean(np.minimum(-ratio * advantages, -clipped * advantages))


def fixed_clip_loss(logp_new, logp_old, advantages, epsilon):
    # Your code here: replace the next line with a corrected copy of buggy_clip_loss.
    return ppo_clip_loss(logp_new, logp_old, advantages, epsilon).item()


# %%
inside = (np.log([1.05, 0.9, 1.1]), np.zeros(3), np.array([1.0, -2.0, 0.5]))  # within 1 +- eps
outside = (logp_new6, logp_old6, adv6)  # the six tokens of section 7
for name, case in (("ratios inside the clip range", inside), ("section 7's six tokens", outside)):
    lib = ppo_clip_loss(*case, eps).item()
    print(f"{name:29}: library {lib:+.4f}  buggy {buggy_clip_loss(*case, eps):+.4f}"
          f"  yours {fixed_clip_loss(*case, eps):+.4f}")
    np.testing.assert_allclose(fixed_clip_loss(*case, eps), lib, rtol=1e-12)
np.testing.assert_allclose(buggy_clip_loss(*inside, eps), ppo_clip_loss(*inside, eps).item())
assert not np.isclose(buggy_clip_loss(*outside, eps), ppo_clip_loss(*outside, eps).item())

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# The minus sign moved inside the `min`: $\min(-a, -b) = -\max(a, b)$, so the buggy loss takes
# the *optimistic* term instead of the pessimistic one. Inside $1 \pm \epsilon$ the two terms
# are equal and nothing shows; outside it the bug inverts the clip. On section 7's tokens it
# clips tokens 0 and 4 (whose ratio moved against their advantage, and must keep their
# gradient) and lets tokens 3 and 5 run (whose clip should bind).
#
# ```python
# def fixed_clip_loss(logp_new, logp_old, advantages, epsilon):
#     ratio = np.exp(logp_new - logp_old)
#     clipped = np.clip(ratio, 1 - epsilon, 1 + epsilon)
#     return -np.mean(np.minimum(ratio * advantages, clipped * advantages))
# ```
#
# </details>
#
# **Exercise 3 (predict, then run).** Train section 11's PPO run with the KL coefficient
# $\beta = 2$ instead of 0.05. Before running it, predict what happens to the final true reward
# and to the KL. Why does it take a $\beta$ this large to make a difference?
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# strict = copy.deepcopy(reference).requires_grad_(True)
# h = train_ppo(strict, reference, proxy, task.sample_prompts, sampling,
#               dataclasses.replace(config, beta=2.0), rng=np.random.default_rng(12),
#               progress=False,
#               eval_fn=make_eval_fn(strict, reference, eval_prompts, task.true_reward, sampling,
#                                    seed=11))
# for name, hist in (("beta = 0.05 (section 11)", history), ("beta = 2", h)):
#     print(f"{name}: true reward {hist.last('eval_true_reward'):+.2f}, "
#           f"KL {hist.last('eval_kl'):.2f} nats")
# ```
#
# With $\beta = 2$ the run stops well short of the $\beta = 0.05$ run on both counts: every nat
# of KL now costs 2 units of reward, so the policy settles closer to the reference, with less
# reward and much less drift. The coefficient is measured in units of the reward model's
# score, and this proxy's scores span several units (section 11), so a $\beta$ of a few tenths
# changes the result much less. Sweeping $\beta$ traces the reward–KL frontier that
# `minialign demo` draws. (At the time of writing: $\beta = 0.05$ ended at a true reward of
# 1.00 and 4.5 nats, $\beta = 2$ at 0.59 and 1.4 nats, $\beta = 0.5$ at 0.94 and 3.3 nats.)
#
# </details>
#
# ## 14. Recap
#
# The equations, in the order one iteration uses them:
#
# | | |
# |---|---|
# | policy gradient | $\nabla_\theta J = \mathbb{E}_{y\sim\pi_\theta}[(r(y) - b)\,\nabla\log\pi_\theta(y)]$, any baseline $b$ |
# | importance ratio | $\nabla_\theta J = \nabla_\theta\,\mathbb{E}_{y\sim\pi_{\theta_{\rm old}}}[r_\theta(y)\,\hat A(y)]$, $r_\theta = \pi_\theta/\pi_{\theta_{\rm old}}$ |
# | KL-shaped reward | $r_t = -\beta\,(\log\pi_{\theta_{\rm old}}(y_t) - \log\pi_{\rm ref}(y_t)) + [t = T]\,r_\phi(x, y)$ |
# | GAE | $\delta_t = r_t + \gamma V_{t+1} - V_t$, $\hat A_t = \delta_t + \gamma\lambda \hat A_{t+1}$, $R_t = \hat A_t + V_t$ |
# | clipped policy loss | $L^{\rm CLIP} = -\mathbb{E}_t[\min(r_\theta\hat A_t,\ \mathrm{clip}(r_\theta, 1\pm\epsilon)\hat A_t)]$ |
# | clipped value loss | $L^V = \tfrac12\mathbb{E}_t[\max((V - R)^2, (\mathrm{clip}(V, V_{\rm old}\pm\epsilon_v) - R)^2)]$ |
#
# What to remember:
#
# 1. The policy gradient needs only samples and $\nabla\log\pi_\theta$. A baseline leaves it
#    unbiased ($\mathbb{E}[\nabla\log\pi_\theta] = 0$) and cut its variance over a hundredfold
#    on the bandit; the value model is that baseline, learned per state.
# 2. The ratio appears because one batch from $\theta_{\rm old}$ is reused for several steps. The
#    clip removes the incentive to push it past $1 \pm \epsilon$ but enforces nothing, and with
#    one step per batch it never binds.
# 3. $k_1$ in the reward pulls toward $\mathrm{KL}(\pi_\theta\|\pi_{\rm ref})$. As losses, $k_1$
#    pulls toward nothing, $k_2$ toward the same reverse KL, $k_3$ toward the forward KL: PPO's
#    $\beta$ and GRPO's $\beta$ are different knobs.
# 4. One iteration is rollout → KL-shaped rewards → values → GAE → whitening → minibatch epochs
#    of clipped policy and value loss → AdamW; written by hand it matches `ppo_iteration`
#    bitwise.
# 5. The critic starts at 0, so early advantages are Monte-Carlo noisy and the value loss rises
#    before it falls.
