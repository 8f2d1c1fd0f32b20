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
# # 02 · The reward model: learning a score from comparisons
#
# PPO and GRPO maximise a reward $r_\phi(x,y)$, and the source notes behind the equation sheet
# (`docs/equations.md`) only say that this reward model is trained "on human preference data". This notebook fills in that step. People
# rarely agree on an absolute score for a response, but they can say which of two responses they
# prefer; the Bradley–Terry model turns such comparisons into a score. You will compute its loss
# and gradient by hand, label preference pairs with a simulated (noisy) annotator on the
# sentiment task, train a `RewardModel`, and then look hard at what it gets wrong, including
# inputs it never saw in training, where it disagrees badly with the true reward. Those
# disagreements are what PPO will exploit in notebook 06.
#
# Runtime: about 10 seconds on a laptop CPU (2 cores), fully seeded.
#
# 1. The Bradley–Terry model
# 2. The Bradley–Terry loss
# 3. Preference pairs from a simulated annotator
# 4. Training the reward model
# 5. What the reward model gets wrong
# 6. Out of distribution: repeated words
# 7. Margin and centring
# 8. Exercises
# 9. Recap
#
# ## Notation
#
# | Symbol | Meaning in this notebook | In code |
# |---|---|---|
# | $x$, $y$ | a prompt; a response to it | `prompt_ids`, `ids` |
# | $y^+$, $y^-$ | the preferred and the dispreferred response of a pair | `chosen`, `rejected` |
# | $r_\phi(x, y)$ | the reward model's score, with parameters $\phi$ | `RewardModel`, `reward_fn(rm)` |
# | $r(y)$ | the task's **true** reward, known here and never in practice | `task.true_reward` |
# | $\sigma(z)$ | the logistic function $1/(1+e^{-z})$ | `sigmoid` |
# | $B$; $r^+_b$, $r^-_b$ | pairs per batch; the scores of pair $b$ | `chosen`, `rejected` |
# | $\mathcal{L}(\phi)$ | the Bradley–Terry loss, $-\frac1B\sum_b\log\sigma(r^+_b - r^-_b)$ | `bradley_terry_loss` |
# | $\beta_{BT}$ | how reliable the simulated annotator is | `beta_bt`, `BETA_BT` |
# | $p_i$ | the annotator's probability of the choice it made | `p_chosen` |
# | $m_b$, $c$ | margin of pair $b$; centring coefficient | `margin`, `center_rewards_coefficient` |
#
# **Same letter, different meaning.** Two symbols are overloaded across the notebooks; the
# table says which is which.
#
# | Symbol | Meaning | Where | In code |
# |---|---|---|---|
# | $\tau$ | sampling temperature (divides the logits) | 01 | `temperature` |
# | $\tau_i$ | the reasoning trace of output $i$ | 04 | |
# | $\tau$ | DPO temperature, $=1/\beta$ of the DPO paper | 05, 07 | `tau` |
# | $\beta$ | KL coefficient of $J(\theta) = \mathbb{E}[r] - \beta\,\mathrm{KL}$ | 03, 06, 07 | `PPOConfig.beta` (TRL: `kl_coef`), `beta` |
# | $\beta_{BT}$ | annotator reliability, $P(y_1 \succ y_2) = \sigma(\beta_{BT}(r_1 - r_2))$ | 02, 05, 07 | `beta_bt` |
# | $\beta$ | DPO's $\beta = 1/\tau$, the KL coefficient DPO optimises implicitly | 05 | TRL's `DPOConfig.beta` |
# | $\beta$ | GRPO's weight on the $k_3$ KL estimator *in the loss* | 04 | `GRPOConfig.beta` |
# | $\beta$ | a coefficient of Gao et al.'s over-optimisation law $d(\alpha - \beta d)$ | 06 | |
# | $\beta_1, \beta_2$ | Adam's decay rates of its moment estimates | 05 | `AdamW(betas=...)` |
#
# In this notebook only $\beta_{BT}$ appears, always with its subscript.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
from minialign.nn import RewardModel
from minialign.objectives import bradley_terry_loss, preference_accuracy
from minialign.plots import decorate, panels, plot_curves, plot_history
from minialign.pretrained import load_reference, make_task
from minialign.train import RewardConfig, bayes_accuracy, reward_fn, train_reward_model

