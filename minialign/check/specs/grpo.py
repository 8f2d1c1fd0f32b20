r"""Properties of GRPO: the combined reward, group advantages and the clipped loss.

$$r_i = \lambda r_{\rm outcome} + (1-\lambda) r_{\rm process}, \qquad
  A_i = \frac{r_i - \mu}{\sigma}, \qquad
  -L^{\rm GRPO} = -\mathbb{E}_i\big[\min(\rho_i A_i,\ \mathrm{clip}(\rho_i, 1-\epsilon, 1+\epsilon) A_i)\big]$$

At ratio 1 the loss and its gradient have a closed form for every level and aggregation:
each token $t$ of output $i$ carries a weight $w_{it}$ (``"grpo"``: $1/(B L_i)$;
``"bnpo"``/``"dapo"``: $1/\sum_i L_i$; ``"dr_grpo"``: $1/(B\,T)$), the loss is
$-\sum_{it} w_{it} A_i$, and $\partial/\partial\log\pi_{it}$ is $-A_i w_{it}$ per token or
$-A_i \sum_{t'} w_{it'}$ per sequence (where $\partial\rho_i/\partial\log\pi_{it} = \rho_i = 1$).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case, Mismatch
from ..properties import Property, Spec, agrees
from ..strategies import arrays, floats, options, sizes

# -- combined_reward -------------------------------------------------------------


@st.composite
def _combined_cases(draw, lam=None, equal=False):
    G, N = draw(sizes(3, 4))
    outcome = draw(arrays((G, N), -3.0, 3.0))
    process = outcome.copy() if equal else draw(arrays((G, N), -3.0, 3.0))
    lam = draw(floats(0.0, 1.0)) if lam is None else lam
    return Case({"r_outcome": outcome, "r_process": process, "lam": lam})


def _expect(fn, label):
    def test(ctx, case):
        ctx.close(ctx.run(case).value, fn(case), label)

    return test


def _combined(ctx):
    return agrees(ctx, _combined_cases(), "combined_reward") + [
        Property("λ = 1: r = r_outcome", _combined_cases(1.0), _expect(lambda c: c["r_outcome"], "r")),
        Property("λ = 0: r = r_process", _combined_cases(0.0), _expect(lambda c: c["r_process"], "r")),
        Property("r_outcome = r_process: r = r_outcome for every λ", _combined_cases(equal=True),
                 _expect(lambda c: c["r_outcome"], "r")),
    ]  # fmt: skip


# -- group_advantages ------------------------------------------------------------

# rewards as a verifier gives them, and values whose float mean is not exact (0.1, 1/3)
REWARDS = st.one_of(st.sampled_from([0.0, 1.0, 0.1, 0.3, 1 / 3, -2.0, 5.0]), floats(-3.0, 3.0))


@st.composite
def _group_cases(draw, ctx, with_options=True, groups=None):
    G, N = groups or draw(st.tuples(st.integers(1, 3), st.integers(2, 6)))
    rewards = draw(arrays((G, N), elements=REWARDS))
    if draw(st.booleans()):  # make a group all equal: its advantages must be exactly 0
        rewards[draw(st.integers(0, G - 1))] = draw(REWARDS)
    for row in rewards:  # every other group gets σ >= 0.1, so the ε added to σ cannot matter
        if row.max() > row.min() and row.std() < 0.1:
            row[0] = row.max() + 1.0
    choices = {"ddof": st.sampled_from([0, 1]), "eps": st.sampled_from([1e-8, 1e-4]),
               "std_floor": st.sampled_from([0.0, 1e-3]), "scale": st.booleans()}  # fmt: skip
    return Case({"rewards": rewards}, draw(options(ctx, choices)) if with_options else {})


def _equal_groups(ctx, case):
    r = case["rewards"]
    equal = r.max(axis=-1) == r.min(axis=-1)
    got = _advantages(ctx, case)
    ctx.close(np.where(equal[:, None], got, 0.0), 0.0 * r, "A of an all-equal group", atol=1e-6)


def _sigma_eps(ctx, r):
    """σ (ddof of the conventions) per group, and the ε added to it."""
    eps = 1e-8 if ctx.options.eps is None else ctx.options.eps
    return r.std(axis=-1, ddof=ctx.options.ddof, keepdims=True), eps


def _advantages(ctx, case):
    got = np.asarray(ctx.run(case).value)
    if got.shape != case["rewards"].shape:
        raise Mismatch(f"advantages: expected shape {case['rewards'].shape}, got shape {got.shape}")
    return got


def _moments(ctx, case):
    r = case["rewards"]
    varied = r.max(axis=-1) > r.min(axis=-1) + 0.05
    got = _advantages(ctx, case)[varied]
    sigma, eps = _sigma_eps(ctx, r[varied])
    ddof = ctx.options.ddof
    ctx.close(got.mean(axis=-1), np.zeros(varied.sum()), "group mean of A", atol=1e-6)
    ctx.close(got.std(axis=-1, ddof=ddof), (sigma / (sigma + eps))[:, 0],
              f"group std of A (ddof={ddof})")  # fmt: skip


@st.composite
def _affine(draw, ctx):
    return draw(_group_cases(ctx, False)), draw(floats(0.5, 10.0)), draw(floats(-10.0, 10.0))


def _affine_test(ctx, drawn):
    """A(a r + b) = A(r) · a(σ + ε)/(aσ + ε): exactly A(r) when ε = 0."""
    case, a, b = drawn
    r = case["rewards"]
    first = _advantages(ctx, case)
    second = np.asarray(
        ctx.run(case.replace(rewards=a * r + b), f"rewards -> {a:g} r + {b:g}").value
    )
    varied = r.max(axis=-1) > r.min(axis=-1) + 0.05
    sigma, eps = _sigma_eps(ctx, r)
    expected = np.where(varied[:, None], first * a * (sigma + eps) / (a * sigma + eps), 0.0)
    got = np.where(varied[:, None], second, 0.0) if second.shape == r.shape else second
    ctx.close(got, expected, "advantages", rtol=1e-5, atol=1e-7)


def _pair(ctx, case):
    case = case.replace(rewards=np.array([[0.0, 1.0]]))
    sigma, eps = _sigma_eps(ctx, case["rewards"])
    a = 0.5 / (sigma[0, 0] + eps)
    ctx.close(ctx.run(case).value, np.array([[-a, a]]), "A")


def _group(ctx):
    sigma = "population σ" if ctx.options.ddof == 0 else "Bessel σ"
    a = "1" if ctx.options.ddof == 0 else "1/√2"
    pair = f"N = 2, rewards (0, 1): A = ∓0.5/(σ + ε) ≈ ∓{a} ({sigma})"
    return agrees(ctx, _group_cases(ctx), "group_advantages") + [
        Property("a group of equal rewards: A = 0 exactly (not NaN, not ±1)", _group_cases(ctx, False), _equal_groups),
        Property(f"every group: mean(A) = 0, std(A) = σ/(σ + ε) ≈ 1 ({sigma})",
                 _group_cases(ctx, False), _moments),
        Property("r -> a r + b (a > 0) changes nothing", _affine(ctx), _affine_test),
        Property(pair, _group_cases(ctx, False, groups=(1, 2)), _pair),
    ]  # fmt: skip


def _group_reference(opts):
    def group_advantages(rewards, eps=opts.eps, ddof=opts.ddof, std_floor=0.0, scale=True):
        eps = 1e-8 if eps is None else eps
        return objectives.group_advantages(rewards, eps, ddof, std_floor, scale)

    return group_advantages


SPECS = {
    "combined_reward": Spec(lambda o: objectives.combined_reward, _combined),
    "group_advantages": Spec(_group_reference, _group),
}
