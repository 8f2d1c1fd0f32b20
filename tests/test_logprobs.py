"""sequence_logprobs: the properties every objective relies on."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minialign.gradcheck import gradcheck_directional
from minialign.nn import GPTConfig, TinyGPT, generate, sequence_logprobs

CFG = GPTConfig(vocab_size=9, block_size=14, n_layer=2, n_head=2, n_embd=8)
STOP, PAD = 7, 8
seeds = st.integers(0, 2**32 - 1)


def _scrambled(dtype=np.float32, seed=1):
    m = TinyGPT(CFG, rng=0)
    r = np.random.default_rng(seed)
    for p in m.parameters():
        p.data += r.normal(0, 0.4, p.shape).astype(np.float32)
    return m.to_dtype(dtype)


@pytest.fixture(scope="module")
def model():
    return _scrambled()


@st.composite
def batches(draw, max_T=10):
    """Right-padded (tokens, mask): a prompt of T_p >= 1, a response, then padding."""
    B = draw(st.integers(1, 4))
    T = draw(st.integers(2, max_T))
    T_p = draw(st.integers(1, T - 1))
    r = np.random.default_rng(draw(seeds))
    tokens = r.integers(0, CFG.vocab_size, (B, T))
    ends = r.integers(T_p, T + 1, B)  # response occupies [T_p, end)
    mask = (np.arange(T) >= T_p) & (np.arange(T) < ends[:, None])
    tokens[~mask & (np.arange(T) >= T_p)] = PAD
    return tokens, mask


def _composite(model, tokens, mask, tau=1.0):
    """log softmax(z/tau) gathered the slow way, in NumPy, float64."""
    z = model(tokens[:, :-1]).data.astype(np.float64) / tau
    logp = (
        z
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - z.max(-1, keepdims=True)
    )
    picked = np.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0]
    return picked * mask[:, 1:]


@given(batches(), st.sampled_from([0.5, 1.0, 2.0]))
def test_matches_a_plain_numpy_reference(model, batch, tau):
    tokens, mask = batch
    out = sequence_logprobs(model, tokens, mask, temperature=tau)
    assert out.per_token.shape == (tokens.shape[0], tokens.shape[1] - 1)
    np.testing.assert_allclose(out.per_token.data, _composite(model, tokens, mask, tau),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(out.total.data, out.per_token.data.sum(-1), rtol=1e-6)
    assert np.all(out.per_token.data[~mask[:, 1:]] == 0)


@given(batches(max_T=8), st.integers(1, 6), st.integers(0, CFG.vocab_size - 1))
def test_padding_never_changes_the_logprobs(model, batch, extra, pad):
    tokens, mask = batch
    B, T = tokens.shape
    padded = np.concatenate([tokens, np.full((B, extra), pad)], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((B, extra), bool)], axis=1)
    a = sequence_logprobs(model, tokens, mask)
    b = sequence_logprobs(model, padded, padded_mask)
    np.testing.assert_array_equal(b.per_token.data[:, T - 1 :], 0)
    np.testing.assert_allclose(b.per_token.data[:, : T - 1], a.per_token.data, rtol=1e-6,
                               atol=1e-7)  # fmt: skip
    np.testing.assert_allclose(b.total.data, a.total.data, rtol=1e-6, atol=1e-6)


@given(batches())
def test_a_batch_equals_its_rows_one_by_one(model, batch):
    tokens, mask = batch
    whole = sequence_logprobs(model, tokens, mask)
    for i in range(tokens.shape[0]):
        row = sequence_logprobs(model, tokens[i : i + 1], mask[i : i + 1])
        np.testing.assert_allclose(row.per_token.data[0], whole.per_token.data[i], rtol=1e-5,
                                   atol=1e-6)  # fmt: skip


@settings(max_examples=20)
@given(seeds, st.sampled_from([0.6, 1.0, 1.7]))
def test_logprobs_from_sampling_equal_a_recomputation(model, seed, tau):
    prompt = np.random.default_rng(seed).integers(0, 7, (5, 3))
    g = generate(model, prompt, 9, temperature=tau, rng=np.random.default_rng(seed),
                 stop_token=STOP, pad_id=PAD)  # fmt: skip
    again = sequence_logprobs(model, g.tokens, g.response_mask, temperature=tau)
    np.testing.assert_allclose(again.per_token.data, g.logprobs, rtol=1e-5, atol=1e-6)


@given(seeds, st.integers(1, 6))
def test_next_token_probabilities_sum_to_one_over_the_vocabulary(model, seed, T_p):
    """Score every possible one-token response after the same prompt: exp sums to 1."""
    prompt = np.random.default_rng(seed).integers(0, CFG.vocab_size, T_p)
    V = CFG.vocab_size
    tokens = np.concatenate([np.tile(prompt, (V, 1)), np.arange(V)[:, None]], axis=1)  # (V, T_p+1)
    mask = np.zeros(tokens.shape, bool)
    mask[:, -1] = True
    total = sequence_logprobs(model, tokens, mask).total.data.astype(np.float64)
    np.testing.assert_allclose(np.exp(total).sum(), 1.0, rtol=1e-5)


def test_the_prompt_is_never_scored(model):
    tokens = np.random.default_rng(0).integers(0, CFG.vocab_size, (2, 8))
    mask = np.zeros((2, 8), bool)
    mask[:, 5:] = True
    out = sequence_logprobs(model, tokens, mask)
    assert np.all(out.per_token.data[:, :4] == 0) and np.all(out.per_token.data[:, 4:] < 0)


def test_gradient_passes_directional_gradcheck_float64():
    m = _scrambled(np.float64)
    tokens = np.random.default_rng(2).integers(0, CFG.vocab_size, (3, 7))
    mask = np.zeros((3, 7), bool)
    mask[:, 3:] = True
    mask[1, 5:] = False
    params = m.parameters()
    for tau in (1.0, 0.7):
        per_token = lambda *ps, tau=tau: sequence_logprobs(m, tokens, mask, tau).per_token  # noqa: E731
        assert gradcheck_directional(per_token, params, n_directions=3, rtol=1e-6)
        total = lambda *ps, tau=tau: sequence_logprobs(m, tokens, mask, tau).total  # noqa: E731
        assert gradcheck_directional(total, params, n_directions=2, rtol=1e-6)


def test_outputs_carry_gradient_to_the_parameters(model):
    tokens = np.arange(6)[None] % CFG.vocab_size
    mask = np.arange(6)[None] >= 2
    model.zero_grad()
    sequence_logprobs(model, tokens, mask).total.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()


@pytest.mark.parametrize(
    "tokens, mask, match",
    [
        (np.zeros((2, 5), np.int64), np.ones((2, 5)), r"response_mask\[:, 0\]"),
        (np.zeros((2, 5), np.int64), np.zeros((2, 4)), "shape"),
        (np.zeros((2, 5), np.int64), np.full((2, 5), 0.5), "only 0 and 1"),
        (np.zeros((2, 1), np.int64), np.zeros((2, 1)), "T >= 2"),
        (np.zeros(5, np.int64), np.zeros(5), r"\(B, T\)"),
    ],
)
def test_bad_input_is_rejected(model, tokens, mask, match):
    with pytest.raises(ValueError, match=match):
        sequence_logprobs(model, tokens, mask)
