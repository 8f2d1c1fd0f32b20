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
# # 07 · Alignment in closed form: a bandit where theory meets code exactly
#
# A language model answering one prompt is, at bottom, a distribution over answers. Shrink
# the set of answers to five and every quantity the other notebooks can only estimate from
# samples becomes an exact sum: the KL to the reference, the expected reward, the optimum
# of the KL-regularised objective, the distribution of best-of-n, and the minimiser of
# the DPO loss. In this notebook each closed form is computed by hand in NumPy, and then
# **reached by training** with minialign's autograd, with an `assert` that theory and code
# agree. (Notebook 05 §1–2 derives the KL-regularised optimum and the DPO loss from it; here
# they are checked exactly.) You will see why the reward-vs-KL frontier has the shape it
# has, when the best-of-n KL bound is tight and when it is loose, what DPO's $\tau$ really
# is, and why DPO's margins run away on deterministic preferences while IPO's stop.
#
# Everything is exact or seeded. **Runtime: about 5 seconds on a laptop CPU.**
#
# 1. A bandit: one prompt, five answers
# 2. Exact KL on a categorical policy
# 3. The KL-regularised objective
# 4. The KL-regularised optimum
# 5. The reward–KL frontier
# 6. Best-of-n
# 7. DPO on Bradley–Terry preferences
# 8. Deterministic preferences: DPO runs away, IPO settles
# 9. Exercises
# 10. Recap
#
# ## Notation
#
# | Symbol | Meaning in this notebook | In code |
# |---|---|---|
# | $y$, $K$ | one of the $K = 5$ answers to the single prompt | `y`, `K` |
# | $\theta$, $\pi_\theta$ | free logits; the policy $\mathrm{softmax}(\theta)$ | `theta`, `logits`, `p` |
# | $\pi_{\rm ref}$, $r(y)$ | the reference policy; the true reward of each answer | `pi_ref`, `r` |
# | $\mathrm{KL}(p \Vert q)$ | $\sum_y p(y)\log\frac{p(y)}{q(y)}$, exact | `categorical_kl`, `kl` |
# | $J$, $\beta$ | the KL-regularised objective $\mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi \Vert \pi_{\rm ref})$ and its KL coefficient | `kl_regularized_objective`, `beta` |
# | $\pi^*_\beta$, $Z$ | the maximiser of $J$ and its normaliser $\sum_y \pi_{\rm ref}(y)\,e^{r(y)/\beta}$ | `pi_star`, `Z` |
# | $n$, $\pi_n$, $F$ | best-of-$n$, its exact distribution, $F(y) = P_{\rm ref}(r \le r(y))$ | `n`, `pi_n`, `cdf` |
# | $\tau$ | the source's DPO temperature, the DPO paper's $1/\beta$ | `tau` |
# | $\beta_{BT}$ | the annotator's reliability, $P(y_i \succ y_j) = \sigma(\beta_{BT}(r_i - r_j))$ | `beta_bt` |
# | $\Delta_\theta$, $h(y)$ | the DPO margin; $h = \log\pi_\theta - \log\pi_{\rm ref}$, so $\Delta_\theta = h(y^+) - h(y^-)$ | `delta`, `h` |
#
# **Clashes across the notebooks.** $\beta$ here is the KL coefficient of $J$; DPO's $\beta$
# is the same thing, $= 1/\tau$, but section 7 shows that on Bradley–Terry data the KL
# coefficient DPO actually lands on is $1/(\tau\beta_{BT})$. The annotator's $\beta_{BT}$
# (notebook 02), Gao et al.'s $\beta$ (notebook 06) and GRPO's $\beta$ on $k_3$ (notebook 04) are
# other quantities. $\tau$ is the DPO temperature here, the sampling temperature in notebook
# 01 and a reasoning trace in notebook 04.

# %%
import itertools

import matplotlib.pyplot as plt
import numpy as np

import minialign as ma
import minialign.functional as F
from minialign.objectives import (
    best_of_n_policy,
    categorical_kl,
    dpo_delta,
    dpo_loss,
    kl_regularized_objective,
    kl_regularized_optimum,
)
from minialign.plots import Slider, interactive_figure, panels, plot_bars, plot_curves
from minialign.tasks.bandit import (
    Bandit,
    best_of_n_distribution,
    best_of_n_kl_bound,
    kl,
    make_bandit,
    optimal_policy,
    win_rate,
)

ma.seed(0)
np.set_printoptions(precision=4, suppress=True, linewidth=100)

# %% [markdown]
# ## 1. A bandit: one prompt, five answers
#
# `make_bandit(K, rng)` draws reference logits and a true reward for each of $K$ answers.
# The policy $\pi_\theta = \mathrm{softmax}(\theta)$ is just $K$ free logits: no network, so
# nothing stands between the objective and its optimum. We pick a seed where the
# situation is typical of a pre-trained model: the reference's favourite answer is a poor
# one, and the best answer is rare.

# %%
bandit = make_bandit(5, rng=np.random.default_rng(28))
assert isinstance(bandit, Bandit)
ref_logits, r = bandit.ref_logits, bandit.rewards  # (K,) each
pi_ref = bandit.pi_ref  # softmax(ref_logits)
K = bandit.K
best = int(np.argmax(r))
print(" answer   pi_ref   reward")
for y in range(K):
    print(f"{y:>7} {pi_ref[y]:>8.3f} {r[y]:>8.3f}" + ("   <- best" if y == best else ""))
print(f"E_ref[r] = {pi_ref @ r:.3f}, max r = {r.max():.3f}")

# %% [markdown]
# ## 2. Exact KL on a categorical policy
#
# On a finite set of answers the KL divergence is a plain sum, with no estimator:
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_{y} p(y) \log \frac{p(y)}{q(y)} \;\ge 0,
#   \qquad = 0 \iff p = q.$$
#
# `categorical_kl(logits_p, logits_q)` takes logits (it applies a stable log-softmax) and
# is differentiable; `tasks.bandit.kl(p, q)` takes probabilities. Both against the sum by
# hand, for a policy that has moved some mass to answer 0:

