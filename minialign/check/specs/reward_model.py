r"""Properties of the Bradley–Terry loss $\mathcal{L} = -\frac1B\sum_b \log\sigma(r^+_b - r^-_b)$."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case
from ..properties import Property, Spec, agrees
from ..strategies import arrays, floats, options


def _cases(ctx, lo=-5.0, hi=5.0, with_options=True):
    @st.composite
    def draw(draw):
        B = draw(st.integers(1, 4))
        args = {
            "chosen_rewards": draw(arrays((B,), lo, hi)),
            "rejected_rewards": draw(arrays((B,), lo, hi)),
        }
        choices = {"margin": arrays((B,), 0.0, 2.0), "center_coef": st.sampled_from([0.0, 0.01])}
        return Case(args, draw(options(ctx, choices)) if with_options else {})

    return draw()


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _tie(ctx, case):
    r = case["chosen_rewards"]
    case = case.replace(rejected_rewards=r.copy())
    got = ctx.run(case)
    ctx.close(got.value, np.log(2.0), "loss at r+ = r-")
    B = len(r)
    ctx.grads_close(
        got, {"chosen_rewards": np.full(B, -0.5 / B), "rejected_rewards": np.full(B, 0.5 / B)}
    )


def _closed_form(ctx, case):
    z = case["chosen_rewards"] - case["rejected_rewards"]
    got = ctx.run(case)
    ctx.close(got.value, np.mean(np.logaddexp(0.0, -z)), "loss")
    w = _sigmoid(-z) / len(z)  # dL/dr+ = -σ(-z)/B
    ctx.grads_close(got, {"chosen_rewards": -w, "rejected_rewards": w})


@st.composite
def _shift(draw, ctx):
    return draw(_cases(ctx, with_options=False)), draw(floats(-100.0, 100.0))


def _shift_test(ctx, drawn):
    case, c = drawn
    a = ctx.run(case)
    b = ctx.run(
        case.replace(
            chosen_rewards=case["chosen_rewards"] + c, rejected_rewards=case["rejected_rewards"] + c
        ),
        f"the same rewards + {c:g}",
    )
    ctx.close(b.value, a.value, "loss after the shift")


@st.composite
def _extreme(draw, ctx):
    B = draw(st.integers(1, 3))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=B, max_size=B)))
    return Case({"chosen_rewards": 1e4 * signs, "rejected_rewards": draw(arrays((B,), -1.0, 1.0))})


def _properties(ctx):
    return agrees(ctx, _cases(ctx), "bradley_terry_loss") + [
        Property(
            "equal scores: L = log 2, dL/dr+ = -1/(2B)", _cases(ctx, with_options=False), _tie
        ),
        Property(
            "closed form: L = mean log(1 + exp(-(r+ - r-))), dL/dr+ = -σ(r- - r+)/B",
            _cases(ctx, with_options=False),
            _closed_form,
        ),
        Property("adding one constant to every score changes nothing", _shift(ctx), _shift_test),
        Property(
            "score gaps of ±1e4: finite and exact (a stable log σ)", _extreme(ctx), _closed_form
        ),
    ]


SPECS = {"bradley_terry_loss": Spec(lambda opts: objectives.bradley_terry_loss, _properties)}
