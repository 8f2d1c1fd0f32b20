"""The Bradley–Terry reward-model loss: closed form and gradient, log 2 at a tie, extremes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minialign as ma
from minialign.gradcheck import gradcheck
from minialign.objectives import bradley_terry_loss, preference_accuracy


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^{-z}) without overflow


@given(
    st.integers(1, 6).flatmap(
        lambda B: st.tuples(*[arrays(np.float64, B, elements=st.floats(-5, 5))] * 3)
    )
)
def test_bradley_terry_gradcheck_and_closed_form(rs):
    rc, rr, margin = rs
    gradcheck(lambda c, r: bradley_terry_loss(c, r, margin, center_coef=0.01), [rc, rr], name="bt")
    c = ma.tensor(rc, requires_grad=True)
    loss = bradley_terry_loss(c, rr, margin)
    loss.backward()
    z = rc - rr - margin
    assert loss.item() == pytest.approx(np.mean(np.log1p(np.exp(-z))), rel=1e-9)
    np.testing.assert_allclose(c.grad, -sigmoid(-z) / len(rc), rtol=1e-9)


def test_bradley_terry_at_equal_rewards_is_log_2_and_extremes_are_finite():
    assert bradley_terry_loss(np.ones(3), np.ones(3)).item() == pytest.approx(np.log(2))
    c = ma.tensor(np.array([1e4, -1e4]), requires_grad=True)
    loss = bradley_terry_loss(c, np.array([-1e4, 1e4]), center_coef=0.1)
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(c.grad))
    assert preference_accuracy(
        np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.0, 3.0])
    ) == pytest.approx(1 / 3)
