r"""PPO: the probability ratio, the clipped policy loss, the value loss, and their metrics.

Token-level inputs are (B, T) per-token log-probabilities of the *sampled* tokens with
a (B, T) 0/1 ``mask`` (right-padded); sequence-level inputs are (B,) with no mask.
Losses are **masked means over every valid token of the batch** (as CleanRL and TRL's
``PPOTrainer``); advantages and returns are constants (no gradient flows into them).
"""

from __future__ import annotations

import numpy as np

from ..autograd import functional as F
from ..autograd import ops
from ..autograd.engine import Tensor
from ..autograd.ops import exp, maximum, minimum
from ._checks import (
    array_arg,
    finite_result,
    mask_arg,
    masked_mean,
    non_negative,
    positive,
    raw,
    same_shape,
    tensor_arg,
)


def probability_ratio(logp_new, logp_old, mask=None, max_log_ratio: float = 20.0):
    r"""The probability ratio of eq. 3, per token (or per sequence), as a Tensor.

    $$r_{\theta}(x,y) \;=\; \frac{\pi_\theta(y_t\!\mid\!x_t)}{\pi_{\theta_{\rm old}}(y_t\!\mid\!x_t)}$$

    computed as $\exp(\log\pi_\theta - \log\pi_{\theta_{\rm old}})$, never as a quotient of
    probabilities. ``logp_old`` is a constant (no gradient). The log-ratio is clamped to
    $\pm$ ``max_log_ratio`` before ``exp`` so a wild policy cannot overflow (TRL #3015);
    beyond the clamp the gradient is 0, where PPO's clip would block it anyway for $\hat A>0$.
    Padded positions give ratio 1.

    Notebook: notebooks/03_ppo.ipynb, §3 "The policy gradient, derived on a bandit" (why
    the ratio appears) and §6 "The probability ratio".
    """
    fn = "probability_ratio"
    m = mask_arg(fn, mask, same_shape(fn, logp_new=logp_new, logp_old=logp_old))
    return _ratio(fn, logp_new, logp_old, m, max_log_ratio)


def _ratio(fn: str, logp_new, logp_old, m: np.ndarray, max_log_ratio: float = 20.0) -> Tensor:
    """`probability_ratio` under a checked mask; errors name the public ``fn``."""
    positive(fn, "max_log_ratio", max_log_ratio)
    logp_new = tensor_arg(fn, "logp_new", logp_new, m)
    logp_old = array_arg(fn, "logp_old", logp_old, m).astype(logp_new.dtype)
    ratio = exp(ops.clip(logp_new - logp_old, -max_log_ratio, max_log_ratio))
    return finite_result(fn, ratio, max_log_ratio=max_log_ratio)


def ppo_clip_loss(logp_new, logp_old, advantages, epsilon: float, mask=None):
    r"""The clipped surrogate of eq. 4, which is already written as a loss (minimised).

    $$L^{\text{CLIP}}(\theta) \;=\; -\mathbb{E}_{x,y \sim \pi_{\theta_{\text{old}}}}\Big[\min\big(r_{\theta}(x,y)\,\hat{A}_t,\;\mathrm{clip}(r_{\theta}(x,y),\,1-\epsilon,\,1+\epsilon)\,\hat{A}_t\big)\Big]$$

    ==================  ======  ===================================================
    Symbol              Shape   Meaning
    ==================  ======  ===================================================
    ``logp_new``        (B, T)  $\log\pi_\theta(y_t|x_t)$, differentiable
    ``logp_old``        (B, T)  $\log\pi_{\theta_{\rm old}}(y_t|x_t)$ at sampling time
    ``advantages``      (B, T)  $\hat A_t$ (e.g. from `gae_advantages`), constant
    $\epsilon$          ()      ``epsilon`` $\ge 0$, the clip range
    $\mathbb{E}$                masked mean over all valid tokens of the batch
    ==================  ======  ===================================================

    (B,) sequence-level inputs work the same way. Sign: eq. 4's leading minus is kept (note sign-1),
    so this is minimised. Where the clip is active and binding (ratio beyond $1\pm\epsilon$ on
    the side $\hat A$ pushes toward) the gradient is exactly 0. With one step per batch the
    ratio is 1 and the loss is $-\mathbb{E}[\hat A]$.
    TRL knob: ``PPOConfig.cliprange`` = ``epsilon``.

    Notebook: notebooks/03_ppo.ipynb, §7 "The clipped objective", §10 "One PPO iteration
    by hand" and §13 "Exercises" (find the bug).
    """
    fn = "ppo_clip_loss"
    non_negative(fn, "epsilon", epsilon)
    shape = same_shape(fn, logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    m = mask_arg(fn, mask, shape)
    ratio = _ratio(fn, logp_new, logp_old, m)
    advantages = array_arg(fn, "advantages", advantages, m).astype(ratio.dtype)
    clipped = ops.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)
    surrogate = minimum(ratio * advantages, clipped * advantages)  # 0 at padding (Â = 0)
    loss = -masked_mean(surrogate, m, fn=fn)
    return finite_result(fn, loss, advantages=advantages, logp_new=logp_new, logp_old=logp_old)