# Our matrices are tiny: one BLAS thread is several times faster here, and sums in a fixed order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# %% [markdown]
# ## 1. The Bradley–Terry model
#
# The source notes start from a reward model $r_\phi(x,y)$: a network that reads a prompt $x$ and a
# response $y$ and outputs one number. The data used to train it are not numbers but choices:
# for a prompt $x$, an annotator saw two responses and picked one, the preferred $y^+$ over
# the other, $y^-$. The standard way to connect scores and choices, used by InstructGPT,
# Llama 2 and TRL's `RewardTrainer`, is the **Bradley–Terry model**: the probability of
# preferring $y^+$ is the logistic function of the difference of the two scores,
#
# $$P(y^+ \succ y^- \mid x) = \sigma\big(r_\phi(x, y^+) - r_\phi(x, y^-)\big),
#   \qquad \sigma(z) = \frac{1}{1 + e^{-z}} .$$
#
# Equal scores give a coin flip; a gap of 2 gives 88%. Only **differences** of scores appear,
# so adding the same constant to every score changes nothing. Three responses, by hand:

# %%
scores = {"A": 1.2, "B": 0.3, "C": -0.5}
for better, worse in [("A", "B"), ("B", "C"), ("A", "C"), ("C", "A")]:
    gap = scores[better] - scores[worse]
    print(f"P({better} > {worse}) = sigma({gap:+.1f}) = {sigmoid(gap):.3f}")
shifted = {k: v + 10.0 for k, v in scores.items()}
assert np.isclose(sigmoid(shifted["A"] - shifted["B"]), sigmoid(scores["A"] - scores["B"]))
assert np.isclose(sigmoid(0.9) + sigmoid(-0.9), 1.0)  # P(A > B) + P(B > A) = 1

# %% [markdown]
# ## 2. The Bradley–Terry loss
#
# Fitting the model means maximising the likelihood of the choices the annotators made. For a
# batch of $B$ pairs, with $r^+_b = r_\phi(x_b, y^+_b)$ and $r^-_b = r_\phi(x_b, y^-_b)$, the
# negative log-likelihood, minimised, is
#
# $$\mathcal{L}(\phi) = -\frac{1}{B}\sum_{b=1}^{B} \log \sigma\big(r^+_b - r^-_b\big).$$
#
# This is logistic regression on the score gap, with every label equal to 1. Line by line on four
# pairs (the second is ranked the wrong way round by the current scores):

# %%
chosen = np.array([1.2, 0.3, -0.2, 2.0])  # r+ for 4 pairs
rejected = np.array([0.3, 0.8, -0.5, -1.0])  # r-
gap = chosen - rejected  # r+ - r-
p_model = sigmoid(gap)  # P(y+ > y-) under the model
nll = -np.log(p_model)  # one term per pair
by_hand = nll.mean()
print("gap      ", gap)
print("P(y+>y-) ", p_model)
print("-log P   ", nll)
print(f"loss = {by_hand:.6f}")

loss = bradley_terry_loss(chosen, rejected)
print(f"minialign.objectives.bradley_terry_loss = {loss.item():.6f}")
np.testing.assert_allclose(loss.item(), by_hand, rtol=1e-12)
accuracy = preference_accuracy(chosen, rejected)  # the fraction with r+ > r-
print(f"preference accuracy = {accuracy}  (pair 2 is ranked the wrong way)")
assert accuracy == np.mean(gap > 0) == 0.75

# %% [markdown]
# **The gradient.** With $d = r^+ - r^-$, $\frac{d}{dd}\big[-\log\sigma(d)\big] = -\sigma(-d)$.
# So each pair pushes $r^+$ up and $r^-$ down with the same strength $\sigma(-(r^+ - r^-))$,
# divided by $B$ for the mean:
#
# $$\frac{\partial \mathcal{L}}{\partial r^+_b} = -\frac{1}{B}\,\sigma\big(-(r^+_b - r^-_b)\big),
#   \qquad \frac{\partial \mathcal{L}}{\partial r^-_b} = +\frac{1}{B}\,\sigma\big(-(r^+_b - r^-_b)\big).$$
#
# The strength is near 1 for a pair ranked the wrong way, and near 0 for a pair already
# separated by a wide gap: the loss stops caring about pairs it has learnt. Check against autograd:

