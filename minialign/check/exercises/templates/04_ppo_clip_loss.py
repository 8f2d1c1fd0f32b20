r"""Exercise 4: PPO's clipped surrogate loss.

$$r_t = \frac{\pi_\theta(y_t|x_t)}{\pi_{\theta_{\rm old}}(y_t|x_t)}
      = e^{\log\pi_\theta - \log\pi_{\theta_{\rm old}}}, \qquad
  L^{\rm CLIP} = -\mathbb{E}_t\Big[\min\big(r_t\hat A_t,\ \mathrm{clip}(r_t, 1-\epsilon, 1+\epsilon)\,\hat A_t\big)\Big]$$

$\mathbb{E}_t$ is the mean over every valid token of the batch. ``logp_new`` (B, T) is a
Tensor that requires grad; ``logp_old`` and ``advantages`` (B, T) are constants; ``mask``
(B, T) is a 0/1 NumPy array or None. Return a scalar Tensor (minimised: keep the leading
minus). Compute the ratio from log-probs: for log-probs of $-10^4$, $e^{\log\pi}$ is 0 and
a quotient of probabilities is 0/0. Where the clip binds the gradient must be 0.

Grade this file:  minialign check --exercises 04_ppo_clip_loss.py

Notebook: notebooks/03_ppo.ipynb, §6 "The probability ratio" and §7 "The clipped objective"
"""

import numpy as np

import minialign as ma


def ppo_clip_loss(logp_new, logp_old, advantages, epsilon, mask=None):
    """$L^{\\rm CLIP}$, the masked mean over valid tokens (a scalar Tensor)."""
    mask = np.ones(logp_new.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    # --- solution ---
    ratio = ma.exp(logp_new - logp_old)
    clipped = ma.clip(ratio, 1 - epsilon, 1 + epsilon)
    surrogate = ma.minimum(ratio * advantages, clipped * advantages)
    return -(surrogate * mask).sum() / mask.sum()
    # --- exercise ---
    # raise NotImplementedError("exercise: ratio, clipped ratio, the min, the masked mean")
    # --- end ---
