"""Best-of-n: more samples, higher reward; the KL formula; the vectorised selection is right."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sentiment_fixture import SAMPLING, SAMPLING_KW, TASK, sentiment_reference

from minialign.nn import generate, sequence_logprobs
from minialign.tasks import best_of_n_distribution, best_of_n_kl_bound, kl
from minialign.train import evaluate_policy
from minialign.train.best_of_n import best_of_n, best_of_n_kl

B = 256


@pytest.fixture(scope="module")
def prompts():
    return TASK.sample_prompts(B, np.random.default_rng(7))


def squiggle(tokens, mask):
    """A proxy reward with (almost) no ties between distinct responses."""
    return (np.sin(1.2345 * tokens + 0.1) * mask).sum(axis=1)


@pytest.fixture(scope="module")
def runs(prompts):
    ref = sentiment_reference()
    return {
        n: best_of_n(
            ref, TASK.true_reward, prompts, n, SAMPLING, rng=n, true_reward=TASK.true_reward
        )  # fmt: skip
        for n in (1, 2, 4, 8)
    }


def test_true_reward_rises_monotonically_with_n(runs):
    reward = [runs[n][1]["true_reward"] for n in (1, 2, 4, 8)]
    assert np.all(np.diff(reward) > 0.05), reward  # measured: 0.02, 0.22, 0.37, 0.51 at B=128
    for n in (1, 2, 4, 8):
        m = runs[n][1]
        assert m["proxy_reward"] == m["true_reward"]  # the proxy IS the true reward here
        assert m["kl"] == pytest.approx(np.log(n) - (n - 1) / n) and m["kl_is_bound"] == 1.0
        assert abs(m["true_reward_ref"] - reward[0]) < 0.1  # the candidates are plain samples


def test_n_equal_1_is_plain_sampling(runs, prompts):
    ref = sentiment_reference()
    plain_rng = np.random.default_rng(1001)
    gen = generate(ref, prompts, rng=plain_rng, temperature=1.0, **SAMPLING_KW)
    r = TASK.true_reward(gen.tokens, gen.response_mask)  # (B,)
    m = runs[1][1]
    se = r.std() * np.sqrt(2 / B)  # two independent means of B samples
    assert abs(m["true_reward"] - r.mean()) < 3 * se, (m["true_reward"], r.mean(), se)
    assert m["true_reward"] == m["true_reward_ref"]  # nothing to choose from
    assert m["kl"] == 0.0
    ev = evaluate_policy(ref, ref, prompts, TASK.true_reward, SAMPLING, rng=plain_rng)
    assert abs(m["true_reward"] - ev["true_reward"]) < 3 * se


def test_selection_is_the_argmax_of_the_same_vectorised_draws(prompts):
    """Re-draw the B·(n+1) samples with the same seed and check the layout and the choice."""
    ref, n, few = sentiment_reference(), 3, prompts[:40]
    sel, m = best_of_n(ref, squiggle, few, n, SAMPLING, rng=11)
    gen = generate(ref, np.repeat(few, n + 1, axis=0), rng=np.random.default_rng(11), **SAMPLING_KW)
    scores = squiggle(gen.tokens, gen.response_mask).reshape(40, n + 1)  # (B, n+1)
    np.testing.assert_allclose(squiggle(sel.tokens, sel.response_mask), scores[:, :n].max(1))
    assert m["proxy_reward"] == pytest.approx(scores[:, :n].max(1).mean())
    assert m["proxy_reward_ref"] == pytest.approx(scores[:, :n].mean())
    assert sel.tokens.shape == (40, gen.tokens.shape[1]) and sel.prompt_length == 4
    assert np.array_equal(sel.tokens[:, :4], few)
    ref_logp = sequence_logprobs(ref, sel.tokens, sel.response_mask).total.data
    np.testing.assert_allclose(sel.logprobs.sum(1), ref_logp, rtol=1e-4, atol=1e-4)
    assert "true_reward" not in m and m["win_rate"] == m["proxy_win_rate"]


@pytest.mark.parametrize("n", [2, 4])
def test_win_rate_against_a_fresh_reference_sample_is_near_n_over_n_plus_1(prompts, n):
    _, m = best_of_n(sentiment_reference(), squiggle, prompts, n, SAMPLING, rng=20 + n)
    # ≤ n/(n+1) (ties between identical responses count 1/2); ~0.027 standard error at B=256
    assert n / (n + 1) - 0.1 < m["win_rate"] < n / (n + 1) + 0.06, m["win_rate"]


def test_repeatable(prompts):
    ref = sentiment_reference()
    (a, ma), (b, mb) = (best_of_n(ref, squiggle, prompts[:16], 4, SAMPLING, rng=3) for _ in "ab")
    assert np.array_equal(a.tokens, b.tokens) and ma == mb


@given(n=st.integers(1, 10_000))
def test_kl_formula(n):
    value = best_of_n_kl(n)
    assert value == pytest.approx(np.log(n) - (n - 1) / n, abs=1e-12)
    assert value == pytest.approx(best_of_n_kl_bound(n), abs=1e-12)
    assert 0.0 <= value < np.log(n) + 1e-12


@given(
    logits=st.lists(st.floats(-3, 3), min_size=2, max_size=6),
    n=st.integers(1, 16),
)
def test_kl_formula_bounds_the_exact_best_of_n_kl(logits, n):
    """On a bandit, KL(π_n ‖ π_ref) computed exactly never exceeds log n − (n−1)/n."""
    p = np.exp(np.array(logits) - max(logits))
    p /= p.sum()
    rewards = np.arange(len(p), dtype=np.float64)  # distinct rewards
    assert kl(best_of_n_distribution(p, rewards, n), p) <= best_of_n_kl(n) + 1e-9


@pytest.mark.parametrize("n", [2, 4, 8])
def test_kl_formula_is_tight_for_many_small_atoms_and_loose_for_a_heavy_one(n):
    K = 2000
    uniform, rewards = np.full(K, 1 / K), np.arange(K, dtype=np.float64)
    exact = kl(best_of_n_distribution(uniform, rewards, n), uniform)
    assert exact == pytest.approx(best_of_n_kl(n), abs=1e-3)
    heavy = np.array([0.9, 0.05, 0.05])  # the likeliest response is also the worst
    exact = kl(best_of_n_distribution(heavy, np.arange(3.0), n), heavy)
    assert exact < best_of_n_kl(n)


def test_closed_form_values():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(np.log(2) - 0.5)
    assert best_of_n_kl(8) == pytest.approx(np.log(8) - 7 / 8)


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_bad_n(prompts, n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        best_of_n(sentiment_reference(), squiggle, prompts[:2], n, SAMPLING, rng=0)


def test_bad_reward_shape(prompts):
    with pytest.raises(ValueError, match=r"must return shape \(6,\)"):
        best_of_n(sentiment_reference(), lambda t, m: np.zeros(3), prompts[:2], 2, SAMPLING, rng=0)