# %%
weight = sigmoid(-gap)  # sigma(-(r+ - r-))
B = len(gap)
r_plus = ma.tensor(chosen, requires_grad=True)
r_minus = ma.tensor(rejected, requires_grad=True)
bradley_terry_loss(r_plus, r_minus).backward()
print("sigma(-(r+ - r-))      ", weight)
print("autograd dL/dr+ * B    ", r_plus.grad * B)
print("autograd dL/dr- * B    ", r_minus.grad * B)
np.testing.assert_allclose(r_plus.grad, -weight / B, rtol=1e-12)
np.testing.assert_allclose(r_minus.grad, weight / B, rtol=1e-12)

# %% [markdown]
# Two closed forms worth remembering: equal scores give $-\log\sigma(0) = \log 2 \approx 0.693$
# (where a fresh reward model starts), and the loss stays finite for absurd gaps because it is
# computed with a stable `logsigmoid`, never as `log(sigmoid(...))`:

# %%
equal = bradley_terry_loss(np.zeros(3), np.zeros(3)).item()
print(f"equal scores: {equal:.6f}  (log 2 = {np.log(2):.6f})")
np.testing.assert_allclose(equal, np.log(2), rtol=1e-12)
extreme = bradley_terry_loss(np.array([-1e4, 1e4]), np.array([1e4, -1e4])).item()
print(f"gaps of -2e4 and +2e4: loss = {extreme}  (= 2e4 / 2, no overflow)")
np.testing.assert_allclose(extreme, 1e4, rtol=1e-12)

# %% [markdown]
# ## 3. Preference pairs from a simulated annotator
#
# On the sentiment task (a prompt such as "the movie was", continued by the model), we know the
# **true reward** $r(y)$ of every continuation: the mean valence of its words, minus a penalty
# for repeated adjectives (see `minialign.tasks.sentiment`). Instead of people, an annotator
# that itself follows Bradley–Terry on the true reward labels the pairs:
#
# $$P(y_1 \text{ chosen}) = \sigma\big(\beta_{BT}\,(r(y_1) - r(y_2))\big).$$
#
# $\beta_{BT}$ sets how reliable it is: with $\beta_{BT} = 8$, two responses whose true rewards
# differ by 0.1 are ordered correctly only 69% of the time. `make_preference_pairs` draws two
# continuations per prompt from the corpus generator and records each label with the probability
# the annotator gave it (`p_chosen`):

# %%
task = make_task("sentiment")
tok = task.tokenizer
reference = load_reference("sentiment")
BETA_BT = 8.0
rng = np.random.default_rng(0)
pairs = task.make_preference_pairs(2000, rng, beta_bt=BETA_BT)  # for training
eval_pairs = task.make_preference_pairs(500, rng, beta_bt=BETA_BT)  # held out

prompt_text = [tok.decode(p) for p in pairs.prompt_ids]
chosen_text = tok.decode_batch(pairs.chosen.ids, pairs.chosen.response_mask)
rejected_text = tok.decode_batch(pairs.rejected.ids, pairs.rejected.response_mask)
for i in range(5):
    print(f"[{i}] {prompt_text[i]} ...")
    print(f"   chosen:   {chosen_text[i]:45s} true r = {pairs.chosen_reward[i]:+.2f}")
    print(f"   rejected: {rejected_text[i]:45s} true r = {pairs.rejected_reward[i]:+.2f}")
    print(f"   annotator's probability of this choice: {pairs.p_chosen[i]:.3f}")
flipped = [i for i in range(5) if pairs.chosen_reward[i] < pairs.rejected_reward[i]]
print(f"pairs above where the annotator chose the lower true reward: {flipped}")
assert flipped and all(pairs.p_chosen[i] < 0.5 for i in flipped)

# %% [markdown]
# Wherever the annotator's probability of its choice is below 0.5 (the pairs listed above), it
# preferred the response with the lower true reward, as a noisy annotator sometimes will. No reward model can predict such
# coin flips, which caps the label accuracy. If the annotator's probability of its choice is
# $p_i$, the best possible predictor (one that knows the true reward) matches the label with
# probability $\max(p_i, 1 - p_i)$, so the ceiling is
#
# $$\text{Bayes accuracy} = \frac{1}{n}\sum_{i=1}^{n} \max(p_i,\, 1 - p_i).$$

