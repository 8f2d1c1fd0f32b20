"""Sampling: seeded, masked after the stop token, cache == no cache, the right distribution."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minialign.nn import GPTConfig, TinyGPT, generate

CFG = GPTConfig(vocab_size=7, block_size=16, n_layer=2, n_head=2, n_embd=8)
STOP, PAD = 5, 6
seeds = st.integers(0, 2**32 - 1)


@pytest.fixture(scope="module")
def model():
    m = TinyGPT(CFG, rng=0)
    r = np.random.default_rng(1)
    for p in m.parameters():  # a peaked, varied distribution rather than near-uniform
        p.data += r.normal(0, 0.5, p.shape).astype(np.float32)
    return m


def _prompt(seed, B=4, T=3):
    return np.random.default_rng(seed).integers(0, 5, (B, T))


def test_shapes_prompt_and_mask_without_stop(model):
    prompt = _prompt(0)
    g = generate(model, prompt, 6, rng=np.random.default_rng(0))
    assert g.tokens.shape == (4, 9) and g.response_mask.shape == (4, 9)
    assert g.logprobs.shape == (4, 8) and g.logprobs.dtype == np.float32
    np.testing.assert_array_equal(g.tokens[:, :3], prompt)
    assert not g.response_mask[:, :3].any() and g.response_mask[:, 3:].all()
    assert np.all(g.logprobs[:, :2] == 0) and np.all(g.logprobs[:, 2:] < 0)
    assert g.prompt_length == 3


def test_one_dimensional_prompt_is_a_batch_of_one(model):
    assert generate(model, [1, 2], 3, rng=np.random.default_rng(0)).tokens.shape == (1, 5)


@given(seeds)
def test_same_generator_state_gives_the_same_samples(model, seed):
    a = generate(model, _prompt(seed), 5, rng=np.random.default_rng(seed), stop_token=STOP)
    b = generate(model, _prompt(seed), 5, rng=np.random.default_rng(seed), stop_token=STOP)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.logprobs, b.logprobs)


@settings(max_examples=20)
@given(seeds, st.sampled_from([0.7, 1.0, 1.6]))
def test_cache_and_no_cache_sample_the_same_tokens(model, seed, tau):
    kw = dict(temperature=tau, stop_token=STOP, pad_id=PAD)
    a = generate(model, _prompt(seed), 8, rng=np.random.default_rng(seed), use_cache=True, **kw)
    b = generate(model, _prompt(seed), 8, rng=np.random.default_rng(seed), use_cache=False, **kw)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.response_mask, b.response_mask)
    np.testing.assert_allclose(a.logprobs, b.logprobs, rtol=1e-5, atol=1e-6)


@given(seeds)
def test_rows_that_stop_are_padded_and_masked_after_the_stop_token(model, seed):
    g = generate(model, _prompt(seed, B=8), 12, rng=np.random.default_rng(seed), stop_token=STOP,
                 pad_id=PAD)  # fmt: skip
    T_p = g.prompt_length
    for row, mask, lp in zip(g.tokens, g.response_mask, g.logprobs):
        response = row[T_p:]
        stops = np.flatnonzero(response == STOP)
        end = stops[0] + 1 if len(stops) else len(response)  # tokens kept, stop included
        assert mask[T_p:].sum() == end and mask[T_p : T_p + end].all()
        assert np.all(response[end:] == PAD)
        assert np.all(lp[T_p - 1 + end :] == 0) and np.all(lp[T_p - 1 : T_p - 1 + end] < 0)
    # sampling ends early when every row has stopped
    if g.tokens.shape[1] < T_p + 12:
        assert g.response_mask[:, -1].any() and np.all((g.tokens == STOP).any(axis=1))


def test_top_k_one_is_greedy(model):
    prompt = _prompt(3)
    g = generate(model, prompt, 4, top_k=1, rng=np.random.default_rng(0))
    idx = prompt
    for t in range(4):
        nxt = model(idx).data[:, -1].argmax(-1)
        np.testing.assert_array_equal(g.tokens[:, 3 + t], nxt)
        idx = np.concatenate([idx, nxt[:, None]], axis=1)


def test_top_k_only_draws_the_k_most_likely_tokens(model):
    prompt = np.repeat(_prompt(4, B=1), 400, axis=0)
    g = generate(model, prompt, 1, top_k=2, rng=np.random.default_rng(0))
    allowed = np.argsort(model(prompt[:1]).data[0, -1])[-2:]
    drawn = set(np.unique(g.tokens[:, -1]).tolist())
    assert drawn == set(allowed.tolist())


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_first_token_frequencies_match_the_tempered_softmax(model, tau):
    """A chi-square test with a fixed seed: samples follow softmax(z / tau)."""
    n = 4000
    prompt = np.repeat(_prompt(5, B=1), n, axis=0)
    g = generate(model, prompt, 1, temperature=tau, rng=np.random.default_rng(0))
    z = model(prompt[:1]).data[0, -1].astype(np.float64) / tau
    p = np.exp(z - z.max())
    p /= p.sum()
    counts = np.bincount(g.tokens[:, -1], minlength=CFG.vocab_size)
    keep = p * n > 5
    chi2 = ((counts[keep] - n * p[keep]) ** 2 / (n * p[keep])).sum()
    assert chi2 < 25  # ~p < 1e-3 at <= 6 degrees of freedom
    np.testing.assert_allclose(np.exp(g.logprobs[:, -1]), p[g.tokens[:, -1]], rtol=1e-5)


def test_generation_restores_training_mode(model):
    model.train()
    generate(model, _prompt(0), 2, rng=np.random.default_rng(0))
    assert model.training
    model.eval()
    generate(model, _prompt(0), 2, rng=np.random.default_rng(0))
    assert not model.training
    model.train()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_new_tokens=14), "block_size"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(temperature=0.0), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(prompt_ids=np.zeros((2, 0), np.int64)), "prompt_ids"),
        (dict(prompt_ids=np.zeros((2, 3))), "prompt_ids"),
    ],
)
def test_bad_arguments_are_rejected(model, kwargs, match):
    args = dict(prompt_ids=_prompt(0), max_new_tokens=3) | kwargs
    with pytest.raises(ValueError, match=match):
        generate(model, **args)