# %%
theta = ref_logits + np.array([1.0, 0.0, -0.5, 0.3, -0.2])  # some policy's logits
p = np.exp(theta) / np.exp(theta).sum()
kl_by_hand = np.sum(p * np.log(p / pi_ref))
kl_backwards = np.sum(pi_ref * np.log(pi_ref / p))
print(f"KL(p || pi_ref) by hand      {kl_by_hand:.6f}")
print(f"categorical_kl               {categorical_kl(theta, ref_logits).item():.6f}")
print(f"tasks.bandit.kl              {kl(p, pi_ref):.6f}")
print(f"KL(pi_ref || p), the other way round: {kl_backwards:.6f}")
np.testing.assert_allclose(categorical_kl(theta, ref_logits).item(), kl_by_hand, rtol=1e-12)
np.testing.assert_allclose(kl(p, pi_ref), kl_by_hand, rtol=1e-12)
assert categorical_kl(ref_logits, ref_logits).item() == 0.0

# %% [markdown]
# The KL is not symmetric. Alignment penalises $\mathrm{KL}(\pi_\theta \| \pi_{\rm ref})$, the
# expectation under the *policy*: it is cheap to drop answers the reference likes, and
# expensive to put mass where the reference has almost none.
#
# ## 3. The KL-regularised objective
#
# RLHF maximises the reward while a KL penalty holds the policy near the reference.
# As the equation sheet (`docs/equations.md`) prints it:
#
# $$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta.\,\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$
#
# The "$\beta.$" is a typo of the source for a product, $\beta\cdot\mathrm{KL}$. With one prompt
# $x$ and five answers, the expectation is a dot product and the KL is the sum of section 2. By hand, for the policy above and $\beta = 0.5$, and through
# `kl_regularized_objective` (which returns $J$ itself, to *maximise*):

# %%
beta = 0.5
expected_reward = p @ r
J_by_hand = expected_reward - beta * kl_by_hand
J = kl_regularized_objective(theta, ref_logits, r, beta)
print(f"E[r] = {expected_reward:.4f}, KL = {kl_by_hand:.4f}, J = {J_by_hand:.4f}")
print(f"kl_regularized_objective: {J.item():.4f}")
np.testing.assert_allclose(J.item(), J_by_hand, rtol=1e-12)
np.testing.assert_allclose(bandit.objective(p, beta), J_by_hand, rtol=1e-12)

# %% [markdown]
# ## 4. The KL-regularised optimum
#
# Notebook 05 §1 derives it: folding the reward into the logarithm turns $J$ into
# $\beta\log Z - \beta\,\mathrm{KL}(\pi\,\|\,\pi^*)$, so the one maximiser is
#
# $$\pi^*(y) = \frac{\pi_{\rm ref}(y)\, e^{r(y)/\beta}}{Z}, \qquad
#   Z = \sum_y \pi_{\rm ref}(y)\, e^{r(y)/\beta}, \qquad J(\pi^*) = \beta\log Z .$$
#
# Here we check it exactly on the bandit, and add one identity. Taking logs of $\pi^*$ gives
# $\log(\pi^*/\pi_{\rm ref}) = r/\beta - \log Z$; average it under $\pi^*$:
#
# $$\mathrm{KL}(\pi^* \,\|\, \pi_{\rm ref}) = \frac{\mathbb{E}_{\pi^*}[r]}{\beta} - \log Z .$$
#
# The optimum **reweights** the reference; it never invents an answer the reference
# gives probability 0. $\beta \to 0$ puts all mass on the best answer; $\beta \to \infty$
# stays at $\pi_{\rm ref}$.
#
# **By hand**, then through `kl_regularized_optimum` (the objectives layer) and
# `optimal_policy` (the bandit's closed forms):

# %%
unnormalised = pi_ref * np.exp(r / beta)
Z = unnormalised.sum()
pi_star = unnormalised / Z
value = beta * np.log(Z)
print("pi*     ", pi_star)
print("pi_ref  ", pi_ref)
print(f"beta log Z = {value:.6f}")

pi_star_lib, value_lib = kl_regularized_optimum(ref_logits, r, beta)
np.testing.assert_allclose(pi_star_lib, pi_star, rtol=1e-12)
np.testing.assert_allclose(value_lib, value, rtol=1e-12)
np.testing.assert_allclose(optimal_policy(pi_ref, r, beta), pi_star, rtol=1e-12)

# the value, and the KL identity
J_at_optimum = kl_regularized_objective(np.log(pi_star), ref_logits, r, beta).item()
kl_star = kl(pi_star, pi_ref)
print(f"J(pi*) = {J_at_optimum:.6f};  KL(pi*||pi_ref) = {kl_star:.6f}")
print(f"E_pi*[r]/beta - log Z = {pi_star @ r / beta - np.log(Z):.6f}")
np.testing.assert_allclose(J_at_optimum, value, rtol=1e-12)
np.testing.assert_allclose(kl_star, pi_star @ r / beta - np.log(Z), rtol=1e-10)

# %% [markdown]
# **Moving $\beta$.** $\pi^*$ beside $\pi_{\rm ref}$, answer by answer. In a live notebook
# (JupyterLab, or the browser site) a slider sets $\beta$; GitHub shows $\beta = 0.5$. Slide it
# down and the mass piles onto the best answer, answer 0, however rare the reference makes it;
# slide it up and $\pi^*$ melts back into $\pi_{\rm ref}$. The title gives $\pi^*$'s expected
# reward and its KL: each stop of the slider is one point of the frontier of section 5.

# %%
answers = [f"{y}\nr = {r[y]:+.2f}" for y in range(K)]


def optimum(ax, beta):
    pi_b = optimal_policy(pi_ref, r, beta)
    plot_bars({r"$\pi_{\rm ref}$": pi_ref, r"$\pi^*$": pi_b}, ax, labels=answers,
              title=rf"$\beta$ = {beta:g}: $E_{{\pi^*}}[r]$ = {pi_b @ r:.3f}, KL = {kl(pi_b, pi_ref):.3f}",
              xlabel="answer $y$ and its reward", ylabel="probability")
    ax.set_ylim(0, 1)