# %%
ceiling_by_hand = np.mean(np.maximum(pairs.p_chosen, 1 - pairs.p_chosen))
ceiling = bayes_accuracy(eval_pairs)
np.testing.assert_allclose(bayes_accuracy(pairs), ceiling_by_hand, rtol=1e-12)
wrong = np.mean(pairs.chosen_reward < pairs.rejected_reward)
print(f"labels that contradict the true ordering: {wrong:.1%}")
print(f"Bayes accuracy: train {ceiling_by_hand:.3f}, held out {ceiling:.3f}")

# %% [markdown]
# ## 4. Training the reward model
#
# `RewardModel.from_policy(reference)` copies the pre-trained reference model's transformer
# (so it starts out knowing the language) and adds a scalar head; its score $r_\phi(x,y)$ is the
# head's output at the **last response token**. `train_reward_model` minimises the Bradley–Terry
# loss with AdamW on random batches of 32 pairs. Every 20 steps it measures, on the held-out
# pairs, the loss, the accuracy against the annotator's labels (`eval_accuracy`), and the
# accuracy against the true ordering (`eval_true_accuracy`), which the noise does not cap.
# (`progress=False` only hides the progress bar.)

# %%
rm = RewardModel.from_policy(reference, rng=np.random.default_rng(0))
config = RewardConfig(steps=300, batch_size=32, learning_rate=3e-3, eval_steps=20)
history = train_reward_model(rm, pairs, config, eval_pairs=eval_pairs, rng=1, progress=False)
for key in ("eval_loss", "eval_accuracy", "eval_true_accuracy"):
    print(f"{key:20s} step 0: {history[key][0]:.3f}   step 300: {history[key][-1]:.3f}")
assert history["eval_accuracy"][0] < 0.6 < 0.8 < history["eval_accuracy"][-1] <= ceiling + 0.03
assert history["eval_true_accuracy"][-1] > 0.9

# %%
fig, (ax_loss, ax_acc) = panels(2)
plot_history(history, "loss", ax=ax_loss, smooth=10)  # training batches: noisy, so smoothed
plot_history(history, "eval_loss", ax=ax_loss, title="Bradley–Terry loss",
             ylabel="loss (nats per pair)")
decorate(ax_loss, hlines={"log 2 (chance)": np.log(2)})
plot_history(history, ["eval_accuracy", "eval_true_accuracy"], ax=ax_acc,
             title="Held-out accuracy", ylabel="fraction of pairs ranked right")
decorate(ax_acc, hlines={f"Bayes ceiling {ceiling:.3f}": ceiling})
fig.tight_layout()

# %% [markdown]
# The label accuracy climbs from chance to just under the Bayes ceiling and cannot go further;
# the agreement with the *true* ordering goes higher, because the model is learning the
# annotator's underlying reward, not its coin flips. The training loss is noisy because each
# batch has only 32 pairs; a training loss far *below* the held-out loss would mean it started
# memorising the noisy labels.
#
# ## 5. What the reward model gets wrong
#
# Accuracy on pairs is only part of the story. PPO will use the *values* of $r_\phi$, so let us
# score each held-out response on its own and compare with its true reward. Remember that the
# scale and offset of $r_\phi$ are arbitrary (only differences were trained), so we look at
# correlations, not equality. `reward_fn(rm)` is the scorer that PPO, GRPO and best-of-n use.

# %%
score = reward_fn(rm)  # (tokens, response_mask) -> (B,) float64, no gradient
ids = np.concatenate([eval_pairs.chosen.ids, eval_pairs.rejected.ids])  # (2n, T)
resp = np.concatenate([eval_pairs.chosen.response_mask, eval_pairs.rejected.response_mask])
rm_score = score(ids, resp)  # (2n,)
true_r = np.concatenate([eval_pairs.chosen_reward, eval_pairs.rejected_reward])


def ranks(x):
    return np.argsort(np.argsort(x)).astype(float)


pearson = np.corrcoef(rm_score, true_r)[0, 1]
spearman = np.corrcoef(ranks(rm_score), ranks(true_r))[0, 1]
slope, offset = np.polyfit(true_r, rm_score, 1)  # r_phi ~ slope * r + offset
print(f"{len(rm_score)} held-out responses: Pearson r = {pearson:.3f}, Spearman = {spearman:.3f}")
print(
    f"least-squares line: r_phi = {slope:.2f} * r {offset:+.2f}   (annotator's beta_BT = {BETA_BT})"
)
assert pearson > 0.9 and abs(slope - BETA_BT) < 0.2 * BETA_BT  # slope about beta_BT

