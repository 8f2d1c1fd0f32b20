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
# # 05 · DPO: learning from preferences without a reward model
#
# PPO needs a trained reward model, a value network, sampling and a careful RL loop. Direct
# Preference Optimization (Rafailov et al. 2023) needs none of these: it fits the policy to the
# preference pairs directly with a logistic loss on log-probability ratios against a frozen
# reference model. (The source notes behind the equation sheet, `docs/equations.md`, call it
# "Direct *Policy* Optimization": a slip. The P is for *Preference*, the data it learns from.)
#
# This notebook first derives **why** that works: the KL-regularised objective that PPO
# maximises has a closed-form optimum, so a policy can stand in for a reward model, and the
# intractable normaliser of that optimum cancels in every Bradley–Terry comparison, leaving
# $L_{\rm DPO}$. Then it steps through the loss on concrete numbers, works out its gradient
# (which pairs get pushed, and how hard), reads the "implicit rewards" that trainers log, takes
# one DPO step by hand and checks it bit for bit against the library, and runs DPO on the
# sentiment task. Two experiments show its limits: on deterministic preferences the DPO margin
# never stops growing (IPO fixes that), and a bias of the annotators (here: a taste for long
# answers) passes straight into the trained policy.
#
# Runtime: about 15 seconds on a laptop CPU (2 cores), fully seeded.
#
# 1. The KL-regularised optimum and its partition function
# 2. Z cancels: from Bradley–Terry to the DPO loss
# 3. The log-ratio margin
# 4. The DPO loss
# 5. Stuck at 0.693: the loss when policy = reference
# 6. The gradient: which pairs get pushed
# 7. Implicit rewards
# 8. One DPO step by hand
# 9. DPO on the sentiment task
# 10. IPO: a margin that stops growing
# 11. DPO inherits the biases of its data: longer answers
# 12. Exercises
# 13. Recap
#
# ## Notation
#
# | Symbol | Meaning in this notebook | In code |
# |---|---|---|
# | $x$, $y$ | a prompt; a response (a whole sequence of tokens) | `prompt_ids`, `ids` |
# | $y^+$, $y^-$ | the preferred and the dispreferred response of a pair | `chosen`, `rejected` |
# | $\pi_\theta$, $\pi_{\rm ref}$ | the policy being trained; the frozen reference it starts from | `policy`, `reference` |
# | $\log\pi(y\mid x)$ | log-probability of a whole response, **summed** over its tokens | `*_logps` |
# | $r(x, y)$ | a reward; DPO never sees it, only comparisons it explains | `r` |
# | $J(\pi)$ | the KL-regularised objective $\mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi \Vert \pi_{\rm ref})$ | `kl_regularized_objective` |
# | $\beta$ | the KL coefficient of $J$, which is **the DPO paper's $\beta$**, $= 1/\tau$ | `beta` (TRL's `DPOConfig.beta`) |
# | $\tau$ | the source's DPO temperature, $\tau = 1/\beta$ | `tau`, `DPOConfig.tau` |
# | $\pi^*$, $Z(x)$ | the maximiser of $J$; its normaliser (partition function) $\sum_y \pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}$ | `kl_regularized_optimum` |
# | $\Delta_\theta$ | the log-ratio margin of a pair (section 3) | `delta`, `dpo_delta` |
# | $\sigma(z)$ | the logistic function $1/(1+e^{-z})$ | |
# | $\hat r(x, y)$ | the implicit reward $\frac1\tau\log\frac{\pi_\theta(y\mid x)}{\pi_{\rm ref}(y\mid x)}$ | `implicit_rewards` |
# | $\beta_{BT}$ | the simulated annotator's reliability (notebook 02) | `beta_bt` |
# | $B$ | pairs per batch | `batch_size` |
#
# **Two symbols mean different things in different notebooks.** $\tau$ here is the DPO
# temperature; in notebook 01 it is the *sampling* temperature (which divides the logits) and in
# notebook 04 $\tau_i$ is a *reasoning trace*. $\beta$ here is the KL coefficient of $J$, equal
# to the DPO paper's $\beta = 1/\tau$; it is **not** the annotator's $\beta_{BT}$ (notebook 02),
# not the coefficient $\beta$ of Gao et al.'s over-optimisation law (notebook 06), and not
# GRPO's $\beta$, which weights the $k_3$ estimator inside the *loss* rather than a KL penalty
# on the reward (notebook 04).

# %%
import copy
import dataclasses
import math
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
import minialign.functional as F
from minialign.nn import generate, sequence_logprobs
from minialign.objectives import (
    bradley_terry_loss,
    dpo_delta,
    dpo_loss,
    implicit_rewards,
    kl_regularized_objective,
    kl_regularized_optimum,
)
from minialign.optim import AdamW, param_groups
from minialign.plots import (
    Slider,
    decorate,
    interactive_figure,
    moving_average,
    panels,
    plot_curves,
    plot_histograms,
    plot_history,
    plot_runs,
)
from minialign.pretrained import load_reference, make_task
from minialign.train import DPOConfig, Sampling, evaluate_policy, reference_logprobs, train_dpo
from minialign.train.dpo import dpo_step

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True, linewidth=100)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# %% [markdown]
# ## 1. The KL-regularised optimum and its partition function
#
# RLHF with PPO (notebook 03) maximises, for each prompt $x$, the expected reward minus a KL
# penalty that holds the policy near the reference:
#
# $$J(\pi) = \mathbb{E}_{y\sim\pi(\cdot\mid x)}\big[r(x,y)\big]
#   - \beta\,\mathrm{KL}\big(\pi(\cdot\mid x)\,\|\,\pi_{\rm ref}(\cdot\mid x)\big).$$
#
# (The equation sheet prints this with "$\beta.\,\mathrm{KL}$", as its source does; the dot is a
# typo for a product.) Write both terms as one sum over responses and fold the reward into the
# logarithm:
#
# $$J(\pi) = \sum_y \pi(y\mid x)\Big[r(x,y) - \beta\log\frac{\pi(y\mid x)}{\pi_{\rm ref}(y\mid x)}\Big]
#   = -\beta\sum_y \pi(y\mid x)\log\frac{\pi(y\mid x)}{\pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}} .$$
#
# The denominator is not a distribution yet. Normalise it, and put the normaliser outside:
#
# $$\pi^*(y\mid x) = \frac{\pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}}{Z(x)}, \qquad
#   Z(x) = \sum_y \pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}, \qquad
#   J(\pi) = \beta\log Z(x) - \beta\,\mathrm{KL}\big(\pi\,\|\,\pi^*\big).$$
#
# $Z(x)$ does not depend on $\pi$, and a KL is $\ge 0$ with equality only when the two
# distributions are equal. So **$\pi^*$ is the one maximiser of $J$**, with value
# $J(\pi^*) = \beta\log Z(x)$: the optimum re-weights the reference by $e^{r/\beta}$. $Z(x)$ is
# the **partition function**, and it depends on the prompt. For a language model it is a sum over
# every possible response, which nobody can compute; hold on to that.
#
# **On concrete numbers.** Two prompts, $K = 4$ responses each, $\beta = 0.5$. Prompt 1 is an
# easy one: every response has a high reward, so its $Z$ is large.

