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
# reference model. This notebook steps through that loss on concrete numbers, works out its
# gradient (which pairs get pushed, and how hard), reads the "implicit rewards" that trainers log,
# and then runs DPO on the sentiment task. Two experiments show its limits: on deterministic
# preferences the DPO margin never stops growing (IPO fixes that), and a bias of the annotators
# (here: a taste for long answers) passes straight into the trained policy.
#
# Runtime: about 15 seconds on a laptop CPU (2 cores), fully seeded.
#
# 1. The log-ratio margin
# 2. The DPO loss
# 3. Stuck at 0.693: the loss when policy = reference
# 4. The gradient: which pairs get pushed
# 5. Implicit rewards
# 6. DPO on the sentiment task
# 7. IPO: a margin that stops growing
# 8. DPO inherits the biases of its data: longer answers
# 9. Try this

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
from minialign.objectives import dpo_delta, dpo_loss, implicit_rewards
from minialign.pretrained import load_reference, make_task
from minialign.train import DPOConfig, Sampling, evaluate_policy, reference_logprobs, train_dpo

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The log-ratio margin
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
# ## 2. The DPO loss
#
# The loss is a logistic loss on the margin, with a temperature $\tau > 0$:
#
# $$L_{\mathrm{DPO}}(\theta) = -\mathbb{E}_{(x,y^+,y^-)}\!\Big[\log \sigma\!\bigl(\tfrac{1}{\tau}\,\Delta_\theta(x,y^+,y^-)\bigr)\Big]$$
#
# where
#
# $$\sigma(z)=1/(1+e^{-z})$$
#
# It is exactly the Bradley–Terry loss of notebook 02 with the reward model replaced by
# $\frac{1}{\tau}\log\frac{\pi_\theta}{\pi_{\rm ref}}$ (section 5). Line by line with $\tau = 0.5$:

# %%
tau = 0.5
z = delta / tau  # (1/tau) * Delta
sigma = 1.0 / (1.0 + np.exp(-z))  # sigma(z) = 1/(1+e^{-z})
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
# $-\log\sigma\big(\beta\,\Delta_\theta\big)$, so $\beta = 1/\tau$: TRL's default `beta=0.1` is
# $\tau = 10$. A small $\tau$ (large $\beta$) reaches a low loss with a small $\Delta$, so the policy
# stays close to the reference; a large $\tau$ (small $\beta$) asks for larger moves. In
# `minialign`, `dpo_loss` and `train_dpo` take `tau`.

# %%
beta = 2.0
trl_style = -np.log(1 / (1 + np.exp(-beta * delta))).mean()  # -log sigma(beta * Delta)
np.testing.assert_allclose(
    dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=1 / beta).item(),
    trl_style, rtol=1e-12,
)  # fmt: skip
print(f"beta = {beta} is tau = {1 / beta}: same loss {trl_style:.6f}")

# %% [markdown]
# ## 3. Stuck at 0.693: the loss when policy = reference
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
# ## 4. The gradient: which pairs get pushed
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
# autograd (the loss is a mean over $B$ pairs, hence the $1/B$):

# %%
weight = 1 / (1 + np.exp(delta / tau))  # sigma(-Delta/tau)
B = len(delta)
chosen_t = ma.tensor(policy_chosen, requires_grad=True)
rejected_t = ma.tensor(policy_rejected, requires_grad=True)
dpo_loss(chosen_t, rejected_t, ref_chosen, ref_rejected, tau=tau).backward()
print("sigma(-Delta/tau)        :", weight)
print("dL/dlog pi(y+), autograd :", chosen_t.grad)
print("-(1/tau) sigma(.) / B    :", -weight / tau / B)
np.testing.assert_allclose(chosen_t.grad, -weight / tau / B, rtol=1e-12)
np.testing.assert_allclose(rejected_t.grad, +weight / tau / B, rtol=1e-12)