fig, (ax,) = panels(1, width=6.0, height=4.0)
ax.scatter(true_r, rm_score, s=8, alpha=0.5, label="held-out responses")
grid = np.linspace(-1, 1, 2)
plot_curves({f"fit: {slope:.1f} r {offset:+.1f}": (grid, slope * grid + offset)}, ax, style="k--",
            xlabel="true reward r(y)", ylabel=r"reward-model score $r_\phi(x, y)$",
            title=f"Reward model vs true reward (held out; Pearson {pearson:.2f})")
plt.show()

# %% [markdown]
# On responses like those it was trained on, the reward model is very good. Note the slope: about
# $\beta_{BT}$. Since the annotator's choices follow $\sigma(\beta_{BT}(r^+ - r^-))$, the score
# that explains them best is $\beta_{BT}\,r$ plus any constant, and that is what the model has
# (nearly) found. The scale of a reward model is set by how consistent the labels were, not by
# anything meaningful.
#
# Where does it go wrong? Here are the held-out pairs it ranks against the true ordering, the most
# confident mistakes first:

# %%
n_eval = len(eval_pairs.chosen)
gap_rm = rm_score[:n_eval] - rm_score[n_eval:]  # r+ - r-, (n,)
gap_true = eval_pairs.chosen_reward - eval_pairs.rejected_reward
wrong_way = np.flatnonzero((np.sign(gap_rm) != np.sign(gap_true)) & (gap_true != 0))
worst = wrong_way[np.argsort(-np.abs(gap_rm[wrong_way]))][:5]
ev_chosen = tok.decode_batch(eval_pairs.chosen.ids, eval_pairs.chosen.response_mask)
ev_rejected = tok.decode_batch(eval_pairs.rejected.ids, eval_pairs.rejected.response_mask)
print(f"{len(wrong_way)} of {n_eval} held-out pairs are ranked against the true ordering")
print(f"their median |true gap| is {np.median(np.abs(gap_true[wrong_way])):.2f}; "
      f"over all pairs it is {np.median(np.abs(gap_true)):.2f}\n")
for i in worst:
    pair = [
        (eval_pairs.chosen_reward[i], ev_chosen[i]),
        (eval_pairs.rejected_reward[i], ev_rejected[i]),
    ]
    (rb, better), (rw, worse) = sorted(pair, reverse=True)
    print(f"truly better ({rb:+.2f}): {better}")
    print(f"truly worse  ({rw:+.2f}): {worse}")
    print(f"   the reward model prefers the worse one by {abs(gap_rm[i]):.2f}\n")
assert np.median(np.abs(gap_true[wrong_way])) < 0.5 * np.median(np.abs(gap_true))  # near-ties

# %% [markdown]
# Its mistakes are near-ties in the true reward, often responses with several adjectives of
# opposite sign, whose mean valence is hard to read off; the annotator itself would flip a coin
# on many of these. So in distribution, the reward model is about as good as the labels allow.
#
# ## 6. Out of distribution: repeated words
#
# The reward model was trained only on responses of the kind the corpus generator writes, where
# no adjective is ever repeated. The true reward *penalises* repetition, so
# "great great great great" scores $1 - 2 \cdot 3/4 = -0.5$: it is gibberish, not praise.
# Nothing in the training pairs tells the reward model this. What does it say? To put its
# scores on the true reward's scale we invert the fitted line of section 5,
# $\hat r = (r_\phi - \text{offset}) / \text{slope}$, and we also give each score's percentile
# among the held-out responses.


# %%
def rm_on(texts):
    """Reward-model scores (on the true-reward scale) and true rewards of continuations."""
    prompt = np.tile(task.sample_prompts(1, np.random.default_rng(0)), (len(texts), 1))  # (n, 4)
    batch = tok.pack(prompt, [tok.encode(t, add_end=True) for t in texts], pad_to=task.block_size)
    raw = score(batch.ids, batch.response_mask)
    return raw, (raw - offset) / slope, task.true_reward(batch.ids, batch.response_mask)