# %%
pi_ref = np.array([[0.50, 0.25, 0.15, 0.10],   # pi_ref(y | x_0), y = 0..3
                   [0.10, 0.20, 0.30, 0.40]])  # pi_ref(y | x_1)
r = np.array([[0.0, 0.5, 1.0, -0.5],
              [2.0, 1.2, 1.0, 1.4]])  # r(x, y), (2 prompts, K = 4)
beta = 0.5

unnormalised = pi_ref * np.exp(r / beta)  # pi_ref e^{r / beta}
Z = unnormalised.sum(axis=1)  # Z(x), one per prompt
pi_star = unnormalised / Z[:, None]
print("Z(x)          :", Z)
print("pi*(y | x_0)  :", pi_star[0], "  pi_ref:", pi_ref[0])
print("pi*(y | x_1)  :", pi_star[1], "  pi_ref:", pi_ref[1])
assert Z[1] > 5 * Z[0]  # the easy prompt has the larger partition function


def J_by_hand(pi):  # sum_y pi (r - beta log pi/pi_ref), per prompt; pi has shape (..., 2, K)
    return (pi * (r - beta * np.log(pi / pi_ref))).sum(axis=-1)


def kl_to(pi, q):  # KL(pi || q) per prompt
    return (pi * np.log(pi / q)).sum(axis=-1)


# the identity J(pi) = beta log Z - beta KL(pi || pi*), on 1000 random policies
random_pis = np.random.default_rng(0).dirichlet(np.ones(4), size=(1000, 2))  # (1000, 2, K)
np.testing.assert_allclose(J_by_hand(random_pis),
                           beta * np.log(Z) - beta * kl_to(random_pis, pi_star), rtol=1e-10)
best_random = J_by_hand(random_pis).max(axis=0)
print("best J of 1000 random policies:", best_random, "  beta log Z:", beta * np.log(Z))
assert np.all(best_random < beta * np.log(Z))

# %% [markdown]
# **Checked by a numerical maximisation.** Forget the closed form: start from uniform logits,
# compute $J$ with minialign's autograd and climb its gradient. Then compare with the closed
# form by hand and with the library's `kl_regularized_optimum` (which works in log space, so
# it cannot overflow for small $\beta$):

# %%
logits = ma.tensor(np.zeros((2, 4)), requires_grad=True)
for _ in range(2000):
    log_pi = F.log_softmax(logits)  # (2, K)
    J = (log_pi.exp() * (r - beta * (log_pi - np.log(pi_ref)))).sum()  # J summed over prompts
    logits.zero_grad()
    J.backward()
    logits.data += 1.0 * logits.grad  # gradient ASCENT
climbed = F.softmax(logits).data
pi_star_lib, value_lib = kl_regularized_optimum(np.log(pi_ref), r, beta)
print("climbed  ", climbed[0], climbed[1])
print("closed   ", pi_star[0], pi_star[1])
print(f"max |climbed - closed form| = {np.abs(climbed - pi_star).max():.1e}")
np.testing.assert_allclose(climbed, pi_star, atol=1e-8)
np.testing.assert_allclose(pi_star_lib, pi_star, rtol=1e-12)
np.testing.assert_allclose(value_lib, beta * np.log(Z), rtol=1e-12)
np.testing.assert_allclose(kl_regularized_objective(np.log(pi_star), np.log(pi_ref), r, beta).item(),
                           np.mean(beta * np.log(Z)), rtol=1e-12)  # J(pi*) = beta log Z

# %% [markdown]
# Notebook 07 §4 checks the same optimum on a five-answer bandit, traces the reward–KL frontier
# it defines as $\beta$ varies, and reaches it by training.
#
# ## 2. Z cancels: from Bradley–Terry to the DPO loss
#
# **Turn the optimum around.** Take logs of $\pi^*$ and solve for the reward:
#
# $$r(x, y) = \beta\log\frac{\pi^*(y\mid x)}{\pi_{\rm ref}(y\mid x)} + \beta\log Z(x).$$
#
# Every reward is a log-ratio of its optimal policy to the reference, plus a term that depends
# only on the prompt. That term is the trouble: $Z(x)$ cannot be computed for a language model.

# %%
log_ratio = np.log(pi_star / pi_ref)  # log pi*/pi_ref, (2, K)
r_back = beta * log_ratio + beta * np.log(Z)[:, None]
np.testing.assert_allclose(r_back, r, atol=1e-12)
print("beta log pi*/pi_ref        :\n", beta * log_ratio)
print("beta log Z(x), per prompt  :", beta * np.log(Z))
assert abs(beta * np.log(Z[1]) - beta * np.log(Z[0])) > 0.5  # a different offset per prompt

# %% [markdown]
# The log-ratio alone is off from $r$ by $\beta\log Z(x)$, a different amount for each prompt
# (printed above), so it cannot say whether a response to one prompt is better than a response
# to another. But preference data never asks that. The Bradley–Terry
# model of notebook 02 compares two responses **to the same prompt**, and only through the
# difference of their rewards:
#
# $$P(y_1 \succ y_2 \mid x) = \sigma\big(r(x,y_1) - r(x,y_2)\big)
#   = \sigma\Big(\beta\log\frac{\pi^*(y_1\mid x)}{\pi_{\rm ref}(y_1\mid x)}
#                - \beta\log\frac{\pi^*(y_2\mid x)}{\pi_{\rm ref}(y_2\mid x)}\Big).$$
#
# $\beta\log Z(x)$ appears in both rewards and **cancels**. All $4 \times 4$ pairs of each
# prompt, both ways:

# %%
from_rewards = sigmoid(r[:, :, None] - r[:, None, :])  # P(y1 > y2 | x), (2, K, K)
from_policy = sigmoid(beta * (log_ratio[:, :, None] - log_ratio[:, None, :]))  # no Z anywhere
print("P(y_1 > y_2 | x_1) from the rewards:\n", from_rewards[1])
print(f"max difference, both prompts: {np.abs(from_rewards - from_policy).max():.1e}")
np.testing.assert_allclose(from_policy, from_rewards, atol=1e-12)

# %% [markdown]
# **Now make it a training objective.** Bradley–Terry fits a reward model $r_\phi$ by
# minimising $-\log\sigma(r_\phi(x,y^+) - r_\phi(x,y^-))$ over the preference pairs
# (notebook 02). DPO chooses the reward model's form: $r_\theta(x, y) = \beta\log\frac{\pi_\theta(y\mid
# x)}{\pi_{\rm ref}(y\mid x)}$, whose parameters are the policy's. By the derivation above, if
# the preferences come from some reward $r$, the $\pi_\theta$ that explains them best is that
# reward's optimal policy $\pi^*$. Substituting, the Bradley–Terry loss becomes
#
# $$L_{\rm DPO}(\theta) = -\mathbb{E}\Big[\log\sigma\Big(\beta\Big[\log\frac{\pi_\theta(y^+\mid x)}{\pi_{\rm ref}(y^+\mid x)}
#   - \log\frac{\pi_\theta(y^-\mid x)}{\pi_{\rm ref}(y^-\mid x)}\Big]\Big)\Big]
#   = -\mathbb{E}\Big[\log\sigma\big(\tfrac1\tau\,\Delta_\theta\big)\Big], \qquad \tau = \frac1\beta ,$$
#
# which is exactly the source's loss, with its temperature $\tau$ and the margin $\Delta_\theta$
# of the next section. No reward model, no sampling, no $Z$. On the numbers above: let any
# policy $\pi_\theta$ (here a random one) play the reward model for three pairs, score them with
# the Bradley–Terry loss, and compare with `dpo_loss`:

