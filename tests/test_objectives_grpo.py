"""GRPO: group advantages (invariances, exact zeros), the loss at both levels and every aggregation."""

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minialign as ma
from minialign.gradcheck import gradcheck
from minialign.objectives import (
    combined_reward,
    frac_zero_std_groups,
    group_advantages,
    grpo_loss,
    kl_penalty,
)

LEVELS = ("sequence", "token")
AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")
GARBAGE = np.array([np.nan, np.inf, -np.inf, 1e30])

# Discrete rewards, as from a verifier: (G groups, N outputs each).
reward_groups = st.tuples(st.integers(1, 4), st.integers(2, 6)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.integers(-3, 3).map(float))
)


def token_batch(seed, B=4, T=5, spread=0.05):
    rng = np.random.default_rng(seed)
    old = -np.abs(rng.standard_normal((B, T)))
    new = old + spread * rng.standard_normal((B, T))
    ref = old + 0.3 * rng.standard_normal((B, T))
    adv = rng.standard_normal(B)
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    return new, old, ref, adv, mask


@given(reward_groups, st.floats(0.1, 10), st.floats(-10, 10))
def test_group_advantages_invariant_to_positive_affine_maps(r, a, b):
    np.testing.assert_allclose(
        group_advantages(a * r + b, eps=0.0), group_advantages(r, eps=0.0), rtol=1e-9, atol=1e-9
    )