probes = [
    "great",
    "wonderful and brilliant",
    "awful",
    "great great",
    "great great great great",
    "excellent excellent excellent excellent excellent excellent",
    "great wonderful great wonderful great wonderful",
    "the the the the",
]
probe_raw, probe_rm, probe_true = rm_on(probes)
probe_prompt = tok.decode(task.sample_prompts(1, np.random.default_rng(0))[0])
header = f"continuation of '{probe_prompt}'"
print(f"{header:58s} {'true r':>7s} {'RM (rescaled)':>14s}  RM percentile")
for text, t, s, raw in zip(probes, probe_true, probe_rm, probe_raw):
    print(f"{text:58s} {t:+7.2f} {s:+14.2f}  {np.mean(rm_score < raw):9.0%}")
# some gibberish (true r <= 0) outscores some genuinely positive review (true r > 0.5)
assert probe_rm[probe_true <= 0].max() > probe_rm[probe_true > 0.5].min()

# %% [markdown]
# A closer look: one positive adjective repeated $k$ times. The true reward falls from $+1$
# towards $-1$ as $k$ grows; watch the reward model.

# %%
ks = np.arange(1, task.max_words + 1)
_, rep_rm, rep_true = rm_on([" ".join(["great"] * k) for k in ks])

plot_curves({"true reward": (ks, rep_true),
             r"reward model, rescaled: $(r_\phi - b)/a$": (ks, rep_rm)}, style="o-",
            hlines={"": 0.0}, xlabel='k, number of times "great" is repeated',
            ylabel="reward (true-reward units)",
            title='"great" repeated k times: true reward vs reward model')
print("k             ", ks)
print("true r        ", rep_true.round(2))
print("RM (rescaled) ", rep_rm.round(2))
assert rep_true[-1] < -0.5 and np.all(rep_rm > 0.3)  # gibberish the RM still likes

# %% [markdown]
# The reward model's error here is not noise: it comes from what the training data never showed
# it. On held-out data it looked excellent (over 90% of true orderings right), yet on an
# input the data never contained it can rate gibberish above genuinely positive reviews. A policy
# optimised against $r_\phi$ will search for exactly such inputs, since the high score is the only
# thing it sees; this is **reward hacking**, and notebook 06 watches PPO find it. The KL penalty
# in $J(\theta)$ is the guard: it makes straying far from the reference model, where the reward
# model is untested, expensive.
#
# ## 7. Margin and centring
#
# `bradley_terry_loss` has two options from TRL's `RewardTrainer`.
#
# **Margin** $m_b$ (Llama 2): require the chosen score to beat the rejected one by at least
# $m_b$, $-\log\sigma(r^+_b - r^-_b - m_b)$. Llama 2 set $m_b$ larger for pairs the annotators
# marked as "significantly better", so such pairs are pushed further apart.

# %%
m = np.array([0.0, 1.0, 1.0, 3.0])  # one margin per pair
by_hand = -np.log(sigmoid(chosen - rejected - m)).mean()
np.testing.assert_allclose(bradley_terry_loss(chosen, rejected, margin=m).item(), by_hand)
print(f"loss without margin {bradley_terry_loss(chosen, rejected).item():.4f}, with {by_hand:.4f}")

# %% [markdown]
# **Centring** (Eisenstein et al. 2023): since adding a constant to every score leaves the loss
# unchanged, nothing stops the scores from drifting off to an arbitrary offset. Adding
# $c\,\frac{1}{B}\sum_b (r^+_b + r^-_b)^2$ to the loss pulls the mean score towards 0. Here is a
# second reward model, trained exactly like the first but with $c = 0.01$:

# %%
shift = 5.0
np.testing.assert_allclose(  # the plain loss cannot see an offset
    bradley_terry_loss(chosen + shift, rejected + shift).item(),
    bradley_terry_loss(chosen, rejected).item(), rtol=1e-12,
)
rm_c = RewardModel.from_policy(reference, rng=np.random.default_rng(0))
config_c = RewardConfig(steps=300, batch_size=32, learning_rate=3e-3, eval_steps=300,
                        center_rewards_coefficient=0.01)
history_c = train_reward_model(rm_c, pairs, config_c, eval_pairs=eval_pairs, rng=1, progress=False)
rm_c_score = reward_fn(rm_c)(ids, resp)
for name, s, h in [("c = 0   ", rm_score, history), ("c = 0.01", rm_c_score, history_c)]:
    print(f"{name}: mean score {s.mean():+.3f}, std {s.std():.3f}, "
          f"held-out accuracy {h.last('eval_accuracy'):.3f}")