def value_loss(values, old_values, returns, clip: float | None = None, mask=None):
    r"""The value head's squared error, optionally clipped (minimised).

    $$L^V = \tfrac12\,\mathbb{E}\Big[\max\big((V - R)^2,\ (\mathrm{clip}(V, V_{\rm old}-\epsilon_v, V_{\rm old}+\epsilon_v) - R)^2\big)\Big]$$

    ``values`` $V$ (B, T) differentiable; ``old_values`` $V_{\rm old}$ and ``returns`` $R$
    (from `gae_advantages`) constant; ``clip`` $\epsilon_v$ (``None`` = no clipping,
    plain $\tfrac12(V-R)^2$). Masked mean over valid tokens. TRL knobs:
    ``PPOConfig.cliprange_value``, ``vf_coef`` (the weight the trainer puts on this loss).

    Notebook: notebooks/03_ppo.ipynb, §10 "One PPO iteration by hand" (computed by hand
    and checked against this function; the critic starts at 0).
    """
    fn = "value_loss"
    if clip is not None:
        non_negative(fn, "clip", clip)
    m = mask_arg(fn, mask, same_shape(fn, values=values, old_values=old_values, returns=returns))
    values = tensor_arg(fn, "values", values, m)
    old = array_arg(fn, "old_values", old_values, m).astype(values.dtype)
    target = array_arg(fn, "returns", returns, m).astype(values.dtype)
    loss = (values - target) ** 2
    if clip is not None:
        clipped = old + ops.clip(values - old, -clip, clip)
        loss = maximum(loss, (clipped - target) ** 2)
    loss = 0.5 * masked_mean(loss, m, fn=fn)
    return finite_result(fn, loss, values=values, old_values=old, returns=target)


def entropy_bonus(logits, mask=None):
    r"""Mean entropy of the policy, $\mathbb{E}_t[-\sum_v \pi(v|x_t)\log\pi(v|x_t)]$ (to MAXIMISE).

    ``logits`` (B, T, V) (or (B, V)); ``mask`` (B, T). A trainer subtracts
    ``ent_coef * entropy_bonus(...)`` from its loss (CleanRL's ``ent_coef``).

    Notebook: none; no notebook steps through the entropy bonus.
    """
    fn = "entropy_bonus"
    if raw(logits).ndim == 0 or raw(logits).shape[-1] == 0:
        raise ValueError(
            f"{fn}: logits must have a vocabulary axis of size >= 1, got shape {raw(logits).shape}"
        )
    shape = raw(logits).shape[:-1]
    m = mask_arg(fn, mask, shape)
    logits = tensor_arg(fn, "logits", logits, np.broadcast_to(m[..., None], raw(logits).shape))
    logp = F.log_softmax(logits)
    p = exp(logp)
    if (logp.data == -np.inf).any():  # e^{z - max z} underflowed: p log p -> 0, not 0 * -inf
        logp = logp.masked_fill(logp.data == -np.inf, 0.0)
    entropy = -(p * logp).sum(axis=-1)  # (B, T); padding: uniform, masked out below
    return masked_mean(entropy.masked_fill(~m, 0.0), m, fn=fn)


def clip_fraction(logp_new, logp_old, epsilon: float, mask=None) -> float:
    r"""Fraction of valid tokens with $|r_\theta - 1| > \epsilon$ (CleanRL's ``clipfrac``);
    0.0 when no token is valid."""
    fn = "clip_fraction"
    non_negative(fn, "epsilon", epsilon)
    m = mask_arg(fn, mask, same_shape(fn, logp_new=logp_new, logp_old=logp_old))
    ratio = _ratio(fn, raw(logp_new), raw(logp_old), m).data
    return float(((np.abs(ratio - 1.0) > epsilon) & m).sum() / max(m.sum(), 1))


def approx_kl(logp_new, logp_old, mask=None) -> float:
    r"""$\mathbb{E}[(r - 1) - \log r]$, k3 of $\mathrm{KL}(\pi_{\rm old}\|\pi_\theta)$ from the ratio.

    Samples come from $\pi_{\rm old}$, so this estimates how far an update moved the policy
    (CleanRL's ``approx_kl``; used for early stopping on a target KL). 0.0 when no token
    is valid.
    """
    fn = "approx_kl"
    m = mask_arg(fn, mask, same_shape(fn, logp_new=logp_new, logp_old=logp_old))
    log_ratio = array_arg(fn, "logp_new", logp_new, m) - array_arg(fn, "logp_old", logp_old, m)
    finite_result(fn, log_ratio, logp_new=logp_new, logp_old=logp_old)
    k3 = np.maximum(np.expm1(np.minimum(log_ratio, 20.0)) - log_ratio, 0.0)  # 0 at padding
    return finite_result(fn, float(k3.sum() / max(m.sum(), 1)), logp_new=logp_new)
