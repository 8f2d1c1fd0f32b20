"""KL estimators against the exact categorical KL, penalised rewards, the adaptive controller."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minialign as ma
import minialign.functional as F
from minialign.gradcheck import gradcheck
from minialign.objectives import (
    AdaptiveKLController,
    categorical_kl,
    kl_penalized_rewards,
    kl_penalty,
    kl_regularized_objective,
)

logits_k = st.integers(2, 6).flatmap(
    lambda K: st.tuples(
        arrays(np.float64, K, elements=st.floats(-5, 5)),
        arrays(np.float64, K, elements=st.floats(-5, 5)),
    )
)
logps = arrays(np.float64, st.integers(1, 8), elements=st.floats(-30, 0))


def log_softmax(z):
    return F.log_softmax(z).data


@given(logits_k)
def test_exact_expectation_of_k1_and_k3_is_the_categorical_kl(pair):
    zp, zq = pair
    logp, logq = log_softmax(zp), log_softmax(zq)
    p = np.exp(logp)
    exact = categorical_kl(zp, zq).item()
    assert exact == pytest.approx(np.sum(p * (logp - logq)), abs=1e-12)
    for estimator in ("k1", "k3"):  # every outcome x of the support is one "sample"
        per_sample = kl_penalty(logp, logq, estimator).data
        assert np.sum(p * per_sample) == pytest.approx(exact, rel=1e-9, abs=1e-12)


@given(logps, st.data())
def test_k2_and_k3_are_non_negative_per_sample(logp, data):
    logp_ref = data.draw(arrays(np.float64, logp.shape, elements=st.floats(-30, 0)))
    assert np.all(kl_penalty(logp, logp_ref, "k2").data >= 0)
    assert np.all(kl_penalty(logp, logp_ref, "k3").data >= 0)


@given(logits_k)
def test_expected_gradient_of_k1_as_a_loss_is_zero(pair):
    zp, zq = pair
    z = ma.tensor(zp, requires_grad=True)
    logp = F.log_softmax(z)
    weights = np.exp(logp.data)  # the sampling distribution: not differentiated
    (kl_penalty(logp, log_softmax(zq), "k1") * weights).sum().backward()
    np.testing.assert_allclose(z.grad, 0.0, atol=1e-12)
    gradcheck(lambda a: categorical_kl(a, zq), [zp], name="categorical_kl")


def test_gradcheck_estimators_with_mask(rng):
    logp, logp_ref = -rng.random((2, 4)), -rng.random((2, 4))
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]])
    for est in ("k1", "k2", "k3"):
        gradcheck(lambda a, b, e=est: kl_penalty(a, b, e, mask), [logp, logp_ref], name=est)
    gradcheck(
        lambda z, zr: kl_regularized_objective(z, zr, np.arange(8.0).reshape(2, 4), 0.5),
        [rng.standard_normal((2, 4)), rng.standard_normal((2, 4))],
        name="kl_regularized_objective",
    )


def test_padding_in_estimators_and_penalised_rewards():
    logp = np.array([[-1.0, -2.0, np.nan]])
    ref = np.array([[-1.5, -1.0, np.inf]])
    mask = np.array([[1, 1, 0]])
    for est in ("k1", "k2", "k3"):
        out = kl_penalty(logp, ref, est, mask).data
        np.testing.assert_allclose(out[:, :2], kl_penalty(logp[:, :2], ref[:, :2], est).data)
        assert out[0, 2] == 0.0
    r = kl_penalized_rewards(np.array([3.0]), logp, ref, 0.1, mask)
    np.testing.assert_allclose(r, [[-0.1 * 0.5, -0.1 * -1.0 + 3.0, 0.0]])


def test_kl_penalized_rewards_puts_score_on_last_valid_token():
    logp = np.zeros((2, 4))
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    r = kl_penalized_rewards(np.array([1.0, 2.0]), logp, logp, 0.5, mask)
    np.testing.assert_array_equal(r, [[0, 0, 1, 0], [0, 0, 0, 2]])


def test_extreme_log_ratios_stay_finite():
    logp = ma.tensor(np.array([-1e4, 0.0]), requires_grad=True)
    ref = np.array([0.0, -1e4])
    k3 = kl_penalty(logp, ref, "k3")
    k3.sum().backward()
    assert np.all(np.isfinite(k3.data)) and np.all(np.isfinite(logp.grad))
    assert np.isfinite(categorical_kl(np.array([1e4, -1e4]), np.array([-1e4, 1e4])).item())


def test_adaptive_kl_controller_follows_ziegler():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    assert ctl.update(12.0, 1000) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # error clipped to 0.2
    beta = ctl.value
    assert ctl.update(6.0, 1000) == pytest.approx(beta)  # on target: unchanged
    assert ctl.update(3.0, 1000) == pytest.approx(beta * (1 - 0.2 * 0.1))
