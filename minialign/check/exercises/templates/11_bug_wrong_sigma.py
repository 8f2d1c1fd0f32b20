r"""Exercise 11, find the bug: whitening advantages over a padded batch.

PPO normalises its advantages over the valid positions of the whole batch:

$$\tilde x = \frac{x - \bar x}{\sqrt{s^2 + 10^{-8}}}, \qquad
  \bar x = \frac{\sum m\,x}{\sum m}, \qquad s^2 = \frac{\sum m\,(x - \bar x)^2}{\sum m}$$

``x`` and ``mask`` are (B, T) NumPy arrays (each row of ``mask`` is 1…1 0…0); the output
is 0 at padded positions. On batches without padding the function below is right; on
padded batches the check fails. Find the bug and fix it.

Grade this file:  minialign check --exercises 11_bug_wrong_sigma.py

Notebook: notebooks/03_ppo.ipynb, §5 "Generalised advantage estimation"
"""

import numpy as np


def whiten(x, mask=None):
    """Mean 0 and standard deviation 1 over the valid positions; 0 at padding."""
    mask = np.ones_like(x) if mask is None else np.asarray(mask, dtype=np.float64)
    n = mask.sum()
    mean = (x * mask).sum() / n
    # --- solution ---
    var = (((x - mean) * mask) ** 2).sum() / n
    # --- exercise ---
    # var = ((x * mask - mean) ** 2).mean()
    # --- end ---
    return (x - mean) / np.sqrt(var + 1e-8) * mask
