r"""Properties of a hand-written op: softmax over the last axis, forward and backward.

$$y_i = \frac{e^{x_i}}{\sum_j e^{x_j}}, \qquad \bar x = y \odot (\bar y - \langle \bar y, y\rangle)$$

The gradient is checked against minialign's and against central differences of the
function's own forward pass, with a non-constant upstream gradient $\bar y$ (a backward
that forgets to multiply by $\bar y$ fails).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ...autograd import functional as F
from ..context import Case
from ..properties import Property, Spec, agrees
from ..strategies import arrays, floats


@st.composite
def _cases(draw):
    shape = draw(st.sampled_from([(1,), (2,), (3,), (4,), (1, 3), (2, 3), (3, 2), (2, 4)]))
    return Case({"x": draw(arrays(shape, -5.0, 5.0))})


def _rows_sum_to_one(ctx, case):
    got = np.asarray(ctx.run(case).value)
    ctx.close(got.sum(axis=-1) if got.shape == case["x"].shape else got,
              np.ones(case["x"].shape[:-1]), "sum over the last axis")  # fmt: skip


@st.composite
def _shifted(draw):
    return draw(_cases()), draw(floats(-50.0, 50.0))


def _shift_test(ctx, drawn):
    case, c = drawn
    first = ctx.run(case)
    second = ctx.run(case.replace(x=case["x"] + c), f"x + {c:g}")
    ctx.close(second.value, first.value, "softmax", rtol=1e-6, atol=1e-9)


@st.composite
def _extreme(draw):
    case = draw(_cases())
    signs = draw(arrays(case["x"].shape, elements=st.sampled_from([-1.0, 0.0, 1.0])))
    return case.replace(x=1e4 * signs)


def _same(ctx, case):
    got, expected = ctx.run(case), ctx.ref(case)
    ctx.close(got.value, expected.value, "softmax")
    ctx.grads_close(got, expected.grads)


def _properties(ctx):
    return agrees(ctx, _cases(), "softmax (minialign.functional)") + [
        Property("each row sums to 1", _cases(), _rows_sum_to_one),
        Property("softmax(x + c) = softmax(x)", _shifted(), _shift_test),
        Property("logits of ±1e4: finite and exact (subtract the max first)", _extreme(), _same),
    ]


SPECS = {"softmax": Spec(lambda o: F.softmax, _properties)}