beta_stops = (0.03, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 30.0)
interactive_figure(optimum, width=6.5, beta=Slider(beta, options=beta_stops, label="β"))
for b in (0.03, beta, 30.0):
    q = optimal_policy(pi_ref, r, b)
    print(f"beta = {b:>4}: pi*(best) = {q[best]:.4f}, "
          f"largest |pi* - pi_ref| = {np.abs(q - pi_ref).max():.4f}")
assert optimal_policy(pi_ref, r, 0.03)[best] > 0.999 and best == 0
assert np.abs(optimal_policy(pi_ref, r, 30.0) - pi_ref).max() < 0.01

# %% [markdown]
# **Reached by training.** Now forget the closed form. Start the logits at the reference,
# compute $J(\theta)$ with minialign, call `backward()`, and step *uphill*,
# $\theta \leftarrow \theta + \eta \nabla_\theta J$ (a minimiser would be handed $-J$).
# The gap $J(\pi^*) - J(\theta)$ must shrink to zero:

# %%
logits = ma.tensor(ref_logits.copy(), requires_grad=True)
lr, steps = 2.0, 1500
gaps, distances = [], []
for _ in range(steps):
    J = kl_regularized_objective(logits, ref_logits, r, beta)
    logits.zero_grad()
    J.backward()
    logits.data += lr * logits.grad  # gradient ASCENT on J
    gaps.append(value - J.item())
    distances.append(np.abs(F.softmax(logits).data - pi_star).max())
pi_trained = F.softmax(logits).data
print("trained ", pi_trained, "\nclosed  ", pi_star)
print(f"final gap J* - J = {gaps[-1]:.2e}")
np.testing.assert_allclose(pi_trained, pi_star, atol=1e-6)
assert all(g >= -1e-12 for g in gaps)  # nothing beats the optimum

# %%
plot_curves({r"$J(\pi^*) - J(\theta)$": np.maximum(gaps, 1e-16),  # float floor
             r"$\max_y |\pi_\theta(y) - \pi^*(y)|$": np.array(distances)}, logy=True,
            title=rf"Gradient ascent on $J$ reaches $\pi^*$ ($\beta$ = {beta})",
            xlabel="gradient step", ylabel="gap (log scale)")
plt.show()

# %% [markdown]
# The gap falls geometrically: $J$ is concave in $\pi$, and near the optimum the softmax
# parametrisation behaves like a quadratic bowl. (With a neural network the same
# objective is non-concave in the weights and only estimated from samples; that is the
# whole difficulty of PPO.)
#
# ## 5. The reward–KL frontier
#
# Every $\beta$ gives one optimal policy. Sweeping $\beta$ traces the best reward any
# policy can reach for a given KL budget: no policy lies above this curve (for any
# $\pi$, $\mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi\|\pi_{\rm ref}) \le \beta \log Z$). It is
# the ideal that reward–KL plots such as the DPO paper's Figure 2 approximate: that figure
# plots measured (KL, reward) points of trained policies, and has no analytic frontier,
# because for a real task $Z$ cannot be computed. On a bandit it can.

# %%
betas = np.logspace(-1.5, 1.5, 60)
front_kl = np.array([kl(optimal_policy(pi_ref, r, b), pi_ref) for b in betas])
front_reward = np.array([optimal_policy(pi_ref, r, b) @ r for b in betas])
assert np.all(np.diff(front_kl) < 0) and np.all(np.diff(front_reward) < 0)  # large beta: stay
for b in [0.1, 0.5, 2.0, 10.0]:
    q = optimal_policy(pi_ref, r, b)
    print(f"beta = {b:>4}: E[r] = {q @ r:.3f}, KL = {kl(q, pi_ref):.3f}, pi* = {q}")

# %% [markdown]
# We draw the frontier together with best-of-n in the next section.
#
# ## 6. Best-of-n
#
# The simplest alignment method: draw $n$ answers from the reference and keep the one
# with the highest reward. No training, but a real policy $\pi_n$ with an exact
# distribution. Sort the answers by reward and let $F(y) = P_{\rm ref}(r \le r(y))$. The
# best of $n$ has reward at most $r(y)$ with probability $F(y)^n$, so (distinct rewards)
#
# $$\pi_n(y) = F(y)^n - F(y^-)^n,$$
#
# where $y^-$ is the next-worse answer ($F(y^-) = 0$ for the worst). By hand, then through
# both library versions, then by simulation:

# %%
n = 4
order = np.argsort(r)  # worst ... best
cdf = np.cumsum(pi_ref[order])  # F(y) in sorted order
pi_n_sorted = cdf**n - np.concatenate([[0.0], cdf[:-1]]) ** n
pi_n = np.empty(K)
pi_n[order] = pi_n_sorted
print("pi_4 by hand          ", pi_n)
np.testing.assert_allclose(best_of_n_policy(pi_ref, r, n), pi_n, rtol=1e-12)
np.testing.assert_allclose(best_of_n_distribution(pi_ref, r, n), pi_n, rtol=1e-12)

rng = np.random.default_rng(0)
draws = rng.choice(K, size=(200_000, n), p=pi_ref)  # 200k rounds of n draws
winners = draws[np.arange(len(draws)), np.argmax(r[draws], axis=1)]
simulated = np.bincount(winners.astype(np.intp), minlength=K) / len(winners)  # intp: wasm32
print("pi_4 by simulation    ", simulated)
np.testing.assert_allclose(simulated, pi_n, atol=5e-3)

# %% [markdown]
# **Moving $n$.** $\pi_n$ beside $\pi_{\rm ref}$. In a live notebook a slider sets $n$ (GitHub
# shows $n = 4$). At $n = 1$ best-of-n is the reference itself; a larger $n$ shifts mass up
# the reward order, and by $n = 64$ nearly all of it (0.99) sits on answer 0.
# From there on more draws change almost nothing, while the much-quoted formula for its KL
# in the title, $\log n - (n-1)/n$, keeps growing: the next paragraphs explain why.

