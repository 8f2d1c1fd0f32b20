r"""Returns and advantages: the targets PPO's policy and value losses are built from.

Everything here is computed **without gradient** and returns NumPy arrays: returns
and advantages are constants in the losses (targets), computed from detached rewards
and values. Inputs are rows of per-token quantities, shape (..., T), right-padded,
with a ``mask`` of the same shape (1 = a real token, 0 = padding). Padded positions
may hold anything (even NaN): they are zeroed first and are 0 in every output.

Conventions (implementation note ppo-2): by default the value is 0
past the end of each row (the episode *terminates* at its last token), and
``returns = A + V`` is taken *before* any whitening.

**Truncation or termination.** A row that *terminated* (it emitted END) has no future,
so $V(s_{T+1}) = 0$. A row that was *truncated* (cut off by a length limit) would have
gone on: its future is worth about $V(s_{T+1})$, the value of the state after its last
token, and a 0 there would blame (or credit) its last tokens for a future never sampled.
Every function below takes ``truncated`` (...,) bool and ``bootstrap_values`` (...,)
$= V(s_{T+1})$; for truncated rows the last reward gains $\gamma V(s_{T+1})$:

$$\delta_T = r_T + \gamma\,V(s_{T+1})\,[\text{truncated}] - V(s_T), \qquad
  G_t = \sum_{t'=t}^T \gamma^{\,t'-t} r_{t'} + \gamma^{\,T+1-t}\,V(s_{T+1})\,[\text{truncated}]$$

(CleanRL's ``next_done`` and Gymnasium's ``terminated``/``truncated`` split, for rows.)
"""

from __future__ import annotations

import numpy as np

from ._checks import (
    array_arg,
    finite_result,
    mask_arg,
    non_negative,
    one_of,
    pow2_exponent,
    raw,
    right_padded,
    same_shape,
    unit_interval,
)


def _rows(fn: str, rewards, mask, values=None):
    shape = same_shape(fn, rewards=rewards, values=values, mask=mask)
    if len(shape) == 0:
        raise ValueError(f"{fn}: rewards must have a time axis (shape (..., T)), got shape ()")
    m = right_padded(fn, mask_arg(fn, mask, shape))
    r = array_arg(fn, "rewards", rewards, m)
    v = None if values is None else array_arg(fn, "values", values, m).astype(r.dtype)
    return r, v, m


def _bootstrap(fn: str, r, m, gamma: float, truncated, bootstrap_values) -> np.ndarray:
    r"""``r`` with $\gamma V(s_{T+1})$ added to the last valid reward of each truncated row.

    ``truncated`` (...,) bool; ``bootstrap_values`` (...,) must be finite where truncated
    (anything, even NaN, elsewhere). ``bootstrap_values`` alone means every row is truncated.
    """
    if truncated is None and bootstrap_values is None:
        return r
    if bootstrap_values is None:
        raise ValueError(f"{fn}: truncated was given without bootstrap_values (V after the row)")
    rows = r.shape[:-1]
    trunc = np.ones(rows, bool) if truncated is None else raw(truncated)
    if trunc.shape != rows or not np.isin(trunc, (0, 1)).all():
        raise ValueError(
            f"{fn}: truncated must be 0/1 (or bool) of shape {rows} (one per row of rewards "
            f"{r.shape}), got shape {trunc.shape}"
        )
    trunc = trunc.astype(bool) & m.any(axis=-1)  # an empty row has no last token
    if raw(bootstrap_values).shape != rows:
        raise ValueError(
            f"{fn}: bootstrap_values must have shape {rows} (one V(s_T+1) per row of rewards "
            f"{r.shape}), got shape {raw(bootstrap_values).shape}"
        )
    v_boot = array_arg(fn, "bootstrap_values", bootstrap_values, trunc).astype(r.dtype)
    last = m.sum(axis=-1) - 1  # (...,) index of each row's last valid token
    at_end = np.arange(r.shape[-1]) == last[..., None]  # (..., T)
    return r + (gamma * v_boot * trunc)[..., None] * at_end  # r_T + γ V(s_{T+1})


