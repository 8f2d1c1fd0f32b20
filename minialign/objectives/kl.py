r"""KL divergence to the reference policy: estimators, the exact value, and the KL penalty.

The KL-regularised objective (eq. 5 of the equation sheet; maximised) is

$$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta.\,\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$

For a language model the KL over whole sequences cannot be summed exactly, so it is
*estimated* from the sampled tokens (`kl_penalty`, Schulman's k1/k2/k3). On a toy
categorical policy it can be computed exactly (`categorical_kl`,
`kl_regularized_objective`), and so can the optimum and best-of-n.
"""

from __future__ import annotations

import numpy as np

from ..autograd import functional as F
from ..autograd.engine import Tensor, make_result
from ..autograd.ops import exp
from ._checks import (
    array_arg,
    finite_result,
    integer,
    mask_arg,
    non_empty,
    non_negative,
    number,
    one_of,
    positive,
    raw,
    right_padded,
    same_shape,
    tensor_arg,
)


def kl_penalty(logp, logp_ref, estimator: str = "k1", mask=None, max_log_ratio: float = 20.0):
    r"""A per-sample estimate of $\mathrm{KL}(\pi_\theta \| \pi_{\rm ref})$ from samples $y \sim \pi_\theta$.

    With $\log \rho = \log\pi_{\rm ref}(y) - \log\pi_\theta(y)$ (Schulman, "Approximating KL
    Divergence", 2020):

    $$k_1 = -\log\rho, \qquad k_2 = \tfrac12(\log\rho)^2, \qquad k_3 = (\rho - 1) - \log\rho$$

    ============  =====  =====================================================
    Symbol        Shape  Meaning
    ============  =====  =====================================================
    ``logp``      any    $\log\pi_\theta(y)$ of the sampled tokens/sequences
    ``logp_ref``  same   $\log\pi_{\rm ref}(y)$ of the same samples
    result        same   the estimate per sample (0 at padded positions)
    ============  =====  =====================================================

    k1 is unbiased but can be negative per sample; k2 is biased, always $\ge 0$; k3 is
    unbiased and $\ge 0$. k1 goes into PPO's reward (InstructGPT; TRL
    ``PPOConfig.kl_estimator="k1"``); k3 into GRPO's loss (DeepSeekMath; TRL GRPO).
    Used as a loss, k1's expected gradient is 0 on-policy; k3's is the gradient of
    $\mathrm{KL}(\pi_{\rm ref}\|\pi_\theta)$ (TRL issue #4967).

    ``max_log_ratio`` caps $\log\rho$ inside the exponential of k3 so it cannot overflow
    (no gradient beyond the cap; OpenRLHF clamps the log-ratio at $\pm 10$).

    Notebook: notebooks/03_ppo.ipynb, §8 "The KL-penalised reward" (the paragraph
    on estimating the KL from samples) and §9 "KL estimators as losses: which KL each one
    regularises" (the expected gradients, measured).
    """
    fn = "kl_penalty"
    m = mask_arg(fn, mask, same_shape(fn, logp=logp, logp_ref=logp_ref))
    return _kl(fn, tensor_arg(fn, "logp", logp, m), logp_ref, estimator, m, max_log_ratio)


def _kl(fn: str, logp: Tensor, logp_ref, estimator: str, m, max_log_ratio: float) -> Tensor:
    """`kl_penalty` of a checked ``logp`` (padding zeroed); errors name the public ``fn``."""
    one_of(fn, "estimator", estimator, ("k1", "k2", "k3"))
    positive(fn, "max_log_ratio", max_log_ratio)
    logp_ref = tensor_arg(fn, "logp_ref", logp_ref, m)
    log_ratio = finite_result(fn, logp_ref - logp, logp=logp, logp_ref=logp_ref)  # log ρ
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return finite_result(fn, 0.5 * log_ratio * log_ratio, logp=logp, logp_ref=logp_ref)
    return finite_result(fn, _k3(log_ratio, max_log_ratio), max_log_ratio=max_log_ratio)


def _k3(log_ratio: Tensor, cap: float) -> Tensor:
    r"""$k_3 = (e^{x} - 1) - x$ as one node, with ``expm1`` so it is $\ge 0$ even for $|x| < 10^{-16}$
    (where ``exp(x) - 1 - x`` rounds to $-x$). $x$ is capped at ``cap`` inside the exponential;
    $\partial k_3/\partial x = e^{x}[x < \text{cap}] - 1$."""
    x = log_ratio.data
    capped = np.minimum(x, cap)
    value = np.maximum(np.expm1(capped) - x, 0.0).astype(x.dtype)
    return make_result(value, (log_ratio,), lambda g: (g * (np.exp(capped) * (x < cap) - 1),), "k3")