# %%
def best_of(ax, n):
    pi_m = best_of_n_policy(pi_ref, r, n)
    plot_bars({r"$\pi_{\rm ref}$": pi_ref, r"$\pi_n$": pi_m}, ax, labels=answers,
              title=rf"$n$ = {n}: $E_{{\pi_n}}[r]$ = {pi_m @ r:.3f}, KL = {kl(pi_m, pi_ref):.3f}"
              rf" ($\log n - (n-1)/n$ = {best_of_n_kl_bound(n):.3f})",
              xlabel="answer $y$ and its reward", ylabel="probability")
    ax.set_ylim(0, 1)


n_stops = (1, 2, 4, 8, 16, 64, 256, 1000)
interactive_figure(best_of, width=6.5, n=Slider(n, options=n_stops, label="n"))
for m in (1, n, 64, 1000):
    q = best_of_n_policy(pi_ref, r, m)
    print(f"n = {m:>4}: pi_n(best) = {q[best]:.4f}, KL = {kl(q, pi_ref):.3f}, "
          f"log n - (n-1)/n = {best_of_n_kl_bound(m):.3f}")
np.testing.assert_allclose(best_of_n_policy(pi_ref, r, 1), pi_ref, rtol=1e-12)
assert best_of_n_policy(pi_ref, r, 64)[best] > 0.99

# %% [markdown]
# **Its KL, against the bound.** A much-quoted formula says
# $\mathrm{KL}(\pi_n \| \pi_{\rm ref}) = \log n - (n-1)/n$. It is an **upper bound**
# (Beirami et al. 2024), and it is **tight whenever every answer's probability goes to 0 and
# the rewards are distinct**; the answers need not be equally likely. The reason: then the
# reward under $\pi_{\rm ref}$ is in effect a continuous random variable, best-of-n re-weights
# each answer by $\pi_n/\pi_{\rm ref} = nF^{n-1}$, and under $\pi_n$ the quantile $F$ is
# distributed like the largest of $n$ uniform numbers, for which $\mathbb{E}[\log F] = -1/n$.
# So $\mathrm{KL} = \mathbb{E}_{\pi_n}[\log n + (n-1)\log F] = \log n - (n-1)/n$ exactly. An
# answer with a large probability breaks this, and so do ties (a class of equally rewarded
# answers acts like one answer with their joint probability). References of growing size,
# with probabilities that differ by orders of magnitude, and random distinct rewards:

# %%
rng = np.random.default_rng(1)
print(f"{'answers':>8} {'largest pi_ref':>15} {'smallest':>9} {'bound - exact KL at n = 16':>28}")
gap_16 = []
for N in (5, 50, 500, 5_000, 50_000):
    weights = rng.lognormal(0.0, 1.0, N)  # unequal probabilities ...
    ref_N, r_N = weights / weights.sum(), rng.standard_normal(N)  # ... and distinct rewards
    gap_16.append(best_of_n_kl_bound(16) - kl(best_of_n_policy(ref_N, r_N, 16), ref_N))
    print(f"{N:>8} {ref_N.max():>15.1e} {ref_N.min():>9.1e} {gap_16[-1]:>28.1e}")
tied = np.where(r_N > 0, 1.0, 0.0)  # the same 50,000 rare answers, rewards just good or bad
gap_tied = best_of_n_kl_bound(16) - kl(best_of_n_policy(ref_N, tied, 16), ref_N)
print(f"the same 50,000 answers with tied rewards (good = 1, bad = 0): gap {gap_tied:.2f}")
assert np.all(np.diff(gap_16) < 0) and gap_16[-1] < 1e-5  # tight as every answer gets rare
assert gap_tied > 0.5  # ... but not with ties

# %% [markdown]
# With five answers the bound is loose, and badly so for large $n$: once $n$ is large
# best-of-n returns the best answer almost surely, so its KL stops at
# $-\log \pi_{\rm ref}(y_{\rm best})$, while $\log n$ keeps growing. A reference with 20,000
# rare answers of unequal probability follows the bound all the way to $n = 1000$:

# %%
ns = np.unique(np.r_[np.round(np.logspace(0, 3, 40)).astype(int), 8, 64])  # 1 ... 1000
kl_exact = np.array([kl(best_of_n_distribution(pi_ref, r, m), pi_ref) for m in ns])
bound = np.array([best_of_n_kl_bound(m) for m in ns])
weights = np.random.default_rng(2).lognormal(0.0, 1.0, 20_000)
many, r_many = weights / weights.sum(), np.random.default_rng(3).standard_normal(20_000)
kl_many = np.array([kl(best_of_n_policy(many, r_many, m), many) for m in ns])
ceiling = -np.log(pi_ref[best])
assert np.all(kl_exact <= bound + 1e-12) and np.all(kl_many <= bound + 1e-12)
assert kl_exact[-1] <= ceiling + 1e-9 and np.all(bound - kl_many < 2e-3)
for m in [2, 8, 64, 1000]:
    k = int(np.flatnonzero(ns == m)[0])
    print(
        f"n = {m:>4}: exact KL {kl_exact[k]:.3f} (20,000 answers: {kl_many[k]:.3f}), "
        f"bound {bound[k]:.3f}"
    )
print(f"ceiling -log pi_ref(y_best) = {ceiling:.3f}; at n = 1000 the bound is "
      f"{bound[-1] / kl_exact[-1]:.1f} times the exact KL")
assert bound[-1] > 2 * kl_exact[-1]  # overstated more than twofold

# %% [markdown]
# **Win rate.** How often does best-of-n's answer beat a fresh reference answer (ties
# count half)? With $n+1$ draws from a continuous distribution, each is equally likely to
# be the largest, so best-of-n wins $n/(n+1)$ of the time. With few discrete answers ties
# are common and the win rate falls short of that.

# %%
wins = np.array([win_rate(best_of_n_distribution(pi_ref, r, m), pi_ref, r) for m in ns])
assert np.all(wins <= ns / (ns + 1) + 1e-12)
np.testing.assert_allclose(wins[0], 0.5)  # n = 1 is the reference itself: a coin flip
np.testing.assert_allclose(wins[-1], 1 - pi_ref[best] / 2, atol=1e-6)  # see the plot below
print(f"n = 4: win rate {win_rate(pi_n, pi_ref, r):.4f} <= 4/5 = {4 / 5:.4f}")
print(f"n = 1000: win rate {wins[-1]:.4f} = 1 - pi_ref(y_best) / 2 = {1 - pi_ref[best] / 2:.4f}")