def discounted_returns(
    rewards, gamma: float, mask=None, *, truncated=None, bootstrap_values=None
) -> np.ndarray:
    r"""The discounted reward-to-go of every position (no gradient; a NumPy array).

    $$G_t = \sum_{t'=t}^T \gamma^{\,t'-t}r_\phi(x_{t'},y_{t'})$$

    (the first term of $\hat{A}_t$ in eq. 2; at $t = 0$ it is the return inside
    eq. 1's $J(\theta) = \mathbb{E}_{x,y\sim\pi_\theta}\Big[\sum_{t=0}^T \gamma^t\,r_\phi(x_t,y_t)\Big]$,
    which is maximised — here we only evaluate it).

    =========  ========  ===========================================
    Symbol     Shape     Meaning
    =========  ========  ===========================================
    $r_{t}$    (..., T)  ``rewards`` per token
    $\gamma$   ()        ``gamma`` in [0, 1] (1 is usual for LMs)
    $G_t$      (..., T)  the result, 0 at padded positions
    =========  ========  ===========================================

    Computed as one matrix product with $D_{t't} = \gamma^{t'-t}[t' \ge t]$, which is
    the sum above read literally: ``G = rewards @ D``. ``truncated`` / ``bootstrap_values``
    (...,) add $\gamma^{T+1-t} V(s_{T+1})$ for rows cut off by a length limit (module
    docstring, "Truncation or termination").

    Notebook: notebooks/03_ppo.ipynb, §1 "The objective $J(\theta)$" and
    §4 "Returns and advantages".
    """
    fn = "discounted_returns"
    unit_interval(fn, "gamma", gamma)
    r, _, m = _rows(fn, rewards, mask)
    G = _returns(fn, r, m, gamma, truncated, bootstrap_values)
    return finite_result(fn, G, rewards=rewards, bootstrap_values=bootstrap_values)


def _returns(fn: str, r, m, gamma: float, truncated, bootstrap_values) -> np.ndarray:
    """`discounted_returns` of checked ``r`` and ``m``; errors name the public ``fn``."""
    r = _bootstrap(fn, r, m, gamma, truncated, bootstrap_values)
    t = np.arange(r.shape[-1])
    power = t[:, None] - t[None, :]  # (T', T): t' - t
    discount = np.where(power >= 0, float(gamma) ** np.maximum(power, 0), 0.0)  # (T', T)
    return (r @ discount.astype(r.dtype)) * m


def mc_advantages(
    rewards, values, gamma: float, mask=None, *, truncated=None, bootstrap_values=None
) -> np.ndarray:
    r"""The Monte-Carlo advantage of eq. 2 (no gradient; a NumPy array).

    $$\hat{A}_t \;=\; \sum_{t'=t}^T \gamma^{\,t'-t}r_\phi(x_{t'},y_{t'}) \;-\; V_w(x_t)$$

    ``rewards`` $r_\phi$ and ``values`` $V_w(x_t)$ are (..., T); ``gamma`` $\gamma \in [0, 1]$.
    Unbiased but high-variance; equals `gae_advantages` with $\lambda = 1$ (also with
    ``truncated`` / ``bootstrap_values``, which bootstrap the return as in `discounted_returns`).

    Notebook: notebooks/03_ppo.ipynb, §4 "Returns and advantages".
    """
    fn = "mc_advantages"
    unit_interval(fn, "gamma", gamma)
    r, v, m = _rows(fn, rewards, mask, values)
    G = _returns(fn, r, m, gamma, truncated, bootstrap_values)
    return finite_result(
        fn, (G - v) * m, rewards=rewards, values=values, bootstrap_values=bootstrap_values
    )


