"""The toy worlds: bandit closed forms, the sentiment reward and annotators, arithmetic rewards."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minialign.tasks import ArithmeticTask, SentimentTask
from minialign.tasks import arithmetic as A
from minialign.tasks import bandit as B

# ============================================================================ bandit


@st.composite
def bandits(draw, min_K=2, max_K=8):
    K = draw(st.integers(min_K, max_K))
    floats = st.floats(-3, 3, allow_nan=False)
    logits = draw(hnp.arrays(np.float64, K, elements=floats))
    rewards = draw(hnp.arrays(np.float64, K, elements=floats))
    return B.Bandit(logits, rewards)


@given(bandits(), st.floats(0.05, 10), st.integers(0, 2**32 - 1))
def test_optimal_policy_beats_random_perturbations(bandit, beta, seed):
    pi_star = bandit.optimal_policy(beta)
    J_star = bandit.objective(pi_star, beta)
    # J(pi*) = beta log Z, and KL(pi*||pi_ref) = E_pi*[r]/beta - log Z
    log_Z = B.log_partition(bandit.pi_ref, bandit.rewards, beta)
    assert J_star == pytest.approx(beta * log_Z, abs=1e-9)
    assert bandit.kl_to_ref(pi_star) == pytest.approx(
        bandit.expected_reward(pi_star) / beta - log_Z, abs=1e-9
    )
    rng = np.random.default_rng(seed)
    for scale in (1e-3, 0.1, 1.0):
        other = B.softmax(np.log(pi_star) + scale * rng.standard_normal(bandit.K))
        assert bandit.objective(other, beta) <= J_star + 1e-10
    assert bandit.objective(bandit.pi_ref, beta) <= J_star + 1e-10


def test_optimal_policy_limits():
    bandit = B.Bandit(np.array([0.0, 1.0, -1.0]), np.array([0.2, -0.5, 0.9]))
    np.testing.assert_allclose(bandit.optimal_policy(1e4), bandit.pi_ref, atol=1e-4)
    np.testing.assert_allclose(bandit.optimal_policy(1e-3), [0, 0, 1], atol=1e-9)


@given(
    st.integers(2, 8).flatmap(
        lambda K: st.tuples(*[hnp.arrays(np.float64, K, elements=st.floats(-5, 5))] * 2)
    )
)
def test_kl_is_non_negative_and_zero_only_at_equality(logits):
    p, q = B.softmax(logits[0]), B.softmax(logits[1])
    assert B.kl(p, p) == pytest.approx(0.0, abs=1e-12)
    d = B.kl(p, q)
    assert d >= 0
    # Pinsker: KL >= 2 TV^2, so it is zero only when p == q
    tv = 0.5 * np.abs(p - q).sum()
    assert d >= 2 * tv**2 - 1e-12


def test_kl_exact_values_and_support():
    assert B.kl([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75)
    )
    assert B.kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2))  # 0 log 0 = 0
    assert B.kl([0.5, 0.5], [1.0, 0.0]) == np.inf
    np.testing.assert_allclose(B.kl(np.eye(3), np.full((3, 3), 1 / 3)), np.log(3))  # batched


@given(bandits(), st.integers(1, 64))
def test_best_of_n_is_a_distribution_within_the_kl_bound(bandit, n):
    pi_n = bandit.best_of_n(n)
    assert np.all(pi_n >= -1e-15)
    assert pi_n.sum() == pytest.approx(1.0, abs=1e-12)
    assert bandit.kl_to_ref(pi_n) <= B.best_of_n_kl_bound(n) + 1e-9
    assert bandit.win_rate_over_ref(pi_n) <= n / (n + 1) + 1e-12
    if n == 1:
        np.testing.assert_allclose(pi_n, bandit.pi_ref, atol=1e-12)


@given(bandits(min_K=3))
def test_best_of_n_expected_reward_grows_with_n(bandit):
    rewards = [bandit.expected_reward(bandit.best_of_n(n)) for n in (1, 2, 4, 8, 16)]
    assert np.all(np.diff(rewards) >= -1e-12)
    assert rewards[-1] <= bandit.rewards.max() + 1e-12


def test_best_of_n_matches_simulation_with_ties(rng):
    """Distinct and tied rewards: the closed form equals sampling n and keeping the first best."""
    pi_ref = np.array([0.1, 0.2, 0.3, 0.4])
    n, draws = 3, 200_000
    for r in (np.array([0.5, 2.0, -1.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0])):
        samples = rng.choice(4, size=(draws, n), p=pi_ref)  # (draws, n)
        best = samples[np.arange(draws), np.argmax(r[samples], axis=1)]  # argmax = first best
        freq = np.bincount(best, minlength=4) / draws
        exact = B.best_of_n_distribution(pi_ref, r, n)
        np.testing.assert_allclose(freq, exact, atol=4 * np.sqrt(0.25 / draws))
    # distinct rewards: pi_n(y) = F(r_y)^n - F_<(r_y)^n exactly
    np.testing.assert_allclose(
        B.best_of_n_distribution(pi_ref, [0.0, 1.0, 2.0, 3.0], 2),
        [0.1**2, 0.3**2 - 0.1**2, 0.6**2 - 0.3**2, 1 - 0.6**2],
    )


def test_best_of_n_kl_bound_values():
    assert B.best_of_n_kl_bound(1) == 0.0
    assert B.best_of_n_kl_bound(4) == pytest.approx(np.log(4) - 0.75)


def test_bandit_preferences_follow_bradley_terry(rng):
    bandit = B.Bandit(np.zeros(2), np.array([0.0, 1.0]))
    chosen, rejected = bandit.sample_preferences(40_000, rng, beta_bt=2.0)
    differ = chosen != rejected
    p_hat = np.mean(chosen[differ] == 1)
    expected = 1 / (1 + np.exp(-2.0))
    assert abs(p_hat - expected) < 4 * np.sqrt(expected * (1 - expected) / differ.sum())


def test_make_bandit_is_seeded():
    a, b = B.make_bandit(6, np.random.default_rng(3)), B.make_bandit(6, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert a.K == 6 and len(np.unique(a.rewards)) == 6


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: B.optimal_policy([0.5, 0.5], [0, 1], 0.0), "beta"),
        (lambda: B.kl([0.5, 0.6], [0.5, 0.5]), "sum to 1"),
        (lambda: B.kl([0.5, 0.5], [1 / 3] * 3), "same shape"),
        (lambda: B.best_of_n_distribution([0.5, 0.5], [0, 1], 0), "n must"),
        (lambda: B.expected_reward([np.nan, 1.0], [0, 1]), "finite"),
        (lambda: B.make_bandit(1), "K must"),
    ],
)
def test_bandit_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ============================================================================ sentiment

SENT = SentimentTask()


def test_sentiment_sizes():
    tok = SENT.tokenizer
    assert 40 <= tok.vocab_size <= 80 and SENT.block_size == 16 and SENT.prompt_len == 4
    assert tok.pad_id != tok.end_id


def test_true_reward_ranks_positive_above_negative():
    positive = ["great", "wonderful and the acting was superb", "very good but quite charming"]
    negative = ["awful", "boring and the plot was dull", "really bad but slow"]
    r_pos, r_neg = SENT.true_reward(positive), SENT.true_reward(negative)
    assert r_pos.min() > 0.2 and r_neg.max() < -0.2
    assert r_pos.min() > r_neg.max()


def test_repetition_cannot_score_high():
    r = SENT.true_reward(["great great great great", "great great", "good and great"])
    varied = SENT.true_reward(["very good and the acting was wonderful"])[0]
    assert r[0] < 0 < varied and r[1] < varied
    assert r[0] == pytest.approx(1 - 2.0 * 3 / 4)  # closed form in the module docstring
    assert r[2] == pytest.approx((0.6 + 1.0) / 3)  # no repeat, no penalty


def test_empty_and_ended_outputs():
    tok = SENT.tokenizer
    ids, mask = tok.encode_batch(["", "<end> great"], pad_to=4)
    np.testing.assert_array_equal(SENT.true_reward(ids, mask), [-1.0, -1.0])


@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_true_reward_is_invariant_to_padding_and_tokens_after_end(seed, extra):
    batch = SENT.corpus(8, np.random.default_rng(seed))
    r = SENT.true_reward(batch.ids, batch.response_mask)
    B_, T = batch.ids.shape
    ids = np.concatenate([batch.ids, np.full((B_, extra), SENT.tokenizer.pad_id)], axis=1)
    mask = np.concatenate([batch.response_mask, np.zeros((B_, extra), bool)], axis=1)
    np.testing.assert_array_equal(SENT.true_reward(ids, mask), r)
    # junk written after END (a policy that keeps going) is ignored too
    junk = np.where(batch.mask, batch.ids, SENT.tokenizer.token_to_id["great"])
    np.testing.assert_array_equal(SENT.true_reward(junk, batch.response_mask | ~batch.mask), r)
    # the strings give the same rewards as the ids
    texts = SENT.tokenizer.decode_batch(batch.ids, batch.response_mask)
    np.testing.assert_allclose(SENT.true_reward(texts), r, atol=1e-12)  # other sum order


def test_corpus_layout_and_mixed_sentiment(rng):
    batch = SENT.corpus(2000, rng)
    tok = SENT.tokenizer
    assert batch.ids.shape == (2000, SENT.block_size) and batch.ids.dtype == np.int64
    assert np.all(batch.ids[:, 0] == tok.bos_id)
    assert np.all(batch.response_mask[:, : SENT.prompt_len] == 0)
    assert np.all((batch.ids == tok.end_id).sum(1) == 1)  # one END per review
    r = SENT.true_reward(batch.ids, batch.response_mask)
    assert (r > 0.2).mean() > 0.2 and (r < -0.2).mean() > 0.2  # a mixed corpus
    assert abs(r.mean()) < 0.1
    again = SENT.corpus(2000, np.random.default_rng(1234))
    np.testing.assert_array_equal(again.ids, batch.ids)  # same seed, same corpus


def test_sample_prompts_dense():
    prompts = SENT.sample_prompts(5, np.random.default_rng(0))
    assert prompts.shape == (5, SENT.prompt_len) and np.all(prompts[:, 0] == 1)


def test_preference_labels_agree_with_bradley_terry(rng):
    n, beta_bt = 4000, 4.0
    pairs = SENT.make_preference_pairs(n, rng, beta_bt=beta_bt)
    np.testing.assert_array_equal(pairs.chosen.ids[:, :4], pairs.prompt_ids)
    np.testing.assert_array_equal(pairs.rejected.ids[:, :4], pairs.prompt_ids)
    np.testing.assert_allclose(
        pairs.chosen_reward, SENT.true_reward(pairs.chosen.ids, pairs.chosen.response_mask)
    )
    delta = pairs.chosen_reward - pairs.rejected_reward
    differ = delta != 0
    p_agree = 1 / (1 + np.exp(-beta_bt * np.abs(delta[differ])))  # P(higher reward chosen)
    agree = np.mean(delta[differ] > 0)
    std = np.sqrt(np.sum(p_agree * (1 - p_agree))) / differ.sum()
    assert abs(agree - p_agree.mean()) < 4 * std
    assert 0.6 < agree < 0.95  # informative but noisy


def test_length_biased_annotator_prefers_longer_answers():
    def frac_longer(bias):
        pairs = SENT.make_preference_pairs(3000, np.random.default_rng(7), length_bias=bias)
        lc = SENT.response_lengths(pairs.chosen.ids, pairs.chosen.response_mask)
        lr = SENT.response_lengths(pairs.rejected.ids, pairs.rejected.response_mask)
        return np.mean(lc[lc != lr] > lr[lc != lr]), pairs

    unbiased, fair = frac_longer(0.0)
    biased, unfair = frac_longer(0.2)
    assert biased > unbiased + 0.15
    # and the biased annotator's choices are worse by the true reward
    assert unfair.chosen_reward.mean() < fair.chosen_reward.mean()


def test_preference_pairs_from_a_policy_sampler(rng):
    great = SENT.tokenizer.token_to_id["great"]
    awful = SENT.tokenizer.token_to_id["awful"]
    end = SENT.tokenizer.end_id

    def sampler(prompts, rng):
        words = np.where(rng.random(len(prompts)) < 0.5, great, awful)
        return np.stack([words, np.full(len(prompts), end), words], axis=1)  # junk after END

    pairs = SENT.make_preference_pairs(200, rng, policy_sampler=sampler, beta_bt=50.0)
    assert set(np.unique(pairs.chosen_reward)) <= {1.0, -1.0}
    assert np.all(pairs.chosen_reward >= pairs.rejected_reward)
    assert np.all(pairs.chosen.response_mask.sum(1) == 2)  # word + END, junk cut


def test_sentiment_bad_input():
    with pytest.raises(ValueError, match="mask"):
        SENT.true_reward(np.zeros((2, 3), np.int64), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="token ids"):
        SENT.true_reward(np.full((1, 2), 999))
    with pytest.raises(ValueError, match="beta_bt"):
        SENT.make_preference_pairs(2, beta_bt=-1.0)


# ============================================================================ arithmetic

ARITH = ArithmeticTask(ops="+-")


def test_arithmetic_sizes():
    assert ARITH.tokenizer.vocab_size == 18 and ARITH.prompt_len == 5
    longest = max(len(A.correct_trace(p)) for p in ARITH.problems)
    assert ARITH.prompt_len + longest + 1 <= ARITH.block_size


@pytest.mark.parametrize("problem", ArithmeticTask(ops="+-").problems)
def test_correct_trace_scores_one_one(problem):
    assert A.score(problem, A.correct_trace(problem)) == (1.0, 1.0)


def test_make_ten_trace_example():
    assert A.correct_trace((7, "+", 5)) == "7+3=10;10+2=12;a12"
    assert A.score((7, "+", 5), "1+1=5;a12") == (1.0, 0.0)  # the superficial solution hack


@given(st.sampled_from(ARITH.problems), st.integers(0, 2**32 - 1))
def test_hack_gets_outcome_but_not_process(problem, seed):
    response = A.hacked_response(problem, np.random.default_rng(seed))
    assert A.score(problem, response) == (1.0, 0.0)


@given(st.sampled_from(ARITH.problems), st.integers(0, 2**32 - 1))
def test_corruptions(problem, seed):
    rng = np.random.default_rng(seed)
    slip = A.score(problem, A.corrupted_trace(problem, "slip", rng))
    wrong = A.score(problem, A.corrupted_trace(problem, "wrong_answer", rng))
    skip = A.score(problem, A.corrupted_trace(problem, "skip", rng))
    assert slip[0] == 0.0 and slip[1] < 1.0
    assert wrong[0] == 0.0 and 0.0 < wrong[1] < 1.0  # sound steps, wrong conclusion
    assert skip == (1.0, 0.0)


@pytest.mark.parametrize(
    "response, expected",
    [
        ("7+3=10;10+2=12;a12", (1.0, 1.0)),
        ("7+5=12;a12", (1.0, 1.0)),  # one honest step is fine
        ("7+0=7;7+5=12;a12", (1.0, 2 / 3)),  # a step without progress is not sound
        ("7+3=10;10+3=13;13-1=12;a12", (1.0, 2 / 4)),  # overshoots b, then wrong operator
        ("6+3=9;9+3=12;a12", (1.0, 1 / 3)),  # starts away from the problem, then overshoots
        ("7+3=10;;10+2=12;a12", (1.0, 2 / 4)),  # an empty step breaks the chain
        ("7+3=10;10+2=12", (0.0, 2 / 3)),  # no answer line
        ("7+3=10;10+2=12;a12;", (0.0, 2 / 5)),  # the answer must come last
        ("", (0.0, 0.0)),
    ],
)
def test_score_cases(response, expected):
    assert A.score((7, "+", 5), response) == pytest.approx(expected)


@given(st.text(max_size=40) | st.text(alphabet=A.CHARS, max_size=40))
def test_any_string_scores_in_unit_interval(text):
    for problem in [(7, "+", 5), A.parse_problem(text), None]:
        outcome, process = A.score(problem, text)
        assert outcome in (0.0, 1.0) and 0.0 <= process <= 1.0


@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_garbage_token_ids_never_raise(seed, R):
    rng = np.random.default_rng(seed)
    V = ARITH.tokenizer.vocab_size
    prompts = rng.integers(0, V, size=(6, 5))
    prompts[:3] = ARITH.sample_prompts(3, rng)
    responses = rng.integers(0, V, size=(6, R))
    mask = rng.random((6, R)) < 0.8
    r_outcome, r_process = ARITH.rewards(prompts, responses, mask)
    assert r_outcome.shape == r_process.shape == (6,)
    assert np.all((0 <= r_process) & (r_process <= 1)) and np.all(np.isin(r_outcome, [0, 1]))
    for row, o, p in zip(prompts, r_outcome, r_process):  # no problem to solve: no reward
        if A.parse_problem(ARITH.tokenizer.decode(row[row > 2])) is None:
            assert o == p == 0.0


def test_corpus_is_deterministic_and_rewards_match_strings():
    a = ARITH.corpus(300, np.random.default_rng(5))
    b = ARITH.corpus(300, np.random.default_rng(5))
    for x, y in zip((a.ids, a.mask, a.response_mask), (b.ids, b.mask, b.response_mask)):
        assert x.tobytes() == y.tobytes()
    assert not np.array_equal(a.ids, ARITH.corpus(300, np.random.default_rng(6)).ids)
    P = ARITH.prompt_len
    r_o, r_p = ARITH.rewards(a.ids[:, :P], a.ids[:, P:], a.response_mask[:, P:])
    texts = ARITH.tokenizer.decode_batch(a.ids)
    for t, o, p in zip(texts, r_o, r_p):
        assert (o, p) == A.score(A.parse_problem(t), t[4:])
    # the full sequence can stand in for the prompt ids
    r_o2, r_p2 = ARITH.rewards(a.ids, a.ids, a.response_mask)
    np.testing.assert_array_equal(r_o, r_o2)
    np.testing.assert_array_equal(r_p, r_p2)


def test_corpus_noise_level(rng):
    P = ARITH.prompt_len
    clean = ARITH.corpus(200, rng, p_noisy=0.0)
    r_o, r_p = ARITH.rewards(clean.ids[:, :P], clean.ids[:, P:], clean.response_mask[:, P:])
    assert np.all(r_o == 1) and np.all(r_p == 1)
    noisy = ARITH.corpus(4000, rng, p_noisy=0.3)
    r_o, r_p = ARITH.rewards(noisy.ids[:, :P], noisy.ids[:, P:], noisy.response_mask[:, P:])
    flawed = np.mean((r_o < 1) | (r_p < 1))
    assert abs(flawed - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)
    # half the corruptions (skip, bogus) keep the right answer: outcome alone misses them
    assert abs(np.mean((r_o == 1) & (r_p < 1)) - 0.15) < 0.03
    assert ARITH.accuracy(noisy.ids[:, :P], noisy.ids[:, P:], noisy.response_mask[:, P:]) == (
        pytest.approx(r_o.mean())
    )


def test_arithmetic_bad_input():
    with pytest.raises(ValueError, match="ops"):
        ArithmeticTask(ops="*")
    with pytest.raises(ValueError, match="max_operand"):
        ArithmeticTask(max_operand=12)
    with pytest.raises(ValueError, match="kind"):
        A.corrupted_trace((1, "+", 1), "typo")
    with pytest.raises(ValueError, match="mask"):
        ARITH.rewards(np.zeros((2, 5), int), np.zeros((2, 3), int), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="p_noisy"):
        ARITH.corpus(2, p_noisy=1.5)


# ============================================================================ with TinyGPT


@pytest.mark.parametrize("task", [SENT, ARITH], ids=["sentiment", "arithmetic"])
def test_layout_matches_tinygpt_generate(task):
    """Prompts feed `generate`; its (tokens, response_mask) feed the rewards and `pack`."""
    from minialign.nn import GPTConfig, TinyGPT, generate, sequence_logprobs

    tok = task.tokenizer
    model = TinyGPT(GPTConfig(tok.vocab_size, task.block_size, n_layer=1, n_head=2, n_embd=16))
    rng = np.random.default_rng(0)
    prompts = task.sample_prompts(6, rng)
    gen = generate(
        model, prompts, task.block_size - task.prompt_len, rng=rng,
        stop_token=tok.end_id, pad_id=tok.pad_id,
    )  # fmt: skip
    if task is SENT:
        r = SENT.true_reward(gen.tokens, gen.response_mask)
        assert r.shape == (6,) and np.all(r <= 1)
    else:
        r_o, r_p = ARITH.rewards(gen.tokens, gen.tokens, gen.response_mask)
        assert r_o.shape == r_p.shape == (6,)
    P, T = task.prompt_len, gen.tokens.shape[1]
    for batch in (  # with the mask, or relying on END (what follows a sampled END is PAD)
        tok.pack(prompts, gen.tokens[:, P:], task.block_size, gen.response_mask[:, P:]),
        tok.pack(prompts, gen.tokens[:, P:], task.block_size),
    ):
        np.testing.assert_array_equal(batch.ids[:, :T], gen.tokens)
        np.testing.assert_array_equal(batch.response_mask[:, :T], gen.response_mask)
        assert not batch.mask[:, T:].any()
    total = sequence_logprobs(model, batch.ids, batch.response_mask).total.data
    np.testing.assert_allclose(total, gen.logprobs.sum(1), rtol=1e-4, atol=1e-4)
    sft = task.corpus(4, rng)
    assert sequence_logprobs(model, sft.ids, sft.response_mask).total.data.shape == (4,)