# %%
bon = [best_of_n_distribution(pi_ref, r, m) for m in ns]
bon_kl, bon_reward = np.array([kl(q, pi_ref) for q in bon]), np.array([q @ r for q in bon])
# nothing beats the frontier: for every beta, E_q[r] - beta KL(q) <= beta log Z = max J
values = np.array([kl_regularized_optimum(ref_logits, r, b)[1] for b in betas])  # (60,)
assert np.all(bon_reward[:, None] - betas * bon_kl[:, None] <= values + 1e-12)

fig, axes = panels(3, width=5.0)
axes[0].plot(bon_kl, bon_reward, "o", ms=4, color="tab:orange", label="best-of-n, n = 1 ... 1000")
plot_curves({r"optimum $\pi^*_\beta$ (sweep over $\beta$)": (front_kl, front_reward)}, axes[0],
            title="The exact reward–KL frontier", xlabel=r"KL($\pi$ || $\pi_{\rm ref}$) (nats)",
            ylabel=r"expected true reward $E_\pi[r]$", hlines={"best answer's reward": r.max()},
            fontsize=8)
plot_curves({r"bound $\log n - (n-1)/n$": (ns, bound)}, axes[1], style="k--")
plot_curves({"exact, 20,000 rare answers": (ns, kl_many),
             "exact, our 5-answer bandit": (ns, kl_exact)}, axes[1], logx=True,
            title="Best-of-n KL: exact vs the bound", xlabel="n",
            ylabel=r"KL($\pi_n$ || $\pi_{\rm ref}$) (nats)",
            hlines={r"$-\log \pi_{\rm ref}(y_{\rm best})$": ceiling}, fontsize=8)
plot_curves({"n / (n + 1)": (ns, ns / (ns + 1))}, axes[2], style="k--")
plot_curves({"exact win rate, our bandit": (ns, wins)}, axes[2], logx=True, xlabel="n",
            title="Best-of-n win rate over the reference",
            ylabel="P(best-of-n beats a reference answer)", fontsize=8)
fig.tight_layout()

# %% [markdown]
# Three things to read off. Best-of-n sits very close to the optimal frontier (left):
# a cheap method, nearly as good as the exact optimum at the same KL. The bound (middle)
# is tight for many rare answers with distinct rewards; on our bandit it overstates the KL at every
# $n > 1$ and is useless past $n \approx 50$, where the exact KL hits its ceiling of
# $-\log \pi_{\rm ref}(y_{\rm best})$ (printed above). Reporting $\log n - (n-1)/n$ as "the KL
# of best-of-n" overstates it more than twofold at $n = 1000$. And the win rate stops
# short of $n/(n+1)$ (right): once best-of-n always returns the best answer, it ties
# (half a win) whenever the reference draws that answer too, so it can never exceed
# $1 - \pi_{\rm ref}(y_{\rm best})/2$ (printed above).
#
# ## 7. DPO on Bradley–Terry preferences
#
# DPO never sees the reward. It sees pairs: the same prompt, a preferred answer $y^+$ and
# a dispreferred $y^-$. Notebook 05 §2 derives its loss from section 4's optimum (the
# normaliser $Z$ cancels in every comparison); here we check where it ends, exactly. As the
# equation sheet writes it, the log-ratio margin is
#
# $$\Delta_\theta(x,y^+,y^-) = \bigl[\log\pi_\theta(y^+\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^+\!\mid\!x)\bigr] -\bigl[\log\pi_\theta(y^-\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^-\!\mid\!x)\bigr]$$
#
# and the loss is a logistic loss on it:
#
# $$L_{\mathrm{DPO}}(\theta) = -\mathbb{E}_{(x,y^+,y^-)}\!\Big[\log \sigma\!\bigl(\tfrac{1}{\tau}\,\Delta_\theta(x,y^+,y^-)\bigr)\Big]$$
#
# where
#
# $$\sigma(z)=1/(1+e^{-z})$$
#
# **Careful with $\tau$.** The source's temperature $\tau$ is the DPO paper's $1/\beta$
# (TRL's `DPOConfig.beta` is $1/\tau$). By hand for one pair, $y^+ = 0$ and $y^- = 4$,
# under the policy $\theta$ of section 2, with $\tau = 0.5$:

# %%
tau = 0.5
log_pi, log_ref = np.log(p), np.log(pi_ref)
y_plus, y_minus = 0, 4
delta = (log_pi[y_plus] - log_ref[y_plus]) - (log_pi[y_minus] - log_ref[y_minus])
sigma = 1 / (1 + np.exp(-delta / tau))
loss_by_hand = -np.log(sigma)
print(f"Delta = {delta:.4f}, sigma(Delta/tau) = {sigma:.4f}, loss = {loss_by_hand:.4f}")

args = [log_pi[[y_plus]], log_pi[[y_minus]], log_ref[[y_plus]], log_ref[[y_minus]]]  # (B=1,)
np.testing.assert_allclose(dpo_delta(*args).data, [delta], rtol=1e-12)
np.testing.assert_allclose(dpo_loss(*args, tau=tau).item(), loss_by_hand, rtol=1e-12)
# at the reference every margin is 0, and the loss is log 2
at_ref = dpo_loss(log_ref[[0]], log_ref[[4]], log_ref[[0]], log_ref[[4]], tau=tau).item()
print(f"loss at the reference: {at_ref:.6f} = log 2 = {np.log(2):.6f}")
np.testing.assert_allclose(at_ref, np.log(2), rtol=1e-12)