# %%
pi_theta = random_pis[0]  # some policy, (2, K)
x_of, y_plus, y_minus = np.array([0, 0, 1]), np.array([2, 1, 0]), np.array([3, 0, 2])  # 3 pairs
log_pi_theta, log_pi_ref = np.log(pi_theta), np.log(pi_ref)
r_theta = beta * (log_pi_theta - log_pi_ref)  # the policy as a reward model, (2, K)
bt = bradley_terry_loss(r_theta[x_of, y_plus], r_theta[x_of, y_minus]).item()
dpo = dpo_loss(log_pi_theta[x_of, y_plus], log_pi_theta[x_of, y_minus],
               log_pi_ref[x_of, y_plus], log_pi_ref[x_of, y_minus], tau=1 / beta).item()
print(f"Bradley-Terry loss of r_theta = beta log pi_theta/pi_ref: {bt:.6f}")
print(f"dpo_loss with tau = 1/beta = {1 / beta}:                  {dpo:.6f}")
np.testing.assert_allclose(dpo, bt, rtol=1e-12)

# %% [markdown]
# Notebook 07 §7 closes the loop exactly: it minimises the *expected* DPO loss over all pairs a
# Bradley–Terry annotator would label and lands on $\pi_{\rm ref}\,e^{r/\beta}/Z$, the optimum
# of this section.
#
# ## 3. The log-ratio margin
#
# Each training example is a prompt $x$ with a preferred response $y^+$ and a dispreferred one
# $y^-$. DPO compares how much the policy $\pi_\theta$ has raised the log-probability of each
# response **relative to a frozen reference** $\pi_{\rm ref}$ (the model we start from), and takes
# the difference:
#
# $$\Delta_\theta(x,y^+,y^-) = \bigl[\log\pi_\theta(y^+\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^+\!\mid\!x)\bigr] -\bigl[\log\pi_\theta(y^-\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^-\!\mid\!x)\bigr]$$
#
# $\log\pi(y\mid x)$ is the log-probability of the **whole** response, the sum of its tokens'
# log-probabilities. $\Delta_\theta > 0$ means the policy has moved towards $y^+$ and away from
# $y^-$ more than the reference had. Three pairs, by hand:

# %%
policy_chosen = np.array([-5.2, -7.1, -3.0])  # log pi_theta(y+ | x), one per pair
policy_rejected = np.array([-6.0, -6.5, -9.4])  # log pi_theta(y- | x)
ref_chosen = np.array([-5.5, -6.8, -3.4])  # log pi_ref(y+ | x)
ref_rejected = np.array([-5.8, -6.9, -8.0])  # log pi_ref(y- | x)

chosen_logratio = policy_chosen - ref_chosen  # how far y+ moved
rejected_logratio = policy_rejected - ref_rejected  # how far y- moved
delta = chosen_logratio - rejected_logratio
print("log pi/pi_ref (y+):", chosen_logratio)
print("log pi/pi_ref (y-):", rejected_logratio)
print("Delta             :", delta)

delta_lib = dpo_delta(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
np.testing.assert_allclose(delta_lib.data, delta, rtol=1e-12)

# %% [markdown]
# Pair 1: the policy prefers $y^+$ by 0.8 nats, but the reference already preferred it by 0.3, so
# only the extra 0.5 counts. Pair 2: the policy has moved the wrong way, $\Delta_\theta < 0$.
# DPO never looks at absolute log-probabilities, only at how they moved away from the reference.
#
# ## 4. The DPO loss
#
# The loss derived in section 2 is a logistic loss on the margin, with a temperature $\tau > 0$:
#
# $$L_{\mathrm{DPO}}(\theta) = -\mathbb{E}_{(x,y^+,y^-)}\!\Big[\log \sigma\!\bigl(\tfrac{1}{\tau}\,\Delta_\theta(x,y^+,y^-)\bigr)\Big]$$
#
# where
#
# $$\sigma(z)=1/(1+e^{-z})$$
#
# It is the Bradley–Terry loss of notebook 02 with the reward model replaced by
# $\frac{1}{\tau}\log\frac{\pi_\theta}{\pi_{\rm ref}}$. Line by line with $\tau = 0.5$:

# %%
tau = 0.5
z = delta / tau  # (1/tau) * Delta
sigma = sigmoid(z)  # sigma(z) = 1/(1+e^{-z})
log_sigma = np.log(sigma)
loss_by_hand = -log_sigma.mean()  # -E[log sigma(Delta/tau)]
print("z = Delta/tau:", z)
print("sigma(z)     :", sigma)
print("log sigma(z) :", log_sigma)
print(f"L_DPO = {loss_by_hand:.6f}")

loss = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=tau)
print(f"minialign.objectives.dpo_loss = {loss.item():.6f}")
np.testing.assert_allclose(loss.item(), loss_by_hand, rtol=1e-12)

# %% [markdown]
# **$\tau$ versus $\beta$.** The DPO paper and TRL write the same loss as
# $-\log\sigma\big(\beta\,\Delta_\theta\big)$, so $\beta = 1/\tau$ (section 2 showed where that
# $\beta$ comes from: it is the KL coefficient of $J$). TRL's default `beta=0.1` is $\tau = 10$.
# A small $\tau$ (large $\beta$) reaches a low loss with a small $\Delta$, so the policy stays
# close to the reference; a large $\tau$ (small $\beta$, a weak KL penalty) asks for larger
# moves. In `minialign`, `dpo_loss` and `train_dpo` take `tau`.

# %%
beta_paper = 2.0
trl_style = -np.log(sigmoid(beta_paper * delta)).mean()  # -log sigma(beta * Delta)
np.testing.assert_allclose(
    dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=1 / beta_paper).item(),
    trl_style, rtol=1e-12,
)
print(f"beta = {beta_paper} is tau = {1 / beta_paper}: same loss {trl_style:.6f}")

# %% [markdown]
# ## 5. Stuck at 0.693: the loss when policy = reference
#
# Training starts with $\pi_\theta = \pi_{\rm ref}$, so every $\Delta_\theta = 0$ and the loss is
# $-\log\sigma(0) = \log 2 \approx 0.693$, whatever the data and whatever $\tau$. A DPO run whose
# loss *stays* at 0.693 has not moved the policy at all: a learning rate of zero, frozen
# parameters, the policy passed as its own reference, or a response mask that selects no tokens
# (then both log-probs are 0). Here is the real thing: the shipped sentiment model and a copy of it,
# scored on a few preference pairs.

# %%
task = make_task("sentiment")
tok = task.tokenizer
reference = load_reference("sentiment")
BETA_BT = 8.0  # the simulated annotator's reliability (notebook 02, section 3)
pairs = task.make_preference_pairs(1000, np.random.default_rng(0), beta_bt=BETA_BT)


