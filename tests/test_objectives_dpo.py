"""DPO: closed forms, invariances, the closed-form gradient, variants, extremes."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minialign as ma
from minialign.gradcheck import gradcheck
from minialign.objectives import (
    dpo_delta,
    dpo_loss,
    implicit_rewards,
)

LOSS_TYPES = ("sigmoid", "robust", "hinge", "ipo")
taus = st.sampled_from([0.1, 0.5, 1.0, 3.0])
logp_arrays = st.integers(1, 6).flatmap(
    lambda B: st.tuples(
        *[arrays(np.float64, B, elements=st.floats(-50, 0, allow_subnormal=False))] * 4
    )
)


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^{-z}) without overflow


@given(st.integers(1, 6), taus, st.floats(-100, 0))
def test_dpo_loss_at_zero_margin_is_log_2(B, tau, c):
    x = np.full(B, c)
    assert dpo_loss(x, x, x, x, tau).item() == pytest.approx(np.log(2), rel=1e-12)


@given(logp_arrays, taus, st.floats(-20, 20), st.floats(-20, 20), st.sampled_from(LOSS_TYPES))
def test_dpo_unchanged_by_a_constant_added_to_a_responses_log_probs(lp, tau, a, b, loss_type):
    pc, pr, rc, rr = lp
    base = dpo_loss(pc, pr, rc, rr, tau, loss_type=loss_type).item()
    shifted = dpo_loss(pc + a, pr + b, rc + a, rr + b, tau, loss_type=loss_type).item()
    assert shifted == pytest.approx(base, rel=1e-9, abs=1e-9)


@given(logp_arrays, taus)
def test_dpo_gradient_matches_closed_form(lp, tau):
    pc, pr, rc, rr = lp
    chosen, rejected = ma.tensor(pc, requires_grad=True), ma.tensor(pr, requires_grad=True)
    dpo_loss(chosen, rejected, rc, rr, tau).backward()
    delta = (pc - rc) - (pr - rr)
    weight = sigmoid(-delta / tau) / tau / len(pc)  # (1/τ)·σ(−Δ/τ), averaged over the batch
    np.testing.assert_allclose(chosen.grad, -weight, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(rejected.grad, weight, rtol=1e-9, atol=1e-300)


@given(logp_arrays, taus, st.sampled_from(LOSS_TYPES), st.sampled_from([0.0, 0.1, 0.3]))
def test_dpo_gradcheck_every_loss_type(lp, tau, loss_type, label_smoothing):
    pc, pr, rc, rr = lp
    if loss_type == "hinge":
        assume(np.min(np.abs(((pc - rc) - (pr - rr)) / tau - 1)) > 1e-3)  # away from the kink
    gradcheck(
        lambda c, r: dpo_loss(c, r, rc, rr, tau, loss_type, label_smoothing),
        [pc, pr],
        name=f"dpo_loss[{loss_type}]",
    )


def test_dpo_variants_by_hand():
    z = np.array([0.5, -1.0])  # Δ with τ = 1
    zero = np.zeros(2)
    ls = 0.1
    ref = {
        "sigmoid": np.mean(-(1 - ls) * np.log(sigmoid(z)) - ls * np.log(sigmoid(-z))),
        "robust": np.mean(
            (-(1 - ls) * np.log(sigmoid(z)) + ls * np.log(sigmoid(-z))) / (1 - 2 * ls)
        ),
        "hinge": np.mean(np.maximum(0, 1 - z)),
        "ipo": np.mean((z - 0.5) ** 2),
    }
    for loss_type, value in ref.items():
        got = dpo_loss(z, zero, zero, zero, 1.0, loss_type=loss_type, label_smoothing=ls).item()
        assert got == pytest.approx(value, rel=1e-12), loss_type
    none = dpo_loss(z, zero, zero, zero, 1.0, reduction="none").data
    np.testing.assert_allclose(none, -np.log(sigmoid(z)))


def test_dpo_extreme_margins_are_finite():
    for m in (1e4, -1e4):
        pc = ma.tensor(np.array([m, -1e4]), requires_grad=True)
        loss = dpo_loss(pc, np.zeros(2), np.zeros(2), np.zeros(2), 0.1)
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(pc.grad))
    assert (
        dpo_delta(np.array([-1e4]), np.array([0.0]), np.array([0.0]), np.array([-1e4])).item()
        == -2e4
    )


def test_implicit_rewards():
    out = implicit_rewards(
        np.array([-1.0, -2.0]),
        np.array([-3.0, -1.0]),
        np.array([-2.0, -2.0]),
        np.array([-2.0, -2.0]),
        0.5,
    )
    assert out == pytest.approx({"chosen": 1.0, "rejected": 0.0, "margin": 1.0, "accuracy": 0.5})
