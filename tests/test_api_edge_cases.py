"""Finite input never gives NaN or a silent wrong answer: the cases of issue 13, item 7.

Each case either has a defined finite answer (checked against its closed form) or raises a
ValueError that names the function and the argument. The general sweep is the fuzzing in
tests/test_fuzz_objectives.py; these are the named cases, so a regression points at one.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minialign.objectives as O
from minialign.nn import GPTConfig, TinyGPT, generate

E = np.zeros(0)
E32 = np.zeros(0, np.float32)
Z2, Z23 = np.zeros(2), np.zeros((2, 3))
F32 = np.float32

# ---------------------------------------------------------------------------- empty batches

EMPTY_BATCHES = [
    (lambda: O.dpo_loss(E, E, E, E, 1.0), "dpo_loss: policy_chosen_logps is empty"),
    (lambda: O.bradley_terry_loss(E, E), "bradley_terry_loss: chosen_rewards is empty"),
    (lambda: O.grpo_loss(np.zeros((0, 3)), np.zeros((0, 3)), E, 0.2), "grpo_loss: logp_new is"),
    (lambda: O.grpo_loss(E, E, E, 0.2), "grpo_loss: logp_new is empty"),
    (lambda: O.preference_accuracy(E, E), "preference_accuracy: chosen_rewards is empty"),
    (lambda: O.implicit_rewards(E, E, E, E, 1.0), "implicit_rewards: policy_chosen_logps is"),
    (lambda: O.frac_zero_std_groups(np.zeros((0, 4))), "frac_zero_std_groups: rewards is empty"),
    (lambda: O.ppo_clip_loss(E, E, E, 0.2), "ppo_clip_loss: the mask selects no position"),
    (lambda: O.value_loss(E, E, E), "value_loss: the mask selects no position"),
    (lambda: O.entropy_bonus(np.zeros((0, 3))), "entropy_bonus: the mask selects no position"),
    (lambda: O.kl_regularized_objective(Z23[:0], Z23[:0], Z23[:0], 0.1), "logits is empty"),
]


@pytest.mark.parametrize("call, message", EMPTY_BATCHES, ids=[m for _, m in EMPTY_BATCHES])
def test_a_mean_over_an_empty_batch_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_empty_batches_with_a_defined_answer():
    """An empty sum is 0; per-pair losses, targets and fractions of nothing stay empty/0."""
    assert O.dpo_loss(E, E, E, E, 1.0, reduction="sum").item() == 0.0
    assert O.dpo_loss(E, E, E, E, 1.0, reduction="none").shape == (0,)
    advantages, returns = O.gae_advantages(np.zeros((2, 0)), np.zeros((2, 0)), 1.0, 0.95)
    assert advantages.shape == returns.shape == (2, 0)
    assert O.group_advantages(np.zeros((0, 4))).shape == (0, 4)
    assert O.clip_fraction(E, E, 0.2) == 0.0 and O.approx_kl(E, E) == 0.0
    rows_all_masked = np.zeros((2, 3), bool)
    loss = O.grpo_loss(Z23, Z23, Z2, 0.2, mask=rows_all_masked)  # rows with no token count 0
    assert loss.item() == 0.0


# ---------------------------------------------------------------------------- degenerate values


def test_whiten_of_a_constant_is_zero_for_every_eps():
    for dtype in (np.float32, np.float64):
        x = np.full(5, 0.1, dtype)  # its float mean is not exactly 0.1
        for eps in (0.0, 1e-300, 1e-8):
            np.testing.assert_array_equal(O.whiten(x, eps=eps), np.zeros(5, dtype))
            np.testing.assert_array_equal(O.whiten(x, shift_mean=False, eps=eps), x)


def test_group_advantages_of_huge_float32_rewards_are_plus_minus_one():
    A = O.group_advantages(np.array([1e20, -1e20], F32))
    np.testing.assert_array_equal(A, np.array([1.0, -1.0], F32))
    A = O.group_advantages(np.array([[3e38, -3e38, 3e38, -3e38]], F32), eps=0.0)
    np.testing.assert_array_equal(A, np.array([[1, -1, 1, -1]], F32))
    tiny = O.group_advantages(np.array([1e-30, -1e-30], F32), eps=0.0)
    np.testing.assert_array_equal(tiny, np.array([1.0, -1.0], F32))


positive_groups = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 3), st.integers(2, 5)),
    elements=st.floats(-100, 100).filter(lambda v: v == 0 or abs(v) > 1e-3),
)


@given(positive_groups, st.integers(-120, 120), st.sampled_from([np.float32, np.float64]))
def test_group_advantages_are_exactly_invariant_to_a_power_of_two_scale(rewards, k, dtype):
    """With eps = 0, A(2^k r) == A(r) bit for bit, also when 2^k r squared leaves the range."""
    r = rewards.astype(dtype)
    scaled = np.ldexp(r, k)
    assert np.isfinite(scaled).all() and (scaled[r != 0] != 0).all()
    np.testing.assert_array_equal(
        O.group_advantages(scaled, eps=0.0), O.group_advantages(r, eps=0.0)
    )


@given(positive_groups, st.floats(1e-25, 1e25), st.sampled_from([np.float32, np.float64]))
def test_group_advantages_keep_their_accuracy_at_any_scale(rewards, a, dtype):
    """On a * r stored in ``dtype``, the result agrees with float64 at a moderate scale, for
    groups whose spread is not tiny next to their size (else float32 has few digits left)."""
    spread = np.ptp(rewards, axis=-1)
    assume((spread >= 0.01 * np.abs(rewards).max(axis=-1)).all())
    x = (a * rewards).astype(dtype)
    expected = O.group_advantages(x.astype(np.float64) / a, eps=0.0)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(O.group_advantages(x, eps=0.0), expected, rtol=rtol, atol=rtol)


@given(positive_groups, st.integers(-120, 120), st.sampled_from([np.float32, np.float64]))
def test_whiten_is_exactly_invariant_to_a_power_of_two_scale(x, k, dtype):
    x = x.astype(dtype)
    np.testing.assert_array_equal(O.whiten(np.ldexp(x, k), eps=0.0), O.whiten(x, eps=0.0))


def test_beta_zero_drops_the_kl_term_even_where_it_is_infinite():
    ref = np.array([0.0, -np.inf])  # the reference never answers 1
    J = O.kl_regularized_objective(np.zeros(2), ref, np.array([1.0, 3.0]), 0.0)
    assert J.item() == 2.0  # E[r] under the uniform policy
    assert O.kl_regularized_objective(np.zeros(2), ref, np.array([1.0, 3.0]), 0.5).item() == -np.inf


def test_categorical_kl_of_hugely_separated_logits_has_a_finite_gradient():
    from minialign.autograd import Tensor

    logits = Tensor(np.array([0.0, 8.9e307]), requires_grad=True)
    kl = O.categorical_kl(logits, np.zeros(2))
    kl.backward()
    assert kl.item() == pytest.approx(math.log(2)) and np.isfinite(logits.grad).all()


def test_best_of_n_keeps_a_probability_too_small_to_move_the_cdf():
    p = np.array([1.0, 1e-300])
    pi = O.best_of_n_policy(p, np.array([0.0, 1.0]), 4)
    assert np.isfinite(pi).all() and pi[1] > 0 and abs(pi.sum() - 1) < 1e-12


# ---------------------------------------------------------------------------- float32 overflow

BIG = F32(1e30)
OVERFLOWS = [
    (lambda: O.value_loss([BIG], [F32(0)], [-BIG]), "value_loss"),
    (lambda: O.kl_penalty(np.array([BIG]), np.array([-BIG]), "k2"), "kl_penalty"),
    (lambda: O.bradley_terry_loss([BIG], [BIG], center_coef=0.1), "bradley_terry_loss"),
    (lambda: O.dpo_loss([BIG], [-BIG], [F32(0)], [F32(0)], 1.0, "ipo"), "dpo_loss"),
    (lambda: O.ppo_clip_loss([F32(20)], [F32(0)], [-F32(1e31)], 0.2), "ppo_clip_loss"),
    (lambda: O.grpo_loss([F32(20)], [F32(0)], [-F32(1e31)], 0.2), "grpo_loss"),
    (lambda: O.dpo_delta([F32(3e38)], [-F32(3e38)], [F32(0)], [F32(0)]), "dpo_delta"),
    (lambda: O.discounted_returns(np.full((1, 3), 2e38, F32), 1.0), "discounted_returns"),
]


@pytest.mark.parametrize("call, fn", OVERFLOWS, ids=[fn for _, fn in OVERFLOWS])
def test_an_answer_too_large_for_float32_is_a_clear_error_not_inf(call, fn):
    with pytest.raises(ValueError, match=rf"{fn}: the result overflows float32 .*\|.+\| up to"):
        call()


def test_the_same_inputs_in_float64_give_the_finite_answer():
    loss = O.value_loss(np.array([1e30]), np.zeros(1), np.array([-1e30]))
    assert loss.item() == pytest.approx(0.5 * 4e60)
    assert O.kl_penalty(np.array([1e30]), np.array([-1e30]), "k2").item() == pytest.approx(2e60)


# ---------------------------------------------------------------------------- parameters

BAD_PARAMETERS = [
    (lambda: O.kl_penalized_rewards(Z2, Z23, Z23, np.inf), "beta must be a finite number"),
    (lambda: O.kl_regularized_objective(Z2, Z2, Z2, np.inf), "beta must be a finite number"),
    (lambda: O.kl_regularized_optimum(Z2, Z2, np.inf), "beta must be a finite number"),
    (lambda: O.dpo_loss(Z2, Z2, Z2, Z2, np.inf), "tau must be a finite number"),
    (lambda: O.implicit_rewards(Z2, Z2, Z2, Z2, np.inf), "tau must be a finite number"),
    (lambda: O.dpo_loss(Z2, Z2, Z2, Z2, 1e-310), "tau=1e-310 is too small for float64"),
    (lambda: O.dpo_loss(*[Z2.astype(F32)] * 4, 1e-39), "tau=1e-39 is too small for float32"),
    (lambda: O.whiten(np.arange(3.0), ddof=-1), "ddof must be one of"),
    (lambda: O.whiten(np.arange(3.0), eps=-1e-8), "eps must be >= 0"),
    (lambda: O.grpo_loss(Z23, Z23, Z2, 0.2, max_log_ratio=-1.0), "max_log_ratio must be > 0"),
    (lambda: O.probability_ratio(Z2, Z2, max_log_ratio=-1.0), "max_log_ratio must be > 0"),
    (lambda: O.kl_penalty(Z2, Z2, "k3", max_log_ratio=np.nan), "max_log_ratio must be a fin"),
    (lambda: O.grpo_loss(Z23, Z23, Z2, 0.2, max_completion_length=2.5), "max_completion_len"),
    (lambda: O.best_of_n_policy([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], 2), "ref_probs must be pro"),
    (lambda: O.best_of_n_policy([1.5, -0.5], [0.0, 1.0], 2), "ref_probs must be probabilities"),
    (lambda: O.best_of_n_policy([0.5, 0.5], [0.0, 1.0], 2.5), "n must be an integer >= 1"),
    (lambda: O.group_advantages(Z23, eps=np.inf), "eps must be a finite number"),
    (lambda: O.ppo_clip_loss(Z2, Z2, Z2, "0.2"), "epsilon must be a real number"),
    (lambda: O.bradley_terry_loss(Z2, Z2 + 1j), "rejected_rewards must hold real numbers"),
    (lambda: O.mc_advantages(Z23, Z23, np.nan), "mc_advantages: gamma must be a finite"),
    (lambda: O.kl_regularized_objective(Z2, [0.0, np.nan], Z2, 1.0), "ref_logits holds nan"),
]


@pytest.mark.parametrize("call, message", BAD_PARAMETERS, ids=[m for _, m in BAD_PARAMETERS])
def test_parameters_outside_their_domain_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_adaptive_kl_controller_refuses_a_nan_kl_and_keeps_beta():
    controller = O.AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    for kl, n, message in [
        (np.nan, 64, "current_kl must be a finite number"),
        (np.inf, 64, "current_kl must be a finite number"),
        (3.0, -1, "n_steps must be an integer >= 0"),
        (3.0, 2.5, "n_steps must be an integer >= 0"),
        (100.0, 50_000, "n_steps=50000 must be < 5 \\* horizon"),
    ]:
        with pytest.raises(ValueError, match=f"AdaptiveKLController.update: {message}"):
            controller.update(kl, n)
        assert controller.value == 0.1
    assert controller.update(12.0, 10_000) == pytest.approx(0.1 * 1.2)


# ---------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def model():
    return TinyGPT(GPTConfig(vocab_size=7, block_size=16, n_layer=1, n_head=2, n_embd=8), rng=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=1e-40), "temperature must be > 0, finite, and >= 2.94e-39"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(temperature=np.nan), "temperature must be > 0"),
        (dict(top_k=np.nan), "top_k must be None or an integer >= 1, got nan"),
        (dict(top_k=2.5), "top_k must be None or an integer >= 1, got 2.5"),
        (dict(top_k=0), "top_k must be None or an integer >= 1"),
        (dict(top_k=True), "top_k must be None or an integer >= 1"),
    ],
)
def test_generate_refuses_bad_sampling_options(model, kwargs, message):
    with pytest.raises(ValueError, match=f"generate: {message}"):
        generate(model, np.zeros((2, 2), np.int64), 3, **kwargs)


def test_generate_names_an_overflow_of_logits_over_temperature(model):
    big = TinyGPT(model.config, rng=0)
    big.wte.weight.data *= 1e5  # logits of ~1e3: times 1/temperature = 1e37 overflows
    with pytest.raises(ValueError, match="logits / temperature overflows float32"):
        generate(big, np.zeros((2, 2), np.int64), 3, temperature=1e-37)


def test_generate_accepts_an_int_seed_like_the_trainers(model):
    prompt = np.zeros((2, 2), np.int64)
    a = generate(model, prompt, 5, rng=0)
    b = generate(model, prompt, 5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.logprobs, b.logprobs)


def test_generate_with_the_smallest_allowed_temperature_is_greedy_and_finite(model):
    g = generate(model, np.zeros((3, 2), np.int64), 4, temperature=1e-30, rng=0)
    assert (g.logprobs[:, 1:] == 0).all()  # the response: log 1 for the argmax, every step
