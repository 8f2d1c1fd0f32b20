"""Tabular optima: one prompt, K responses, a policy that is the softmax of K free logits.

Each test trains the logits with plain gradient steps through minialign's autograd on the
*exact* expected objective (a sum over the support, no sampling) and checks the closed form.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minialign as ma
import minialign.functional as F
from minialign.objectives import (
    best_of_n_policy,
    dpo_loss,
    kl_regularized_objective,
    kl_regularized_optimum,
)

REF_LOGITS = np.array([0.5, -0.3, 0.0, 1.0])
REWARDS = np.array([1.0, 0.2, -0.5, 0.0])


def descend(loss_fn, steps, lr, z0=REF_LOGITS, every=None):
    """Plain gradient descent on free logits; returns the final logits (and a trace if asked)."""
    z = ma.tensor(np.array(z0, dtype=np.float64), requires_grad=True)
    trace = []
    for step in range(1, steps + 1):
        loss = loss_fn(z)
        z.zero_grad()
        loss.backward()
        z.data -= lr * z.grad
        if every and step % every == 0:
            trace.append(z.data.copy())
    return z.data, trace


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
def test_gradient_ascent_on_kl_regularised_objective_reaches_closed_form(beta):
    lr = min(2.0, 1.0 / beta)  # the curvature grows with β
    z, _ = descend(lambda z: -kl_regularized_objective(z, REF_LOGITS, REWARDS, beta), 1500, lr)
    optimum, value = kl_regularized_optimum(REF_LOGITS, REWARDS, beta)
    np.testing.assert_allclose(softmax(z), optimum, atol=1e-6)
    np.testing.assert_allclose(
        optimum,
        softmax(REF_LOGITS)
        * np.exp(REWARDS / beta)
        / np.sum(softmax(REF_LOGITS) * np.exp(REWARDS / beta)),
    )
    assert kl_regularized_objective(z, REF_LOGITS, REWARDS, beta).item() == pytest.approx(
        value, abs=1e-9
    )


def all_pairs_expected_dpo_loss(z, tau, weights, loss_type="sigmoid"):
    """Σ over ordered pairs (i preferred to j) of P(i ≻ j) · loss(i, j), exactly."""
    K = len(REF_LOGITS)
    pairs = np.array([(i, j) for i, j in itertools.permutations(range(K), 2)])
    logp = F.log_softmax(z)
    ref = F.log_softmax(REF_LOGITS).data
    chosen, rejected = logp[pairs[:, 0]], logp[pairs[:, 1]]
    losses = dpo_loss(
        chosen, rejected, ref[pairs[:, 0]], ref[pairs[:, 1]], tau, loss_type, reduction="none"
    )
    return (losses * weights(pairs)).sum()


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_dpo_on_bradley_terry_preferences_reaches_ref_times_exp_tau_r(tau):
    bt = lambda pairs: 1 / (1 + np.exp(-(REWARDS[pairs[:, 0]] - REWARDS[pairs[:, 1]])))  # P(i ≻ j)
    z, _ = descend(lambda z: all_pairs_expected_dpo_loss(z, tau, bt), 800, 2.0 * tau**2)
    target = softmax(REF_LOGITS) * np.exp(tau * REWARDS)  # π_ref·exp(r/β) with β = 1/τ
    np.testing.assert_allclose(softmax(z), target / target.sum(), atol=1e-5)


def test_dpo_margin_grows_without_bound_while_ipo_settles_at_its_target():
    tau = 0.5
    only_first_beats_second = lambda pairs: ((pairs[:, 0] == 0) & (pairs[:, 1] == 1)).astype(float)
    ref_margin = REF_LOGITS[0] - REF_LOGITS[1]

    def margins(loss_type, lr):
        _, trace = descend(
            lambda z: all_pairs_expected_dpo_loss(z, tau, only_first_beats_second, loss_type),
            1600,
            lr,
            every=200,
        )
        return np.array([z[0] - z[1] - ref_margin for z in trace])  # Δ over training

    dpo = margins("sigmoid", 0.5)
    assert np.all(np.diff(dpo) > 0)  # still increasing at every checkpoint
    assert dpo[-1] - dpo[len(dpo) // 2 - 1] > 0.1 * tau  # ~τ·log 2 per doubling: no plateau
    assert dpo[-1] > 6 * tau
    # IPO loss (Δ − τ/2)²: IPO's τ_IPO is 1/τ, target 1/(2τ_IPO) = τ/2; its curvature is 4, so
    # lr 0.5 would oscillate between Δ = 0 and Δ = τ forever
    ipo = margins("ipo", 0.1)
    np.testing.assert_allclose(ipo[-3:], tau / 2, atol=1e-9)


def kl(p, q):
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


@given(
    arrays(np.float64, st.integers(2, 8), elements=st.floats(0.01, 1.0)),
    st.integers(1, 32),
    st.randoms(use_true_random=False),
)
def test_best_of_n_kl_is_at_most_log_n_minus_n_minus_1_over_n(weights, n, random):
    ref = weights / weights.sum()
    rewards = np.array(random.sample(range(100), len(ref)), dtype=float)  # distinct
    bon = best_of_n_policy(ref, rewards, n)
    assert bon.sum() == pytest.approx(1.0) and np.all(bon >= 0)
    assert kl(bon, ref) <= np.log(n) - (n - 1) / n + 1e-12
    if n == 1:
        np.testing.assert_allclose(bon, ref, atol=1e-15)


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.sampled_from([2, 8, 32]))
def test_best_of_n_bound_is_tight_when_every_answer_is_rare_with_distinct_rewards(seed, spread, n):
    # equal probabilities are not needed: 20,000 answers whose probabilities differ by up to
    # e^(8 spread) reach log n - (n-1)/n; the same answers with two tied reward levels do not
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, spread, 20_000)
    ref, rewards = weights / weights.sum(), rng.permutation(20_000).astype(float)
    bound = np.log(n) - (n - 1) / n
    gap = bound - kl(best_of_n_policy(ref, rewards, n), ref)
    assert -1e-12 <= gap < 1e-4 * bound
    tied = (rewards >= 10_000).astype(float)  # half the answers "good", half "bad"
    assert bound - kl(best_of_n_policy(ref, tied, n), ref) > 0.25 * bound


def test_best_of_n_bound_is_tight_for_many_equally_likely_outcomes():
    K, n = 20_000, 8
    ref = np.full(K, 1 / K)
    bon = best_of_n_policy(ref, np.arange(K, dtype=float), n)
    assert kl(bon, ref) == pytest.approx(np.log(n) - (n - 1) / n, abs=2e-3)
    assert np.sum(bon * np.arange(K) / K) == pytest.approx(
        n / (n + 1), abs=1e-3
    )  # E[max of n U(0,1)]
