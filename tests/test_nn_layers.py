"""Layers and the fused ops under them: attention and token log-probs.

Fused == composite (value and gradient), gradcheck in float64, the causal property,
and the layers' shapes, initialisation and errors.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minialign as ma
import minialign.functional as F
from minialign.autograd.attention import causal_attention_reference
from minialign.gradcheck import gradcheck, gradcheck_directional
from minialign.nn import (
    MLP,
    Block,
    CausalSelfAttention,
    Embedding,
    LayerNorm,
    Linear,
    RewardHead,
    ValueHead,
)

seeds = st.integers(0, 2**32 - 1)


@st.composite
def qkv_shapes(draw):
    lead = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    T_k = draw(st.integers(1, 6))
    T_q = draw(st.integers(1, T_k))
    hs = draw(st.integers(1, 5))
    return tuple(lead) + (T_q, hs), tuple(lead) + (T_k, hs)


def _qkv(shapes, seed, scale=1.0):
    r = np.random.default_rng(seed)
    q_shape, kv_shape = shapes
    return [r.normal(0, scale, s) for s in (q_shape, kv_shape, kv_shape)]


# ---------------------------------------------------------------------------
# Fused causal attention
# ---------------------------------------------------------------------------


@given(qkv_shapes(), seeds, st.sampled_from([0.1, 1.0, 5.0]))
def test_attention_fused_equals_composite_value_and_grad(shapes, seed, scale):
    arrays = _qkv(shapes, seed, scale)
    fused = [ma.tensor(a, requires_grad=True) for a in arrays]
    comp = [ma.tensor(a, requires_grad=True) for a in arrays]
    out_f, out_c = F.causal_attention(*fused), causal_attention_reference(*comp)
    np.testing.assert_allclose(out_f.data, out_c.data, rtol=1e-10, atol=1e-12)
    G = np.random.default_rng(seed + 1).normal(size=out_f.shape)
    out_f.backward(G)
    out_c.backward(G)
    for a, b in zip(fused, comp):
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-11)


@settings(max_examples=15)
@given(qkv_shapes(), seeds)
def test_attention_gradcheck(shapes, seed):
    assert gradcheck(F.causal_attention, _qkv(shapes, seed), name="causal_attention")


@given(qkv_shapes(), seeds)
def test_attention_never_looks_at_the_future(shapes, seed):
    """Query i (absolute position T_k - T_q + i) must not depend on any later key or value."""
    q, k, v = _qkv(shapes, seed)
    T_q, T_k = q.shape[-2], k.shape[-2]
    out = F.causal_attention(q, k, v).data
    r = np.random.default_rng(seed + 7)
    for j in range(T_k - T_q + 1, T_k):  # change key/value j: queries before j must not move
        k2, v2 = k.copy(), v.copy()
        k2[..., j, :] += r.normal(size=k2[..., j, :].shape) * 10
        v2[..., j, :] += r.normal(size=v2[..., j, :].shape) * 10
        out2 = F.causal_attention(q, k2, v2).data
        first_seeing_j = j - (T_k - T_q)
        np.testing.assert_array_equal(out2[..., :first_seeing_j, :], out[..., :first_seeing_j, :])
        assert not np.allclose(out2[..., first_seeing_j:, :], out[..., first_seeing_j:, :])


@given(qkv_shapes(), seeds)
def test_attention_last_queries_equal_rows_of_the_full_square(shapes, seed):
    """Cached sampling uses T_q < T_k: it must equal the last T_q rows of T_q = T_k."""
    _, k, v = _qkv(shapes, seed)
    q_full = np.random.default_rng(seed + 3).normal(size=k.shape)
    T_q = shapes[0][-2]
    full = F.causal_attention(q_full, k, v).data
    part = F.causal_attention(q_full[..., -T_q:, :], k, v).data
    np.testing.assert_allclose(part, full[..., -T_q:, :], rtol=1e-12, atol=1e-14)


def test_attention_first_query_copies_first_value_and_rows_are_convex():
    r = np.random.default_rng(0)
    q, k, v = (r.normal(size=(2, 3, 5, 4)) for _ in range(3))
    out = F.causal_attention(q, k, v).data
    np.testing.assert_allclose(out[..., 0, :], v[..., 0, :], rtol=1e-12)
    # with every value equal to the same vector, any convex combination returns it
    same = np.broadcast_to(v[..., :1, :], v.shape).copy()
    np.testing.assert_allclose(F.causal_attention(q, k, same).data, same, rtol=1e-12)


def test_attention_is_stable_for_huge_scores_and_keeps_float32():
    q = np.full((1, 1, 4, 2), 1e4, np.float32)
    out = F.causal_attention(q, q, q)
    assert out.dtype == np.float32 and np.all(np.isfinite(out.data))


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((2, 3, 4), (2, 3, 4), (2, 3, 5)), "equal leading axes"),
        (((2, 5, 4), (2, 3, 4), (2, 3, 4)), "more queries"),
        (((4,), (4,), (4,)), "rank"),
        (((1, 3, 4), (2, 3, 4), (2, 3, 4)), "equal leading axes"),
    ],
)
def test_attention_rejects_bad_shapes(shapes, match):
    with pytest.raises(ValueError, match=match):
        F.causal_attention(*(np.zeros(s) for s in shapes))


# ---------------------------------------------------------------------------
# token_logprobs: log_softmax and gather, fused
# ---------------------------------------------------------------------------


@st.composite
def logits_and_targets(draw):
    lead = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    V = draw(st.integers(1, 7))
    seed = draw(seeds)
    r = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 30.0]))
    return r.normal(0, scale, lead + (V,)), r.integers(0, V, lead), seed


@given(logits_and_targets(), st.sampled_from([0.3, 1.0, 2.5]))
def test_token_logprobs_equals_composite(case, tau):
    z, y, seed = case
    a, b = ma.tensor(z, requires_grad=True), ma.tensor(z, requires_grad=True)
    fused = F.token_logprobs(a, y, temperature=tau)
    composite = ma.take_along_axis(F.log_softmax(b / tau, axis=-1), y[..., None], -1)
    composite = composite.reshape(y.shape)
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-10, atol=1e-12)
    G = np.random.default_rng(seed).normal(size=y.shape)
    fused.backward(G)
    composite.backward(G)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)


@settings(max_examples=20)
@given(logits_and_targets(), st.sampled_from([0.5, 1.0, 2.0]))
def test_token_logprobs_gradcheck(case, tau):
    z, y, _ = case
    z = z / max(1.0, np.abs(z).max() / 3)  # keep finite differences accurate
    assert gradcheck(lambda x: F.token_logprobs(x, y, tau), [z], name="token_logprobs")


@given(logits_and_targets(), st.sampled_from([0.5, 1.0, 2.0]))
def test_token_logprobs_normalise_over_the_vocabulary(case, tau):
    z, _, _ = case
    V = z.shape[-1]
    every = [F.token_logprobs(z, np.full(z.shape[:-1], v), tau).data for v in range(V)]
    np.testing.assert_allclose(np.exp(every).sum(axis=0), 1.0, rtol=1e-12)
    assert np.all(np.stack(every) <= 0)


def test_token_logprobs_extreme_logits_and_float32():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    out = F.token_logprobs(ma.tensor(z, requires_grad=True), np.array([1]))
    assert out.dtype == np.float32 and out.data[0] == np.float32(-2e4)
    out.backward(np.ones(1, np.float32))


@pytest.mark.parametrize(
    "targets, tau, err, match",
    [
        (np.array([3]), 1.0, ValueError, "lie in"),
        (np.array([-1]), 1.0, ValueError, "lie in"),
        (np.array([0, 1]), 1.0, ValueError, "shape"),
        (np.array([0.0]), 1.0, TypeError, "integers"),
        (np.array([0]), 0.0, ValueError, "temperature"),
        (np.array([0]), float("nan"), ValueError, "temperature"),
    ],
)
def test_token_logprobs_rejects_bad_input(targets, tau, err, match):
    with pytest.raises(err, match=match):
        F.token_logprobs(np.zeros((1, 3)), targets, tau)


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------


def _x(shape, seed=0):
    return ma.tensor(np.random.default_rng(seed).normal(size=shape))


def test_linear_is_xw_plus_b_with_in_out_weight():
    lin = Linear(3, 5, rng=np.random.default_rng(0))
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (5,)
    lin.bias.data[...] = np.arange(5)
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(lin(ma.tensor(x)).data, x @ lin.weight.data + lin.bias.data)
    assert Linear(3, 5, bias=False).bias is None and len(Linear(3, 5, bias=False).parameters()) == 1


def test_embedding_adds_gradients_of_repeated_ids():
    emb = Embedding(4, 2, rng=np.random.default_rng(0))
    emb(np.array([[1, 1, 3]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad, [[0, 0], [2, 2], [0, 0], [1, 1]])


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda r: Linear(4, 3, rng=r), (2, 3, 4)),
        (lambda r: LayerNorm(4), (2, 3, 4)),
        (lambda r: MLP(4, rng=r), (2, 3, 4)),
        (lambda r: CausalSelfAttention(4, 2, rng=r), (2, 3, 4)),
        (lambda r: Block(4, 2, rng=r), (2, 3, 4)),
        (lambda r: RewardHead(4, rng=r), (2, 3, 4)),
    ],
    ids=["linear", "layernorm", "mlp", "attention", "block", "reward_head"],
)
def test_layer_gradients_match_finite_differences(make, shape):
    """Input and parameter gradients of each layer, float64, along random directions."""
    layer = make(np.random.default_rng(0)).to_dtype(np.float64)
    for p in layer.parameters():  # move off the init (zero biases, unit LN scale)
        p.data += np.random.default_rng(1).normal(0, 0.3, p.shape)
    x = _x(shape)
    x.requires_grad = True
    params = layer.parameters()
    assert gradcheck_directional(lambda x, *ps: layer(x), [x, *params], n_directions=4)


def test_attention_layer_output_shape_and_head_check():
    attn = CausalSelfAttention(8, 4, rng=np.random.default_rng(0))
    assert attn(_x((3, 5, 8)).astype(np.float32)).shape == (3, 5, 8)
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(6, 4)


def test_value_head_starts_at_zero_and_still_learns():
    head = ValueHead(6)
    h = _x((2, 5, 6)).astype(np.float32)
    values = head(h)
    assert values.shape == (2, 5) and np.all(values.data == 0)
    values.sum().backward()
    assert np.abs(head.weight.grad).sum() > 0


def test_reward_head_is_small_random_and_seeded():
    a, b = RewardHead(64, rng=1), RewardHead(64, rng=1)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert 0.5 / np.sqrt(65) < a.weight.data.std() < 1.5 / np.sqrt(65)
    assert a(_x((3, 4, 64)).astype(np.float32)).shape == (3, 4)
    with pytest.raises(ValueError, match="hidden states"):
        a(_x((3, 4, 5)))


def test_init_std_follows_gpt2():
    r = np.random.default_rng(0)
    mlp = MLP(128, rng=r, proj_std=0.005)
    assert abs(mlp.fc.weight.data.std() - 0.02) < 0.001
    assert abs(mlp.proj.weight.data.std() - 0.005) < 0.0003
    assert np.all(mlp.fc.bias.data == 0) and mlp.fc.weight.dtype == np.float32


# ---------------------------------------------------------------------------
# The packed attention and the fused linear that the layers use
# ---------------------------------------------------------------------------


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 5), st.sampled_from([(1, 2), (2, 2), (3, 1)]), seeds)
def test_packed_self_attention_equals_split_heads_composite(B, T, heads, seed):
    nh, hs = heads
    qkv = np.random.default_rng(seed).normal(size=(B, T, 3 * nh * hs))
    a, b = ma.tensor(qkv, requires_grad=True), ma.tensor(qkv, requires_grad=True)
    fused = F.causal_self_attention(a, nh)
    parts = b.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
    y = causal_attention_reference(parts[0], parts[1], parts[2])  # (B, nh, T, hs)
    composite = y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-10, atol=1e-12)
    G = np.random.default_rng(seed + 1).normal(size=fused.shape)
    fused.backward(G)
    composite.backward(G)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-11)
    assert gradcheck(lambda x: F.causal_self_attention(x, nh), [qkv[:1, :3]])


@given(st.lists(st.integers(1, 3), max_size=2), st.integers(1, 4), st.integers(1, 4), seeds,
       st.booleans())  # fmt: skip
def test_fused_linear_equals_matmul_plus_bias(lead, n_in, n_out, seed, with_bias):
    r = np.random.default_rng(seed)
    x, w, b = r.normal(size=(*lead, n_in)), r.normal(size=(n_in, n_out)), r.normal(size=n_out)
    inputs = [x, w, b] if with_bias else [x, w]
    fused = [ma.tensor(a, requires_grad=True) for a in inputs]
    comp = [ma.tensor(a, requires_grad=True) for a in inputs]
    out_f = F.linear(*fused)
    out_c = comp[0] @ comp[1] + comp[2] if with_bias else comp[0] @ comp[1]
    np.testing.assert_allclose(out_f.data, out_c.data, rtol=1e-12)
    G = r.normal(size=out_f.shape)
    out_f.backward(G)
    out_c.backward(G)
    for p, q in zip(fused, comp):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12)
    assert gradcheck(F.linear, inputs)


def test_fused_ops_reject_bad_shapes():
    with pytest.raises(ValueError, match="weight"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="bias"):
        F.linear(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="n_head"):
        F.causal_self_attention(np.zeros((2, 3, 9)), 2)


@settings(max_examples=15)
@given(st.integers(1, 3), st.lists(st.integers(1, 4), min_size=1, max_size=3), seeds)
def test_cached_self_attention_equals_the_spelled_out_steps(B, chunks, seed):
    """Feeding positions in chunks through the kv_cache path gives, bit for bit, the steps
    spelled out with ops (split heads, store keys and values, causal_attention on the
    stored ones, merge heads), and, to rounding, attention over the whole sequence."""
    nh, hs = 2, 3
    T_max = sum(chunks)
    keys, values = np.zeros((B, nh, T_max, hs)), np.zeros((B, nh, T_max, hs))
    my_keys, my_values = np.zeros_like(keys), np.zeros_like(values)
    qkv_all = np.random.default_rng(seed).normal(size=(B, T_max, 3 * nh * hs))
    whole = F.causal_self_attention(qkv_all, nh).data  # (B, T_max, C), no cache
    start = 0
    for T in chunks:
        qkv = ma.tensor(qkv_all[:, start : start + T])
        with ma.no_grad():
            got = F.causal_self_attention(qkv, nh, (keys, values, start)).data  # (B, T, C)
            q, k, v = qkv.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # (B, nh, T, hs)
            my_keys[:, :, start : start + T], my_values[:, :, start : start + T] = k.data, v.data
            y = F.causal_attention(q, my_keys[:, :, : start + T], my_values[:, :, : start + T])
            want = y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs).data
        assert got.tobytes() == want.tobytes()
        np.testing.assert_allclose(got, whole[:, start : start + T], rtol=1e-12, atol=1e-12)
        start += T
    assert keys.tobytes() == my_keys.tobytes() and values.tobytes() == my_values.tobytes()


def test_cached_self_attention_rejects_grad_and_small_buffers():
    qkv = ma.tensor(np.ones((1, 2, 6)), requires_grad=True)
    buffers = (np.zeros((1, 1, 4, 2)), np.zeros((1, 1, 4, 2)))
    with pytest.raises(RuntimeError, match="no_grad"):
        F.causal_self_attention(qkv, 1, (*buffers, 0))
    with ma.no_grad(), pytest.raises(ValueError, match="cannot take 2 positions after 3"):
        F.causal_self_attention(qkv, 1, (*buffers, 3))


@given(qkv_shapes(), seeds)
def test_attention_backward_into_a_buffer_is_bitwise_the_same(shapes, seed):
    from minialign.autograd.attention import _backward, _forward

    q, k, v = _qkv(shapes, seed)
    O, Pt, scale = _forward(q, k, v)
    gO = np.random.default_rng(seed + 1).normal(size=O.shape)
    plain = _backward(gO, O, Pt, q, k, v, scale)
    out = np.empty((3,) + q.shape) if q.shape == k.shape else None
    if out is not None:
        into = _backward(gO, O, Pt, q, k, v, scale, out=out)
        for a, b in zip(plain, into):
            assert a.tobytes() == b.tobytes()
