"""Returns and advantages: closed forms, naive loops, λ = 1 equals Monte Carlo, padding."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.objectives import discounted_returns, gae_advantages, mc_advantages, whiten

GARBAGE = np.array([np.nan, np.inf, -np.inf, 7.0])
unit = st.floats(0.0, 1.0)


@st.composite
def rollouts(draw, max_b=4, max_t=7):
    """Rewards, values and a right-padded mask (drawn entirely by hypothesis)."""
    B, T = draw(st.integers(1, max_b)), draw(st.integers(1, max_t))
    vals = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
    r = np.array(draw(st.lists(vals, min_size=B * T, max_size=B * T))).reshape(B, T)
    v = np.array(draw(st.lists(vals, min_size=B * T, max_size=B * T))).reshape(B, T)
    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    return r, v, mask


def naive_returns(r, gamma, mask):
    out = np.zeros_like(r)
    for b in range(r.shape[0]):
        n = int(mask[b].sum())
        for t in range(n):
            out[b, t] = sum(gamma ** (tp - t) * r[b, tp] for tp in range(t, n))
    return out


def naive_gae(r, v, gamma, lam, mask):
    """The textbook double loop: A_t = Σ_l (γλ)^l δ_{t+l}, with V = 0 past the end."""
    A = np.zeros_like(r)
    for b in range(r.shape[0]):
        n = int(mask[b].sum())
        deltas = [r[b, t] + gamma * (v[b, t + 1] if t + 1 < n else 0.0) - v[b, t] for t in range(n)]
        for t in range(n):
            A[b, t] = sum((gamma * lam) ** (l - t) * deltas[l] for l in range(t, n))
    return A


@given(rollouts(), unit)
def test_discounted_returns_match_naive_sum(batch, gamma):
    r, _, mask = batch
    np.testing.assert_allclose(
        discounted_returns(r, gamma, mask), naive_returns(r, gamma, mask), rtol=1e-10, atol=1e-9
    )


@given(rollouts(), unit, unit)
def test_gae_matches_naive_double_loop(batch, gamma, lam):
    r, v, mask = batch
    A, R = gae_advantages(r, v, gamma, lam, mask)
    np.testing.assert_allclose(A, naive_gae(r, v, gamma, lam, mask), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(R, (A + v) * mask, rtol=1e-12, atol=1e-12)


@given(rollouts(), unit)
def test_gae_with_lambda_one_is_the_monte_carlo_advantage(batch, gamma):
    r, v, mask = batch
    A, _ = gae_advantages(r, v, gamma, 1.0, mask)
    mc = mc_advantages(r, v, gamma, mask)
    np.testing.assert_allclose(A, mc, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(
        mc, (naive_returns(r, gamma, mask) - v) * mask, rtol=1e-10, atol=1e-9
    )


def test_gae_lambda_zero_is_one_step_td_error():
    r = np.array([[1.0, 2.0, 3.0]])
    v = np.array([[0.5, 1.0, 1.5]])
    A, _ = gae_advantages(r, v, 0.9, 0.0, None)
    np.testing.assert_allclose(A, [[1 + 0.9 * 1.0 - 0.5, 2 + 0.9 * 1.5 - 1.0, 3 - 1.5]])


def test_discounted_returns_small_example_and_1d():
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.0), [1.0, 0.0, 2.0])


@given(rollouts(), unit, unit, st.integers(1, 3))
def test_padding_never_changes_a_result(batch, gamma, lam, k):
    r, v, mask = batch
    pr, pv = (np.concatenate([x, np.resize(GARBAGE, (x.shape[0], k))], axis=1) for x in (r, v))
    pm = np.concatenate([mask, np.zeros((mask.shape[0], k))], axis=1)
    T = r.shape[1]
    for f in (
        lambda r_, v_, m_: discounted_returns(r_, gamma, m_),
        lambda r_, v_, m_: mc_advantages(r_, v_, gamma, m_),
        lambda r_, v_, m_: gae_advantages(r_, v_, gamma, lam, m_)[0],
        lambda r_, v_, m_: gae_advantages(r_, v_, gamma, lam, m_)[1],
    ):
        a, b = f(r, v, mask), f(pr, pv, pm)
        np.testing.assert_array_equal(b[:, T:], 0.0)
        np.testing.assert_allclose(b[:, :T], a, rtol=1e-12, atol=1e-12)
    if mask.sum() > 1:
        np.testing.assert_allclose(whiten(pr, pm)[:, :T], whiten(r, mask), rtol=1e-10, atol=1e-10)


@given(rollouts(), st.sampled_from([0, 1]))
def test_whiten_gives_mean_zero_and_unit_std_over_valid_positions(batch, ddof):
    r, _, mask = batch
    valid = r[mask.astype(bool)]
    if valid.size < 2 or np.std(valid) < 1e-3:
        return
    w = whiten(r, mask, ddof=ddof, eps=0.0)[mask.astype(bool)]  # eps would shrink the std
    assert w.mean() == pytest.approx(0.0, abs=1e-9)
    assert w.std(ddof=ddof) == pytest.approx(1.0, rel=1e-6)
    kept = whiten(r, mask, shift_mean=False, ddof=ddof)[mask.astype(bool)]
    assert kept.mean() == pytest.approx(valid.mean(), abs=1e-9)


def test_advantages_are_numpy_and_keep_float32():
    r = np.ones((2, 3), np.float32)
    A, R = gae_advantages(r, r, 1.0, 0.95)
    assert isinstance(A, np.ndarray) and A.dtype == np.float32 and R.dtype == np.float32
    assert discounted_returns(r, 0.9).dtype == np.float32


def test_left_padded_mask_is_rejected():
    with pytest.raises(ValueError, match="right-padded"):
        gae_advantages(np.ones((1, 3)), np.ones((1, 3)), 1.0, 1.0, np.array([[0, 1, 1]]))