def gae_advantages(
    rewards, values, gamma: float, lam: float, mask=None, *, truncated=None, bootstrap_values=None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Generalised advantage estimation (Schulman et al. 2016); returns ``(advantages, returns)``.

    $$\delta_t = r_t + \gamma V(x_{t+1}) - V(x_t), \qquad
      A_t = \delta_t + \gamma\lambda A_{t+1}, \qquad R_t = A_t + V(x_t)$$

    with $V = 0$ and $A = 0$ past the end of each row, except that a ``truncated`` row
    uses $V(x_{T+1})$ = its ``bootstrap_values`` entry in $\delta_T$ (module docstring,
    "Truncation or termination"). $\lambda = 1$ gives eq. 2's
    $\hat{A}_t = \sum_{t'=t}^T \gamma^{\,t'-t}r_\phi(x_{t'},y_{t'}) - V_w(x_t)$ (unbiased,
    high variance); $\lambda = 0$ gives the one-step $\delta_t$ (biased, low variance).

    ============  ========  ============================================
    Symbol        Shape     Meaning
    ============  ========  ============================================
    $r_t$         (..., T)  ``rewards`` (e.g. from `kl_penalized_rewards`)
    $V(x_t)$      (..., T)  ``values`` from the value head, detached
    $\gamma$      ()        ``gamma`` in [0, 1]
    $\lambda$     ()        ``lam`` in [0, 1]
    —             (...,)    ``truncated`` (optional bool): rows cut off, not ended
    $V(x_{T+1})$  (...,)    ``bootstrap_values`` (optional), used where truncated
    $A_t, R_t$    (..., T)  the two results (NumPy, no gradient), 0 at padding
    ============  ========  ============================================

    The backward recursion is vectorised over rows (one loop over time, as CleanRL's
    ``ppo.py`` and TRL's ``PPOTrainer`` do). TRL knobs: ``PPOConfig.gamma``, ``lam``.

    Notebook: notebooks/03_ppo.ipynb, §5 "Generalised advantage estimation" (and its
    "Truncation or termination?" part), §10 "One PPO iteration by hand" and §13 "Exercises"
    (GAE for a padded batch).
    """
    fn = "gae_advantages"
    unit_interval(fn, "gamma", gamma)
    unit_interval(fn, "lam", lam)
    r, v, m = _rows(fn, rewards, mask, values)
    r = _bootstrap(fn, r, m, gamma, truncated, bootstrap_values)  # δ_T gains γ V(x_{T+1})
    v_next = np.concatenate(
        [v[..., 1:], np.zeros_like(v[..., :1])], axis=-1
    )  # V(x_{t+1}), 0 at end
    delta = r + gamma * v_next - v  # 0 at padding: r, v, v_next are all 0 there
    advantages = np.zeros_like(delta)
    running = np.zeros(delta.shape[:-1], delta.dtype)  # A_{T+1} = 0 (also when T = 0)
    for t in reversed(range(delta.shape[-1])):
        running = delta[..., t] + gamma * lam * running  # A_t = δ_t + γλ A_{t+1}
        advantages[..., t] = running
    advantages *= m
    inputs = dict(rewards=rewards, values=values, bootstrap_values=bootstrap_values)
    return finite_result(fn, (advantages, (advantages + v) * m), **inputs)


def whiten(x, mask=None, shift_mean: bool = True, ddof: int = 0, eps: float = 1e-8) -> np.ndarray:
    r"""Normalise over the valid positions of the whole batch (no gradient; a NumPy array).

    $$\tilde x = \frac{x - \bar x}{\sqrt{s^2 + \varepsilon}}, \qquad
      \bar x = \frac{\sum m\,x}{\sum m}, \quad s^2 = \frac{\sum m\,(x - \bar x)^2}{\sum m - \mathrm{ddof}}$$

    ``ddof=0`` (default) is the population variance, as in eq. 7's $\sigma$ (note ppo-3);
    ``ddof=1`` is TRL's ``masked_whiten`` (unbiased). ``shift_mean=False`` adds
    $\bar x$ back (TRL does this for rewards). Padded positions are 0 in the output.
    Valid values that are all equal whiten to exactly 0 (no spread; their float mean may
    differ from them by a rounding error, which would otherwise be blown up to $\pm 1$ for
    a small ``eps``). Values whose squares would overflow or underflow are whitened at a
    power-of-two scale, so ``whiten(a * x, eps=0)`` equals ``whiten(x, eps=0)`` for $a > 0$.

    Notebook: notebooks/03_ppo.ipynb, §5 "Generalised advantage estimation" (its
    whitening paragraph) and §10 "One PPO iteration by hand".
    """
    fn = "whiten"
    one_of(fn, "ddof", ddof, (0, 1))
    non_negative(fn, "eps", eps)
    shape = raw(x).shape
    m = mask_arg(fn, mask, shape)
    a = array_arg(fn, "x", x, m)
    n = m.sum()
    if n - ddof <= 0:
        raise ValueError(f"{fn}: mask selects {n} values, too few for ddof={ddof}")
    valid = a[m]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if valid.max() == valid.min():  # no spread: every whitened value is 0
            out, mean = np.zeros_like(a), valid[0]
        else:
            mean = a.sum() / n
            var = (((a - mean) * m) ** 2).sum() / (n - ddof)
            out = (a - mean) / np.sqrt(var + eps)
            if not np.isfinite(out).all() or var + eps < _UNDERFLOW[a.dtype.itemsize >= 8]:
                out, mean = _whiten_rescaled(a, m, ddof, eps)  # the same formula at scale 2^-e
        if not shift_mean:
            out = out + mean
    return finite_result(fn, (out * m).astype(a.dtype), x=x)


# Below this, squares of deviations lose digits to underflow: float32, float64.
_UNDERFLOW = [np.finfo(t).tiny / np.finfo(t).eps for t in (np.float32, np.float64)]


def _whiten_rescaled(a, m, ddof: int, eps: float):
    r"""`whiten` of ``a`` computed on $u = a \cdot 2^{-e}$ (max $|u| < 1$): neither the mean's
    sum nor the squares can overflow, and squares that matter cannot underflow."""
    e = pow2_exponent(a[m])
    u = np.ldexp(a, -e) * m
    n = m.sum()
    mean_u = u.sum() / n
    var_u = (((u - mean_u) * m) ** 2).sum() / (n - ddof)
    eps_u = a.dtype.type(np.ldexp(eps, -2 * e))  # may be inf: then eps dominates, out = 0
    return (u - mean_u) / np.sqrt(var_u + eps_u), np.ldexp(mean_u, e)
