r"""Properties of PPO's ratio, clipped policy loss and value loss.

$$r = e^{\log\pi_\theta - \log\pi_{\theta_{\rm old}}}, \qquad
  L^{\rm CLIP} = -\mathbb{E}\big[\min(r\hat A,\ \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)\hat A)\big], \qquad
  L^V = \tfrac12\mathbb{E}\big[\max((V-R)^2, (\mathrm{clip}(V, V_{\rm old}\pm\epsilon_v) - R)^2)\big]$$

$\mathbb{E}$ is the mean over every valid token of the batch. Random inputs keep every ratio
at least 1e-4 away from $1 \pm \epsilon$ (and $V$ from $V_{\rm old} \pm \epsilon_v$), where the
gradient jumps and implementations may legitimately differ.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case
from ..properties import Property, Spec, agrees, masked_mean, padding
from ..strategies import arrays, options, token_case

EPSILONS = st.sampled_from([0.1, 0.2, 0.3])
KINK = 1e-4


def _ones(case):
    """The mask, or all ones (shaped like the first argument) if the function takes none."""
    return np.ones_like(next(iter(case.args.values()))) if case.mask is None else case.mask


def _far(ctx, case):
    """The same log-ratios, with log-probs near -1e4 (a quotient of probabilities is 0/0)."""
    far = case.replace(logp_new=case["logp_new"] - 1e4, logp_old=case["logp_old"] - 1e4)
    got, expected = ctx.run(far), ctx.ref(case)
    m = _ones(case)
    value = np.asarray(got.value)
    value = value * m if value.shape == m.shape else value
    ev = np.asarray(expected.value)
    ctx.close(value, ev * m if ev.shape == m.shape else ev, "value", rtol=1e-5, atol=1e-7)
    ctx.grads_close(got, expected.grads, rtol=1e-5, atol=1e-7)


# -- probability_ratio ---------------------------------------------------------


def _ratio_cases(ctx):
    return token_case(ctx, ("logp_new", "logp_old"), log_ratio=(-3.0, 3.0))


def _ratio_one(ctx, case):
    case = case.replace(logp_new=case["logp_old"].copy())
    got = ctx.run(case)
    m = _ones(case)
    ctx.close(
        np.asarray(got.value) * m if np.shape(got.value) == m.shape else got.value, m, "ratio"
    )
    if got.upstream is not None:
        ctx.grads_close(got, {"logp_new": got.upstream * m})  # dr/dlogp_new = r = 1


def _ratio(ctx):
    cases = _ratio_cases(ctx)
    props = agrees(ctx, cases, "probability_ratio") + [
        Property("logp_new = logp_old: ratio 1 and dr/dlogp_new = 1", cases, _ratio_one),
        Property("log-probs near -1e4: the ratio comes from the log-ratio", cases, _far),
    ]
    if ctx.accepts("mask"):
        props.append(padding(ctx, cases, ("logp_new", "logp_old")))
    return props


# -- ppo_clip_loss ---------------------------------------------------------------


def _away_from_kinks(case):
    r = np.exp(case["logp_new"] - case["logp_old"])
    eps = case["epsilon"]
    return bool(np.all(np.minimum(abs(r - 1 - eps), abs(r - 1 + eps)) > KINK))


@st.composite
def _ppo_cases(draw, ctx, log_ratio=(-1.0, 1.0)):
    advantages = {"advantages": lambda B, T: arrays((B, T), -3.0, 3.0)}
    case = draw(token_case(ctx, ("logp_new", "logp_old"), log_ratio, advantages))
    return Case({**case.args, "epsilon": draw(EPSILONS)}, case.kwargs)


def ppo_cases(ctx, log_ratio=(-1.0, 1.0)):
    return _ppo_cases(ctx, log_ratio).filter(_away_from_kinks)


def _clip_closed_form(ctx, case):
    """The equation written out in NumPy, with zero gradient where the clip binds."""
    r = np.exp(case["logp_new"] - case["logp_old"])
    A, eps, m = case["advantages"], case["epsilon"], _ones(case)
    surrogate = np.minimum(r * A, np.clip(r, 1 - eps, 1 + eps) * A)
    binds = ((r > 1 + eps) & (A > 0)) | ((r < 1 - eps) & (A < 0))
    got = ctx.run(case)
    ctx.close(got.value, -masked_mean(surrogate, m), "L^CLIP")
    ctx.grads_close(got, {"logp_new": np.where(binds, 0.0, -r * A) * m / m.sum()})


def _ratio_one_loss(ctx, case):
    case = case.replace(logp_new=case["logp_old"].copy())
    A, m = case["advantages"], _ones(case)
    got = ctx.run(case)
    ctx.close(got.value, -masked_mean(A, m), "L^CLIP at ratio 1")
    ctx.grads_close(got, {"logp_new": -A * m / m.sum()})


def _ppo(ctx):
    props = agrees(ctx, ppo_cases(ctx), "ppo_clip_loss") + [
        Property("ratio 1: L = -E[Â], dL/dlogp_new = -Â/n", ppo_cases(ctx), _ratio_one_loss),
        Property("ratio inside [1-ε, 1+ε]: L = -E[r Â], dL/dlogp_new = -r Â/n",
                 ppo_cases(ctx, (-0.09, 0.09)), _clip_closed_form),
        Property("L = -E[min(r Â, clip(r, 1-ε, 1+ε) Â)], zero gradient where the clip binds",
                 ppo_cases(ctx), _clip_closed_form),
        Property("log-probs near -1e4: only the log-ratios matter", ppo_cases(ctx), _far),
    ]  # fmt: skip
    if ctx.accepts("mask"):
        props.append(padding(ctx, ppo_cases(ctx), ("logp_new", "logp_old", "advantages")))
    return props


# -- value_loss ------------------------------------------------------------------


def _clip_of(ctx, case):
    return case.kwargs.get("clip", ctx.options.value_clip)


@st.composite
def _value_cases(draw, ctx, with_options=True):
    extra = {"returns": lambda B, T: arrays((B, T), -3.0, 3.0)}
    case = draw(token_case(ctx, ("values", "old_values"), (-1.0, 1.0), extra))
    if with_options:
        case = case.replace(**draw(options(ctx, {"clip": st.sampled_from([None, 0.2, 0.5])})))
    return case


def value_cases(ctx, with_options=True):
    def away(case):
        c = _clip_of(ctx, case)
        if c is None:
            return True
        V, old, R = case["values"], case["old_values"], case["returns"]
        clipped = old + np.clip(V - old, -c, c)
        outside = abs(V - old) > c
        tie = abs((V - R) ** 2 - (clipped - R) ** 2) <= KINK
        return bool(np.all(abs(abs(V - old) - c) > KINK) and not np.any(outside & tie))

    return _value_cases(ctx, with_options).filter(away)


def _value_closed_form(ctx, case):
    V, old, R, m = case["values"], case["old_values"], case["returns"], _ones(case)
    c = _clip_of(ctx, case)
    err, grad = (V - R) ** 2, V - R
    if c is not None:
        clipped = old + np.clip(V - old, -c, c)
        larger = (clipped - R) ** 2 > err
        err = np.maximum(err, (clipped - R) ** 2)
        grad = np.where(larger, 0.0, grad)  # the clipped branch has no gradient outside V_old ± ε_v
    got = ctx.run(case)
    ctx.close(got.value, 0.5 * masked_mean(err, m), "L^V")
    ctx.grads_close(got, {"values": grad * m / m.sum()})


@st.composite
def _unclipped(draw, ctx):
    case = draw(value_cases(ctx, with_options=False))
    return case.replace(old_values=case["values"].copy())


def _value(ctx):
    props = agrees(ctx, value_cases(ctx), "value_loss") + [
        Property(
            "V = V_old: L = ½E[(V - R)²], dL/dV = (V - R)/n", _unclipped(ctx), _value_closed_form
        ),
    ]
    if ctx.accepts("clip") or ctx.options.value_clip is not None:
        name = "L = ½E[max((V-R)², (clip(V, V_old ± ε_v) - R)²)], zero gradient where clipped wins"
        props.append(Property(name, value_cases(ctx), _value_closed_form))
    if ctx.accepts("mask"):
        props.append(padding(ctx, value_cases(ctx), ("values", "old_values", "returns")))
    return props


def _value_reference(opts):
    def value_loss(values, old_values, returns, clip=opts.value_clip, mask=None):
        return objectives.value_loss(values, old_values, returns, clip, mask)

    return value_loss


SPECS = {
    "probability_ratio": Spec(lambda o: objectives.probability_ratio, _ratio),
    "ppo_clip_loss": Spec(lambda o: objectives.ppo_clip_loss, _ppo),
    "value_loss": Spec(_value_reference, _value),
}
