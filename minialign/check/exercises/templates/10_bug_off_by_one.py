r"""Exercise 10, find the bug: discounted returns.

$$G_t = \sum_{t'=t}^{T} \gamma^{\,t'-t} r_{t'}, \qquad \text{so} \qquad G_t = r_t + \gamma\,G_{t+1}, \quad G_{T+1} = 0$$

``rewards`` is (B, T), ``gamma`` in [0, 1]; return G, (B, T). The function below runs the
recursion backward in time. It looks right and gives plausible numbers, but the check
fails. Read the smallest failing input, find the bug and fix it.

Grade this file:  minialign check --exercises 10_bug_off_by_one.py

Notebook: notebooks/03_ppo.ipynb, §4 "Returns and advantages"
"""

import numpy as np


def discounted_returns(rewards, gamma):
    """$G_t$ for every position of every row (B, T)."""
    B, T = rewards.shape
    returns = np.zeros((B, T))
    running = np.zeros(B)  # G_{t+1}
    for t in reversed(range(T)):
        # --- solution ---
        running = rewards[:, t] + gamma * running
        returns[:, t] = running
        # --- exercise ---
        # returns[:, t] = running
        # running = rewards[:, t] + gamma * running
        # --- end ---
    return returns
