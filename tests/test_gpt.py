"""TinyGPT: config, seeded init, causality, the KV cache, whole-model gradients."""

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minialign as ma
import minialign.functional as F
from minialign.gradcheck import gradcheck_directional
from minialign.nn import GPTConfig, TinyGPT

TINY = GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=8)
SMALL = GPTConfig(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128)
seeds = st.integers(0, 2**32 - 1)


def _scramble(model, seed=0, std=0.2):
    """Move weights off GPT-2's tiny init so that every path carries signal."""
    r = np.random.default_rng(seed)
    for p in model.parameters():
        p.data += r.normal(0, std, p.shape).astype(p.dtype)
    return model


@pytest.fixture(scope="module")
def model():
    return _scramble(TinyGPT(TINY, rng=0))


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


def test_config_round_trips_through_json():
    cfg = GPTConfig(10, 16, n_layer=3, n_head=2, n_embd=6, dropout=0.1)
    again = GPTConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and GPTConfig.from_json(cfg.to_json()) == cfg
    assert GPTConfig(10, 16).dropout == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocab_size=0, block_size=4), "vocab_size"),
        (dict(vocab_size=4, block_size=4, n_embd=6, n_head=4), "divisible"),
        (dict(vocab_size=4, block_size=4, dropout=1.0), "dropout"),
        (dict(vocab_size=4, block_size=2.5), "block_size"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        GPTConfig.from_dict({"vocab_size": 4, "block_size": 4, "n_layers": 2})


# ---------------------------------------------------------------------------
# Construction and forward
# ---------------------------------------------------------------------------


def test_seeded_init_is_bitwise_repeatable_and_seed_sensitive():
    a, b, c = TinyGPT(TINY, rng=7), TinyGPT(TINY, rng=np.random.default_rng(7)), TinyGPT(TINY, 8)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert pa.dtype == np.float32
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
        if name.endswith("weight") and "ln" not in name:
            assert not np.array_equal(pa.data, pc.data), name
    ma.seed(3)
    d = TinyGPT(TINY)
    ma.seed(3)
    np.testing.assert_array_equal(TinyGPT(TINY).wte.weight.data, d.wte.weight.data)


def test_parameter_names_count_and_gpt2_init():
    model = TinyGPT(SMALL, rng=0)
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["wte.weight", "wpe.weight"] and "blocks.3.mlp.proj.weight" in names
    C, V, L = SMALL.n_embd, SMALL.vocab_size, SMALL.n_layer
    per_block = (
        2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    )
    assert model.num_parameters() == V * C + SMALL.block_size * C + L * per_block + 2 * C
    resid_std = model.blocks[0].attn.proj.weight.data.std()
    assert abs(resid_std - 0.02 / np.sqrt(2 * L)) < 0.0005
    assert abs(model.blocks[0].attn.qkv.weight.data.std() - 0.02) < 0.0005


def test_logits_are_hidden_states_times_tied_embedding(model):
    idx = np.random.default_rng(0).integers(0, TINY.vocab_size, (3, 5))
    logits, h = model(idx), model.hidden_states(idx)
    assert logits.shape == (3, 5, TINY.vocab_size) and h.shape == (3, 5, TINY.n_embd)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.data, h.data @ model.wte.weight.data.T, rtol=1e-5, atol=1e-6)
    # the final LayerNorm ran: each position has mean b and spread set by w
    ln = TinyGPT(TINY, rng=0).hidden_states(idx).data
    np.testing.assert_allclose(ln.mean(-1), 0, atol=1e-5)


@settings(max_examples=20)
@given(seeds, st.integers(1, TINY.block_size - 1))
def test_changing_future_tokens_never_changes_earlier_logits(model, seed, t):
    r = np.random.default_rng(seed)
    idx = r.integers(0, TINY.vocab_size, (2, TINY.block_size))
    other = idx.copy()
    other[:, t:] = r.integers(0, TINY.vocab_size, other[:, t:].shape)
    a, b = model(idx).data, model(other).data
    np.testing.assert_array_equal(a[:, :t], b[:, :t])
    if not np.array_equal(idx[:, t], other[:, t]):
        assert not np.allclose(a[:, t:], b[:, t:])