def _log_probs(fn: str, name: str, logits) -> Tensor:
    r"""``log_softmax(logits)`` over the last axis. A logit of $-\infty$ is a response of
    probability 0 (allowed); NaN, $+\infty$, or a row with no finite logit is an error."""
    if raw(logits).ndim == 0 or raw(logits).shape[-1] == 0:
        raise ValueError(f"{fn}: {name} needs at least one response (K >= 1 on the last axis)")
    zero = raw(logits) == -np.inf  # probability 0
    if zero.all(axis=-1).any():
        raise ValueError(f"{fn}: {name} has a row whose logits are all -inf (no distribution)")
    z = tensor_arg(fn, name, logits, mask=~zero)  # NaN or +inf is an error; -inf becomes 0 ...
    return F.log_softmax(z.masked_fill(zero, -np.inf) if zero.any() else z)  # ... and back


def categorical_kl(logits_p, logits_q):
    r"""Exact $\mathrm{KL}(p\|q) = \sum_k p_k (\log p_k - \log q_k)$ over the last axis.

    ``logits_p`` and ``logits_q`` (..., K) are unnormalised log-probabilities; the result
    (...) is differentiable in both (``log_softmax`` keeps it finite for logits of $\pm 10^4$).
    A logit of $-\infty$ is a response of probability 0: $0 \log 0 = 0$, and the KL is
    $+\infty$ where $q_k = 0 < p_k$.

    Notebook: notebooks/07_tabular_exact.ipynb, §2 "Exact KL on a categorical policy";
    notebooks/03_ppo.ipynb, §9 "KL estimators as losses: which KL each one regularises".
    """
    return _categorical_kl("categorical_kl", logits_p, logits_q, "logits_p", "logits_q")


def _categorical_kl(fn: str, logits_p, logits_q, name_p: str, name_q: str) -> Tensor:
    """`categorical_kl`, with errors naming the public ``fn`` and its argument names."""
    same_shape(fn, **{name_p: logits_p, name_q: logits_q})
    logp = _log_probs(fn, name_p, logits_p)
    logq = _log_probs(fn, name_q, logits_q)
    p = exp(logp)
    # p_k = 0: a logit of -inf, or one so far below the others that log p_k * (gradient)
    # would overflow. Its term is 0 (not 0 * (-inf - log q_k) = NaN), and so is its gradient.
    zero = logp.data < -np.sqrt(np.finfo(logp.dtype).max)
    if zero.any():
        logp, logq = logp.masked_fill(zero, 0.0), logq.masked_fill(zero, 0.0)
    kl = (p * (logp - logq)).sum(axis=-1)
    exact_inf = ((raw(logits_q) == -np.inf) & ~zero).any(axis=-1)  # q_k = 0 < p_k: KL = +inf
    if not np.where(exact_inf, kl.data == np.inf, np.isfinite(kl.data)).all():
        finite_result(fn, kl, **{name_p: logits_p, name_q: logits_q})  # raises: an overflow
    return kl


def kl_penalized_rewards(score, logp, logp_ref, beta: float, mask=None, estimator: str = "k1"):
    r"""Per-token rewards for PPO on a language model (no gradient; a NumPy array).

    $$r_t = -\beta\, k(y_t) + [t = T_b]\; r_\phi(x, y)$$

    every token pays $\beta$ times the KL estimate (k1 by default: $\log\pi_\theta - \log\pi_{\rm ref}$),
    and the reward model's ``score`` (B,) is added on the last valid token $T_b$ of each row
    (InstructGPT; note ppo-1). TRL's ``PPOTrainer`` differs: when a response is shorter than
    its maximum length it adds the score one position *after* END. ``logp``, ``logp_ref``,
    ``mask`` are (B, T), right-padded. This turns $J(\theta)$ of eq. 5 (maximised) into a sum of
    per-token rewards for `gae_advantages`. TRL knob: ``PPOConfig.kl_coef`` = ``beta``.

    Notebook: notebooks/03_ppo.ipynb, §8 "The KL-penalised reward" and §10 "One PPO
    iteration by hand".
    """
    fn = "kl_penalized_rewards"
    non_negative(fn, "beta", beta)
    one_of(fn, "estimator", estimator, ("k1", "k2", "k3"))
    m = right_padded(fn, mask_arg(fn, mask, same_shape(fn, logp=logp, logp_ref=logp_ref)))
    if m.ndim != 2 or raw(score).shape != m.shape[:1]:
        raise ValueError(f"{fn}: score has shape {raw(score).shape}, expected ({m.shape[0]},)")
    lengths = m.sum(axis=-1)
    if (lengths == 0).any():
        raise ValueError(
            f"{fn}: row {int(np.argmin(lengths))} of mask is empty (no token to score)"
        )
    kl = _kl(fn, tensor_arg(fn, "logp", raw(logp), m), raw(logp_ref), estimator, m, 20.0).data
    rewards = -beta * kl * m  # (B, T)
    rewards[np.arange(len(lengths)), lengths - 1] += array_arg(fn, "score", score)
    return finite_result(fn, rewards, beta=beta, score=score, logp=logp, logp_ref=logp_ref)


