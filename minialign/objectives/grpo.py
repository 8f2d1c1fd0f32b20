r"""GRPO: group-relative advantages and the clipped objective without a critic.

For each prompt the policy samples a *group* of $N$ outputs $o_1, \dots, o_N$; each
output's advantage is its reward standardised within the group, so no value network
is needed. Rewards and advantages are constants (NumPy arrays, no gradient).
"""

from __future__ import annotations

import numpy as np

from ..autograd import ops
from ..autograd.ops import exp, minimum
from ._checks import (
    array_arg,
    finite_result,
    integer,
    mask_arg,
    masked_mean,
    non_empty,
    non_negative,
    one_of,
    positive,
    pow2_exponent,
    raw,
    same_shape,
    tensor_arg,
    unit_interval,
)
from .kl import _kl


def combined_reward(r_outcome, r_process, lam: float) -> np.ndarray:
    r"""The multi-component reward of eq. 6 (no gradient; a NumPy array).

    $$r_i = \lambda\,r_{\rm outcome}(o_i, x) + (1 - \lambda)\,r_{\rm process}(\tau_i, x)$$

    ``r_outcome`` scores the final answer of output $o_i$, ``r_process`` its reasoning trace
    $\tau_i$ (same shape, e.g. (B, N)); ``lam`` $\lambda \in [0, 1]$ weighs the two.
    TRL's equivalent: several ``reward_funcs`` with ``GRPOConfig.reward_weights``.

    Notebook: notebooks/04_grpo.ipynb, §1 "Outcome and process rewards".
    """
    fn = "combined_reward"
    unit_interval(fn, "lam", lam)
    same_shape(fn, r_outcome=r_outcome, r_process=r_process)
    r = lam * array_arg(fn, "r_outcome", r_outcome) + (1 - lam) * array_arg(
        fn, "r_process", r_process
    )
    return finite_result(fn, r, r_outcome=r_outcome, r_process=r_process)


def group_advantages(
    rewards, eps: float = 1e-8, ddof: int = 0, std_floor: float = 0.0, scale: bool = True
) -> np.ndarray:
    r"""Standardise each group's rewards over the last axis (no gradient; a NumPy array).

    $$\mu = \frac{1}{N}\sum_{i=1}^N r_i, \quad \sigma = \sqrt{\frac{1}{N}\sum_{i=1}^N (r_i - \mu)^2}$$
    $$A_i = \frac{r_i - \mu}{\sigma}$$

    computed as $A_i = (r_i - \mu) / (\max(\sigma, \sigma_{\rm floor}) + \varepsilon)$.

    ====================  ========  ==================================================
    Symbol                Shape     Meaning
    ====================  ========  ==================================================
    $r_i$                 (..., N)  ``rewards``, one group of $N \ge 2$ per last axis
    $\varepsilon$         ()        ``eps``, added to $\sigma$ (TRL adds 1e-4)
    ``ddof``              ()        0: the population $\sigma$ of eq. 7; 1: TRL's Bessel std (note grpo-1)
    $\sigma_{\rm floor}$  ()        ``std_floor``: bounds $|A|$ when $\sigma$ is tiny (NeMo-RL)
    ``scale``             bool      False: $A_i = r_i - \mu$ (Dr. GRPO; TRL ``scale_rewards``)
    ====================  ========  ==================================================

    A group whose rewards are all equal carries no signal: its advantages are **exactly
    0**. We test the rewards for equality rather than $\sigma = 0$, because the float
    $\sigma$ of equal rewards can come out as 1e-17 and turn rounding noise into $A = \pm 1$.
    A group of size 1 has no baseline: ValueError. Groups whose squares overflow or
    underflow (float32 rewards of $\pm 10^{20}$ or $10^{-30}$) are standardised at a
    power-of-two scale, so with ``eps = std_floor = 0`` the result is the same for
    $a \cdot r$ as for $r$ ($a > 0$).

    Notebook: notebooks/04_grpo.ipynb, §2 "Group-relative advantages",
    §3 "When every reward in a group is equal" and §12 "Exercises" (implement it).
    """
    fn = "group_advantages"
    r = _groups(fn, rewards)
    one_of(fn, "ddof", ddof, (0, 1))
    non_negative(fn, "eps", eps)
    non_negative(fn, "std_floor", std_floor)
    all_equal = r.max(axis=-1, keepdims=True) == r.min(axis=-1, keepdims=True)  # (..., 1)
    with np.errstate(over="ignore", invalid="ignore"):
        advantages, denominator = _standardize(r, eps, ddof, std_floor, scale, all_equal)
        lost = ~np.isfinite(advantages).all(axis=-1, keepdims=True)  # (..., 1) overflowed
        if scale:  # sigma overflowed (A = 0), or its squares underflowed uncovered by eps
            small = denominator < _SMALL_STD[r.dtype.itemsize >= 8]
            lost |= ~all_equal & (small | ~np.isfinite(denominator))
        if lost.any():  # redo those groups on r / 2^e (max |r / 2^e| < 1): no digit changes
            e = pow2_exponent(r, axis=-1, keepdims=True)  # (..., 1)
            eps_e, floor_e = (np.ldexp(x, -e).astype(r.dtype) for x in (eps, std_floor))
            redone, _ = _standardize(np.ldexp(r, -e), eps_e, ddof, floor_e, scale, all_equal, e)
            advantages = np.where(lost, redone, advantages)
    return finite_result(fn, np.where(all_equal, 0.0, advantages).astype(r.dtype), rewards=r)


