r"""DPO: preference optimisation without a reward model or an RL loop.

Inputs are (B,) log-probabilities of whole responses, $\log\pi(y\mid x) = \sum_t \log\pi(y_t\mid x, y_{<t})$,
**summed** over response tokens (as the DPO paper and TRL's ``sigmoid`` loss do), for the
policy and the frozen reference, on the preferred $y^+$ and dispreferred $y^-$ of each pair.

The temperature $\tau$ of the equation sheet (eq. 12) is the DPO paper's $1/\beta$:
``tau = 1 / DPOConfig.beta``.
"""

from __future__ import annotations

import numpy as np

from ..autograd import functional as F
from ..autograd import ops
from ._checks import (
    finite_result,
    non_empty,
    number,
    one_of,
    positive,
    raw,
    reciprocal_fits,
    same_shape,
    tensor_arg,
)

LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust")


def dpo_delta(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps):
    r"""The log-ratio margin $\Delta_\theta$ per pair (eq. 11), a (B,) Tensor.

    $$\Delta_\theta(x,y^+,y^-) = \bigl[\log\pi_\theta(y^+\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^+\!\mid\!x)\bigr] -\bigl[\log\pi_\theta(y^-\!\mid\!x)-\log\pi_{\mathrm{ref}}(y^-\!\mid\!x)\bigr]$$

    Differentiable in the policy log-probs; the reference log-probs are constants.

    Notebook: notebooks/05_dpo.ipynb, §3 "The log-ratio margin".
    """
    return _delta(
        "dpo_delta",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
    )