assert abs(rm_c_score.mean()) < min(0.05, abs(rm_score.mean()))  # mean pinned near 0
assert rm_c_score.std() < rm_score.std()  # scale shrinks
assert abs(history_c.last("eval_accuracy") - history.last("eval_accuracy")) < 0.02

# %% [markdown]
# The mean score moves to 0 and the accuracy is unchanged. The spread shrinks too: the penalty
# grows with the size of the scores, so it also acts as a mild brake on their scale. Scores whose
# offset and scale are pinned down are comparable across runs, and they are a better-scaled
# reward for PPO.

# %% [markdown]
# ## 8. Exercises
#
# The notebook is committed with the exercises open so that CI can run it: an "implement it"
# stub raises `NotImplementedError` (its check then only says so), and a "find the bug" check
# asserts that the planted bug is still caught until you set `BUG_FIXED = True`; from then on
# the same cells assert your code against the library.
#
# **Exercise 1 (implement it).** Write the Bradley–Terry loss with a margin,
# $-\frac1B\sum_b\log\sigma(r^+_b - r^-_b - m_b)$, in NumPy. It must stay finite for score gaps
# of $\pm 2\cdot 10^4$, as the library's does (section 2).

# %%
def my_bradley_terry_loss(chosen, rejected, margin=0.0):
    """Mean of -log sigma(r+ - r- - m) over the (B,) arrays, a float. Hint: np.logaddexp."""
    raise NotImplementedError("exercise 1: replace this line by your code")


# %%
rng_ex = np.random.default_rng(21)
cases = [(rng_ex.normal(size=8), rng_ex.normal(size=8), np.zeros(8)),
         (rng_ex.normal(0.0, 5.0, size=8), rng_ex.normal(0.0, 5.0, size=8), rng_ex.uniform(0, 2, 8)),
         (np.array([-1e4, 1e4]), np.array([1e4, -1e4]), np.zeros(2))]  # gaps of -2e4 and +2e4
try:
    for c, rj, m in cases:
        np.testing.assert_allclose(my_bradley_terry_loss(c, rj, m),
                                   bradley_terry_loss(c, rj, margin=m).item(), rtol=1e-9)
    print("Exercise 1 passes: my_bradley_terry_loss agrees with bradley_terry_loss.")