# sigma below this (float32, float64) may have lost digits to underflowing squares.
_SMALL_STD = [np.sqrt(np.finfo(t).tiny / np.finfo(t).eps) for t in (np.float32, np.float64)]


def _standardize(r, eps, ddof, std_floor, scale, all_equal, e=None):
    """``(A, denominator)``: (r - mu)/(max(sigma, floor) + eps), or 2^e (r - mu) unscaled."""
    mu = r.mean(axis=-1, keepdims=True)  # (..., 1)
    advantages = r - mu
    if not scale:
        return (advantages if e is None else np.ldexp(advantages, e)), None
    sigma = r.std(axis=-1, ddof=ddof, keepdims=True)  # (..., 1)
    denominator = np.maximum(sigma, std_floor) + eps
    return advantages / np.where(all_equal, 1.0, denominator), denominator


def _groups(fn: str, rewards) -> np.ndarray:
    r = array_arg(fn, "rewards", rewards)
    if r.ndim == 0 or r.shape[-1] < 2:
        raise ValueError(
            f"{fn}: rewards of shape {r.shape} hold groups of size "
            f"{r.shape[-1] if r.ndim else 0}; the group size N (last axis) must be >= 2"
        )
    return r


def frac_zero_std_groups(rewards) -> float:
    """Fraction of groups whose rewards are all equal, so they teach nothing
    (TRL's ``frac_reward_zero_std``). No group at all is a ValueError."""
    fn = "frac_zero_std_groups"
    r = _groups(fn, rewards)
    non_empty(fn, "rewards", r.size)
    return float(np.mean(r.max(axis=-1) == r.min(axis=-1)))