def trainable_copy(model):
    """A fresh policy: the reference's weights, in training mode, with gradients on."""
    return copy.deepcopy(model).train().requires_grad_(True)


policy = trainable_copy(reference)
ref_c, ref_r = reference_logprobs(reference, pairs)  # (1000,) each, summed over tokens
pol_c, pol_r = reference_logprobs(policy, pairs)  # the same function works for any model
print("first log pi_ref(y+|x):", ref_c[:4])
for t in (0.1, 1.0, 10.0):
    value = dpo_loss(pol_c, pol_r, ref_c, ref_r, tau=t).item()
    print(f"tau = {t:4}: loss = {value:.6f}")
    np.testing.assert_allclose(value, np.log(2), rtol=1e-6)

# %% [markdown]
# ## 6. The gradient: which pairs get pushed
#
# With $z = \Delta_\theta/\tau$ and $\frac{d}{dz}[-\log\sigma(z)] = -\sigma(-z)$, the chain rule
# through $\Delta_\theta$ gives, for one pair,
#
# $$\nabla_\theta L = -\frac{1}{\tau}\,\sigma\!\Big(-\frac{\Delta_\theta}{\tau}\Big)\,
#   \Big(\nabla_\theta\log\pi_\theta(y^+\mid x) - \nabla_\theta\log\pi_\theta(y^-\mid x)\Big).$$
#
# A gradient step raises $\log\pi_\theta(y^+)$ and lowers $\log\pi_\theta(y^-)$, each pair weighted by
# $\sigma(-\Delta_\theta/\tau)$: close to 1 for a pair the policy ranks the wrong way, 1/2 at the
# start, and close to 0 once the pair is well separated. Unlike supervised fine-tuning on $y^+$
# alone, the update fades on pairs that are already learnt. Check the coefficients against
# autograd, on the three pairs of section 3 (the loss is a mean over $B$ pairs, hence the $1/B$):

# %%
weight = sigmoid(-delta / tau)  # sigma(-Delta/tau)
B = len(delta)
chosen_t = ma.tensor(policy_chosen, requires_grad=True)
rejected_t = ma.tensor(policy_rejected, requires_grad=True)
dpo_loss(chosen_t, rejected_t, ref_chosen, ref_rejected, tau=tau).backward()
print("sigma(-Delta/tau)        :", weight)
print("dL/dlog pi(y+), autograd :", chosen_t.grad)
print("-(1/tau) sigma(.) / B    :", -weight / tau / B)
np.testing.assert_allclose(chosen_t.grad, -weight / tau / B, rtol=1e-12)
np.testing.assert_allclose(rejected_t.grad, +weight / tau / B, rtol=1e-12)

# %% [markdown]
# The loss and the weight as functions of the margin, with the three pairs above as dots. In
# a live notebook (JupyterLab, or the browser site) a slider sets $\tau$; GitHub shows
# $\tau = 0.5$, with every other stop of the slider in grey. Slide it down to 0.1 and watch
# the weight become a step; slide it up to 10 (TRL's default $\beta = 0.1$) and watch it flatten
# towards 1/2, margins or not.

# %%
delta_grid = np.linspace(-6, 6, 241)
taus = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)  # the slider's stops


def loss_and_weight(axes, tau):
    for ax, f in zip(axes, (lambda d, t: np.logaddexp(0, -d / t), lambda d, t: sigmoid(-d / t))):
        for t in taus:  # every stop of the slider, in grey
            ax.plot(delta_grid, f(delta_grid, t), color="gray", alpha=0.3, lw=1,
                    label=r"other $\tau$" if t == taus[0] else None)
        ax.plot(delta_grid, f(delta_grid, tau), lw=2, label=rf"$\tau$ = {tau:g} ($\beta$ = {1 / tau:g})")
        ax.plot(delta, f(delta, tau), "o", color="tab:red", label="the three pairs")
    axes[0].set_ylim(0, 6)
    decorate(axes[0], r"Loss of one pair: $-\log\sigma(\Delta_\theta/\tau)$",
             r"margin $\Delta_\theta$ (nats)", "loss", hlines={"log 2": np.log(2)}, vlines={"": 0.0},
             fontsize=8)
    decorate(axes[1], r"Weight of a pair in the gradient: $\sigma(-\Delta_\theta/\tau)$",
             r"margin $\Delta_\theta$ (nats)", "weight", vlines={"": 0.0}, fontsize=8)


interactive_figure(loss_and_weight, ncols=2, tau=Slider(tau, options=taus, label="τ"))
for t in (0.1, tau, 10.0):
    print(f"tau = {t:4}: weights sigma(-Delta/tau) of the three pairs {sigmoid(-delta / t)}")
step, flat = sigmoid(-delta / 0.1), sigmoid(-delta / 10.0)
assert np.all((step < 0.01) | (step > 0.99)) and np.all(np.abs(flat - 0.5) < 0.05)

# %% [markdown]
# A small $\tau$ makes the weight a sharp step: pairs on the wrong side get full weight, the rest
# almost none (at $\tau = 0.1$, pair 2 gets 0.999 and the other two almost 0). A large $\tau$
# keeps pushing even on pairs that are already separated by several nats (at $\tau = 10$ all
# three weigh within 0.05 of 1/2). The factor $1/\tau$ in front also scales the whole gradient.
#
# ## 7. Implicit rewards
#
# Section 2 read a policy as a reward model: $r_\theta = \beta\log\frac{\pi_\theta}{\pi_{\rm ref}}$,
# correct up to the prompt's $\beta\log Z(x)$, which no comparison can see. In the source's
# notation,
#
# $$\hat r(x, y) = \frac{1}{\tau}\,\log\frac{\pi_\theta(y\mid x)}{\pi_{\rm ref}(y\mid x)},
#   \qquad \hat r(x, y^+) - \hat r(x, y^-) = \frac{\Delta_\theta}{\tau}.$$
#
# Trainers log these implicit rewards (TRL's `rewards/chosen`, `rewards/rejected`,
# `rewards/margins`, `rewards/accuracies`); `implicit_rewards` returns their batch means.

# %%
r_hat_chosen = chosen_logratio / tau  # (1/tau) log pi/pi_ref of y+
r_hat_rejected = rejected_logratio / tau
by_hand = {
    "chosen": r_hat_chosen.mean(),
    "rejected": r_hat_rejected.mean(),
    "margin": (r_hat_chosen - r_hat_rejected).mean(),
    "accuracy": np.mean(r_hat_chosen > r_hat_rejected),
}
lib = implicit_rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=tau)
for key in by_hand:
    print(f"{key:9s} by hand {by_hand[key]:+.4f}   implicit_rewards {lib[key]:+.4f}")
    np.testing.assert_allclose(lib[key], by_hand[key], rtol=1e-12)
np.testing.assert_allclose(by_hand["margin"], np.mean(delta / tau), rtol=1e-12)