# %%
delta_grid = np.linspace(-6, 6, 241)
fig, (ax_loss, ax_w) = plt.subplots(1, 2, figsize=(11, 3.8))
for t in (0.25, 0.5, 1.0, 2.0, 4.0):
    z_grid = delta_grid / t
    ax_loss.plot(delta_grid, np.logaddexp(0, -z_grid), label=rf"$\tau$ = {t} ($\beta$ = {1 / t:g})")
    ax_w.plot(delta_grid, 1 / (1 + np.exp(z_grid)), label=rf"$\tau$ = {t}")
ax_loss.axhline(np.log(2), color="gray", ls=":", lw=1)
ax_loss.set_title(r"Loss of one pair: $-\log\sigma(\Delta_\theta/\tau)$")
ax_loss.set_xlabel(r"margin $\Delta_\theta$ (nats)")
ax_loss.set_ylabel("loss")
ax_loss.set_ylim(0, 6)
ax_w.set_title(r"Weight of a pair in the gradient: $\sigma(-\Delta_\theta/\tau)$")
ax_w.set_xlabel(r"margin $\Delta_\theta$ (nats)")
ax_w.set_ylabel("weight")
for ax in (ax_loss, ax_w):
    ax.axvline(0, color="gray", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# A small $\tau$ makes the weight a sharp step: pairs on the wrong side get full weight, the rest
# almost none. A large $\tau$ keeps pushing even on pairs that are already separated by several
# nats. The factor $1/\tau$ in front also scales the whole gradient.
#
# ## 5. Implicit rewards
#
# DPO rests on the observation that the best policy for the KL-regularised objective of PPO is
# $\pi^*(y\mid x) \propto \pi_{\rm ref}(y\mid x)\,e^{r(x,y)/\beta}$; turned around, any policy defines a
# reward, up to a term that depends only on the prompt:
#
# $$\hat r(x, y) = \frac{1}{\tau}\,\log\frac{\pi_\theta(y\mid x)}{\pi_{\rm ref}(y\mid x)},
#   \qquad \hat r(x, y^+) - \hat r(x, y^-) = \frac{\Delta_\theta}{\tau}.$$
#
# Plugging $\hat r$ into the Bradley–Terry loss of notebook 02 gives $L_{\mathrm{DPO}}$ exactly: DPO
# trains a reward model whose parameters are the policy's. Trainers log these implicit rewards
# (TRL's `rewards/chosen`, `rewards/rejected`, `rewards/margins`, `rewards/accuracies`);
# `implicit_rewards` returns their batch means.

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
# as it lowers $y^-$ more. Section 6 shows this happening.
#
# ## 6. DPO on the sentiment task
#
# Now the real thing, on the 1000 pairs of section 3 (labelled by the Bradley–Terry annotator of
# notebook 02 with $\beta_{BT} = 8$). `train_dpo` computes the reference log-probs once, then runs
# AdamW on batches of 32 pairs; the policy starts as a copy of the reference. To judge the result we
# use the common yardstick of every method in minialign, `evaluate_policy`: sample one response
# for each of 256 held-out prompts and measure the task's **true reward**, the KL to the reference,
# and the response length. We pass it as `eval_fn`, with its own seeded generator so that it
# never shifts the training batches. (`progress=False` hides the progress bar.)

# %%
eval_prompts = task.sample_prompts(256, np.random.default_rng(1))
SAMPLING = Sampling.for_task(task)  # up to 12 new tokens, END stops, PAD fills the rest


def evaluator(policy):
    """evaluate_policy with the same prompts and the same sampling seed at every call."""

    def eval_fn(step):
        return evaluate_policy(policy, reference, eval_prompts, task.true_reward, SAMPLING,
                               rng=np.random.default_rng(2))  # fmt: skip

    return eval_fn


TAU, STEPS, LR = 1.0, 200, 3e-3
policy = trainable_copy(reference)
config = DPOConfig(tau=TAU, steps=STEPS, batch_size=32, learning_rate=LR, eval_steps=20)
history = train_dpo(policy, reference, pairs, config, rng=3, eval_fn=evaluator(policy),
                    progress=False)  # fmt: skip
print(f"loss at step 0: {history['loss'][0]:.4f} (log 2 = {np.log(2):.4f})")
for key in ("true_reward", "kl", "length"):
    print(f"{key:12s} before {history[key][0]:+.3f}   after {history[key][-1]:+.3f}")
assert history["true_reward"][-1] > history["true_reward"][0] + 0.2
assert 0.5 < history["kl"][-1] < 3.0  # at a KL cost of a nat or two
assert history["length"][-1] < history["length"][0]  # shorter responses

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
k = 10  # moving average over 10 steps: each step sees only 32 pairs
smooth = lambda x: np.convolve(x, np.ones(k) / k, "valid")
steps = history.steps("loss")[k - 1 :]
axes[0].plot(steps, smooth(history["loss"]))
axes[0].axhline(np.log(2), color="gray", ls=":", label="log 2")
axes[0].set_title("DPO loss (training batches, 10-step average)")
axes[0].set_ylabel("loss")
for key, label in [("rewards_chosen", r"chosen $\hat r(y^+)$"),
                   ("rewards_rejected", r"rejected $\hat r(y^-)$"),
                   ("rewards_margin", r"margin $\Delta_\theta/\tau$")]:  # fmt: skip
    axes[1].plot(steps, smooth(history[key]), label=label)
axes[1].axhline(0, color="gray", lw=0.8)
axes[1].set_title("Implicit rewards (training batches, 10-step average)")
axes[1].set_ylabel(r"$\hat r$ (nats / $\tau$)")
axes[2].plot(history.steps("true_reward"), history["true_reward"], "o-", label="true reward")
axes[2].plot(history.steps("kl"), history["kl"], "s-", label=r"KL($\pi_\theta\|\pi_{\rm ref}$)")
axes[2].set_title("evaluate_policy on 256 held-out prompts")
axes[2].set_ylabel("true reward / KL (nats)")
for ax in axes:
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()

# %%
late = slice(-50, None)  # the last 50 steps
print(f"last 50 steps: chosen {history['rewards_chosen'][late].mean():+.2f}, "
      f"rejected {history['rewards_rejected'][late].mean():+.2f}, "
      f"margin {history['rewards_margin'][late].mean():+.2f}")  # fmt: skip
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
    for prompt, text, r in zip(show_prompts, texts, rewards):
        print(f"  {tok.decode(prompt):16s} | {text:45s} true r = {r:+.2f}")

# %% [markdown]
# ## 7. IPO: a margin that stops growing
#
# If the annotator is (nearly) **deterministic**, $P(y^+ \succ y^-) = 1$, the DPO loss keeps
# decreasing as long as $\Delta_\theta$ grows: its minimum is at $\Delta_\theta = +\infty$, i.e.
# $\pi_\theta(y^-) \to 0$, whatever $\tau$ is. The KL regularisation that DPO was derived from is then
# ignored. IPO (Azar et al. 2023) replaces the logistic loss by a squared distance to a fixed
# target margin,
#
# $$L_{\rm IPO}(\theta) = \mathbb{E}_{(x,y^+,y^-)}\Big[\big(\Delta_\theta(x,y^+,y^-) - \tfrac{\tau}{2}\big)^2\Big],$$
#
# written with the same $\tau$: IPO's own regulariser is TRL's `beta` $= 1/\tau$ and its target
# $1/(2\beta) = \tau/2$. (minialign sums log-probs over tokens for IPO too, so the target is in nats
# per response; TRL averages them per token.) On the numbers of section 1:

# %%
ipo_by_hand = np.mean((delta - tau / 2) ** 2)
ipo = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau=tau, loss_type="ipo")
np.testing.assert_allclose(ipo.item(), ipo_by_hand, rtol=1e-12)
print(f"IPO loss = {ipo_by_hand:.6f}; target margin tau/2 = {tau / 2}")

