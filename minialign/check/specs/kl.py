r"""Properties of the KL estimators and of PPO's KL-penalised per-token rewards.

With $\log\rho = \log\pi_{\rm ref}(y) - \log\pi_\theta(y)$ and samples $y \sim \pi_\theta$:
$k_1 = -\log\rho$, $k_2 = \tfrac12(\log\rho)^2$, $k_3 = (\rho - 1) - \log\rho$. Over a whole
categorical distribution the expectation of k1 and k3 is exactly
$\mathrm{KL}(\pi\|\pi_{\rm ref}) = \sum_y \pi(y)(\log\pi(y) - \log\pi_{\rm ref}(y))$.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import objectives
from ..context import Case, Mismatch
from ..properties import Property, Spec, agrees, padding
from ..strategies import arrays, floats, options, sizes, token_case, with_mask

ESTIMATORS = st.sampled_from(["k1", "k2", "k3"])


def _raw(x):
    return np.asarray(getattr(x, "data", x), dtype=np.float64)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@st.composite
def _kl_cases(draw, ctx, with_options=True, estimators=ESTIMATORS):
    case = draw(token_case(ctx, ("logp", "logp_ref"), log_ratio=(-4.0, 4.0)))
    if with_options and ctx.accepts("estimator"):
        case = case.replace(estimator=draw(estimators))
    return case


def _equal(ctx, case):
    case = case.replace(logp_ref=case["logp"].copy())
    got = ctx.run(case)
    m = 1.0 if case.mask is None else case.mask
    ctx.close(np.asarray(got.value) * m, np.zeros_like(case["logp"]), "estimate at π = π_ref")
    ctx.grads_close(got, ctx.ref(case).grads)


@st.composite
def _categorical(draw, ctx, estimators):
    K = draw(st.integers(2, 6))
    logp = _log_softmax(draw(arrays((1, K), -3.0, 3.0)))
    logq = _log_softmax(draw(arrays((1, K), -3.0, 3.0)))
    kwargs = {"mask": np.ones((1, K))} if ctx.accepts("mask") else {}
    if ctx.accepts("estimator"):
        kwargs["estimator"] = draw(st.sampled_from(estimators))
    return Case({"logp": logp, "logp_ref": logq}, kwargs)


def _unbiased(ctx, case):
    p = np.exp(case["logp"])
    exact = float(np.sum(p * (case["logp"] - case["logp_ref"])))
    got = np.asarray(ctx.run(case).value)
    ctx.close(np.sum(p * got) if got.shape == p.shape else got, exact, "Σ_y π(y) k(y)")


def _non_negative(ctx, case):
    got = np.asarray(ctx.run(case).value)
    m = np.ones_like(case["logp"]) if case.mask is None else case.mask
    if got.shape == m.shape and (got * m < -1e-12).any():
        idx = tuple(int(i) for i in np.argwhere(got * m < -1e-12)[0])
        raise Mismatch(f"the estimate at index {idx} is {got[idx]:.10g} < 0", None, got)


def _extreme(ctx, case):
    far = case.replace(logp=case["logp"] - 1e4, logp_ref=case["logp_ref"] - 1e4)
    got = ctx.run(far)
    m = 1.0 if case.mask is None else case.mask
    expected = ctx.ref(case)
    ctx.close(
        np.asarray(got.value) * m, np.asarray(expected.value) * m, "estimate", rtol=1e-5, atol=1e-7
    )
    ctx.grads_close(got, expected.grads, rtol=1e-5, atol=1e-7)


def _kl(ctx):
    which = ctx.options.estimator
    props = agrees(ctx, _kl_cases(ctx), "kl_penalty") + [
        Property("π = π_ref: every estimate is 0", _kl_cases(ctx), _equal),
        Property("log-probs near -1e4: only the log-ratio matters", _kl_cases(ctx), _extreme),
    ]
    unbiased = ["k1", "k3"] if ctx.accepts("estimator") else [e for e in ("k1", "k3") if e == which]
    if unbiased:
        name = "Σ_y π(y) k(y) = KL(π‖π_ref) exactly over a categorical π (k1, k3 are unbiased)"
        props.append(Property(name, _categorical(ctx, unbiased), _unbiased))
    positive = ["k2", "k3"] if ctx.accepts("estimator") else [e for e in ("k2", "k3") if e == which]
    if positive:
        cases = _kl_cases(ctx, estimators=st.sampled_from(positive))
        props.append(Property("k2 and k3 are >= 0 for every sample", cases, _non_negative))
    if ctx.accepts("mask"):
        props.append(padding(ctx, _kl_cases(ctx), ("logp", "logp_ref")))
    return props


def _kl_reference(opts):
    def kl_penalty(logp, logp_ref, estimator=opts.estimator, mask=None):
        return objectives.kl_penalty(logp, logp_ref, estimator, mask)

    return kl_penalty


# -- kl_penalized_rewards ----------------------------------------------------


@st.composite
def _reward_cases(draw, ctx, with_options=True, **fixed):
    B, T = draw(sizes(3, 5))
    base = draw(arrays((B, T), -5.0, 0.0))
    args = {
        "score": draw(arrays((B,), -3.0, 3.0)),
        "logp": base + draw(arrays((B, T), -2.0, 2.0)),
        "logp_ref": base,
        "beta": draw(st.one_of(st.sampled_from([0.0, 0.05, 0.1, 1.0]), floats(0.0, 1.0))),
    }
    args.update(fixed)
    mask = draw(with_mask(ctx, B, T, empty_rows=False))
    kwargs = {} if mask is None else {"mask": mask}
    if with_options:
        kwargs.update(draw(options(ctx, {"estimator": ESTIMATORS})))
    return Case(args, kwargs)


def _score_position(mask, B, T, offset):
    lengths = np.full(B, T) if mask is None else mask.sum(axis=-1).astype(int)
    return np.minimum(lengths - 1 + offset, T - 1)


def _score_only(ctx, case):
    B, T = case["logp"].shape
    expected = np.zeros((B, T))
    expected[np.arange(B), _score_position(case.mask, B, T, ctx.options.score_offset)] = case[
        "score"
    ]
    ctx.close(ctx.run(case).value, expected, "rewards")


def _rewards(ctx):
    offset = ctx.options.score_offset
    where = "the last token" if offset == 0 else "one position after the last token"
    props = agrees(ctx, _reward_cases(ctx), "kl_penalized_rewards", valid_only=offset == 0)
    props += [
        Property(
            f"π = π_ref: the score on {where}, 0 elsewhere", _equal_policies(ctx), _score_only
        ),
        Property(
            f"β = 0: the score on {where}, 0 elsewhere", _reward_cases(ctx, beta=0.0), _score_only
        ),
    ]
    if ctx.accepts("mask") and offset == 0:
        props.append(padding(ctx, _reward_cases(ctx), ("logp", "logp_ref")))
    return props


@st.composite
def _equal_policies(draw, ctx):
    case = draw(_reward_cases(ctx))
    return case.replace(logp_ref=case["logp"].copy())


def _rewards_reference(opts):
    def kl_penalized_rewards(score, logp, logp_ref, beta, mask=None, estimator=opts.estimator):
        if opts.score_offset == 0:
            return objectives.kl_penalized_rewards(score, logp, logp_ref, beta, mask, estimator)
        logp, logp_ref = _raw(logp), _raw(logp_ref)  # TRL: the score one position later
        B, T = logp.shape
        m = np.ones((B, T)) if mask is None else _raw(mask)
        rewards = -beta * objectives.kl_penalty(logp, logp_ref, estimator, m).data * m
        rewards[np.arange(B), _score_position(mask, B, T, 1)] += _raw(score)
        return rewards

    return kl_penalized_rewards


SPECS = {
    "kl_penalty": Spec(_kl_reference, _kl),
    "kl_penalized_rewards": Spec(_rewards_reference, _rewards),
}