# %% [markdown]
# Only the margin enters the loss. The chosen reward on its own is free to do anything,
# including going **negative**: the policy can lower the probability of *both* responses, as long
# as it lowers $y^-$ more. Section 9 shows this happening.
#
# ## 8. One DPO step by hand
#
# Everything `train_dpo` does in one step, written out from `minialign.objectives` and NumPy on
# one batch of 32 of the pairs of section 5: the summed log-probs of both responses under the
# policy, $L_{\rm DPO}$ against the precomputed reference log-probs, backward, the gradient
# clipped to a global norm of 1, and one AdamW step. On the first step AdamW's moments start at
# zero, $m_1 = (1-\beta_1)g$ and $v_1 = (1-\beta_2)g^2$, and the bias corrections undo the
# $(1-\beta_{1,2})$ factors, so every parameter moves by about the learning rate $\eta$ in the
# direction of $-\mathrm{sign}(g)$:
#
# $$\theta \leftarrow \theta\,(1 - \eta\lambda) - \frac{\eta}{1-\beta_1}\,
#   \frac{m_1}{\sqrt{v_1}/\sqrt{1-\beta_2} + \epsilon} \;\approx\; \theta - \eta\,\mathrm{sign}(g).$$
#
# ($\beta_1, \beta_2$ here are Adam's decay rates, one more use of the letter; the weight decay
# $\lambda$ is 0, TRL's default for DPO.)

# %%
TAU, STEPS, LR = 1.0, 200, 3e-3
config = DPOConfig(tau=TAU, steps=STEPS, batch_size=32, learning_rate=LR, eval_steps=20)
rows = np.random.default_rng(3).integers(0, len(pairs.chosen), size=config.batch_size)  # (B,)
B = config.batch_size

by_hand_policy = trainable_copy(reference)
# 1. log pi_theta(y+|x) and log pi_theta(y-|x): ONE forward pass over the 2B rows, as the trainer
#    does, dropping the columns that are padding in every row
tokens = np.concatenate([pairs.chosen.ids[rows], pairs.rejected.ids[rows]])  # (2B, T)
mask = np.concatenate([pairs.chosen.response_mask[rows], pairs.rejected.response_mask[rows]])
T = int(np.flatnonzero(mask.any(axis=0)).max()) + 1
logps = sequence_logprobs(by_hand_policy, tokens[:, :T], mask[:, :T]).total  # (2B,) summed
chosen_logps, rejected_logps = logps[:B], logps[B:]
# 2. the loss, against the reference log-probs computed once in section 5
loss = dpo_loss(chosen_logps, rejected_logps, ref_c[rows], ref_r[rows], tau=config.tau)
# 3. backward
params = by_hand_policy.parameters()
for p in params:
    p.grad = None
loss.backward()
# 4. clip the global gradient norm to max_grad_norm
grad_norm = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
if grad_norm > config.max_grad_norm:
    for p in params:
        p.grad *= config.max_grad_norm / grad_norm
# 5. AdamW's first step (m = v = 0 before it, t = 1), the formula above
eta, (b1, b2), eps, lam = config.learning_rate, (0.9, 0.999), 1e-8, config.weight_decay
for p in params:
    g = p.grad
    m1 = (1.0 - b1) * g
    v1 = (1.0 - b2) * (g * g)
    p.data *= 1.0 - eta * lam
    p.data -= eta / (1.0 - b1) * (m1 / (np.sqrt(v1) / math.sqrt(1.0 - b2) + eps))
print(f"loss {loss.item():.7f} (log 2 = {np.log(2):.7f}), gradient norm {grad_norm:.4f} -> clipped to 1")
moved = max(np.abs(p.data - q.data).max() for p, q in zip(params, reference.parameters()))
print(f"largest parameter change {moved:.2e} (learning rate {eta:g})")
assert grad_norm > config.max_grad_norm and abs(moved - eta) < 0.01 * eta

# %% [markdown]
# **The library, from the same start.** `dpo_step` is the body of `train_dpo`'s loop; hand it a
# fresh copy of the reference, a fresh AdamW and the same rows:

# %%
lib_policy = trainable_copy(reference)
optimizer = AdamW(param_groups(lib_policy, config.weight_decay), lr=config.learning_rate)
metrics = dpo_step(lib_policy, optimizer, pairs, (ref_c, ref_r), rows, config)
print(f"dpo_step: loss {metrics['loss']:.7f}, grad_norm {metrics['grad_norm']:.4f}")
assert metrics["loss"] == loss.item() and metrics["grad_norm"] == grad_norm
assert all(np.array_equal(p.data, q.data) for p, q in zip(params, lib_policy.parameters()))
# ... and it is the first step of the run of section 9 (same seed, same first batch)
one_step = trainable_copy(reference)
train_dpo(one_step, reference, pairs, dataclasses.replace(config, steps=1), rng=3, progress=False)
assert all(np.array_equal(p.data, q.data) for p, q in zip(params, one_step.parameters()))
print("every parameter after the step by hand == after dpo_step == after train_dpo(steps=1): bitwise")

# %% [markdown]
# **Why bitwise, and when only to float32 round-off.** The two computations run the same float32
# operations in the same order on arrays of the same shapes, with one BLAS thread, so they
# agree to the last bit. Change a shape and that stops: run the chosen and the rejected
# responses through the model in two passes of $B$ untrimmed rows instead of one of $2B$, and
# the sums inside the matrix products and reductions may be taken in other orders (whether
# they are depends on the BLAS library: with OpenBLAS here they are, while another library,
# such as the one in the browser's Pyodide, may give both the same bits). The log-probs and
# the gradient then differ in the last float32 bits, at most
# (float32 carries about 7 significant digits, $\epsilon \approx 1.2\cdot10^{-7}$):

# %%
two_pass = trainable_copy(reference)
c2 = sequence_logprobs(two_pass, pairs.chosen.ids[rows], pairs.chosen.response_mask[rows]).total
r2 = sequence_logprobs(two_pass, pairs.rejected.ids[rows], pairs.rejected.response_mask[rows]).total
dpo_loss(c2, r2, ref_c[rows], ref_r[rows], tau=config.tau).backward()
one_pass = trainable_copy(reference)
both = sequence_logprobs(one_pass, tokens[:, :T], mask[:, :T]).total  # (2B,) as in the step above
dpo_loss(both[:B], both[B:], ref_c[rows], ref_r[rows], tau=config.tau).backward()
logp_gap = np.abs(np.concatenate([c2.data, r2.data]) - logps.data).max() / np.abs(logps.data).max()
grad_gap = math.sqrt(sum(float(((p.grad - q.grad) ** 2).sum())
                         for p, q in zip(two_pass.parameters(), one_pass.parameters()))) / grad_norm
print(f"two passes vs one: log-probs differ by {logp_gap:.1e}, the gradient by {grad_gap:.1e} (relative)")
assert logp_gap < 1e-6 and grad_gap < 1e-5  # round-off at most (0 with some BLAS libraries)

# %% [markdown]
# Relative differences of order $10^{-7}$ in the log-probs and $10^{-6}$ in the gradient (a sum
# over every parameter of a network) are float32 round-off, not a bug. Compare such runs with a
# tolerance, and compare *gradients* rather than parameters after an Adam step: the first step
# moves each parameter by $\approx\eta\,\mathrm{sign}(g)$, so a coordinate whose gradient is
# almost exactly 0 can flip its sign on round-off alone.
#
# ## 9. DPO on the sentiment task
#
# Now the real thing, on the 1000 pairs of section 5 (labelled by the Bradley–Terry annotator of
# notebook 02 with $\beta_{BT} = 8$). `train_dpo` computes the reference log-probs once, then
# repeats the step of section 8 on batches of 32 pairs, with a learning rate that decays linearly
# to 0. To judge the result we use the common yardstick of every method in minialign,
# `evaluate_policy`: sample one response for each of 256 held-out prompts and measure the task's
# **true reward**, the KL to the reference, and the response length. We pass it as `eval_fn`, with
# its own seeded generator so that it never shifts the training batches. (`progress=False` hides
# the progress bar.)

