r"""Exercise 2: the Bradley–Terry loss of a reward model.

A reward model gives one score per response. Under the Bradley–Terry model, an annotator
prefers $y^+$ to $y^-$ with probability $\sigma(r^+ - r^-)$, $\sigma(z) = 1/(1 + e^{-z})$;
the reward model is trained by minimising the negative log-likelihood of the labels:

$$\mathcal{L} = -\frac{1}{B}\sum_{b=1}^{B} \log\sigma\big(r^+_b - r^-_b\big)$$

``chosen_rewards`` ($r^+$) and ``rejected_rewards`` ($r^-$) are (B,) Tensors; return a
scalar Tensor. The grader feeds score gaps of $\pm 10^4$: there $\sigma$ rounds to 0 and
$\log 0 = -\infty$, so take the log of the sigmoid in one stable step
(``minialign.functional.logsigmoid`` does, or write
$\log\sigma(z) = \min(z, 0) - \log(1 + e^{-|z|})$ with minialign's ops).

Grade this file:  minialign check --exercises 02_bradley_terry_loss.py

Notebook: notebooks/02_reward_model.ipynb, §2 "The Bradley–Terry loss"
"""

import minialign.functional as F


def bradley_terry_loss(chosen_rewards, rejected_rewards):
    """Mean over the batch of $-\\log\\sigma(r^+ - r^-)$ (a scalar Tensor)."""
    # --- solution ---
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    # --- exercise ---
    # raise NotImplementedError("exercise: the mean of -log sigmoid(chosen - rejected)")
    # --- end ---