# %% [markdown]
# We label the same kind of pairs with a near-perfect annotator ($\beta_{BT} = 200$: only pairs
# whose true rewards are within a few hundredths of each other get a noisy label) and train DPO and IPO
# with $\tau = 2$ for 300 steps each. Then we measure $\Delta_\theta$ on every pair.

# %%
perfect = task.make_preference_pairs(1000, np.random.default_rng(0), beta_bt=200.0)
print(
    f"labels against the true ordering: {np.mean(perfect.chosen_reward < perfect.rejected_reward):.1%}"
)
TAU_IPO = 2.0
runs, final_delta = {}, {}
ref_pc, ref_pr = reference_logprobs(reference, perfect)
for loss_type in ("sigmoid", "ipo"):
    model = trainable_copy(reference)
    variant = DPOConfig(tau=TAU_IPO, loss_type=loss_type, steps=300, batch_size=32,
                        learning_rate=LR, eval_steps=300)  # fmt: skip
    runs[loss_type] = train_dpo(model, reference, perfect, variant, rng=3,
                                eval_fn=evaluator(model), progress=False)  # fmt: skip
    pc, pr = reference_logprobs(model, perfect)
    final_delta[loss_type] = (pc - ref_pc) - (pr - ref_pr)  # Delta of every pair, (1000,)
    h = runs[loss_type]
    print(f"{loss_type:8s} mean Delta over all pairs {final_delta[loss_type].mean():6.2f}   "
          f"true reward {h.last('true_reward'):+.2f}   KL {h.last('kl'):.2f}")  # fmt: skip