@given(reward_groups, st.sampled_from([0, 1]))
def test_group_advantages_have_mean_zero_and_unit_std(r, ddof):
    A = group_advantages(r, eps=0.0, ddof=ddof)
    varied = r.max(-1) > r.min(-1)
    np.testing.assert_allclose(A.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(A[varied].std(-1, ddof=ddof), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(A[~varied], 0.0)  # exact zeros, not NaN
    assert frac_zero_std_groups(r) == pytest.approx(np.mean(~varied))


def test_equal_rewards_give_exact_zeros_even_when_float_sigma_is_not_zero():
    r = np.array([[0.1, 0.1, 0.1], [5.0, 5.0, 5.0]])
    assert np.std(r[0]) > 0  # the float σ of equal rewards is 1.4e-17, not 0
    np.testing.assert_array_equal(group_advantages(r, eps=0.0), 0.0)
    assert frac_zero_std_groups(r) == 1.0


def test_population_vs_bessel_std_and_the_floor():
    r = np.array([0.0, 1.0])
    np.testing.assert_allclose(group_advantages(r), [-1.0, 1.0], rtol=1e-7)
    np.testing.assert_allclose(
        group_advantages(r, ddof=1), [-np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-7
    )
    np.testing.assert_allclose(group_advantages(r, scale=False), [-0.5, 0.5])
    tiny = np.array([0.0, 1e-9])  # σ = 5e-10: the floor bounds |A| by 1e-9 / 2 / 1e-3
    assert np.abs(group_advantages(tiny, eps=0.0)).max() == pytest.approx(1.0)
    assert np.abs(group_advantages(tiny, std_floor=1e-3)).max() == pytest.approx(5e-7, rel=1e-3)
    with pytest.raises(ValueError, match="group size"):
        group_advantages(np.ones((3, 1)))


def test_combined_reward():
    np.testing.assert_allclose(combined_reward([1.0, 0.0], [0.0, 1.0], 0.75), [0.75, 0.25])


@settings(max_examples=15)  # 8 configurations × 2 betas per example
@given(seed=st.integers(0, 10_000))
def test_grpo_loss_gradcheck_every_level_and_aggregation(seed):
    new, old, ref, adv, mask = token_batch(seed)
    eps = 0.2
    for level, agg, beta in itertools.product(LEVELS, AGGREGATIONS, (0.0, 0.1)):
        log_ratio = (new - old) * mask
        if level == "sequence":
            log_ratio = log_ratio.sum(-1)
        assume(np.min(np.abs(np.abs(np.exp(log_ratio) - 1) - eps)) > 1e-3)

        def f(x, lvl=level, ag=agg, b=beta):
            return grpo_loss(
                x, old, adv, eps, mask, beta=b, logp_ref=ref, level=lvl, aggregation=ag
            )

        gradcheck(f, [new], name=f"grpo_loss[{level},{agg},beta={beta}]")


def test_sequence_level_grpo_is_minus_the_seeds_objective(rng):
    new, old, _, adv, mask = token_batch(3, spread=0.3)
    eps = 0.2
    rho = np.exp(((new - old) * mask).sum(-1))  # ρ_i for whole outputs
    L = np.mean(np.minimum(rho * adv, np.clip(rho, 1 - eps, 1 + eps) * adv))
    assert grpo_loss(new, old, adv, eps, mask).item() == pytest.approx(-L, rel=1e-12)
    seq_new, seq_old = (new * mask).sum(-1), (old * mask).sum(-1)  # (B,) inputs give the same
    assert grpo_loss(seq_new, seq_old, adv, eps).item() == pytest.approx(-L, rel=1e-12)


def test_token_level_aggregations_by_hand():
    new, old, _, adv, mask = token_batch(5, spread=0.3)
    eps, B = 0.2, new.shape[0]
    r = np.exp(new - old)
    per_token = -np.minimum(r * adv[:, None], np.clip(r, 1 - eps, 1 + eps) * adv[:, None]) * mask
    expected = {
        "grpo": np.mean(per_token.sum(-1) / mask.sum(-1)),
        "bnpo": per_token.sum() / mask.sum(),
        "dapo": per_token.sum() / mask.sum(),
        "dr_grpo": per_token.sum() / (B * 16),
    }
    for agg, value in expected.items():
        loss = grpo_loss(
            new, old, adv, eps, mask, level="token", aggregation=agg, max_completion_length=16
        )
        assert loss.item() == pytest.approx(value, rel=1e-12), agg


@given(seed=st.integers(0, 10_000))
def test_ratio_one_and_centred_advantages_give_zero_policy_loss(seed):
    new, _, ref, _, mask = token_batch(seed)
    adv = group_advantages(np.random.default_rng(seed).integers(0, 2, (2, 2)).astype(float)).ravel()
    for level in LEVELS:
        assert grpo_loss(new, new, adv, 0.2, mask, level=level).item() == pytest.approx(
            0.0, abs=1e-12
        )
    # with β > 0 the loss is then exactly β·E[k3] (the "loss ≈ β·KL" learners see); only
    # "grpo" weighs outputs equally: "bnpo" weighs the centred advantages by length
    k3 = kl_penalty(new, ref, "k3", mask).data
    expected = 0.1 * np.mean(k3.sum(-1) / mask.sum(-1))
    for level in LEVELS:
        loss = grpo_loss(new, new, adv, 0.2, mask, beta=0.1, logp_ref=ref, level=level)
        assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-14)
    loss = grpo_loss(
        new, new, adv, 0.2, mask, beta=0.1, logp_ref=ref, level="token", aggregation="bnpo"
    )
    bnpo = -np.sum(adv[:, None] * mask) / mask.sum() + 0.1 * k3.sum() / mask.sum()
    assert loss.item() == pytest.approx(bnpo, rel=1e-10, abs=1e-14)


@given(seed=st.integers(0, 10_000), k=st.integers(1, 3))
def test_padding_never_changes_a_result(seed, k):
    new, old, ref, adv, mask = token_batch(seed, spread=0.3)
    padded = [
        np.concatenate([x, np.resize(GARBAGE, (x.shape[0], k))], axis=1) for x in (new, old, ref)
    ]
    pm = np.concatenate([mask, np.zeros((mask.shape[0], k))], axis=1)
    for level, agg in itertools.product(LEVELS, AGGREGATIONS):
        kw = dict(beta=0.05, level=level, aggregation=agg, max_completion_length=10)
        x, xp = ma.tensor(new, requires_grad=True), ma.tensor(padded[0], requires_grad=True)
        a = grpo_loss(x, old, adv, 0.2, mask, logp_ref=ref, **kw)
        b = grpo_loss(xp, padded[1], adv, 0.2, pm, logp_ref=padded[2], **kw)
        assert b.item() == pytest.approx(a.item(), rel=1e-12, abs=1e-15)
        a.backward()
        b.backward()
        np.testing.assert_allclose(xp.grad[:, : new.shape[1]], x.grad, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(xp.grad[:, new.shape[1] :], 0.0)


def test_extreme_inputs_are_finite():
    new = ma.tensor(np.array([[-1e4, 0.0], [0.0, -1e4]]), requires_grad=True)
    old = np.array([[0.0, -1e4], [-1e4, 0.0]])
    for level in LEVELS:
        loss = grpo_loss(new, old, np.array([1.0, -1.0]), 0.2, beta=0.1, logp_ref=old, level=level)
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(new.grad))
        new.zero_grad()
    assert np.all(np.isfinite(group_advantages(np.array([1e4, -1e4, 0.0]))))
