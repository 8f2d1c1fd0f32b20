r"""Exercise 12, find the bug: a PPO loss whose policy never learns.

The same loss as exercise 4:

$$L^{\rm CLIP} = -\mathbb{E}_t\Big[\min\big(r_t\hat A_t,\ \mathrm{clip}(r_t, 1-\epsilon, 1+\epsilon)\,\hat A_t\big)\Big],
  \qquad r_t = e^{\log\pi_\theta - \log\pi_{\theta_{\rm old}}}$$

With the version below the loss prints the right numbers, but a training run never moves
the policy. Find the bug and fix it.

Grade this file:  minialign check --exercises 12_bug_no_gradient.py

Notebook: notebooks/00_autograd.ipynb, §2 "The graph, and why a topological sort"
"""

import numpy as np

import minialign as ma


def ppo_clip_loss(logp_new, logp_old, advantages, epsilon, mask=None):
    """$L^{\\rm CLIP}$, the masked mean over valid tokens (a scalar Tensor)."""
    mask = np.ones(logp_new.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    # --- solution ---
    log_ratio = logp_new - logp_old
    # --- exercise ---
    # log_ratio = ma.tensor(logp_new.data - logp_old.data)  # a plain Tensor: no graph to keep
    # --- end ---
    ratio = ma.exp(log_ratio)
    clipped = ma.clip(ratio, 1 - epsilon, 1 + epsilon)
    surrogate = ma.minimum(ratio * advantages, clipped * advantages)
    return -(surrogate * mask).sum() / mask.sum()