# %%
eval_prompts = task.sample_prompts(256, np.random.default_rng(1))
SAMPLING = Sampling.for_task(task)  # up to 12 new tokens, END stops, PAD fills the rest


def evaluator(policy):
    """evaluate_policy with the same prompts and the same sampling seed at every call."""

    def eval_fn(step):
        return evaluate_policy(policy, reference, eval_prompts, task.true_reward, SAMPLING,
                               rng=np.random.default_rng(2))

    return eval_fn


policy = trainable_copy(reference)
history = train_dpo(policy, reference, pairs, config, rng=3, eval_fn=evaluator(policy),
                    progress=False)
print(f"loss at step 0: {history['loss'][0]:.4f} (log 2 = {np.log(2):.4f})")
for key in ("true_reward", "kl", "length"):
    print(f"{key:12s} before {history[key][0]:+.3f}   after {history[key][-1]:+.3f}")
assert history["true_reward"][-1] > history["true_reward"][0] + 0.2
assert 0.5 < history["kl"][-1] < 3.0  # at a KL cost of a nat or two
assert history["length"][-1] < history["length"][0]  # shorter responses

# %%
fig, axes = panels(3)
plot_history(history, "loss", ax=axes[0], smooth=10, ylabel="loss",
             title="DPO loss (training batches, 10-step average)")
decorate(axes[0], hlines={"log 2": np.log(2)})
plot_history(history, ["rewards_chosen", "rewards_rejected", "rewards_margin"], ax=axes[1],
             smooth=10, ylabel=r"$\hat r$ (nats / $\tau$)",
             title=r"Implicit rewards $\hat r$ (training batches, 10-step average)")
decorate(axes[1], hlines={"": 0.0}, fontsize=8)
plot_history(history, ["true_reward", "kl"], ax=axes[2], ylabel="true reward / KL (nats)",
             title="evaluate_policy on 256 held-out prompts")
fig.tight_layout()

# %%
late = slice(-50, None)  # the last 50 steps
print(f"last 50 steps: chosen {history['rewards_chosen'][late].mean():+.2f}, "
      f"rejected {history['rewards_rejected'][late].mean():+.2f}, "
      f"margin {history['rewards_margin'][late].mean():+.2f}")
assert history["rewards_chosen"][late].mean() < 0 < 1 < history["rewards_margin"][late].mean()

# %% [markdown]
# The margin grows steadily, while the implicit reward of the *chosen* responses goes
# negative: the policy lowers the probability of the preferred responses too, only less than that
# of the rejected ones. This is normal, not a bug: the responses in the data are just two of many,
# and the probability mass taken from both goes to responses that were never in a pair (here,
# short and strongly positive ones). Meanwhile the true reward, which DPO never sees, rises well
# above the reference's, at a KL cost of a nat or two. Some samples, before and after:

# %%
show_prompts = eval_prompts[:4]
for name, model in [("reference", reference), ("DPO", policy)]:
    gen = generate(model, show_prompts, rng=np.random.default_rng(5), **vars(SAMPLING))
    texts = tok.decode_batch(gen.tokens, gen.response_mask)
    rewards = task.true_reward(gen.tokens, gen.response_mask)
    print(f"{name}:")
    for prompt, text, r_true in zip(show_prompts, texts, rewards):
        print(f"  {tok.decode(prompt):16s} | {text:45s} true r = {r_true:+.2f}")

# %% [markdown]
# ## 10. IPO: a margin that stops growing
#
# If the annotator is (nearly) **deterministic**, $P(y^+ \succ y^-) = 1$, the DPO loss keeps
# decreasing as long as $\Delta_\theta$ grows: its minimum is at $\Delta_\theta = +\infty$, i.e.
# $\pi_\theta(y^-) \to 0$, whatever $\tau$ is. In the language of section 2, a reward that explains
# certain preferences needs $r(y^+) - r(y^-) = \infty$, and the optimum
# $\pi_{\rm ref}\,e^{r/\beta}/Z$ of such a reward is as far from the reference as it gets: the KL
# regularisation that DPO was derived from is then ignored. IPO (Azar et al. 2023) replaces the
# logistic loss by a squared distance to a fixed target margin,
#
# $$L_{\rm IPO}(\theta) = \mathbb{E}_{(x,y^+,y^-)}\Big[\big(\Delta_\theta(x,y^+,y^-) - \tfrac{\tau}{2}\big)^2\Big],$$
#
# written with the same $\tau$: IPO's own regulariser is TRL's `beta` $= 1/\tau$ and its target
# $1/(2\beta) = \tau/2$. (minialign sums log-probs over tokens for IPO too, so the target is in nats
# per response; TRL averages them per token.) On the numbers of section 3:

# %%
ipo_by_hand = np.mean((delta - tau / 2) ** 2)
ipo = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=tau, loss_type="ipo")
np.testing.assert_allclose(ipo.item(), ipo_by_hand, rtol=1e-12)
print(f"IPO loss = {ipo_by_hand:.6f}; target margin tau/2 = {tau / 2}")

# %% [markdown]
# We label the same kind of pairs with a near-perfect annotator ($\beta_{BT} = 200$: only pairs
# whose true rewards are within a few hundredths of each other get a noisy label) and train DPO and IPO
# with $\tau = 2$ for 300 steps each (150 in the browser site, where Python runs several times
# slower; the checks below hold for both). Then we measure $\Delta_\theta$ on every pair.

# %%
perfect = task.make_preference_pairs(1000, np.random.default_rng(0), beta_bt=200.0)
print(
    f"labels against the true ordering: {np.mean(perfect.chosen_reward < perfect.rejected_reward):.1%}"
)
TAU_IPO = 2.0
IPO_STEPS = 150 if sys.platform == "emscripten" else 300  # emscripten: Pyodide, in the browser
runs, final_delta = {}, {}
ref_pc, ref_pr = reference_logprobs(reference, perfect)
for loss_type in ("sigmoid", "ipo"):
    model = trainable_copy(reference)
    variant = DPOConfig(tau=TAU_IPO, loss_type=loss_type, steps=IPO_STEPS, batch_size=32,
                        learning_rate=LR, eval_steps=IPO_STEPS)
    runs[loss_type] = train_dpo(model, reference, perfect, variant, rng=3,
                                eval_fn=evaluator(model), progress=False)
    pc, pr = reference_logprobs(model, perfect)
    final_delta[loss_type] = (pc - ref_pc) - (pr - ref_pr)  # Delta of every pair, (1000,)
    h = runs[loss_type]
    print(f"{loss_type:8s} mean Delta over all pairs {final_delta[loss_type].mean():6.2f}   "
          f"true reward {h.last('true_reward'):+.2f}   KL {h.last('kl'):.2f}")

