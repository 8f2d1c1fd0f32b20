r"""The reward model's loss: Bradley–Terry on preference pairs.

A reward model $r_\phi(x, y)$ scores one response. The equation sheet's PPO starts from
a reward model already trained on human preference data (eq. 1); the standard
way (InstructGPT, TRL's ``RewardTrainer``) is the Bradley–Terry model, in which the
probability that $y^+$ is preferred to $y^-$ is $\sigma(r_\phi(x, y^+) - r_\phi(x, y^-))$
with $\sigma(z)=1/(1+e^{-z})$, and the reward model maximises the log-likelihood of the
labels.
"""

from __future__ import annotations

import numpy as np

from ..autograd import functional as F
from ._checks import finite_result, non_empty, non_negative, raw, same_shape, tensor_arg


def bradley_terry_loss(chosen_rewards, rejected_rewards, margin=None, center_coef: float = 0.0):
    r"""Mean negative log-likelihood of the preferences under Bradley–Terry (minimised).

    $$\mathcal{L}(\phi) = -\frac{1}{B}\sum_{b} \log \sigma\big(r^+_b - r^-_b - m_b\big)
      \;+\; c\,\frac{1}{B}\sum_b \big(r^+_b + r^-_b\big)^2, \qquad \sigma(z)=1/(1+e^{-z})$$

    ========  =====  ==================================================================
    Symbol    Shape  Meaning
    ========  =====  ==================================================================
    $r^+_b$   (B,)   ``chosen_rewards``: $r_\phi(x_b, y^+_b)$, the preferred response's score
    $r^-_b$   (B,)   ``rejected_rewards``: $r_\phi(x_b, y^-_b)$
    $m_b$     (B,)   ``margin`` (default 0): how much better $y^+$ must score (Llama 2)
    $c$       ()     ``center_coef``: pulls $r^+ + r^-$ toward 0 (the scale is free)
    ========  =====  ==================================================================

    Sign: this is a *loss* — the negative log-likelihood, minimised. Computed with
    ``F.logsigmoid``, finite for score gaps of $\pm 10^4$. An empty batch (B = 0) is a
    ValueError, as is a loss too large for the dtype (e.g. float32 scores near $10^{30}$).

    Options mirror TRL's ``RewardTrainer``: ``margin`` is its ``margin`` column,
    ``center_coef`` its ``RewardConfig.center_rewards_coefficient`` (Eisenstein et al. 2023).

    Notebook: notebooks/02_reward_model.ipynb, §2 "The Bradley–Terry loss" and
    §7 "Margin and centring".
    """
    fn = "bradley_terry_loss"
    shape = same_shape(
        fn, chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards, margin=margin
    )
    non_empty(fn, "chosen_rewards", int(np.prod(shape)))
    chosen = tensor_arg(fn, "chosen_rewards", chosen_rewards)
    rejected = tensor_arg(fn, "rejected_rewards", rejected_rewards)
    non_negative(fn, "center_coef", center_coef)
    logits = chosen - rejected  # (B,)
    if margin is not None:
        logits = logits - tensor_arg(fn, "margin", raw(margin)).data.astype(logits.dtype)
    loss = -F.logsigmoid(logits).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return finite_result(fn, loss, chosen_rewards=chosen, rejected_rewards=rejected, margin=margin)


def preference_accuracy(chosen_rewards, rejected_rewards) -> float:
    """Fraction of pairs whose preferred response scores strictly higher (a tie counts as wrong).

    Chance is 0.5; TRL logs it as ``accuracy`` in ``RewardTrainer``. An empty batch is a
    ValueError (a fraction of no pairs is undefined).
    """
    fn = "preference_accuracy"
    shape = same_shape(fn, chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards)
    non_empty(fn, "chosen_rewards", int(np.prod(shape)))
    chosen = tensor_arg(fn, "chosen_rewards", raw(chosen_rewards)).data
    rejected = tensor_arg(fn, "rejected_rewards", raw(rejected_rewards)).data
    return float(np.mean(chosen > rejected))
