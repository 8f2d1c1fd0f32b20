r"""Exercise 9, find the bug: the per-token rewards of PPO for a language model.

Every token pays $\beta$ times the k1 estimate of the KL to the reference, and the reward
model's ``score`` is added on each response's last token $T_b$:

$$r_t = -\beta\,\big(\log\pi_\theta(y_t) - \log\pi_{\rm ref}(y_t)\big) + [t = T_b]\;\mathrm{score}$$

``score`` is (B,); ``logp``, ``logp_ref`` and ``mask`` are (B, T) NumPy arrays (each row of
``mask`` is 1…1 0…0). A colleague wrote the function below. Runs trained with it drift
away from the reference model faster the larger they set $\beta$. Find the bug and fix it.

Grade this file:  minialign check --exercises 09_bug_wrong_sign.py

Notebook: notebooks/03_ppo.ipynb, §8 "The KL-penalised reward"
"""

import numpy as np


def kl_penalized_rewards(score, logp, logp_ref, beta, mask=None):
    """Per-token rewards (B, T): the KL penalty everywhere, the score on the last token."""
    mask = np.ones_like(logp) if mask is None else np.asarray(mask, dtype=np.float64)
    last = mask.sum(axis=1).astype(int) - 1  # index of each row's last token
    # --- solution ---
    rewards = -beta * (logp - logp_ref) * mask
    # --- exercise ---
    # rewards = beta * (logp - logp_ref) * mask
    # --- end ---
    rewards[np.arange(len(score)), last] += score
    return rewards
