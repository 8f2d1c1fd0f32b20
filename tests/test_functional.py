"""Fused ops equal their composite versions (value AND gradient) and survive extreme inputs.

Each fused op in `minialign.functional` has a hand-derived backward. Here it is
compared with the same function built from primitive minialign ops, whose gradient
comes from the (separately checked) primitives, under a random upstream gradient G.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays, cross_entropy_inputs, floats, layer_norm_inputs, shapes

import minialign as ma
import minialign.functional as F

# -- composites built from primitive ops ------------------------------------------------


def softmax_composite(x, axis):
    e = ma.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp_composite(x, axis, keepdims=False):
    m = x.max(axis=axis, keepdims=True)
    out = m + ma.log(ma.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.sum(axis=axis)  # sum over a size-1 axis = squeeze


def log_softmax_composite(x, axis):
    return x - logsumexp_composite(x, axis, keepdims=True)


def cross_entropy_composite(logits, targets, mask=None):
    picked = ma.take_along_axis(log_softmax_composite(logits, -1), targets[..., None], -1)
    if mask is None:
        return -picked.mean()
    return -(picked[..., 0] * mask).sum() / float(np.sum(mask))


def gelu_composite(x):
    return 0.5 * x * (1.0 + ma.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def layer_norm_composite(x, weight=None, bias=None, eps=1e-5):
    y = (x - x.mean(axis=-1, keepdims=True)) / ma.sqrt(x.var(axis=-1, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _same_value_and_grad(fused, composite, arrs, G=None, rtol=1e-9, atol=1e-12):
    """Run both on fresh float64 leaves; compare outputs and input gradients under G."""
    fused_in = [ma.tensor(a.copy(), requires_grad=True) for a in arrs]
    comp_in = [ma.tensor(a.copy(), requires_grad=True) for a in arrs]
    y1, y2 = fused(*fused_in), composite(*comp_in)
    np.testing.assert_allclose(y1.data, y2.data, rtol=rtol, atol=atol)
    G = np.ones(y1.shape) if G is None else G
    y1.backward(G)
    y2.backward(G)
    for k, (a, b) in enumerate(zip(fused_in, comp_in)):
        np.testing.assert_allclose(a.grad, b.grad, rtol=rtol, atol=atol, err_msg=f"input {k}")


@st.composite
def x_axis_G(draw, keepdims=False):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    x = draw(arrays(shape))
    kd = draw(st.booleans()) if keepdims else True
    out_shape = shape if kd else shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :]
    if keepdims and kd:
        out_shape = shape[: axis % len(shape)] + (1,) + shape[axis % len(shape) + 1 :]
    G = draw(hnp.arrays(np.float64, out_shape, elements=floats()))
    return x, axis, kd, G


@given(x_axis_G())
def test_softmax_equals_composite(args):
    x, axis, _, G = args
    _same_value_and_grad(lambda t: F.softmax(t, axis), lambda t: softmax_composite(t, axis), [x], G)


@given(x_axis_G())
def test_log_softmax_equals_composite(args):
    x, axis, _, G = args
    _same_value_and_grad(
        lambda t: F.log_softmax(t, axis), lambda t: log_softmax_composite(t, axis), [x], G
    )


@given(x_axis_G(keepdims=True))
def test_logsumexp_equals_composite(args):
    x, axis, kd, G = args
    _same_value_and_grad(
        lambda t: F.logsumexp(t, axis, kd), lambda t: logsumexp_composite(t, axis, kd), [x], G
    )


@st.composite
def x_and_G(draw, elements=None):
    shape = draw(shapes())
    x = draw(arrays(shape, elements or floats(-6, 6)))
    return x, draw(hnp.arrays(np.float64, shape, elements=floats()))


@given(x_and_G())
def test_sigmoid_family_equals_composites(args):
    x, G = args
    _same_value_and_grad(F.sigmoid, lambda t: 1.0 / (1.0 + ma.exp(-t)), [x], G)
    _same_value_and_grad(F.logsigmoid, lambda t: -ma.log(1.0 + ma.exp(-t)), [x], G)
    _same_value_and_grad(F.softplus, lambda t: ma.log(1.0 + ma.exp(t)), [x], G)


@given(x_and_G())
def test_gelu_equals_composite_tanh_formula(args):
    x, G = args
    _same_value_and_grad(F.gelu, gelu_composite, [x], G)


@given(x_and_G(), st.sampled_from([np.float32, np.float64]))
def test_gelu_without_a_graph_gives_the_same_bits(args, dtype):
    """Under no_grad gelu reuses its tanh buffer for the output; the values must not move."""
    x = args[0].astype(dtype)
    with_graph = F.gelu(ma.tensor(x, requires_grad=True)).data
    with ma.no_grad():
        without = F.gelu(ma.tensor(x, requires_grad=True)).data
    assert with_graph.tobytes() == without.tobytes()
    assert F.gelu(x).data.tobytes() == with_graph.tobytes()  # a constant input: no graph


@given(cross_entropy_inputs(), floats())
def test_cross_entropy_equals_composite(inputs, g):
    (logits,), params = inputs
    t, mask = params["targets"], params["mask"]
    _same_value_and_grad(
        lambda z: F.cross_entropy(z, t, mask),
        lambda z: cross_entropy_composite(z, t, mask),
        [logits],
        np.asarray(g),
    )


@given(layer_norm_inputs(), st.data())
def test_layer_norm_equals_composite(inputs, data):
    arrs, params = inputs
    hw, hb = params["has_weight"], params["has_bias"]

    def split(x, *wb):
        return x, (wb[0] if hw else None), (wb[-1] if hb else None)

    G = data.draw(hnp.arrays(np.float64, arrs[0].shape, elements=floats()))
    _same_value_and_grad(
        lambda *ts: F.layer_norm(*split(*ts)),
        lambda *ts: layer_norm_composite(*split(*ts)),
        list(arrs),
        G,
        rtol=1e-8,
        atol=1e-10,
    )


def test_embedding_equals_fancy_index_with_repeated_ids():
    w = np.arange(12.0).reshape(4, 3)
    ids = np.array([[1, 1], [3, 1]])
    G = np.arange(12.0).reshape(2, 2, 3)
    _same_value_and_grad(lambda t: F.embedding(t, ids), lambda t: t[ids], [w], G)
    leaf = ma.tensor(w, requires_grad=True)
    F.embedding(leaf, ids).backward(G)
    np.testing.assert_array_equal(leaf.grad[1], G[0, 0] + G[0, 1] + G[1, 1])  # three uses
    np.testing.assert_array_equal(leaf.grad[0], 0.0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_gradient_is_mask_over_keep_probability(p):
    x = ma.tensor(np.linspace(-1, 1, 200), requires_grad=True)
    y = F.dropout(x, p, rng=np.random.default_rng(3))
    keep = np.random.default_rng(3).random(200) >= p
    np.testing.assert_allclose(y.data, x.data * keep / (1 - p))
    y.backward(np.full(200, 2.0))
    np.testing.assert_allclose(x.grad, 2.0 * keep / (1 - p))
    assert 0 < keep.sum() < 200


def test_dropout_identity_when_not_training_or_p_zero():
    x = ma.tensor(np.ones(5), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(x, 1.0)


# -- extreme inputs ----------------------------------------------------------------------

BIG = 1e4


def _run(f, x, dtype):
    t = ma.tensor(np.asarray(x, dtype=dtype), requires_grad=True)
    y = f(t)
    y.backward(np.ones(y.shape, dtype=dtype))
    assert y.dtype == dtype and t.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)), y.data
    assert np.all(np.isfinite(t.grad)), t.grad
    return y.data, t.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_closed_forms(dtype):
    x = [-BIG, BIG]
    # as tight in float32 as in float64: the fused ops exponentiate x - max(x) (exact here)
    # and never exp(x - lse) with lse ~ 1e4 rounded to float32's spacing of 1e-3 there
    close = dict(rtol=1e-6, atol=1e-7)
    v, g = _run(F.logsigmoid, x, dtype)
    np.testing.assert_allclose(v, [-BIG, 0.0], **close)
    np.testing.assert_allclose(g, [1.0, 0.0], **close)
    v, g = _run(F.sigmoid, x, dtype)
    np.testing.assert_allclose(v, [0.0, 1.0], **close)
    np.testing.assert_allclose(g, [0.0, 0.0], **close)
    v, g = _run(F.softplus, x, dtype)
    np.testing.assert_allclose(v, [0.0, BIG], **close)
    np.testing.assert_allclose(g, [0.0, 1.0], **close)
    v, g = _run(F.gelu, x, dtype)
    np.testing.assert_allclose(v, [0.0, BIG], **close)
    np.testing.assert_allclose(g, [0.0, 1.0], **close)
    z = [BIG, -BIG, 0.0]
    v, g = _run(lambda t: F.softmax(t), z, dtype)
    np.testing.assert_allclose(v, [1.0, 0.0, 0.0], **close)
    np.testing.assert_allclose(g, [0.0, 0.0, 0.0], **close)  # sum of softmax is constant
    v, g = _run(lambda t: F.log_softmax(t), z, dtype)
    np.testing.assert_allclose(v, [0.0, -2 * BIG, -BIG], **close)
    np.testing.assert_allclose(g, [1 - 3.0, 1.0, 1.0], **close)  # 1 - 3 softmax
    v, g = _run(lambda t: F.logsumexp(t), [BIG, BIG], dtype)
    np.testing.assert_allclose(v, BIG + np.log(2.0), **close)
    np.testing.assert_allclose(g, [0.5, 0.5], **close)
    v, g = _run(lambda t: F.logsumexp(t), [-BIG, -BIG], dtype)
    np.testing.assert_allclose(v, -BIG + np.log(2.0), **close)
    v, g = _run(lambda t: F.cross_entropy(t, np.array([1, 0])), [[BIG, -BIG], [BIG, -BIG]], dtype)
    np.testing.assert_allclose(v, BIG, **close)  # (2e4 + 0) / 2
    np.testing.assert_allclose(g, [[0.5, -0.5], [0.0, 0.0]], **close)


EXTREME = st.one_of(st.sampled_from([-BIG, BIG, 0.0]), floats(-BIG, BIG))

FUSED = {
    "softmax": lambda t: F.softmax(t),
    "log_softmax": lambda t: F.log_softmax(t),
    "logsumexp": lambda t: F.logsumexp(t),
    "sigmoid": F.sigmoid,
    "logsigmoid": F.logsigmoid,
    "softplus": F.softplus,
    "gelu": F.gelu,
    "cross_entropy": lambda t: F.cross_entropy(t, np.zeros(t.shape[:-1], dtype=np.intp)),
}


@pytest.mark.parametrize("name", FUSED)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), elements=EXTREME)
)
def test_extreme_inputs_stay_finite_and_float32_agrees(name, x):
    f = FUSED[name]
    x = x.astype(np.float32).astype(np.float64)  # the same numbers in both precisions
    v64, g64 = _run(f, x, np.float64)
    v32, g32 = _run(f, x, np.float32)
    scale = 1 + np.abs(v64)
    assert np.all(np.abs(v32 - v64) <= 1e-6 * scale), (v32, v64)
    # gradients are softmax-sized (|g| <= 1 + n): float32 keeps ~7 digits of them, even at
    # logits of 1e4, because no exponent is taken of a difference with a rounded 1e4 in it
    np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-6)


# -- documented edge cases: masked rows and NaN -----------------------------------------


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(2, 4), st.integers(1, 5)), elements=floats()),
    data=st.data(),
)
def test_softmax_of_a_fully_masked_row_is_nan_and_detect_anomaly_names_it(x, data):
    """A row of all -inf has no distribution: NaN there (as torch.softmax gives), while
    the other, partly masked rows stay exact (probability 0 at their -inf positions)."""
    row = data.draw(st.integers(0, x.shape[0] - 1), label="fully masked row")
    keep = data.draw(hnp.arrays(bool, x.shape), label="unmasked positions")
    keep[:, 0] = True  # the other rows keep at least one position
    keep[row] = False
    z = np.where(keep, x, -np.inf)
    with np.errstate(invalid="ignore"):  # NumPy warns about the 0 / 0
        y = F.softmax(ma.tensor(z)).data
    assert np.all(np.isnan(y[row]))
    others = np.arange(len(z)) != row
    e = np.where(keep, np.exp(x - np.max(z, axis=-1, keepdims=True)), 0.0)[others]
    np.testing.assert_allclose(y[others], e / e.sum(-1, keepdims=True), rtol=1e-12)
    with ma.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match="softmax"):
            F.softmax(ma.tensor(z))


def test_cross_entropy_of_nan_logits_is_nan_not_an_error():
    """Documented: no hot-path check; a NaN logit gives a NaN loss (the training loops'
    check_finite turns it into an error) and detect_anomaly names cross_entropy."""
    logits = np.array([[0.0, np.nan, 1.0], [0.5, 0.2, -1.0]])
    assert np.isnan(F.cross_entropy(logits, np.array([0, 1])).item())
    with ma.detect_anomaly(), pytest.raises(FloatingPointError, match="cross_entropy"):
        F.cross_entropy(logits, np.array([0, 1]))


@given(
    st.integers(1, 12),
    st.integers(1, 6),
    st.sampled_from([np.float32, np.float64]),
    st.data(),
)
def test_embedding_scatter_is_np_add_at_bit_for_bit(V, D, dtype, data):
    """The embedding's backward sums each token's rows in the order np.add.at does."""
    from minialign.autograd.functional import _scatter_add_rows

    ids = data.draw(hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, V - 1)))
    values = st.floats(-1e6, 1e6, width=32) | st.sampled_from([0.0, -0.0, 1e-30, -1e-30])
    rows = data.draw(hnp.arrays(dtype, (len(ids), D), elements=values))
    expected = np.zeros((V, D), dtype)
    np.add.at(expected, ids, rows)
    got = _scatter_add_rows((V, D), ids, rows)
    assert got.dtype == dtype and got.tobytes() == expected.tobytes()