@pytest.mark.parametrize("chunks", [[12], [1] * 12, [5, 1, 4, 2], [3, 9]])
def test_kv_cache_logits_equal_full_forward(model, chunks):
    idx = np.random.default_rng(1).integers(0, TINY.vocab_size, (3, sum(chunks)))
    full = model(idx).data
    cache, pieces, start = model.new_cache(3), [], 0
    with ma.no_grad():
        for n in chunks:
            pieces.append(model(idx[:, start : start + n], cache).data)
            start += n
    assert cache.length == sum(chunks)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=2e-5, atol=2e-6)


def test_kv_cache_misuse_is_an_error(model):
    cache = model.new_cache(1)
    with pytest.raises(RuntimeError, match="no_grad"):
        model(np.zeros((1, 2), np.int64), cache)
    with ma.no_grad():
        model(np.zeros((1, 10), np.int64), cache)
        with pytest.raises(ValueError, match="exceed block_size"):
            model(np.zeros((1, 3), np.int64), cache)


@pytest.mark.parametrize(
    "idx, match",
    [
        (np.zeros((2, 13), np.int64), "block_size"),
        (np.zeros(4, np.int64), "2-D integer"),
        (np.zeros((2, 3)), "2-D integer"),
        (np.full((1, 2), 11), r"\[0, 11\)"),
        (np.zeros((1, 0), np.int64), "no positions"),
    ],
)
def test_bad_token_arrays_are_rejected(model, idx, match):
    with pytest.raises(ValueError, match=match):
        model(idx)


def test_dropout_is_active_only_in_training_mode():
    model = TinyGPT(GPTConfig(11, 8, 1, 1, 4, dropout=0.5), rng=0)
    idx = np.arange(8)[None] % 11
    ma.seed(0)
    a, b = model(idx).data, model(idx).data
    assert not np.array_equal(a, b)
    model.eval()
    np.testing.assert_array_equal(model(idx).data, model(idx).data)


# ---------------------------------------------------------------------------
# Gradients of the whole model
# ---------------------------------------------------------------------------


def test_whole_model_gradient_passes_directional_gradcheck_float64():
    model = _scramble(TinyGPT(SMALL, rng=0), std=0.05).to_dtype(np.float64)
    r = np.random.default_rng(0)
    idx = r.integers(0, SMALL.vocab_size, (2, 7))
    targets = r.integers(0, SMALL.vocab_size, (2, 7))
    params = model.parameters()
    loss_fn = lambda *ps: F.cross_entropy(model(idx), targets)  # noqa: E731
    assert gradcheck_directional(loss_fn, params, n_directions=3, rtol=1e-6)
    logits_fn = lambda *ps: model(idx)  # noqa: E731 - a (B, T, V) output, random upstream
    assert gradcheck_directional(logits_fn, params, n_directions=2, rtol=1e-6)


def test_every_parameter_gets_a_gradient_and_frozen_copy_gets_none(model):
    idx = np.random.default_rng(0).integers(0, TINY.vocab_size, (2, 6))
    model.zero_grad()
    F.cross_entropy(model(idx[:, :-1]), idx[:, 1:]).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad).sum() > 0, name
    ref = model.frozen_copy()
    out = ref(idx)
    assert not out.requires_grad
    np.testing.assert_array_equal(out.data, model(idx).data)
    model.zero_grad()


def test_state_dict_round_trip_gives_identical_logits(model):
    other = TinyGPT(TINY, rng=99)
    other.load_state_dict(model.state_dict())
    idx = np.arange(6)[None]
    np.testing.assert_array_equal(other(idx).data, model(idx).data)


@given(st.booleans(), st.lists(st.booleans(), min_size=1, max_size=3), st.booleans())
def test_training_mode_sets_then_restores_each_modules_mode(mode, before, raise_inside):
    from minialign.nn.module import training_mode

    models = [TinyGPT(GPTConfig(5, 4, 1, 1, 2), rng=i) for i in range(len(before))]
    for m, was in zip(models, before):
        m.train(was)
    with contextlib.suppress(KeyError):
        with training_mode(mode, *models):
            assert all(sub.training == mode for m in models for sub in m.modules())
            if raise_inside:
                raise KeyError("restored on the way out too")
    for m, was in zip(models, before):
        assert all(sub.training == was for sub in m.modules())


def test_int_seed_and_generator_give_the_same_reward_head():
    from minialign.nn import RewardHead

    a, b = RewardHead(6, rng=3), RewardHead(6, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