# %%
fig, (ax_t, ax_h) = plt.subplots(1, 2, figsize=(11, 3.8))
bins = np.linspace(-5, np.ceil(max(d.max() for d in final_delta.values())), 80)
for loss_type, name in [("sigmoid", "DPO"), ("ipo", "IPO")]:
    h = runs[loss_type]
    margin = smooth(h["rewards_margin"] * TAU_IPO)  # logged as Delta/tau; plot Delta
    ax_t.plot(h.steps("rewards_margin")[k - 1 :], margin, label=name)
    ax_h.hist(final_delta[loss_type], bins=bins, alpha=0.6, label=name)
ax_t.axhline(TAU_IPO / 2, color="k", ls="--", lw=1, label=r"IPO target $\tau/2$")
ax_t.set_title(r"Mean margin $\Delta_\theta$ on training batches ($\tau$ = 2)")
ax_t.set_xlabel("step")
ax_t.set_ylabel(r"$\Delta_\theta$ (nats)")
ax_h.axvline(TAU_IPO / 2, color="k", ls="--", lw=1, label=r"IPO target $\tau/2$")
ax_h.set_title(r"$\Delta_\theta$ of each pair after 300 steps")
ax_h.set_xlabel(r"$\Delta_\theta$ (nats)")
ax_h.set_ylabel("number of pairs")
for ax in (ax_t, ax_h):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
assert final_delta["sigmoid"].mean() > 5 * final_delta["ipo"].mean()
assert abs(np.median(final_delta["ipo"]) - TAU_IPO / 2) < 0.5  # IPO: near its target ...
assert final_delta["ipo"].mean() < TAU_IPO / 2  # ... a little under it
dpo_margin = smooth(runs["sigmoid"]["rewards_margin"])
assert dpo_margin[-1] > dpo_margin[len(dpo_margin) // 2]  # DPO's margin still climbing
assert runs["ipo"].last("kl") < runs["sigmoid"].last("kl")
assert runs["ipo"].last("true_reward") < runs["sigmoid"].last("true_reward")

# %% [markdown]
# DPO's margin is still climbing after 300 steps (it only slows because the learning rate decays
# to zero), and every pair is pushed ever further apart. IPO's levels off near its target of
# $\tau/2 = 1$ nat, a little under it: one small network cannot put a thousand pairs exactly on
# target, and the squared loss settles for a compromise. IPO's true reward is lower here, but that
# is the point: it stays where its regulariser says, at a smaller KL, instead of driving the
# rejected responses' probability to zero.
#
# ## 8. DPO inherits the biases of its data: longer answers
#
# DPO has no reward model that a policy could game during training, but it still learns whatever
# the labels contain, including an annotator's systematic bias. `make_preference_pairs` can give the
# annotator a taste for length: its utility becomes $u(y) = r(y) + b\,|y|$ with $|y|$ the number of
# words, and it labels by $\sigma(\beta_{BT}(u(y_1) - u(y_2)))$. We use $b = 0.1$ per word. With the
# same seed, the responses are **identical** to those of section 6; only some labels change.

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
          f"chosen {words(p.chosen).mean():.2f}, rejected {words(p.rejected).mean():.2f}")  # fmt: skip