# %% [markdown]
# **The data.** Pairs are drawn from the reference, $y_i, y_j \sim \pi_{\rm ref}$, and
# labelled by a Bradley–Terry annotator with rationality $\beta_{BT}$:
# $P(y_i \succ y_j) = \sigma\big(\beta_{BT}(r_i - r_j)\big)$. With five answers we don't
# need to sample: the **expected** DPO loss is an exact sum over all ordered pairs,
# each weighted by how often it is drawn and labelled that way,
#
# $$\mathbb{E}[L_{\rm DPO}] = \sum_{i \ne j} \pi_{\rm ref}(y_i)\,\pi_{\rm ref}(y_j)\,
#   \sigma\big(\beta_{BT}(r_i - r_j)\big)\; \Big[-\log\sigma\big(\tfrac1\tau \Delta_\theta(y_i, y_j)\big)\Big]$$
#
# (pairs with $i = j$ have $\Delta = 0$ and add a constant). **Where it ends.** Write
# $h(y) = \log \pi_\theta(y) - \log \pi_{\rm ref}(y)$, so $\Delta_\theta = h(y_i) - h(y_j)$. The
# terms for $(i, j)$ and $(j, i)$ together are a cross-entropy between the label
# probability $\sigma(\beta_{BT}(r_i - r_j))$ and the model's $\sigma(\Delta/\tau)$, smallest
# when the two match: $\Delta/\tau = \beta_{BT}(r_i - r_j)$ for every pair, which
# $h = \tau\beta_{BT}\, r + \text{const}$ achieves. So
#
# $$\pi_{\rm DPO} = \frac{\pi_{\rm ref}\, e^{\tau \beta_{BT}\, r}}{Z}
#   = \pi^*_{\beta}\ \text{ of section 4 with }\ \beta = \frac{1}{\tau\,\beta_{BT}} .$$
#
# DPO lands on the KL-regularised optimum, with the paper's $\beta = 1/\tau$ measured in
# the annotator's reward units $\beta_{BT}\, r$. Now minimise the exact expected loss by
# plain gradient descent on the logits:

# %%
beta_bt = 2.0
pairs = np.array(list(itertools.permutations(range(K), 2)))  # (20, 2) ordered pairs i != j
i, j = pairs[:, 0], pairs[:, 1]
p_label = 1 / (1 + np.exp(-beta_bt * (r[i] - r[j])))  # P(y_i preferred to y_j)
bt_weights = pi_ref[i] * pi_ref[j] * p_label  # (20,)


def expected_pair_loss(logits, weights, loss_type="sigmoid"):
    """Sum over ordered pairs (i preferred to j) of weight * loss: an exact expectation."""
    logp = F.log_softmax(logits)  # (K,) log pi_theta
    losses = dpo_loss(
        logp[i], logp[j], log_ref[i], log_ref[j], tau, loss_type=loss_type, reduction="none"
    )  # (20,)
    return (losses * weights).sum()


def descend(weights, loss_type, steps, lr):
    """Plain gradient descent on free logits from the reference; the logits at every step."""
    logits = ma.tensor(ref_logits.copy(), requires_grad=True)
    trace = []
    for _ in range(steps):
        loss = expected_pair_loss(logits, weights, loss_type)
        logits.zero_grad()
        loss.backward()
        logits.data -= lr * logits.grad
        trace.append(logits.data.copy())
    return np.array(trace)  # (steps, K)


def probs(logits):  # softmax along the last axis, NumPy
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


trace = descend(bt_weights, "sigmoid", steps=300, lr=5.0)
target = pi_ref * np.exp(tau * beta_bt * r)
target /= target.sum()
pi_dpo = probs(trace[-1])
print("DPO after 300 steps       ", pi_dpo)
print("pi_ref exp(tau b_BT r) / Z", target)
np.testing.assert_allclose(pi_dpo, target, atol=1e-8)
np.testing.assert_allclose(target, optimal_policy(pi_ref, r, 1 / (tau * beta_bt)), rtol=1e-12)

# %%
plot_curves({"": np.abs(probs(trace) - target).max(axis=1)}, logy=True, xlabel="gradient step",
            title=r"DPO's exact expected loss is minimised at $\pi_{\rm ref} e^{\tau\beta_{BT} r}/Z$",
            ylabel=r"$\max_y |\pi_\theta(y) - \pi_{\rm target}(y)|$ (log scale)")
plt.show()

# %% [markdown]
# A common mistake is to plug the DPO paper's $\beta$ in where the source's $\tau$ goes:
# the policy would then move towards $\pi_{\rm ref} e^{\beta_{BT} r / \tau}$, a far
# greedier target. With $\tau = 0.5$ and $\beta_{BT} = 2$ that is the difference between
# $e^{1 \cdot r}$ and $e^{4 r}$:

# %%
for name, scale in [
    ("correct, tau * beta_BT", tau * beta_bt),
    ("swapped, beta_BT / tau", beta_bt / tau),
]:
    q = pi_ref * np.exp(scale * r)
    q /= q.sum()
    print(f"{name:<24} KL {kl(q, pi_ref):.3f}  E[r] {q @ r:.3f}")

# %% [markdown]
# ## 8. Deterministic preferences: DPO runs away, IPO settles
#
# Now let the annotator be perfect ($\beta_{BT} \to \infty$): the higher-reward answer is
# always preferred. The DPO loss of each pair, $-\log\sigma(\Delta/\tau)$, is then
# minimised only as $\Delta \to \infty$, so gradient descent never stops pushing:
# $\pi_\theta(y^-) \to 0$ for every answer that ever loses, whatever $\tau$ is. The KL
# anchor that $\tau$ was supposed to provide disappears. IPO (Azar et al. 2023) replaces
# the logistic loss by a squared one, $(\Delta - \tau/2)^2$ in minialign's
# parametrisation (`loss_type="ipo"`), which has a finite minimiser. For IPO the exact
# expected loss is a weighted least-squares problem in $h$, so we can even compute its
# end point directly.

# %%
perfect_weights = pi_ref[i] * pi_ref[j] * (r[i] > r[j])  # (20,) only the true order is seen
steps = 3000
dpo_trace = descend(perfect_weights, "sigmoid", steps, lr=5.0)
ipo_trace = descend(perfect_weights, "ipo", steps, lr=2.0)
worst = int(np.argmin(r))


def margin(trace):  # Delta(best, worst) = h(best) - h(worst) at every step
    h = np.log(probs(trace)) - log_ref
    return h[:, best] - h[:, worst]