# %%
names = {"sigmoid": "DPO", "ipo": "IPO"}
target = {r"IPO target $\tau/2$": TAU_IPO / 2}
fig, (ax_t, ax_h) = panels(2)
plot_curves({names[lt]: (h.steps("rewards_margin"), h["rewards_margin"] * TAU_IPO)  # logged: Delta/tau
             for lt, h in runs.items()}, ax_t, smooth=10, hlines=target, xlabel="step",
            ylabel=r"$\Delta_\theta$ (nats)",
            title=r"Mean margin $\Delta_\theta$ on training batches ($\tau$ = 2)")
bins = np.linspace(-5, np.ceil(max(d.max() for d in final_delta.values())), 80)
plot_histograms({names[lt]: d for lt, d in final_delta.items()}, bins, ax_h, vlines=target,
                title=rf"$\Delta_\theta$ of each pair after {IPO_STEPS} steps",
                xlabel=r"$\Delta_\theta$ (nats)", ylabel="number of pairs")
fig.tight_layout()
assert final_delta["sigmoid"].mean() > 5 * final_delta["ipo"].mean()
assert abs(np.median(final_delta["ipo"]) - TAU_IPO / 2) < 0.5  # IPO: near its target ...
assert final_delta["ipo"].mean() < TAU_IPO / 2  # ... a little under it
dpo_margin = moving_average(runs["sigmoid"]["rewards_margin"], 10)
assert dpo_margin[-1] > dpo_margin[len(dpo_margin) // 2]  # DPO's margin still climbing
assert runs["ipo"].last("kl") < runs["sigmoid"].last("kl")
assert runs["ipo"].last("true_reward") < runs["sigmoid"].last("true_reward")

# %% [markdown]
# DPO's margin is still climbing at the end of its run (it only slows because the learning rate decays
# to zero), and every pair is pushed ever further apart. IPO's levels off near its target of
# $\tau/2 = 1$ nat, a little under it: one small network cannot put a thousand pairs exactly on
# target, and the squared loss settles for a compromise. IPO's true reward is lower here, but that
# is the point: it stays where its regulariser says, at a smaller KL, instead of driving the
# rejected responses' probability to zero.
#
# ## 11. DPO inherits the biases of its data: longer answers
#
# DPO has no reward model that a policy could game during training, but it still learns whatever
# the labels contain, including an annotator's systematic bias. `make_preference_pairs` can give the
# annotator a taste for length: its utility becomes $u(y) = r(y) + b\,|y|$ with $|y|$ the number of
# words, and it labels by $\sigma(\beta_{BT}(u(y_1) - u(y_2)))$. We use $b = 0.1$ per word. With the
# same seed, the responses are **identical** to those of section 9; only some labels change.

# %%
LENGTH_BIAS = 0.1
biased = task.make_preference_pairs(
    1000, np.random.default_rng(0), beta_bt=BETA_BT, length_bias=LENGTH_BIAS
)
assert np.array_equal(
    np.sort(np.concatenate([biased.chosen.ids, biased.rejected.ids]), axis=0),
    np.sort(np.concatenate([pairs.chosen.ids, pairs.rejected.ids]), axis=0),
)  # same responses, possibly swapped between chosen and rejected


def words(batch):
    return task.response_lengths(batch.ids, batch.response_mask)


for name, p in [("unbiased", pairs), (f"b = {LENGTH_BIAS}", biased)]:
    longer = np.mean(words(p.chosen) > words(p.rejected))
    print(f"{name:9s}: chosen response longer in {longer:.0%} of pairs; mean words "
          f"chosen {words(p.chosen).mean():.2f}, rejected {words(p.rejected).mean():.2f}")

policy_biased = trainable_copy(reference)
history_biased = train_dpo(policy_biased, reference, biased, config, rng=3,
                           eval_fn=evaluator(policy_biased), progress=False)
for key in ("length", "true_reward", "kl"):
    print(f"{key:12s} reference {history[key][0]:+.2f}   DPO on unbiased pairs "
          f"{history[key][-1]:+.2f}   DPO on biased pairs {history_biased[key][-1]:+.2f}")
assert history_biased["length"][-1] > history["length"][-1] + 2
assert history_biased["true_reward"][-1] < history["true_reward"][-1]

# %%
plot_runs({"unbiased labels": history,
           f"length-biased labels (b = {LENGTH_BIAS})": history_biased},
          ["length", "true_reward"],
          titles=["Response length of the DPO policy", "True reward of the DPO policy"],
          ylabels=["mean response length (tokens incl. END)", "mean true reward"])
plt.tight_layout()

# %%
gen = generate(policy_biased, show_prompts, rng=np.random.default_rng(5), **vars(SAMPLING))
texts = tok.decode_batch(gen.tokens, gen.response_mask)
print("DPO on length-biased pairs:")
for prompt, text, r_true in zip(show_prompts, texts, task.true_reward(gen.tokens, gen.response_mask)):
    print(f"  {tok.decode(prompt):16s} | {text:55s} true r = {r_true:+.2f}")

# %% [markdown]
# The two runs differ only in which response of some pairs is labelled preferred, yet the policy
# trained on length-biased labels writes much longer reviews, and its true reward is lower:
# filler words carry no valence and dilute the mean, and a long list of adjectives is harder to
# keep positive. DPO removes the *dynamic* failure of RLHF (a policy exploiting a learnt reward
# model during optimisation, notebook 06) but not the *static* one: the preference data define
# the target, biases included. Nothing in the DPO loss can tell a genuine preference from a bias.
#
# ## 12. Exercises
#
# The notebook is committed with the exercises open so that CI can run it: an "implement it"
# stub raises `NotImplementedError` (its check then only says so), and a "find the bug" check
# asserts that the planted bug is still caught until you set `BUG_FIXED = True`; from then on
# the same cells assert your code against the library.
#
# **Exercise 1 (implement it).** Write the DPO loss in NumPy, from the four (B,) log-prob arrays.
# It must stay finite for margins of $\pm 10^4$ nats.

# %%
def my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau):
    """L_DPO = -mean log sigma(Delta / tau), a float. Hint: -log sigma(z) = log(1 + e^{-z})."""
    raise NotImplementedError("exercise 1: replace this line by your code")


# %%
rng_ex = np.random.default_rng(12)
cases = [(rng_ex.normal(-8.0, 3.0, size=(4, 16)), t) for t in (0.1, 1.0, 10.0)]
cases.append((np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [0.0, 0.0]]), 1.0))  # Delta = +-2e4
try:
    for logps4, t in cases:
        np.testing.assert_allclose(my_dpo_loss(*logps4, t), dpo_loss(*logps4, tau=t).item(),
                                   rtol=1e-9, err_msg=f"tau = {t}")
    print("Exercise 1 passes: my_dpo_loss agrees with minialign.objectives.dpo_loss.")