policy_biased = trainable_copy(reference)
history_biased = train_dpo(policy_biased, reference, biased, config, rng=3,
                           eval_fn=evaluator(policy_biased), progress=False)  # fmt: skip
for key in ("length", "true_reward", "kl"):
    print(f"{key:12s} reference {history[key][0]:+.2f}   DPO on unbiased pairs "
          f"{history[key][-1]:+.2f}   DPO on biased pairs {history_biased[key][-1]:+.2f}")  # fmt: skip
assert history_biased["length"][-1] > history["length"][-1] + 2
assert history_biased["true_reward"][-1] < history["true_reward"][-1]

# %%
fig, (ax_len, ax_r) = plt.subplots(1, 2, figsize=(11, 3.8))
for h, name in [
    (history, "unbiased labels"),
    (history_biased, f"length-biased labels (b = {LENGTH_BIAS})"),
]:
    ax_len.plot(h.steps("length"), h["length"], "o-", label=name)
    ax_r.plot(h.steps("true_reward"), h["true_reward"], "o-", label=name)
ax_len.set_title("Response length of the DPO policy")
ax_len.set_ylabel("mean response length (tokens incl. END)")
ax_r.set_title("True reward of the DPO policy")
ax_r.set_ylabel("mean true reward")
for ax in (ax_len, ax_r):
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()

# %%
gen = generate(policy_biased, show_prompts, rng=np.random.default_rng(5), **vars(SAMPLING))
texts = tok.decode_batch(gen.tokens, gen.response_mask)
print("DPO on length-biased pairs:")
for prompt, text, r in zip(show_prompts, texts, task.true_reward(gen.tokens, gen.response_mask)):
    print(f"  {tok.decode(prompt):16s} | {text:55s} true r = {r:+.2f}")

# %% [markdown]
# The two runs differ only in which response of some pairs is labelled preferred, yet the policy
# trained on length-biased labels writes much longer reviews, and its true reward is lower:
# filler words carry no valence and dilute the mean, and a long list of adjectives is harder to
# keep positive. DPO removes the *dynamic* failure of RLHF (a policy exploiting a learnt reward
# model during optimisation, notebook 06) but not the *static* one: the preference data define
# the target, biases included. Nothing in the DPO loss can tell a genuine preference from a bias.
#
# ## 9. Try this
#
# The temperature decides how far DPO moves from the reference. Train DPO on the unbiased `pairs`
# of section 6 with $\tau = 0.25$ and $\tau = 4$ (everything else as in section 6) and compare the
# final KL and true reward. Before running it, predict which one moves further, using
# section 2.
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
# e^{\tau\beta_{BT}\,r}$: the KL-regularised optimum with a KL coefficient $1/(\tau\beta_{BT})$, so a
# larger $\tau$ is a weaker leash. Here the extra KL also bought a higher true reward, because the
# labels are unbiased; with the length-biased labels of section 8 it would buy longer answers.
#
# </details>
