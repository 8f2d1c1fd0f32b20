r"""Properties of the DPO loss $L = -\mathbb{E}[\log\sigma(\Delta/\tau)]$.

$\Delta = [\log\pi(y^+) - \log\pi_{\rm ref}(y^+)] - [\log\pi(y^-) - \log\pi_{\rm ref}(y^-)]$;
$\partial L/\partial\log\pi(y^+) = -\sigma(-\Delta/\tau)/(\tau B) = -\partial L/\partial\log\pi(y^-)$.
With ``dpo_beta=True`` the function receives TRL's $\beta = 1/\tau$ as its fifth argument.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case
from ..properties import Property, Spec, agrees
from ..strategies import arrays, floats, options

NAMES = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
TAUS = st.sampled_from([0.1, 0.5, 1.0, 2.0])


@st.composite
def _draw(draw, ctx, with_options=True):
    B = draw(st.integers(1, 4))
    args = {name: draw(arrays((B,), -30.0, 0.0)) for name in NAMES}
    args["tau"] = draw(TAUS)
    kwargs = {}
    if with_options:
        kwargs = draw(
            options(ctx, {"loss_type": st.sampled_from(["sigmoid", "hinge", "ipo", "robust"])})
        )
        if ctx.accepts("label_smoothing") and kwargs.get("loss_type", "sigmoid") in (
            "sigmoid",
            "robust",
        ):
            kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.1]))
    return Case(args, kwargs)


def _delta(case):
    return (case[NAMES[0]] - case[NAMES[2]]) - (case[NAMES[1]] - case[NAMES[3]])


def cases(ctx, with_options=True):
    def away_from_hinge(case):
        return case.kwargs.get("loss_type") != "hinge" or np.all(
            abs(_delta(case) / case["tau"] - 1) > 1e-4
        )

    return _draw(ctx, with_options).filter(away_from_hinge)


def _closed_form(ctx, case):
    z = _delta(case) / case["tau"]
    got = ctx.run(case)
    ctx.close(got.value, np.mean(np.logaddexp(0.0, -z)), "L_DPO")
    w = np.exp(-np.logaddexp(0.0, z)) / (case["tau"] * len(z))  # σ(-z)/(τB)
    ctx.grads_close(got, {NAMES[0]: -w, NAMES[1]: w})


@st.composite
def _zero_margin(draw, ctx):
    case = draw(cases(ctx, with_options=False))
    return case.replace(**{NAMES[2]: case[NAMES[0]].copy(), NAMES[3]: case[NAMES[1]].copy()})


@st.composite
def _shifted(draw, ctx):
    return draw(cases(ctx)), draw(floats(-20.0, 20.0)), draw(floats(-20.0, 20.0))


def _shift_test(ctx, drawn):
    case, a, b = drawn
    pc, pr, rc, rr = (case[n] for n in NAMES)
    first = ctx.run(case)
    changed = dict(zip(NAMES, (pc + a, pr + b, rc + a, rr + b)))
    second = ctx.run(case.replace(**changed), f"log-probs of y+ shifted by {a:g}, of y- by {b:g}")
    ctx.close(second.value, first.value, "loss", rtol=1e-6, atol=1e-8)


@st.composite
def _extreme(draw, ctx):
    case = draw(cases(ctx, with_options=False))
    B = len(case[NAMES[0]])
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=B, max_size=B)))
    zero = np.zeros(B)
    return case.replace(**dict(zip(NAMES, (1e4 * case["tau"] * signs, zero, zero, zero))))


def _properties(ctx):
    return agrees(ctx, cases(ctx), "dpo_loss") + [
        Property("Δ = 0 (policy = reference): L = log 2", _zero_margin(ctx), _closed_form),
        Property("L = mean log(1 + exp(-Δ/τ)), dL/dlog π(y+) = -σ(-Δ/τ)/(τB) = -dL/dlog π(y-)",
                 cases(ctx, with_options=False), _closed_form),
        Property("adding a constant to the log-probs of y+ (or y-) under both policies changes nothing",
                 _shifted(ctx), _shift_test),
        Property("margins Δ/τ of ±1e4: finite and exact (a stable log σ)", _extreme(ctx), _closed_form),
    ]  # fmt: skip


def _reference(opts):
    def dpo_loss(pc, pr, rc, rr, tau, loss_type="sigmoid", label_smoothing=0.0):
        return objectives.dpo_loss(pc, pr, rc, rr, tau, loss_type, label_smoothing)

    return dpo_loss


def _to_user(opts):
    if not opts.dpo_beta:
        return None

    def to_beta(case):  # the same inputs, with β = 1/τ in place of τ
        args = {
            ("beta" if k == "tau" else k): (1.0 / v if k == "tau" else v)
            for k, v in case.args.items()
        }
        return Case(args, case.kwargs)

    return to_beta


SPECS = {"dpo_loss": Spec(_reference, _properties, _to_user)}