def grpo_loss(
    logp_new,
    logp_old,
    advantages,
    epsilon: float,
    mask=None,
    beta: float = 0.0,
    logp_ref=None,
    level: str = "sequence",
    aggregation: str = "grpo",
    max_completion_length: int | None = None,
    epsilon_high: float | None = None,
    max_log_ratio: float = 20.0,
):
    r"""The negative of the GRPO objective (eq. 10), plus an optional KL term (minimised).

    $$\rho_i = \frac{\pi_\theta(o_i \mid x)}{\pi_{\theta_{\rm old}}(o_i \mid x)}$$
    $$L^{\rm GRPO}(\theta) = \mathbb{E}_i\Big[\min\big(\rho_i\,A_i,\;\mathrm{clip}(\rho_i,\,1 - \epsilon,\,1 + \epsilon)\,A_i\big)\Big]$$

    Sign: $L^{\rm GRPO}$ is an objective to *maximise* (note sign-1); this returns
    $-L^{\rm GRPO} + \beta\,\mathbb{E}[k_3]$, a loss to minimise.

    ======================  ======  ======================================================
    Symbol                  Shape   Meaning
    ======================  ======  ======================================================
    ``logp_new``            (B, T)  per-token $\log\pi_\theta$ of output $o_i$ (or (B,) per output)
    ``logp_old``            (B, T)  the same under $\pi_{\theta_{\rm old}}$, constant
    ``advantages``          (B,)    $A_i$ from `group_advantages` (groups flattened), constant
    $\epsilon$              ()      ``epsilon``; ``epsilon_high`` sets $1+\epsilon_{\rm high}$ (DAPO)
    $\beta$                 ()      ``beta``, weight of the per-token k3 estimate of KL to $\pi_{\rm ref}$
    ``logp_ref``            (B, T)  $\log\pi_{\rm ref}$ of the same tokens, constant (needed when $\beta > 0$)
    ======================  ======  ======================================================

    ``level``: ``"sequence"`` is eq. 9's $\rho_i$ for the whole output,
    $\exp\sum_t(\log\pi_\theta - \log\pi_{\theta_{\rm old}})$ — a product of token ratios that
    explodes or vanishes for long outputs; ``"token"`` uses one ratio per token
    (DeepSeekMath, TRL). Either way the per-output term is spread over its tokens and:

    ``aggregation`` (TRL ``GRPOConfig.loss_type``):
      * ``"grpo"``: mean over each output's tokens, then over outputs. Every output weighs
        the same, so a long wrong answer is penalised less per token than a short one
        (the length bias Dr. GRPO points out). At sequence level this is exactly $\mathbb{E}_i$.
      * ``"bnpo"``: sum over all valid tokens / their number — every token weighs the same.
      * ``"dr_grpo"``: sum / (B · ``max_completion_length``), a constant (default T), so
        neither length nor padding changes the weight of a token (Liu et al. 2025).
      * ``"dapo"``: TRL normalises by the token count of the *global* batch (all processes,
        all accumulation steps); in a single process with one batch it equals ``"bnpo"``.

    TRL knobs: ``GRPOConfig.epsilon``, ``epsilon_high``, ``beta``, ``loss_type``,
    ``importance_sampling_level`` (``"token"``/``"sequence"``; TRL's sequence level is
    GSPO's length-normalised ratio, ours is eq. 9's plain product; notes grpo-3 to grpo-6).

    Notebook: notebooks/04_grpo.ipynb, §4 "The ratio and the GRPO objective",
    §5 "Sequence-level and token-level ratios", §6 "The length bias of the loss aggregation",
    §7 "DeepSeekMath's KL term: β·k3 in the loss, averaged per token" and
    §8 "One GRPO iteration by hand".
    """
    fn = "grpo_loss"
    non_negative(fn, "epsilon", epsilon)
    epsilon_high = (
        epsilon if epsilon_high is None else non_negative(fn, "epsilon_high", epsilon_high)
    )
    non_negative(fn, "beta", beta)
    positive(fn, "max_log_ratio", max_log_ratio)
    if max_completion_length is not None:
        integer(fn, "max_completion_length", max_completion_length, 1)
    one_of(fn, "level", level, ("sequence", "token"))
    one_of(fn, "aggregation", aggregation, ("grpo", "bnpo", "dr_grpo", "dapo"))
    shape = same_shape(fn, logp_new=logp_new, logp_old=logp_old, logp_ref=logp_ref)
    if len(shape) == 1:  # (B,) log-probs of whole outputs: one "token" per output
        logp_new, logp_old = ops.reshape(logp_new, -1, 1), raw(logp_old)[:, None]  # (B, 1)
        logp_ref = None if logp_ref is None else raw(logp_ref)[:, None]
        mask = None if mask is None else raw(mask)[:, None]
        shape = shape + (1,)
    if len(shape) != 2:
        raise ValueError(f"{fn}: logp_new must be (B, T) or (B,), got shape {shape}")
    non_empty(fn, "logp_new", shape[0])
    m = mask_arg(fn, mask, shape)
    if raw(advantages).shape != shape[:1]:
        raise ValueError(
            f"{fn}: advantages has shape {raw(advantages).shape}, expected {shape[:1]}"
        )
    new = tensor_arg(fn, "logp_new", logp_new, m)
    log_ratio = new - array_arg(fn, "logp_old", logp_old, m).astype(new.dtype)  # (B, T)
    if level == "sequence":
        log_ratio = log_ratio.sum(axis=-1, keepdims=True)  # (B, 1): log ρ_i of the whole output
    ratio = exp(ops.clip(log_ratio, -max_log_ratio, max_log_ratio))
    clipped = ops.clip(ratio, 1.0 - epsilon, 1.0 + epsilon_high)
    A = array_arg(fn, "advantages", advantages).astype(new.dtype)[:, None]  # (B, 1)
    per_token = -minimum(ratio * A, clipped * A)
    per_token = ops.broadcast_to(per_token, shape).masked_fill(~m, 0.0)  # (B, T)
    if beta > 0:
        if logp_ref is None:
            raise ValueError(f"{fn}: beta={beta} > 0 needs logp_ref (the reference log-probs)")
        per_token = per_token + beta * _kl(fn, new, raw(logp_ref), "k3", m, max_log_ratio)
    if aggregation == "grpo":
        loss = masked_mean(per_token, m, axis=-1).mean()
    elif aggregation in ("bnpo", "dapo"):
        loss = masked_mean(per_token, m, fn=fn)
    else:
        length = shape[1] if max_completion_length is None else max_completion_length
        positive(fn, "max_completion_length", length)
        loss = per_token.sum() / float(shape[0] * length)
    return finite_result(fn, loss, advantages=A, logp_new=new, logp_old=logp_old, beta=beta)
