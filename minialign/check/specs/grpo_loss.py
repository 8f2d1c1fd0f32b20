r"""Properties of the GRPO loss, $-L^{\rm GRPO}$ plus an optional $\beta\,k_3$ term.

Inputs are per-token log-probs (B, T) of B outputs (groups flattened), advantages (B,).
Every token $t$ of output $i$ carries the weight $w_{it}$ of the aggregation (``"grpo"``:
$1/(B L_i)$; ``"bnpo"``, ``"dapo"``: $1/\sum_i L_i$; ``"dr_grpo"``: $1/(B T)$), so that

$$\text{token level: } \mathcal{L} = -\sum_{i,t} w_{it} \min(r_{it} A_i, \mathrm{clip}(r_{it}) A_i), \qquad
  \text{sequence level: } \mathcal{L} = -\sum_i W_i \min(\rho_i A_i, \mathrm{clip}(\rho_i) A_i)$$

with $r_{it} = e^{\log\pi_{it} - \log\pi^{\rm old}_{it}}$, $\rho_i = e^{\sum_t(\log\pi_{it} - \log\pi^{\rm old}_{it})}$
(the seed's ratio of whole outputs) and $W_i = \sum_t w_{it}$. The gradient is 0 where the
clip binds and $-r A w$ (token) or $-\rho_i A_i W_i$ (sequence) elsewhere.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case
from ..properties import Property, Spec, agrees, padding
from ..strategies import arrays, token_case

EPSILONS = st.sampled_from([0.1, 0.2, 0.3])
KINK = 1e-4


def _setting(ctx, case, name):
    return case.kwargs.get(name, getattr(ctx.options, name))


def _ones(case):
    return np.ones_like(case["logp_new"]) if case.mask is None else case.mask


@st.composite
def _cases(draw, ctx, log_ratio=(-0.5, 0.5), with_options=True):
    case = draw(token_case(ctx, ("logp_new", "logp_old"), log_ratio, empty_rows=False))
    B, T = case["logp_new"].shape
    args = {**case.args, "advantages": draw(arrays((B,), -2.0, 2.0)), "epsilon": draw(EPSILONS)}
    kwargs = dict(case.kwargs)
    if with_options:
        choices = {
            "level": st.sampled_from(["sequence", "token"]),
            "aggregation": st.sampled_from(["grpo", "bnpo", "dr_grpo", "dapo"]),
            "epsilon_high": st.sampled_from([None, 0.28]),
            "max_completion_length": st.sampled_from([None, T + 3]),
        }
        for name, s in choices.items():
            if ctx.accepts(name) and (value := draw(s)) is not None:
                kwargs[name] = value
        if ctx.accepts("beta") and ctx.accepts("logp_ref") and draw(st.booleans()):
            kwargs["beta"] = draw(st.sampled_from([0.04, 0.1]))
            kwargs["logp_ref"] = args["logp_old"] + draw(arrays((B, T), -0.5, 0.5))
    return Case(args, kwargs)


def _ratios(ctx, case):
    """(ratio per token or per output broadcast over tokens, its level)."""
    log_ratio = (case["logp_new"] - case["logp_old"]) * _ones(case)
    if _setting(ctx, case, "level") == "sequence":
        log_ratio = np.broadcast_to(log_ratio.sum(axis=-1, keepdims=True), log_ratio.shape)
    return np.exp(log_ratio)


def cases(ctx, log_ratio=(-0.5, 0.5), with_options=True):
    def away(case):
        r = _ratios(ctx, case)
        lo = 1 - case["epsilon"]
        hi = 1 + (case.kwargs.get("epsilon_high") or case["epsilon"])
        return bool(np.all(np.minimum(abs(r - lo), abs(r - hi)) > KINK))

    return _cases(ctx, log_ratio, with_options).filter(away)


def _weights(ctx, case):
    """w_it of the aggregation in effect (0 at padding)."""
    m = _ones(case)
    B, T = m.shape
    aggregation = _setting(ctx, case, "aggregation")
    if aggregation == "grpo":
        return m / (B * np.maximum(m.sum(axis=-1, keepdims=True), 1))
    if aggregation in ("bnpo", "dapo"):
        return m / m.sum()
    return m / (B * (case.kwargs.get("max_completion_length") or T))


def _closed_form(ctx, case):
    r, w = _ratios(ctx, case), _weights(ctx, case)
    A = case["advantages"][:, None]
    eps = case["epsilon"]
    eps_high = case.kwargs.get("epsilon_high") or eps
    surrogate = np.minimum(r * A, np.clip(r, 1 - eps, 1 + eps_high) * A)
    binds = ((r > 1 + eps_high) & (A > 0)) | ((r < 1 - eps) & (A < 0))
    grad = np.where(binds, 0.0, -r * A) * w  # token level: d/dlogp_it of -w_it r_it A_i
    if _setting(ctx, case, "level") == "sequence":  # every token of output i moves ρ_i
        grad = grad.sum(axis=-1, keepdims=True) * _ones(case)
    got = ctx.run(case)
    ctx.close(got.value, -np.sum(w * surrogate), "loss")
    ctx.grads_close(got, {"logp_new": grad})


@st.composite
def _ratio_one(draw, ctx):
    case = draw(cases(ctx, with_options=False))
    return case.replace(logp_new=case["logp_old"].copy())


@st.composite
def _ratio_one_kl(draw, ctx):
    case = draw(_ratio_one(ctx))
    B, T = case["logp_new"].shape
    ref = case["logp_old"] + draw(arrays((B, T), -0.5, 0.5))
    return case.replace(beta=draw(st.sampled_from([0.04, 0.1])), logp_ref=ref)


def _kl_at_ratio_one(ctx, case):
    x = case["logp_ref"] - case["logp_new"]
    k3 = np.expm1(x) - x
    w = _weights(ctx, case)
    expected = np.sum(w * (-case["advantages"][:, None] + case["beta"] * k3))
    ctx.close(ctx.run(case).value, expected, "loss")


def _properties(ctx):
    props = agrees(ctx, cases(ctx), "grpo_loss") + [
        Property("ratio 1: loss = -Σ w A (0 for centred A) and its closed-form gradient",
                 _ratio_one(ctx), _closed_form),
        Property("loss = -Σ w min(ρA, clip(ρ, 1-ε, 1+ε) A), zero gradient where the clip binds",
                 cases(ctx, (-1.0, 1.0), with_options=False), _closed_form),
    ]  # fmt: skip
    if ctx.accepts("beta") and ctx.accepts("logp_ref"):
        name = "β > 0 at ratio 1: loss = Σ w (-A + β k3), k3 = (ρ_ref - 1) - log ρ_ref"
        props.append(Property(name, _ratio_one_kl(ctx), _kl_at_ratio_one))
    if ctx.accepts("mask"):
        props += _padding(ctx)
    return props


def _padding(ctx):
    """dr_grpo divides by T: padding changes it unless max_completion_length is fixed."""

    def fixed_length(case):
        if (
            _setting(ctx, case, "aggregation") != "dr_grpo"
            or "max_completion_length" in case.kwargs
        ):
            return case
        if not ctx.accepts("max_completion_length"):
            return None
        return case.replace(max_completion_length=case["logp_new"].shape[1])

    if not (ctx.accepts("aggregation") or ctx.accepts("max_completion_length")):
        if ctx.options.aggregation == "dr_grpo":
            return []
    padded = cases(ctx).map(fixed_length).filter(lambda c: c is not None)
    return [padding(ctx, padded, ("logp_new", "logp_old", "logp_ref"))]


def _reference(opts):
    def grpo_loss(logp_new, logp_old, advantages, epsilon, mask=None, beta=0.0, logp_ref=None,
                  level=opts.level, aggregation=opts.aggregation, max_completion_length=None,
                  epsilon_high=None):  # fmt: skip
        return objectives.grpo_loss(logp_new, logp_old, advantages, epsilon, mask, beta,
                                    logp_ref, level, aggregation, max_completion_length,
                                    epsilon_high)  # fmt: skip

    return grpo_loss


SPECS = {"grpo_loss": Spec(_reference, _properties)}