except NotImplementedError:
    print("Exercise 1 is open: write my_bradley_terry_loss above, then run this cell again.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def my_bradley_terry_loss(chosen, rejected, margin=0.0):
#     z = chosen - rejected - margin
#     return float(np.mean(np.logaddexp(0.0, -z)))  # -log sigma(z) = log(1 + e^{-z})
# ```
#
# `-np.log(sigmoid(z))` gives `inf` at $z = -2\cdot 10^4$ ($e^{2\cdot10^4}$ overflows and $\sigma$
# rounds to 0); `np.logaddexp` never forms the large exponential.
#
# </details>
#
# **Exercise 2 (find the bug).** Someone wrote the gradient of the loss by hand, to train a
# reward model without autograd. It runs, and a reward model trained with it even ranks most
# pairs the right way, yet it is wrong. Find the bug, fix it, set `BUG_FIXED = True`, and run
# the check against autograd through `bradley_terry_loss`.

# %%
BUG_FIXED = False  # set to True once you have fixed bt_gradients


def bt_gradients(chosen, rejected):
    """dL/dr+ and dL/dr- of the mean Bradley-Terry loss, two (B,) arrays."""
    gap = chosen - rejected
    strength = sigmoid(gap)  # how hard each pair pushes its two scores apart
    return -strength / len(gap), strength / len(gap)


# %%
c, rj = rng_ex.normal(0.0, 2.0, size=16), rng_ex.normal(0.0, 2.0, size=16)
r_plus, r_minus = ma.tensor(c, requires_grad=True), ma.tensor(rj, requires_grad=True)
bradley_terry_loss(r_plus, r_minus).backward()
got_plus, got_minus = bt_gradients(c, rj)
mismatch = max(np.abs(got_plus - r_plus.grad).max(), np.abs(got_minus - r_minus.grad).max())
print(f"largest difference from autograd: {mismatch:.3g}")
if BUG_FIXED:
    assert mismatch < 1e-12, "still different from autograd: which pairs should push hardest?"
    print("Exercise 2 passes.")
else:
    assert mismatch > 1e-3, "bt_gradients agrees with autograd now: set BUG_FIXED = True"
    print("Exercise 2 is open: bt_gradients disagrees with autograd.")

# %% [markdown]
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# The strength must be $\sigma(-(r^+ - r^-))$, not $\sigma(r^+ - r^-)$: a wrong sign inside
# $\sigma$. The direction of each push is still right (up for $r^+$, down for $r^-$), which is
# why training "works", but the weights are reversed: pairs that are already far apart push
# hardest, pairs ranked the wrong way hardly at all, and the scores grow without bound instead
# of settling at the maximum-likelihood fit.
#
# ```python
#     strength = sigmoid(-gap)
# ```
#
# </details>
#
# **Exercise 3 (try this).** A noisier annotator: label pairs with $\beta_{BT} = 2$ instead of 8 and
# train a reward model on them exactly as in section 4. How far does the Bayes ceiling drop? Does
# the held-out label accuracy still reach it, and how does the accuracy against the *true*
# ordering compare with the run above?
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# rng = np.random.default_rng(0)
# noisy = task.make_preference_pairs(2000, rng, beta_bt=2.0)
# noisy_eval = task.make_preference_pairs(500, rng, beta_bt=2.0)
# rm_noisy = RewardModel.from_policy(reference, rng=np.random.default_rng(0))
# h = train_reward_model(rm_noisy, noisy, config, eval_pairs=noisy_eval, rng=1, progress=False)
# print(f"Bayes ceiling {bayes_accuracy(noisy_eval):.3f} (beta_BT = 8: {ceiling:.3f})")
# print(f"label accuracy {h.last('eval_accuracy'):.3f}")
# print(f"true-ordering accuracy {h.last('eval_true_accuracy'):.3f} "
#       f"(beta_BT = 8: {history.last('eval_true_accuracy'):.3f})")
# ```
#
# The label accuracy looks poor, but the ceiling has dropped almost as far, and the model
# ends a little under it. Against the true ordering the same model is still right far more
# often than the labels suggest: the label noise hides how good it is. Noisier labels carry
# less information per pair, so it stays below the $\beta_{BT} = 8$ model; more pairs or more
# steps would close part of the gap. (At the time of writing this printed a ceiling of 0.69,
# down from 0.88; label accuracy 0.65; true-ordering accuracy 0.85, against 0.96.)
#
# </details>
#
# ## 9. Recap
#
# | | Equation |
# |---|---|
# | Bradley–Terry model | $P(y^+ \succ y^- \mid x) = \sigma\big(r_\phi(x,y^+) - r_\phi(x,y^-)\big)$ |
# | its loss | $\mathcal{L}(\phi) = -\frac1B\sum_b \log\sigma(r^+_b - r^-_b)$ |
# | its gradient | $\partial\mathcal{L}/\partial r^\pm_b = \mp\frac1B\,\sigma\big(-(r^+_b - r^-_b)\big)$ |
# | simulated annotator | $P(y_1 \text{ chosen}) = \sigma\big(\beta_{BT}(r(y_1) - r(y_2))\big)$ |
# | accuracy ceiling | Bayes accuracy $= \frac1n\sum_i \max(p_i, 1 - p_i)$ |
# | margin, centring | $-\log\sigma(r^+ - r^- - m)$; $\;+\,c\,\frac1B\sum_b (r^+_b + r^-_b)^2$ |
#
# What to remember:
#
# 1. **Only differences of scores are trained.** The loss cannot see an offset, and the scale
#    of $r_\phi$ comes from how consistent the labels were: the fitted slope is about $\beta_{BT}$.
#    Centring pins the offset. (Sections 1, 5, 7.)
# 2. **Learnt pairs fade out**: each pair pushes with strength $\sigma(-(r^+ - r^-))$, and the
#    loss starts at $\log 2$ for equal scores. (Section 2.)
# 3. **Label noise caps the label accuracy** at the Bayes accuracy, while the agreement with the
#    true ordering can go higher. (Sections 3–4.)
# 4. **In distribution the reward model is good; out of distribution it can be badly wrong**
#    (repeated words scored as praise). A policy optimised against $r_\phi$ will find such inputs:
#    reward hacking, notebook 06. (Sections 5–6.)
