r"""Properties of returns, advantages and whitening (targets: values only, no gradient).

Closed forms, each computed here by the plainest loop over the valid positions of a row
(the value is 0 after the last token, the episode terminates):

$$G_t = \sum_{t' \ge t} \gamma^{t'-t} r_{t'}, \qquad \hat A_t = G_t - V_t, \qquad
  \delta_t = r_t + \gamma V_{t+1} - V_t, \qquad A^{\lambda=1}_t = \hat A_t, \quad A^{\lambda=0}_t = \delta_t$$
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case
from ..properties import Property, Spec, agrees, padding
from ..strategies import arrays, floats, sizes, with_mask

UNIT = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 1.0]), floats(0.0, 1.0))
ARGS = {
    "discounted_returns": ("rewards", "gamma"),
    "mc_advantages": ("rewards", "values", "gamma"),
    "gae_advantages": ("rewards", "values", "gamma", "lam"),
}


@st.composite
def rollout(draw, ctx, truncation=True, **fixed):
    """rewards, values (B, T) in [-5, 5], gamma, lam, a mask and truncation if accepted."""
    B, T = draw(sizes(3, 5))
    mask = draw(with_mask(ctx, B, T))
    drawn = {
        "rewards": draw(arrays((B, T), -5.0, 5.0)),
        "values": draw(arrays((B, T), -5.0, 5.0)),
        "gamma": draw(UNIT),
        "lam": draw(UNIT),
    }
    drawn.update(fixed)
    kwargs = {} if mask is None else {"mask": mask}
    if truncation and ctx.accepts("truncated") and ctx.accepts("bootstrap_values"):
        kwargs["truncated"] = np.array(draw(st.lists(st.booleans(), min_size=B, max_size=B)))
        kwargs["bootstrap_values"] = draw(arrays((B,), -5.0, 5.0))
    return Case({k: drawn[k] for k in ARGS[ctx.entry.name]}, kwargs)


def returns_by_loop(r, gamma, mask):
    """$G_t = \\sum_{t' \\ge t} \\gamma^{t'-t} r_{t'}$ over each row's valid positions."""
    m = np.ones_like(r) if mask is None else mask
    G = np.zeros_like(r)
    for b in range(r.shape[0]):
        n = int(m[b].sum())
        for t in range(n):
            G[b, t] = sum(gamma ** (tp - t) * r[b, tp] for tp in range(t, n))
    return G


def td_errors(r, v, gamma, mask):
    """$\\delta_t = r_t + \\gamma V_{t+1} - V_t$ with $V = 0$ after each row's last token."""
    m = np.ones_like(r) if mask is None else mask
    v = v * m
    v_next = np.concatenate([v[:, 1:], np.zeros_like(v[:, :1])], axis=1)
    return (r + gamma * v_next - v) * m


def _valid(x, mask):
    return x if mask is None else np.where(mask > 0, x, 0.0)


def _expect(fn, label):
    """A test: the function's output on valid positions equals ``fn(case)``."""

    def test(ctx, case):
        got = ctx.run(case).value
        expected = fn(case)
        if isinstance(expected, tuple):
            got = tuple(_valid(g, case.mask) for g in got) if isinstance(got, tuple) else got
        else:
            got = _valid(got, case.mask) if not isinstance(got, tuple) else got
        ctx.close(got, expected, label)

    return test


def _returns(ctx):
    mc = returns_by_loop
    props = [
        Property("γ = 0: G_t = r_t", rollout(ctx, False, gamma=0.0),
                 _expect(lambda c: _valid(c["rewards"], c.mask), "G")),
        Property("γ = 1: G_t = Σ_{t'≥t} r_t' (a reversed cumulative sum)", rollout(ctx, False, gamma=1.0),
                 _expect(lambda c: mc(c["rewards"], 1.0, c.mask), "G")),
        Property("G_t = Σ_{t'≥t} γ^(t'-t) r_t' (the sum read literally)", rollout(ctx, False),
                 _expect(lambda c: mc(c["rewards"], c["gamma"], c.mask), "G")),
    ]  # fmt: skip
    return _common(ctx, props, ("rewards",))


def _mc(ctx):
    mc = returns_by_loop
    props = [
        Property("γ = 0: Â_t = r_t - V_t", rollout(ctx, False, gamma=0.0),
                 _expect(lambda c: _valid(c["rewards"] - c["values"], c.mask), "Â")),
        Property("Â_t = Σ_{t'≥t} γ^(t'-t) r_t' - V_t (the seed's Monte-Carlo advantage)", rollout(ctx, False),
                 _expect(lambda c: _valid(mc(c["rewards"], c["gamma"], c.mask) - c["values"], c.mask), "Â")),
    ]  # fmt: skip
    return _common(ctx, props, ("rewards", "values"))


def _gae_mc(c):
    A = _valid(returns_by_loop(c["rewards"], c["gamma"], c.mask) - c["values"], c.mask)
    return A, _valid(A + c["values"], c.mask)


def _gae_td(c):
    A = td_errors(c["rewards"], c["values"], c["gamma"], c.mask)
    return A, _valid(A + c["values"], c.mask)


def _gae(ctx):
    props = [
        Property("λ = 1: A = the Monte-Carlo advantage Σ γ^(t'-t) r_t' - V_t, R = A + V",
                 rollout(ctx, False, lam=1.0), _expect(_gae_mc, "value")),
        Property("λ = 0: A_t = δ_t = r_t + γ V_{t+1} - V_t (V = 0 after the last token), R = A + V",
                 rollout(ctx, False, lam=0.0), _expect(_gae_td, "value")),
    ]  # fmt: skip
    return _common(ctx, props, ("rewards", "values"))


def _common(ctx, props, token_args):
    cases = rollout(ctx)
    out = agrees(ctx, cases, ctx.entry.name) + props
    if ctx.accepts("mask"):
        out.append(padding(ctx, cases, token_args))
    return out


# -- whiten ----------------------------------------------------------------


@st.composite
def _whiten_cases(draw, ctx, with_options=True):
    B, T = draw(sizes(3, 5, min_t=2))
    x = draw(arrays((B, T), -5.0, 5.0))
    mask = draw(with_mask(ctx, B, T, empty_rows=True))
    if mask is not None:
        mask[0, :2] = 1.0  # at least two valid positions ...
    x[0, 0] = x[0, 1] + 3.0  # ... 3 apart: a clear spread, so ε cannot matter
    kwargs = {} if mask is None else {"mask": mask}
    if with_options:
        for name, s in {"shift_mean": st.booleans(), "ddof": st.sampled_from([0, 1])}.items():
            if ctx.accepts(name):
                kwargs[name] = draw(s)
    return Case({"x": x}, kwargs)


def _whiten_moments(ctx, case):
    got = _valid(np.asarray(ctx.run(case).value), case.mask)
    m = np.ones_like(got) if case.mask is None else case.mask
    n = m.sum()
    mean = (got * m).sum() / n
    std = np.sqrt((((got - mean) * m) ** 2).sum() / (n - ctx.options.ddof))
    ctx.close(mean, 0.0, "mean over the valid positions", atol=1e-6)
    ctx.close(std, 1.0, f"std (ddof={ctx.options.ddof}) over the valid positions", rtol=1e-5)


@st.composite
def _affine(draw, ctx):
    return draw(_whiten_cases(ctx, False)), draw(floats(0.5, 10.0)), draw(floats(-10.0, 10.0))


def _affine_test(ctx, drawn):
    case, a, b = drawn
    first = ctx.run(case)
    second = ctx.run(case.replace(x=a * case["x"] + b), f"x -> {a:g} x + {b:g}")
    ctx.close(
        _valid(second.value, case.mask), _valid(first.value, case.mask), "whitened", rtol=1e-5
    )


def _whiten(ctx):
    props = agrees(ctx, _whiten_cases(ctx), "whiten") + [
        Property("mean 0 and std 1 over the valid positions", _whiten_cases(ctx, False), _whiten_moments),
        Property("x -> a x + b (a > 0) changes nothing", _affine(ctx), _affine_test),
    ]  # fmt: skip
    if ctx.accepts("mask"):
        props.append(padding(ctx, _whiten_cases(ctx), ("x",)))
    return props


def _whiten_reference(opts):
    def whiten(x, mask=None, shift_mean=True, ddof=opts.ddof, eps=opts.eps):
        eps = 1e-8 if eps is None else eps
        return objectives.whiten(x, mask, shift_mean=shift_mean, ddof=ddof, eps=eps)

    return whiten


SPECS = {
    "discounted_returns": Spec(lambda o: objectives.discounted_returns, _returns),
    "mc_advantages": Spec(lambda o: objectives.mc_advantages, _mc),
    "gae_advantages": Spec(lambda o: objectives.gae_advantages, _gae),
    "whiten": Spec(_whiten_reference, _whiten),
}