def _delta(fn, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps):
    """`dpo_delta`, with errors naming the public function ``fn`` that was called."""
    named = dict(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    if len(same_shape(fn, **named)) != 1:
        raise ValueError(
            f"{fn}: policy_chosen_logps and the other log-probs must be (B,), "
            f"got shape {raw(policy_chosen_logps).shape}"
        )
    chosen, rejected, ref_chosen, ref_rejected = (tensor_arg(fn, k, v) for k, v in named.items())
    ref_chosen, ref_rejected = ref_chosen.data, ref_rejected.data  # constants
    return finite_result(fn, (chosen - ref_chosen) - (rejected - ref_rejected), **named)


def dpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    tau: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    reduction: str = "mean",
):
    r"""The DPO loss (eq. 12; minimised, as written there) and its TRL variants.

    $$L_{\mathrm{DPO}}(\theta) = -\mathbb{E}_{(x,y^+,y^-)}\!\Big[\log \sigma\!\bigl(\tfrac{1}{\tau}\,\Delta_\theta(x,y^+,y^-)\bigr)\Big]$$
    $$\sigma(z)=1/(1+e^{-z})$$

    ===============  =====  ============================================================
    Symbol           Shape  Meaning
    ===============  =====  ============================================================
    $\Delta_\theta$  (B,)   `dpo_delta` of the four (B,) log-prob arrays
    $\tau$           ()     ``tau`` > 0, the temperature; the DPO paper's $\beta = 1/\tau$
    $\mathbb{E}$                mean over pairs (``reduction="sum"``/``"none"`` for weights)
    ===============  =====  ============================================================

    Sign: $L_{\rm DPO}$ already has the minus; this returns it as is (note sign-1). Computed
    with ``F.logsigmoid``, finite for $\Delta = \pm 10^4$. Gradient:
    $\nabla L = -\frac{1}{\tau}\,\sigma(-\Delta/\tau)\,(\nabla\log\pi_\theta(y^+) - \nabla\log\pi_\theta(y^-))$
    — pairs the policy already ranks well get little weight.

    ``loss_type`` (TRL ``DPOConfig.loss_type``; $z = \Delta/\tau$, $\epsilon$ = ``label_smoothing``):
      * ``"sigmoid"``: $-(1-\epsilon)\log\sigma(z) - \epsilon\log\sigma(-z)$; with $\epsilon > 0$
        this is conservative DPO (cDPO, labels flipped with probability $\epsilon$). (Recent TRL
        ignores ``label_smoothing`` for ``"sigmoid"``; older TRL applied it as here.)
      * ``"robust"``: $\big(-(1-\epsilon)\log\sigma(z) + \epsilon\log\sigma(-z)\big)/(1-2\epsilon)$
        (Chowdhury et al. 2024), unbiased under label noise $\epsilon$.
      * ``"hinge"``: $\max(0, 1 - z)$ (SLiC, Zhao et al. 2023).
      * ``"ipo"``: $(\Delta - \tau/2)^2$ (Azar et al. 2023). IPO's regulariser $\tau_{\rm IPO}$ is
        TRL's ``beta`` $= 1/\tau$, so the target margin $1/(2\tau_{\rm IPO}) = \tau/2$ is finite.
        TRL averages IPO's log-probs over tokens; pass averaged log-probs to match it.

    An empty batch: ``"mean"`` is a ValueError (a mean over no pair), ``"sum"`` is 0 (the
    empty sum), ``"none"`` an empty Tensor. A loss too large for the dtype is a ValueError.

    Notebook: notebooks/05_dpo.ipynb, §2 "Z cancels: from Bradley–Terry to the DPO loss"
    (the derivation), §4 "The DPO loss", §8 "One DPO step by hand" and
    §10 "IPO: a margin that stops growing";
    notebooks/07_tabular_exact.ipynb, §7 "DPO on Bradley–Terry preferences".
    """
    fn = "dpo_loss"
    positive(fn, "tau", tau)
    one_of(fn, "loss_type", loss_type, LOSS_TYPES)
    one_of(fn, "reduction", reduction, ("mean", "sum", "none"))
    if not 0.0 <= number(fn, "label_smoothing", label_smoothing) < 0.5:
        raise ValueError(f"{fn}: label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    delta = _delta(
        fn, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    reciprocal_fits(fn, "tau", tau, delta.dtype)
    z = delta / tau  # (B,) the paper's β·Δ
    eps = label_smoothing
    if loss_type == "sigmoid":
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
    elif loss_type == "robust":
        losses = (-(1 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1 - 2 * eps)
    elif loss_type == "hinge":
        losses = ops.relu(1.0 - z)
    else:  # ipo
        losses = (delta - tau / 2) ** 2
    if reduction == "mean":
        non_empty(fn, "policy_chosen_logps", losses.size)
    loss = losses if reduction == "none" else losses.sum() if reduction == "sum" else losses.mean()
    return finite_result(fn, loss, tau=tau, delta=delta)


def implicit_rewards(
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, tau: float
) -> dict[str, float]:
    r"""DPO's implicit rewards $\hat r(x, y) = \frac{1}{\tau}(\log\pi_\theta(y|x) - \log\pi_{\rm ref}(y|x))$.

    Returns batch means as floats: ``chosen``, ``rejected``, ``margin`` ($=\Delta/\tau$) and
    ``accuracy`` (fraction with $\hat r^+ > \hat r^-$), TRL's ``rewards/chosen``,
    ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies``. Only the margin is
    trained: ``chosen`` may fall while DPO works. An empty batch is a ValueError.

    Notebook: notebooks/05_dpo.ipynb, §7 "Implicit rewards".
    """
    fn = "implicit_rewards"
    positive(fn, "tau", tau)
    _delta(fn, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    non_empty(fn, "policy_chosen_logps", raw(policy_chosen_logps).size)
    reciprocal_fits(fn, "tau", tau, np.result_type(raw(policy_chosen_logps), np.float32))
    chosen = (raw(policy_chosen_logps) - raw(ref_chosen_logps)) / tau
    rejected = (raw(policy_rejected_logps) - raw(ref_rejected_logps)) / tau
    means = {
        "chosen": float(np.mean(chosen)),
        "rejected": float(np.mean(rejected)),
        "margin": float(np.mean(chosen - rejected)),
        "accuracy": float(np.mean(chosen > rejected)),
    }
    finite_result(
        fn,
        list(means.values()),
        tau=tau,
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
    )
    return means