class AdaptiveKLController:
    r"""Adapt $\beta$ so the measured KL tracks a target (Ziegler et al. 2019).

    $$e = \mathrm{clip}\Big(\frac{\mathrm{KL}}{\mathrm{KL}_{\rm target}} - 1, -0.2, 0.2\Big), \qquad
      \beta \leftarrow \beta\,\Big(1 + e\,\frac{n}{\rm horizon}\Big)$$

    TRL knobs: ``init_kl_coef``, ``target``, ``horizon`` (``adap_kl_ctrl=True`` in older TRL).

    Notebook: notebooks/03_ppo.ipynb, §12 "Implementation details, and where they live"
    (one row of its table, not stepped through).
    """

    def __init__(self, init_beta: float, target: float, horizon: float):
        self.value = non_negative("AdaptiveKLController", "init_beta", init_beta)
        self.target = positive("AdaptiveKLController", "target", target)
        self.horizon = positive("AdaptiveKLController", "horizon", horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        r"""One update after ``n_steps`` samples; ``n_steps`` must stay below 5·horizon so
        that the factor $1 + e\,n/{\rm horizon} \ge 1 - 0.2\,n/{\rm horizon}$ stays positive."""
        fn = "AdaptiveKLController.update"
        number(fn, "current_kl", current_kl)
        integer(fn, "n_steps", n_steps, 0)
        if n_steps >= 5 * self.horizon:
            raise ValueError(
                f"{fn}: n_steps={n_steps} must be < 5 * horizon = {5 * self.horizon}, "
                f"or a KL above target could make beta negative"
            )
        error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict[str, np.ndarray]:
        """The current $\\beta$, for a checkpoint (target and horizon are settings)."""
        return {"beta": np.array(self.value, dtype=np.float64)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.value = non_negative("AdaptiveKLController", "beta", float(state["beta"]))


def kl_regularized_objective(logits, ref_logits, rewards, beta: float):
    r"""The KL-regularised objective (eq. 5), exactly, for a categorical policy (to MAXIMISE).

    $$J(\theta) = \mathbb{E}_{x,y\sim \pi_\theta}[\,r_\phi(x,y)\,] - \beta.\,\textrm{KL}\big(\pi_\theta(\cdot|x)\;\|\;\pi_{\text{ref}}(\cdot|x)\big)$$

    ``logits`` (..., K) define $\pi_\theta = \mathrm{softmax}$; ``ref_logits`` the same for
    $\pi_{\rm ref}$; ``rewards`` (..., K) are $r_\phi(x, y)$ for each of the K responses;
    ``beta`` $\ge 0$. Returns a scalar Tensor, averaged over the leading axes (prompts).
    This is an objective: hand ``-J`` to a minimiser. Its maximiser is
    `kl_regularized_optimum`.

    Notebook: notebooks/05_dpo.ipynb, §1 "The KL-regularised optimum and its partition function";
    notebooks/07_tabular_exact.ipynb, §3 "The KL-regularised objective";
    notebooks/03_ppo.ipynb, §8 "The KL-penalised reward".
    """
    fn = "kl_regularized_objective"
    non_negative(fn, "beta", beta)
    shape = same_shape(fn, logits=logits, ref_logits=ref_logits, rewards=rewards)
    non_empty(fn, "logits", int(np.prod(shape)))
    logits = tensor_arg(fn, "logits", logits)
    probs = F.softmax(logits)
    expected_reward = (probs * array_arg(fn, "rewards", rewards)).sum(axis=-1)
    finite_result(fn, expected_reward, logits=logits, rewards=rewards)
    kl = _categorical_kl(fn, logits, ref_logits, "logits", "ref_logits")  # +inf if exact
    if beta == 0 and np.isinf(kl.data).any():  # 0 * inf: with beta = 0 there is no KL term
        kl = kl.masked_fill(np.isinf(kl.data), 0.0)
    J = (expected_reward - beta * kl).mean()
    if not np.isinf(kl.data).any():  # else J = -inf exactly: pi puts mass where pi_ref has none
        finite_result(fn, J, logits=logits, rewards=rewards, beta=beta)
    return J


def kl_regularized_optimum(ref_logits, rewards, beta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The maximiser of $J$ in closed form: $\pi^* = \pi_{\rm ref}\, e^{r/\beta} / Z$ (NumPy).

    Returns ``(probs, value)`` with ``value`` $= \beta \log Z = \max J$, per prompt. A
    ``ref_logits`` entry of $-\infty$ is a response the reference never gives ($\pi^* = 0$).

    Notebook: notebooks/05_dpo.ipynb, §1 "The KL-regularised optimum and its partition function";
    notebooks/07_tabular_exact.ipynb, §3 "The KL-regularised objective";
    notebooks/03_ppo.ipynb, §8 "The KL-penalised reward".
    """
    fn = "kl_regularized_optimum"
    positive(fn, "beta", beta)
    same_shape(fn, ref_logits=ref_logits, rewards=rewards)
    z = _log_probs(fn, "ref_logits", ref_logits).data + array_arg(fn, "rewards", rewards) / beta
    log_z = F.logsumexp(Tensor(z)).data  # log Z = log Σ π_ref e^{r/β}
    result = np.exp(z - log_z[..., None]), beta * log_z
    return finite_result(fn, result, rewards=rewards, beta=beta)


def best_of_n_policy(ref_probs, rewards, n: int) -> np.ndarray:
    r"""The exact distribution of the best of ``n`` samples from $\pi_{\rm ref}$ (NumPy).

    With $F(v) = P_{\rm ref}(r \le v)$ and $F_<(v) = P_{\rm ref}(r < v)$,

    $$\pi_{\rm BoN}(y) = \big[F(r_y)^n - F_<(r_y)^n\big]\,
                         \frac{\pi_{\rm ref}(y)}{F(r_y) - F_<(r_y)} .$$

    For distinct rewards the fraction is 1: $\pi_{\rm BoN}(y) = F(y)^n - F(y^-)^n$. Tied
    responses split their class's probability in proportion to $\pi_{\rm ref}$ (keep the
    first best drawn). Its KL to the reference is at most $\log n - (n-1)/n$ (Beirami et
    al. 2024). ``ref_probs`` and ``rewards`` are 1-D (K,); ``ref_probs`` must be a
    distribution (non-negative, summing to 1 up to rounding), ``n`` an integer >= 1.

    Notebook: notebooks/07_tabular_exact.ipynb, §6 "Best-of-n".
    """
    fn = "best_of_n_policy"
    integer(fn, "n", n, 1)
    p = array_arg(fn, "ref_probs", ref_probs)
    r = array_arg(fn, "rewards", rewards)
    same_shape(fn, ref_probs=p, rewards=r)
    if p.ndim != 1:
        raise ValueError(f"{fn}: ref_probs and rewards must be 1-D, got shape {p.shape}")
    tolerance = max(1e-6, 4 * p.size * np.finfo(p.dtype).eps)
    if (p < 0).any() or not abs(p.sum() - 1.0) <= tolerance:
        raise ValueError(
            f"{fn}: ref_probs must be probabilities (>= 0, summing to 1), "
            f"got min {p.min(initial=0.0):.3g} and sum {p.sum():.6g}"
        )
    order = np.argsort(r)
    cdf = np.concatenate([[0.0], np.cumsum(p[order])])  # (K+1,) mass of the i lowest
    F_lt = cdf[np.searchsorted(r[order], r, side="left")]  # (K,) P(r < r_y)
    F_le = cdf[np.searchsorted(r[order], r, side="right")]  # (K,) P(r <= r_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(p > 0, p / (F_le - F_lt), 0.0)  # 1 unless r_y is tied
        probs = (np.clip(F_le, 0, 1) ** n - np.clip(F_lt, 0, 1) ** n) * share
    # p_y too small to move the float cdf (F_le = F_lt): the first-order term n F^(n-1) p_y
    return np.where(F_le > F_lt, probs, n * np.clip(F_le, 0, 1) ** (n - 1) * p)