dpo_margin, ipo_margin = margin(dpo_trace), margin(ipo_trace)

# IPO's end point: minimise sum_k w_k (h_i - h_j - tau/2)^2 over h (defined up to a constant)
A = np.zeros((len(pairs), K))
A[np.arange(len(pairs)), i], A[np.arange(len(pairs)), j] = 1.0, -1.0  # (A h)_k = h_i - h_j
sqrt_w = np.sqrt(perfect_weights)
h_ipo = np.linalg.lstsq(A * sqrt_w[:, None], sqrt_w * tau / 2, rcond=None)[0]
ipo_end = probs(log_ref + h_ipo)
np.testing.assert_allclose(probs(ipo_trace[-1]), ipo_end, atol=1e-9)

for name, tr, m in [("DPO", dpo_trace, dpo_margin), ("IPO", ipo_trace, ipo_margin)]:
    print(
        f"{name}: margin at steps 10/100/1000/3000 = "
        + " / ".join(f"{m[s - 1]:.2f}" for s in (10, 100, 1000, 3000))
        + f";  final pi = {probs(tr[-1])}, KL = {kl(probs(tr[-1]), pi_ref):.2f}"
    )
assert np.all(np.diff(dpo_margin[99:]) > 0)  # still rising at every step
assert dpo_margin[-1] - dpo_margin[steps // 2] > 1.0  # and by a lot: no plateau
assert abs(ipo_margin[-1] - ipo_margin[steps // 2]) < 1e-9  # IPO has stopped

# %%
fig, (ax_m, ax_p) = panels(2)
x = np.arange(1, steps + 1)
plot_curves({"DPO (sigmoid)": (x, dpo_margin), r"IPO, $(\Delta - \tau/2)^2$": (x, ipo_margin)},
            ax_m, logx=True, title="Perfect preferences: the margin of best over worst",
            xlabel="gradient step (log scale)", ylabel=r"$\Delta_\theta(y_{\rm best}, y_{\rm worst})$")
plot_curves({"DPO": (x, probs(dpo_trace)[:, best]), "IPO": (x, probs(ipo_trace)[:, best])}, ax_p,
            logx=True, title="Probability of the best answer", xlabel="gradient step (log scale)",
            ylabel=r"$\pi_\theta(y_{\rm best})$", hlines={r"$\pi_{\rm ref}$": pi_ref[best]})
fig.tight_layout()

# %% [markdown]
# DPO's margin keeps climbing, by roughly the same amount for every tenfold increase
# in steps (a straight line on the log axis): for large margins the loss
# $-\log\sigma(\Delta/\tau) \approx e^{-\Delta/\tau}$ has a gradient that shrinks but never
# vanishes. Its policy slides towards "always answer 0", and the KL to the reference
# grows towards $-\log\pi_{\rm ref}(y_{\rm best})$ whatever $\tau$ says. IPO reaches its
# least-squares margins within a few dozen steps and stays there. (Its best-vs-worst
# margin is not exactly $\tau/2$: one vector $h$ has to serve all ten pairs at once, and
# least squares balances them.) With finite data, every preference that happens to be
# unanimous in the sample behaves like this, one reason DPO runs are stopped early.
#
# ## 9. Exercises
#
# The notebook is committed with the exercises open so that CI can run it: an "implement it"
# stub raises `NotImplementedError` (its check then only says so), and a "find the bug" check
# asserts that the planted bug is still caught until you set `BUG_FIXED = True`; from then on
# the same cells assert your code against the library.
#
# **Exercise 1 (implement it).** Write the KL-regularised optimum of section 4 in NumPy:
# return $\pi^*$ and the value $\beta\log Z$. It must also work for a tiny $\beta$, where
# $e^{r/\beta}$ overflows a float.

# %%
def my_kl_optimum(pi_ref, r, beta):
    """(pi*, beta log Z) for 1-D pi_ref and r: pi* = pi_ref e^{r/beta} / Z. Hint: log-sum-exp."""
    raise NotImplementedError("exercise 1: replace this line by your code")


# %%
rng_ex = np.random.default_rng(9)
try:
    for size, b in [(5, 2.0), (8, 0.5), (12, 1e-3)]:
        bandit_ex = make_bandit(size, rng=rng_ex)
        mine_pi, mine_value = my_kl_optimum(bandit_ex.pi_ref, bandit_ex.rewards, b)
        lib_pi, lib_value = kl_regularized_optimum(bandit_ex.ref_logits, bandit_ex.rewards, b)
        np.testing.assert_allclose(mine_pi, lib_pi, rtol=1e-9, atol=1e-12, err_msg=f"beta = {b}")
        np.testing.assert_allclose(mine_value, lib_value, rtol=1e-9, err_msg=f"beta = {b}")
    print("Exercise 1 passes: my_kl_optimum agrees with kl_regularized_optimum, tiny beta included.")
except NotImplementedError:
    print("Exercise 1 is open: write my_kl_optimum above, then run this cell again.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_kl_optimum(pi_ref, r, beta):
#     z = np.log(pi_ref) + r / beta  # log(pi_ref e^{r/beta}), no exp yet
#     log_Z = z.max() + np.log(np.exp(z - z.max()).sum())  # log-sum-exp: the largest term is e^0
#     return np.exp(z - log_Z), beta * log_Z
# ```
#
# With $\beta = 10^{-3}$ and rewards near 1, $e^{r/\beta} \approx e^{1000}$ is `inf` in float64,
# and `inf / inf` is NaN. Subtracting the largest exponent first keeps every term in $[0, 1]$.
#
# </details>
#
# **Exercise 2 (find the bug).** This is section 6's best-of-n formula, written slightly
# differently. It runs, returns five numbers, and is wrong. Find the bug, fix it, set
# `BUG_FIXED = True`, and run the check against `best_of_n_policy`.

# %%
BUG_FIXED = False  # set to True once you have fixed best_of_n_from_cdf


def best_of_n_from_cdf(pi_ref, r, n):
    """pi_n(y) = F(y)^n - F(y^-)^n for distinct rewards, y^- the next-worse answer."""
    order = np.argsort(r)  # worst ... best
    cdf = np.cumsum(pi_ref[order])  # F(y), in sorted order
    below = np.roll(cdf, 1)  # F(y^-): the F of the answer one place lower
    pi_n = np.empty_like(pi_ref)
    pi_n[order] = cdf**n - below**n
    return pi_n


# %%
mismatch = 0.0
for m in (1, 2, 4, 16):
    got = best_of_n_from_cdf(pi_ref, r, m)
    mismatch = max(mismatch, np.abs(got - best_of_n_policy(pi_ref, r, m)).max())
print(f"n = 16: {best_of_n_from_cdf(pi_ref, r, 16)} (sums to {best_of_n_from_cdf(pi_ref, r, 16).sum():.3f})")
print(f"largest difference from best_of_n_policy over n = 1, 2, 4, 16: {mismatch:.3g}")
if BUG_FIXED:
    assert mismatch < 1e-12, "still different from best_of_n_policy: what is F(y^-) for the worst answer?"
    print("Exercise 2 passes.")
else:
    assert mismatch > 1e-3, "best_of_n_from_cdf agrees with the library now: set BUG_FIXED = True"
    print("Exercise 2 is open: the function disagrees with best_of_n_policy.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# `np.roll` shifts the array *cyclically*: the last entry, $F(y_{\rm best}) = 1$, wraps round to
# the front, so the worst answer gets $F(y^-) = 1$ instead of 0, a probability of $F^n - 1 < 0$,
# and the distribution no longer sums to 1 (the printed sum). Shift in a zero instead:
#
# ```python
#     below = np.concatenate([[0.0], cdf[:-1]])  # F(y^-) = 0 for the worst answer
# ```
#
# The sum of a distribution and its sign are cheap checks that catch this kind of off-by-one
# at once; the library's tests check both on random inputs.
#
# </details>
#
# **Exercise 3 (try this).** Check the DPO optimum on a *random* bandit: draw one with
# `make_bandit(8, rng)`, pick your own $\tau$ and $\beta_{BT}$, compute the exact expected loss over
# all ordered pairs (sample no data), descend, and compare with
# `optimal_policy(pi_ref, r, 1 / (tau * beta_bt))`. Then keep the same data but swap the logistic
# loss for SLiC's hinge (`loss_type="hinge"`): is the end point still that optimum?
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# b8 = make_bandit(8, rng=np.random.default_rng(5))
# pr, rr, tau8, bbt8 = b8.pi_ref, b8.rewards, 1.0, 1.5
# pi8, pj8 = np.array(list(itertools.permutations(range(8), 2))).T
# w8 = pr[pi8] * pr[pj8] / (1 + np.exp(-bbt8 * (rr[pi8] - rr[pj8])))
#
#
# def end_point(loss_type, steps=2000, lr=3.0):
#     z = ma.tensor(b8.ref_logits.copy(), requires_grad=True)
#     for _ in range(steps):
#         lp = F.log_softmax(z)
#         ref = np.log(pr)
#         losses = dpo_loss(lp[pi8], lp[pj8], ref[pi8], ref[pj8], tau8,
#                           loss_type=loss_type, reduction="none")
#         loss = (losses * w8).sum()
#         z.zero_grad()
#         loss.backward()
#         z.data -= lr * z.grad
#     return probs(z.data)
#
#
# target8 = optimal_policy(pr, rr, 1 / (tau8 * bbt8))
# np.testing.assert_allclose(end_point("sigmoid"), target8, atol=1e-6)
# print("hinge is off by", np.abs(end_point("hinge") - target8).max())  # a different end point
# ```
#
# Only the logistic loss matches the Bradley–Terry likelihood, so only it recovers
# $\pi_{\rm ref} e^{\tau\beta_{BT} r}/Z$; the hinge loss stops caring once a margin
# exceeds $\tau$ and ends elsewhere.
#
# </details>
#
# ## 10. Recap
#
# | | Equation |
# |---|---|
# | exact KL | $\mathrm{KL}(p \Vert q) = \sum_y p(y)\log\frac{p(y)}{q(y)} \ge 0$, not symmetric |
# | objective and optimum | $J(\pi) = \mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi \Vert \pi_{\rm ref})$, $\;\pi^* = \pi_{\rm ref}\,e^{r/\beta}/Z$, $\;\max J = \beta\log Z$ |
# | KL of the optimum | $\mathrm{KL}(\pi^* \Vert \pi_{\rm ref}) = \mathbb{E}_{\pi^*}[r]/\beta - \log Z$ |
# | best-of-n | $\pi_n(y) = F(y)^n - F(y^-)^n$, $\;\mathrm{KL}(\pi_n \Vert \pi_{\rm ref}) \le \log n - \frac{n-1}{n}$, win rate $\le \frac{n}{n+1}$ |
# | DPO on Bradley–Terry data | minimiser $\pi_{\rm ref}\,e^{\tau\beta_{BT}\,r}/Z = \pi^*_\beta$ with $\beta = 1/(\tau\beta_{BT})$ |
# | IPO | $(\Delta_\theta - \tau/2)^2$: a finite minimiser even for deterministic preferences |
#
# What to remember:
#
# 1. **The optimum re-weights the reference**, $\pi^* \propto \pi_{\rm ref}\,e^{r/\beta}$: it never
#    invents an answer the reference gives probability 0, and sweeping $\beta$ traces the best
#    reward any policy can reach at each KL, the ideal that reward–KL plots approximate.
#    (Sections 4–5; derived in notebook 05 §1.)
# 2. **Best-of-n is nearly on that frontier**, and its KL bound $\log n - (n-1)/n$ is tight
#    only when every answer is rare and the rewards are distinct; with a few likely answers (or
#    ties) it can overstate the KL many times over. (Section 6.)
# 3. **DPO lands on the KL-regularised optimum**, with KL coefficient $1/(\tau\beta_{BT})$: the
#    source's $\tau$ is the DPO paper's $1/\beta$, in the annotator's reward units. (Section 7.)
# 4. **On deterministic preferences DPO's margin grows without bound**, whatever $\tau$; IPO's
#    squared loss stops. (Section 8.)
