r"""Exercise 7: the GRPO loss, with one probability ratio per output.

$$\rho_i = \frac{\pi_\theta(o_i|x)}{\pi_{\theta_{\rm old}}(o_i|x)}
        = \exp\sum_t \big(\log\pi_\theta(o_{i,t}) - \log\pi_{\theta_{\rm old}}(o_{i,t})\big),
  \qquad L^{\rm GRPO} = \frac1B\sum_{i=1}^{B}\min\big(\rho_i A_i,\ \mathrm{clip}(\rho_i, 1-\epsilon, 1+\epsilon)\,A_i\big)$$

$L^{\rm GRPO}$ is an objective to *maximise*; a minimiser needs $-L^{\rm GRPO}$, so return
that. ``logp_new`` (B, T) requires grad, ``logp_old`` (B, T) is constant, ``advantages``
(B,) come from `group_advantages` (groups flattened), ``mask`` (B, T) marks each output's
tokens (1…1 0…0); padded tokens must not count in $\sum_t$.

Grade this file:  minialign check --exercises 07_grpo_loss.py

Notebook: notebooks/04_grpo.ipynb, §4 "The ratio and the GRPO objective"
"""

import numpy as np

import minialign as ma


def grpo_loss(logp_new, logp_old, advantages, epsilon, mask=None):
    """$-L^{\\rm GRPO}$ with the seed's sequence-level ratio (a scalar Tensor)."""
    mask = np.ones(logp_new.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    # --- solution ---
    rho = ma.exp(((logp_new - logp_old) * mask).sum(axis=-1))  # (B,): one ratio per output
    clipped = ma.clip(rho, 1 - epsilon, 1 + epsilon)
    return -ma.minimum(rho * advantages, clipped * advantages).mean()
    # --- exercise ---
    # raise NotImplementedError("exercise: ρ_i from the summed log-ratios, then -mean(min(...))")
    # --- end ---
