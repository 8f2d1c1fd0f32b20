"""PPO objectives: the clipped loss, the ratio, the value loss, the entropy bonus, metrics."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minialign as ma
from minialign.gradcheck import gradcheck
from minialign.objectives import (
    approx_kl,
    clip_fraction,
    entropy_bonus,
    ppo_clip_loss,
    probability_ratio,
    value_loss,
)

GARBAGE = np.array([np.nan, np.inf, -np.inf, 1e30])


def token_batch(seed, B=3, T=5, scale=0.5):
    """Per-token log-probs, advantages and a right-padded mask with every row non-empty."""
    rng = np.random.default_rng(seed)
    new = -np.abs(rng.standard_normal((B, T)))
    old = new + scale * rng.standard_normal((B, T))
    adv = rng.standard_normal((B, T))
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    return new, old, adv, mask


def pad(x, k, fill):
    """Append k padded columns filled with garbage."""
    extra = np.resize(fill, x.shape[:-1] + (k,))
    return np.concatenate([x, extra], axis=-1)


@given(seed=st.integers(0, 10_000), epsilon=st.sampled_from([0.1, 0.2, 0.3]))
def test_ppo_clip_loss_gradcheck_with_mask(seed, epsilon):
    new, old, adv, mask = token_batch(seed)
    ratio = np.exp(new - old)
    assume(np.min(np.abs(np.abs(ratio - 1) - epsilon)) > 1e-3)  # away from the clip's kinks
    gradcheck(lambda n: ppo_clip_loss(n, old, adv, epsilon, mask), [new], name="ppo_clip_loss")


@given(seed=st.integers(0, 10_000), clip=st.sampled_from([None, 0.1, 0.5]))
def test_value_loss_gradcheck_with_mask(seed, clip):
    rng = np.random.default_rng(seed)
    v, old, ret, mask = token_batch(seed)
    ret = rng.standard_normal(v.shape)
    if clip is not None:  # away from the kinks of clip and max
        c = old + np.clip(v - old, -clip, clip)
        assume(np.min(np.abs(np.abs(v - old) - clip)) > 1e-3)
        assume(np.min(np.abs((v - ret) ** 2 - (c - ret) ** 2)) > 1e-3)
    gradcheck(lambda x: value_loss(x, old, ret, clip, mask), [v], name="value_loss")


def test_entropy_bonus_gradcheck_and_uniform(rng):
    logits = rng.standard_normal((2, 3, 4))
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    gradcheck(lambda z: entropy_bonus(z, mask), [logits], name="entropy_bonus")
    assert entropy_bonus(np.zeros((2, 3, 4)), mask).item() == pytest.approx(np.log(4))


@given(seed=st.integers(0, 10_000))
def test_ratio_one_gives_minus_mean_advantage(seed):
    new, _, adv, mask = token_batch(seed)
    loss = ppo_clip_loss(new, new, adv, 0.2, mask).item()
    assert loss == pytest.approx(-(adv * mask).sum() / mask.sum(), rel=1e-12, abs=1e-12)


@given(seed=st.integers(0, 10_000))
def test_inside_clip_loss_is_minus_mean_ratio_times_advantage(seed):
    new, _, adv, mask = token_batch(seed)
    rng = np.random.default_rng(seed + 1)
    old = new + rng.uniform(-0.15, 0.15, new.shape)  # |log r| < 0.15 => r inside [0.8, 1.2]
    x = ma.tensor(new, requires_grad=True)
    loss = ppo_clip_loss(x, old, adv, 0.2, mask)
    ratio = np.exp(new - old)
    assert loss.item() == pytest.approx(-(ratio * adv * mask).sum() / mask.sum(), rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad, -ratio * adv * mask / mask.sum(), rtol=1e-12, atol=1e-15)


def test_zero_gradient_where_clip_is_active():
    eps = 0.2
    # ratio > 1 + eps with A > 0, and ratio < 1 - eps with A < 0: the clip binds.
    new = np.array([0.0, 0.0, 0.0, 0.0])
    old = np.array([-0.5, 0.5, -0.5, 0.5])  # ratios e^0.5 ≈ 1.65, e^-0.5 ≈ 0.61
    adv = np.array([1.0, -2.0, -1.0, 2.0])  # first two binding, last two not
    x = ma.tensor(new, requires_grad=True)
    ppo_clip_loss(x, old, adv, eps).backward()
    np.testing.assert_array_equal(x.grad[:2], 0.0)
    ratio = np.exp(new - old)
    np.testing.assert_allclose(x.grad[2:], -(ratio * adv)[2:] / 4)


def test_probability_ratio_and_metrics():
    new = np.log(np.array([[0.5, 0.25, 0.1]]))
    old = np.log(np.array([[0.25, 0.25, 0.2]]))
    mask = np.array([[1, 1, 1]])
    np.testing.assert_allclose(probability_ratio(new, old, mask).data, [[2.0, 1.0, 0.5]])
    assert clip_fraction(new, old, 0.2, mask) == pytest.approx(2 / 3)
    r = np.array([2.0, 1.0, 0.5])
    assert approx_kl(new, old, mask) == pytest.approx(np.mean(r - 1 - np.log(r)))
    assert approx_kl(new, new, mask) == 0.0


@given(seed=st.integers(0, 10_000), k=st.integers(1, 3))
def test_padding_never_changes_a_result(seed, k):
    new, old, adv, mask = token_batch(seed)
    pm = pad(mask, k, 0.0)
    args = [pad(a, k, GARBAGE) for a in (new, old, adv)]
    for f in (
        lambda n, o, a, m: ppo_clip_loss(n, o, a, 0.2, m),
        lambda n, o, a, m: value_loss(n, o, a, 0.3, m),
    ):
        x, xp = ma.tensor(new, requires_grad=True), ma.tensor(args[0], requires_grad=True)
        a, b = f(x, old, adv, mask), f(xp, *args[1:], pm)
        assert a.item() == pytest.approx(b.item(), rel=1e-12, abs=1e-15)
        a.backward()
        b.backward()
        np.testing.assert_allclose(xp.grad[:, : new.shape[1]], x.grad, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(xp.grad[:, new.shape[1] :], 0.0)
    assert clip_fraction(new, old, 0.2, mask) == clip_fraction(args[0], args[1], 0.2, pm)
    assert approx_kl(new, old, mask) == pytest.approx(approx_kl(args[0], args[1], pm))
    logits = np.random.default_rng(seed).standard_normal(mask.shape + (4,))
    padded_logits = np.concatenate([logits, np.full(mask.shape[:1] + (k, 4), np.nan)], axis=1)
    assert entropy_bonus(logits, mask).item() == pytest.approx(
        entropy_bonus(padded_logits, pm).item()
    )


def test_extreme_log_probs_give_finite_loss_and_gradient():
    new = ma.tensor(np.array([[0.0, -1e4], [-1e4, 0.0]]), requires_grad=True)
    old = np.array([[-1e4, 0.0], [0.0, -1e4]])
    adv = np.array([[1.0, -1.0], [1.0, -1.0]])
    loss = ppo_clip_loss(new, old, adv, 0.2)
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(new.grad))
    v = ma.tensor(np.array([1e4, -1e4]), requires_grad=True)
    vl = value_loss(v, np.zeros(2), np.zeros(2), clip=0.2)
    vl.backward()
    assert np.isfinite(vl.item()) and np.all(np.isfinite(v.grad))


def test_float32_stays_float32():
    new, old, adv, mask = (a.astype(np.float32) for a in token_batch(0))
    x = ma.tensor(new, requires_grad=True)
    loss = ppo_clip_loss(x, old, adv, 0.2, mask)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
