r"""Exercise 3: generalised advantage estimation (GAE), on right-padded rows.

$$\delta_t = r_t + \gamma V(x_{t+1}) - V(x_t), \qquad A_t = \delta_t + \gamma\lambda A_{t+1},
  \qquad R_t = A_t + V(x_t)$$

with $V = 0$ and $A = 0$ after the last token of each row (the episode ends there).

``rewards``, ``values`` and ``mask`` are (B, T) NumPy arrays; each row of ``mask`` is
1…1 0…0 (the row's tokens, then padding). A padded position may hold any number: it must
change no valid result, and both outputs are 0 there. Return ``(advantages, returns)``,
each (B, T). Two checks you can do by hand: $\lambda = 1$ gives the Monte-Carlo advantage
$\sum_{t' \ge t}\gamma^{t'-t} r_{t'} - V(x_t)$, and $\lambda = 0$ gives $\delta_t$.

Hint: zero the padding first, then run one loop backward over $t$, vectorised over rows.

Grade this file:  minialign check --exercises 03_gae_advantages.py

Notebook: notebooks/03_ppo.ipynb, §5 "Generalised advantage estimation"
"""

import numpy as np


def gae_advantages(rewards, values, gamma, lam, mask=None):
    """(advantages, returns), each (B, T), 0 at padded positions."""
    mask = np.ones_like(rewards) if mask is None else np.asarray(mask, dtype=np.float64)
    # --- solution ---
    r, v = rewards * mask, values * mask  # padding is now 0 and cannot leak
    v_next = np.concatenate([v[:, 1:], np.zeros_like(v[:, :1])], axis=1)  # V(x_{t+1})
    delta = r + gamma * v_next - v  # 0 at padding; V(x_{T+1}) = 0 after the last token
    advantages = np.zeros_like(delta)
    running = np.zeros(delta.shape[0])
    for t in reversed(range(delta.shape[1])):
        running = delta[:, t] + gamma * lam * running  # A_t = δ_t + γλ A_{t+1}
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + v) * mask
    # --- exercise ---
    # raise NotImplementedError("exercise: compute δ_t, then A_t backward in t, then R = A + V")
    # --- end ---
