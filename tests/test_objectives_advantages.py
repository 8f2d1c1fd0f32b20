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


# --- truncation (bootstrap V(s_{T+1})) versus termination (V = 0 after the last token) ---


@st.composite
def truncated_rollouts(draw, max_b=4, max_t=7):
    """A rollout plus, per row, a truncated flag and V(s_{T+1}) (NaN where terminated)."""
    r, v, mask = draw(rollouts(max_b, max_t))
    B = r.shape[0]
    truncated = np.array(draw(st.lists(st.booleans(), min_size=B, max_size=B)))
    vals = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
    boot = np.array(draw(st.lists(vals, min_size=B, max_size=B)))
    return r, v, mask, truncated, np.where(truncated, boot, np.nan)


def naive_gae_boot(r, v, gamma, lam, mask, truncated, boot):
    """The double loop with V(s_{n}) = boot for truncated rows and 0 for terminated ones."""
    A = np.zeros_like(r)
    for b in range(r.shape[0]):
        n = int(mask[b].sum())
        after = boot[b] if truncated[b] else 0.0
        v_next = [v[b, t + 1] if t + 1 < n else after for t in range(n)]
        deltas = [r[b, t] + gamma * v_next[t] - v[b, t] for t in range(n)]
        for t in range(n):
            A[b, t] = sum((gamma * lam) ** (l - t) * deltas[l] for l in range(t, n))
    return A


def naive_returns_boot(r, gamma, mask, truncated, boot):
    out = naive_returns(r, gamma, mask)
    for b in range(r.shape[0]):
        n = int(mask[b].sum())
        for t in range(n):
            out[b, t] += gamma ** (n - t) * boot[b] if truncated[b] else 0.0
    return out


@given(truncated_rollouts(), unit, unit)
def test_gae_with_bootstrap_matches_naive_double_loop(batch, gamma, lam):
    r, v, mask, truncated, boot = batch
    A, R = gae_advantages(r, v, gamma, lam, mask, truncated=truncated, bootstrap_values=boot)
    expected = naive_gae_boot(r, v, gamma, lam, mask, truncated, boot)
    np.testing.assert_allclose(A, expected, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(R, (A + v) * mask, rtol=1e-12, atol=1e-12)


@given(truncated_rollouts(), unit)
def test_bootstrapped_gae_with_lambda_one_is_the_bootstrapped_monte_carlo_advantage(batch, gamma):
    r, v, mask, truncated, boot = batch
    kw = dict(truncated=truncated, bootstrap_values=boot)
    G = discounted_returns(r, gamma, mask, **kw)
    np.testing.assert_allclose(
        G, naive_returns_boot(r, gamma, mask, truncated, boot), rtol=1e-10, atol=1e-9
    )
    mc = mc_advantages(r, v, gamma, mask, **kw)
    np.testing.assert_allclose(mc, (G - v) * mask, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gae_advantages(r, v, gamma, 1.0, mask, **kw)[0], mc, atol=1e-9)


@given(truncated_rollouts(), unit, unit)
def test_bootstrap_changes_only_truncated_rows_by_the_discounted_tail(batch, gamma, lam):
    """Terminated rows are bitwise unchanged; truncated ones gain (γλ)^(T-t) γ V(s_{T+1})."""
    r, v, mask, truncated, boot = batch
    plain, _ = gae_advantages(r, v, gamma, lam, mask)
    A, _ = gae_advantages(r, v, gamma, lam, mask, truncated=truncated, bootstrap_values=boot)
    np.testing.assert_array_equal(A[~truncated], plain[~truncated])
    n = mask.sum(axis=1, keepdims=True)  # (B, 1) tokens per row
    steps_to_end = n - 1 - np.arange(r.shape[1])  # (B, T): T - t
    tail = (gamma * lam) ** np.maximum(steps_to_end, 0) * gamma * np.nan_to_num(boot)[:, None]
    np.testing.assert_allclose(
        A[truncated], (plain + tail * mask)[truncated], rtol=1e-10, atol=1e-9
    )
    for f in (discounted_returns, lambda r_, g, m_, **kw: mc_advantages(r_, v, g, m_, **kw)):
        np.testing.assert_array_equal(
            f(r, gamma, mask, truncated=truncated, bootstrap_values=boot)[~truncated],
            f(r, gamma, mask)[~truncated],
        )


@given(truncated_rollouts(), unit, unit, st.integers(1, 3))
def test_bootstrap_padding_never_changes_a_result(batch, gamma, lam, k):
    r, v, mask, truncated, boot = batch
    pr, pv = (np.concatenate([x, np.resize(GARBAGE, (x.shape[0], k))], axis=1) for x in (r, v))
    pm = np.concatenate([mask, np.zeros((mask.shape[0], k))], axis=1)
    kw = dict(truncated=truncated, bootstrap_values=boot)  # NaN where terminated
    T = r.shape[1]
    for i in range(2):
        a = gae_advantages(r, v, gamma, lam, mask, **kw)[i]
        b = gae_advantages(pr, pv, gamma, lam, pm, **kw)[i]
        np.testing.assert_array_equal(b[:, T:], 0.0)
        np.testing.assert_allclose(b[:, :T], a, rtol=1e-12, atol=1e-12)
    a, b = discounted_returns(r, gamma, mask, **kw), discounted_returns(pr, gamma, pm, **kw)
    np.testing.assert_allclose(b[:, :T], a, rtol=1e-12, atol=1e-12)
    assert np.isfinite(b).all()


def test_bootstrap_values_alone_means_every_row_is_truncated():
    r, v = np.array([[0.0, 1.0], [2.0, 0.0]]), np.zeros((2, 2))
    boot = np.array([3.0, -1.0])
    A, _ = gae_advantages(r, v, 0.5, 1.0, bootstrap_values=boot)
    B, _ = gae_advantages(r, v, 0.5, 1.0, truncated=[True, True], bootstrap_values=boot)
    np.testing.assert_array_equal(A, B)
    np.testing.assert_allclose(A, [[0.5 + 0.75, 1 + 1.5], [2 - 0.25, -0.5]])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(truncated=np.ones(2, bool)), "bootstrap_values"),
        (dict(bootstrap_values=np.ones(3)), r"bootstrap_values must have shape \(2,\)"),
        (dict(bootstrap_values=np.ones((2, 1))), r"bootstrap_values must have shape"),
        (dict(truncated=np.ones(3, bool), bootstrap_values=np.ones(2)), r"truncated must be"),
        (dict(truncated=np.array([0, 2]), bootstrap_values=np.ones(2)), r"truncated must be"),
        (dict(truncated=[True, False], bootstrap_values=[np.nan, 0.0]), "bootstrap_values holds"),
    ],
)
def test_bad_bootstrap_arguments_raise_naming_the_argument(kw, match):
    r = np.ones((2, 3))
    for call in (
        lambda: gae_advantages(r, r, 1.0, 0.9, **kw),
        lambda: mc_advantages(r, r, 1.0, **kw),
        lambda: discounted_returns(r, 1.0, **kw),
    ):
        with pytest.raises(ValueError, match=match):
            call()


def test_bootstrap_keeps_float32():
    r = np.ones((2, 3), np.float32)
    A, R = gae_advantages(r, r, 1.0, 0.95, truncated=[True, False], bootstrap_values=[1.0, 0.0])
    assert A.dtype == np.float32 and R.dtype == np.float32
