r"""Exercise 6: GRPO's group-relative advantages.

For each prompt the policy samples a group of $N$ outputs; each output's advantage is its
reward standardised within its group, so no value network is needed:

$$\mu = \frac1N\sum_{i=1}^N r_i, \qquad \sigma = \sqrt{\frac1N\sum_{i=1}^N (r_i - \mu)^2},
  \qquad A_i = \frac{r_i - \mu}{\sigma}$$

``rewards`` is a (G, N) NumPy array: G groups, one per row. Return A, (G, N). A group
whose rewards are all equal teaches nothing: its advantages must be exactly 0, not NaN
($0/0$) and not $\pm 1$. Careful: the float $\sigma$ of [0.1, 0.1, 0.1] is about 1e-17, not
0, so test the rewards for equality rather than $\sigma$ for zero.

Grade this file:  minialign check --exercises 06_group_advantages.py

Notebook: notebooks/04_grpo.ipynb, §2 "Group-relative advantages" and
§3 "When every reward in a group is equal"
"""

import numpy as np


def group_advantages(rewards):
    """$(r - \\mu)/\\sigma$ within each row (population $\\sigma$); 0 for an all-equal row."""
    # --- solution ---
    mu = rewards.mean(axis=-1, keepdims=True)
    sigma = rewards.std(axis=-1, keepdims=True)  # 1/N, as in the equation
    equal = rewards.max(axis=-1, keepdims=True) == rewards.min(axis=-1, keepdims=True)
    return np.where(equal, 0.0, (rewards - mu) / np.where(equal, 1.0, sigma))
    # --- exercise ---
    # raise NotImplementedError("exercise: μ and σ per row, then (r - μ)/σ, and 0 for equal rows")
    # --- end ---