except NotImplementedError:
    print("Exercise 1 is open: write my_dpo_loss above, then run this cell again.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau):
#     delta = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
#     return float(np.mean(np.logaddexp(0.0, -delta / tau)))  # log(1 + e^{-z}), never overflows
# ```
#
# `-np.log(sigmoid(delta / tau))` is right on ordinary numbers but returns `inf` at
# $\Delta = -2\cdot10^4$: $e^{2\cdot 10^4}$ overflows, $\sigma$ rounds to 0 and its log is
# $-\infty$. `np.logaddexp` (or `F.logsigmoid` in minialign) computes the same value stably.
#
# </details>
#
# **Exercise 2 (find the bug).** This function computes the DPO loss of a batch of pairs. It
# runs, returns a plausible number, and is wrong. Find the bug, fix it, set `BUG_FIXED = True`,
# and run the check: it compares with `dpo_step` on the batch of section 8 under the trained
# policy of section 9 (with a float32 tolerance: section 8 explains why two passes are not
# bitwise equal to one).

# %%
BUG_FIXED = False  # set to True once you have fixed dpo_batch_loss


def dpo_batch_loss(policy, pairs, ref_logps, rows, tau):
    """L_DPO of the pairs ``rows`` under ``policy``; ref_logps = reference_logprobs(reference, pairs)."""
    chosen = sequence_logprobs(policy, pairs.chosen.ids[rows], pairs.chosen.response_mask[rows])
    rejected = sequence_logprobs(policy, pairs.rejected.ids[rows], pairs.rejected.response_mask[rows])
    ref_rejected, ref_chosen = ref_logps
    return dpo_loss(chosen.total, rejected.total, ref_chosen[rows], ref_rejected[rows], tau)


# %%
probe = trainable_copy(policy)  # dpo_step updates this copy, not the trained policy
expected = dpo_step(probe, AdamW(probe.parameters()), pairs, (ref_c, ref_r), rows, config)["loss"]
got = dpo_batch_loss(policy, pairs, (ref_c, ref_r), rows, config.tau).item()
agrees = bool(np.isclose(got, expected, rtol=1e-5))
print(f"dpo_batch_loss {got:.6f}   dpo_step {expected:.6f}")
if BUG_FIXED:
    assert agrees, "still different from dpo_step: which reference log-prob goes with which response?"
    print("Exercise 2 passes.")
else:
    assert not agrees, "dpo_batch_loss agrees with dpo_step now: set BUG_FIXED = True"
    print("Exercise 2 is open: the two losses differ.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# `reference_logprobs` returns `(chosen, rejected)`, but the function unpacks it as
# `ref_rejected, ref_chosen`: each response is compared with the *other* response's reference
# log-prob, so the loss sees $\Delta_\theta + 2\,[\log\pi_{\rm ref}(y^-) - \log\pi_{\rm ref}(y^+)]$
# instead of $\Delta_\theta$ (the wrong reference term). The fix is one line:
#
# ```python
#     ref_chosen, ref_rejected = ref_logps
# ```
#
# A first hint was available before any training: with the policy equal to the reference,
# the buggy loss is not $\log 2$ (section 5).
#
# </details>
#
# **Exercise 3 (try this).** The temperature decides how far DPO moves from the reference. Train
# DPO on the unbiased `pairs` of section 9 with $\tau = 0.25$ and $\tau = 4$ (everything else as in
# section 9) and compare the final KL and true reward. Before running it, predict which one moves
# further, using sections 2 and 4.
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# for t in (0.25, 4.0):
#     model = trainable_copy(reference)
#     h = train_dpo(model, reference, pairs, dataclasses.replace(config, tau=t, eval_steps=STEPS),
#                   rng=3, eval_fn=evaluator(model), progress=False)
#     print(f"tau = {t}: KL {h.last('kl'):.2f}, true reward {h.last('true_reward'):+.2f}")
# # at the time of writing: tau = 0.25: KL 0.77, true reward +0.25
# #                         tau = 4.0:  KL 2.70, true reward +0.72
# ```
#
# A larger $\tau$ (smaller $\beta$) moves further: the loss only becomes small once
# $\Delta_\theta \gg \tau$, so larger margins, i.e. larger changes of the log-probabilities, are
# needed. With Bradley–Terry labels the optimum of DPO is $\pi^* \propto \pi_{\rm ref}\,
# e^{\tau\beta_{BT}\,r}$: the KL-regularised optimum of section 1 with a KL coefficient
# $1/(\tau\beta_{BT})$, so a larger $\tau$ is a weaker leash. Here the extra KL also bought a
# higher true reward, because the labels are unbiased; with the length-biased labels of section
# 11 it would buy longer answers.
#
# </details>
#
# ## 13. Recap
#
# | | Equation |
# |---|---|
# | KL-regularised objective | $J(\pi) = \mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi \Vert \pi_{\rm ref}) = \beta\log Z(x) - \beta\,\mathrm{KL}(\pi \Vert \pi^*)$ |
# | its optimum | $\pi^*(y\mid x) = \pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}/Z(x)$, $\;Z(x) = \sum_y \pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}$ |
# | reward from policy | $r(x,y) = \beta\log\frac{\pi^*(y\mid x)}{\pi_{\rm ref}(y\mid x)} + \beta\log Z(x)$ |
# | margin | $\Delta_\theta = [\log\pi_\theta(y^+) - \log\pi_{\rm ref}(y^+)] - [\log\pi_\theta(y^-) - \log\pi_{\rm ref}(y^-)]$ |
# | DPO loss | $L_{\rm DPO} = -\mathbb{E}\big[\log\sigma(\Delta_\theta/\tau)\big]$, $\;\tau = 1/\beta$ |
# | its gradient | $\nabla_\theta L = -\frac1\tau\,\sigma(-\Delta_\theta/\tau)\,\big(\nabla\log\pi_\theta(y^+) - \nabla\log\pi_\theta(y^-)\big)$ |
# | implicit reward | $\hat r = \frac1\tau\log\frac{\pi_\theta}{\pi_{\rm ref}}$, $\;\hat r^+ - \hat r^- = \Delta_\theta/\tau$ |
# | IPO | $L_{\rm IPO} = \mathbb{E}\big[(\Delta_\theta - \tau/2)^2\big]$ |
#
# What to remember:
#
# 1. **Why DPO works.** The KL-regularised objective is maximised by re-weighting the reference,
#    $\pi^* \propto \pi_{\rm ref}\,e^{r/\beta}$; so a policy *is* a reward model,
#    $\beta\log(\pi/\pi_{\rm ref})$, up to $\beta\log Z(x)$, which cancels in every comparison of two
#    responses to one prompt. DPO is the Bradley–Terry loss of that reward model. (Sections 1–2.)
# 2. **$\tau = 1/\beta$**: the source's temperature is the inverse of the DPO paper's and TRL's
#    `beta`, which is the KL coefficient of $J$. A larger $\tau$ is a weaker leash. (Sections 4, 12.)
# 3. **0.693 is the start.** At $\pi_\theta = \pi_{\rm ref}$ the loss is $\log 2$ whatever the data; a
#    run that stays there has not moved. (Section 5.)
# 4. **Only the margin is trained.** Each pair is weighted by $\sigma(-\Delta_\theta/\tau)$, learnt
#    pairs fade out, and the chosen responses' implicit reward may fall. (Sections 6, 7, 9.)
# 5. **Its limits.** On deterministic preferences the margin grows without bound (IPO's squared
#    loss stops at $\tau/2$), and any bias of the annotators becomes the policy's. (Sections 10–11.)
