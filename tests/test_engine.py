"""Properties of the engine itself: accumulation, deep graphs, dtypes, switches, errors."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minialign as ma
import minialign.functional as F
from minialign.autograd.engine import unbroadcast

# -- accumulation and reuse -----------------------------------------------------------


def test_reuse_in_one_op_accumulates():
    a = ma.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (a + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])


def test_reuse_in_several_branches():
    a = ma.tensor([0.5, -1.5], requires_grad=True)
    # f = a*a + exp(a) + 3a  ->  f' = 2a + exp(a) + 3
    (a * a + a.exp() + 3.0 * a).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * a.data + np.exp(a.data) + 3.0)


def test_diamond_graph():
    x = ma.tensor(2.0, requires_grad=True)
    b, c = x * 3.0, x**2
    (b * c).backward()  # d/dx 3x^3 = 9x^2
    assert x.grad == pytest.approx(36.0)


def test_chain_of_5000_ops():
    x = ma.tensor([1.0, 2.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**5000), rtol=1e-10)


def test_100k_deep_chain_does_not_recurse():
    x = ma.tensor(0.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursion over the depth would now fail loudly
    try:
        y.backward()
    finally:
        sys.setrecursionlimit(limit)
    assert y.item() == 100_000.0 and x.grad == 1.0
    del y  # freeing a 100k-deep graph must not crash either


def _loss(a, b, w):
    return (F.softmax((a @ w) * b, axis=-1) ** 2).mean()


def _leaves():
    rng = np.random.default_rng(0)
    return [ma.tensor(rng.standard_normal(s), requires_grad=True) for s in [(4, 3), (1, 5), (3, 5)]]


def test_backward_twice_after_zero_grad_is_identical():
    leaves = _leaves()
    loss = _loss(*leaves)
    loss.backward()
    first = [t.grad.copy() for t in leaves]
    for t in leaves:
        t.zero_grad()
    loss.backward()
    for t, g in zip(leaves, first):
        np.testing.assert_array_equal(t.grad, g)


def test_backward_twice_without_zero_grad_accumulates():
    leaves = _leaves()
    loss = _loss(*leaves)
    loss.backward()
    first = [t.grad.copy() for t in leaves]
    loss.backward()
    for t, g in zip(leaves, first):
        np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-12)


def test_retained_grad_does_not_double_count_on_second_backward():
    a = ma.tensor([1.0, 2.0], requires_grad=True)
    b = (a * 2.0).retain_grad()
    loss = b.sum()
    loss.backward()
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    loss.backward()
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])  # accumulated, like a leaf
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])  # 2 per pass, not 2 + 4


def test_retain_grad_keeps_intermediate_grads_only_when_asked():
    a = ma.tensor([1.0, 2.0], requires_grad=True)
    h = a * 3.0
    kept = (h + 1.0).retain_grad()
    (kept * kept).sum().backward()
    assert h.grad is None  # freed
    np.testing.assert_array_equal(kept.grad, 2 * kept.data)
    np.testing.assert_array_equal(a.grad, 6 * kept.data)


def test_leaf_grads_are_private_writable_copies():
    a = ma.tensor(np.ones(3), requires_grad=True)
    b = ma.tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()  # sum's backward is a read-only broadcast view, shared by a and b
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    assert a.grad.flags.writeable and b.grad.flags.writeable
    a.grad *= 0.5  # what an optimiser does
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_upstream_gradient_is_not_aliased_or_mutated():
    a = ma.tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    y = a * 1.0
    y.backward(g)
    y.backward(g)
    np.testing.assert_array_equal(g, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a.grad, 2 * g)


# -- broadcasting --------------------------------------------------------------------------


@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
    data=st.data(),
)
def test_broadcast_gradients_have_input_shapes(shapes, data):
    sa, sb = shapes.input_shapes
    a = ma.tensor(np.ones(sa), requires_grad=True)
    b = ma.tensor(np.full(sb, 2.0), requires_grad=True)
    out = a * b
    assert out.shape == shapes.result_shape
    G = data.draw(hnp.arrays(np.float64, out.shape, elements=st.floats(-2, 2)))
    out.backward(G)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad, unbroadcast(G * 2.0, sa))
    np.testing.assert_allclose(b.grad, unbroadcast(G, sb))
    np.testing.assert_allclose(a.grad.sum(), (G * 2.0).sum())  # nothing lost or doubled


def test_unbroadcast_sums_stretched_and_leading_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g


# -- 0-d tensors and dtypes --------------------------------------------------------------


def test_zero_dim_tensors():
    x = ma.tensor(3.0, requires_grad=True)
    y = (x * x + 2.0 * x).exp().log()
    assert y.shape == ()
    y.backward()
    assert x.grad.shape == () and x.grad == pytest.approx(8.0)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x * 2.0, lambda x: 2.0 - x, lambda x: x / 3, lambda x: 2 ** x, lambda x: x ** 3,
        lambda x: x + np.float64(1.5), lambda x: ma.maximum(x, 0.0), lambda x: ma.where(x > 0, x, 0.0),
        lambda x: x.clip(-1.0, 1.0), lambda x: x.masked_fill(x > 1, 0.0), lambda x: x.mean(),
        lambda x: x.var(ddof=1), lambda x: F.gelu(x), lambda x: F.layer_norm(x),
        lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(0)), lambda x: F.softplus(x),
        lambda x: F.cross_entropy(x, np.array([0, 1])), lambda x: F.logsumexp(x),
    ],
)  # fmt: skip
def test_float32_stays_float32(f):
    x = ma.tensor(
        np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=np.float32), requires_grad=True
    )
    out = f(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_requires_grad_on_integers_is_an_error():
    with pytest.raises(TypeError, match="floating-point"):
        ma.tensor([1, 2, 3], requires_grad=True)


# -- switches: no_grad, detach, anomaly detection, seeding ----------------------------------


def test_no_grad_records_nothing():
    x = ma.tensor([1.0, 2.0], requires_grad=True)
    with ma.no_grad():
        y = (x * 2.0).sum()
        assert not ma.is_grad_enabled()
    assert ma.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_detach_cuts_the_graph_but_shares_values():
    x = ma.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and np.shares_memory(d.data, y.data)
    (x * d).sum().backward()  # d is a constant: grad = d
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])


def test_detect_anomaly_names_the_op_in_backward():
    x = ma.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"), ma.detect_anomaly():
        y = ma.sqrt(x).sum()  # forward is finite: sqrt(0) = 0
        with pytest.raises(FloatingPointError, match="backward of 'sqrt'"):
            y.backward()  # d sqrt/dx at 0 = inf


def test_detect_anomaly_names_the_op_in_forward():
    x = ma.tensor([-1.0, 1.0], requires_grad=True)
    with np.errstate(invalid="ignore"), ma.detect_anomaly():
        with pytest.raises(FloatingPointError, match="forward of 'log'"):
            ma.log(x)


def test_without_detect_anomaly_nan_passes_silently():
    x = ma.tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert np.isnan(ma.log(x).item())


def test_seed_makes_dropout_bitwise_repeatable():
    x = ma.tensor(np.ones((8, 8), dtype=np.float32), requires_grad=True)
    ma.seed(7)
    first = F.dropout(x, 0.5).data.copy()
    ma.seed(7)
    second = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, F.dropout(x, 0.5).data)  # the stream moves on


# -- clear errors ---------------------------------------------------------------------------


def test_matmul_shape_error_names_both_shapes():
    a, b = ma.tensor(np.ones((2, 3))), ma.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b


def test_matmul_batch_error_names_both_shapes():
    a, b = ma.tensor(np.ones((2, 2, 3))), ma.tensor(np.ones((3, 3, 4)))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\).*\(3, 3, 4\)"):
        a @ b


def test_broadcast_error_names_both_shapes():
    a, b = ma.tensor(np.ones((2, 3))), ma.tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a + b


def test_backward_on_non_scalar_without_grad_says_so():
    y = ma.tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"single-element.*\(3,\)"):
        y.backward()


def test_backward_with_wrong_grad_shape_names_shapes():
    y = ma.tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        y.backward(np.ones(2))


def test_wrong_backward_shape_is_caught_and_names_the_op():
    from minialign.autograd.engine import make_result

    x = ma.tensor(np.ones(3), requires_grad=True)
    y = make_result(x.data * 2, (x,), lambda g: (np.ones(4),), "broken_op")
    with pytest.raises(RuntimeError, match=r"'broken_op'.*\(4,\).*\(3,\)"):
        y.sum().backward()


@settings(max_examples=10)
@given(st.integers(0, 2**31))
def test_seed_repeatable_for_any_seed(n):
    ma.seed(n)
    a = F.dropout(ma.tensor(np.ones(16)), 0.3).data.copy()
    ma.seed(n)
    np.testing.assert_array_equal(a, F.dropout(ma.tensor(np.ones(16)), 0.3).data)


# -- helpers: get_rng, data_of, the operator table -----------------------------------------


@given(st.integers(0, 2**63 - 1))
def test_get_rng_int_seeds_a_new_generator_each_time(n):
    from minialign.autograd import get_rng

    a, b = get_rng(n), get_rng(np.int64(n))
    assert a is not b
    np.testing.assert_array_equal(a.random(4), b.random(4))
    np.testing.assert_array_equal(get_rng(n).random(4), np.random.default_rng(n).random(4))


def test_get_rng_passes_generators_through_and_none_means_the_default():
    from minialign.autograd import get_rng

    g = np.random.default_rng(3)
    assert get_rng(g) is g
    seeded = ma.seed(11)
    assert get_rng(None) is seeded is ma.default_rng()


@pytest.mark.parametrize("bad", [True, 1.5, "7", np.random.RandomState(0)])
def test_get_rng_rejects_other_types_naming_rng(bad):
    from minialign.autograd import get_rng

    with pytest.raises(ValueError, match="rng must be"):
        get_rng(bad)


def test_data_of_unwraps_tensors_only():
    from minialign.autograd import data_of

    a = np.arange(3.0)
    t = ma.tensor(a)
    assert data_of(t) is t.data
    assert data_of(a) is a and data_of(2.5) == 2.5 and data_of([1, 2]) == [1, 2]


def test_every_method_in_the_table_is_bound_to_tensor_and_parameter():
    from minialign.autograd.ops import TENSOR_METHODS
    from minialign.nn import Parameter

    for name, method in TENSOR_METHODS.items():
        assert getattr(ma.Tensor, name) is method, name
    p = Parameter(np.ones((2, 3)))
    assert p.T.shape == (3, 2) and (p + 1.0).shape == (2, 3) and (p > 0).data.all()


@given(st.floats(-3, 3), st.floats(-3, 3))
def test_reflected_operators_put_the_number_first(x, c):
    t = ma.tensor(np.float64(x))
    for got, want in [(c - t, c - x), (c * t, c * x), (c + t, c + x), (np.float64(c) - t, c - x)]:
        assert isinstance(got, ma.Tensor) and got.item() == want
    if x != 0:
        assert (c / t).item() == c / x


@given(hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-2, 2)), st.floats(-2, 2))
def test_comparisons_give_masks_without_gradient(values, c):
    x = ma.tensor(values, requires_grad=True)
    for got, want in [(x < c, values < c), (x <= c, values <= c), (x > c, values > c)]:
        assert got.dtype == bool and not got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    np.testing.assert_array_equal((x >= ma.tensor(values)).data, np.ones(len(values), bool))


# -- gradient bookkeeping ---------------------------------------------------------------------


def test_intermediate_used_three_times_gets_the_sum_of_all_three():
    a = ma.tensor([1.0, 2.0], requires_grad=True)
    h = (a * 2.0).retain_grad()
    (h * 3.0 + h * 5.0 + h * 7.0).sum().backward()
    np.testing.assert_array_equal(h.grad, [15.0, 15.0])
    np.testing.assert_array_equal(a.grad, [30.0, 30.0])


def test_retained_root_keeps_its_gradient_and_accumulates():
    a = ma.tensor([1.0, 2.0], requires_grad=True)
    y = (a * a).retain_grad()
    g = np.array([1.0, -1.0])
    y.backward(g)
    y.backward(g)
    np.testing.assert_array_equal(y.grad, 2 * g)
    np.testing.assert_array_equal(a.grad, 2 * 2 * a.data * g)


def test_backward_never_writes_into_an_array_it_did_not_make():
    a = ma.tensor(np.ones(3), requires_grad=True)
    mine = np.full(3, 10.0)
    a.grad = mine  # a gradient set by hand (e.g. loaded from elsewhere)
    (a * 2.0).sum().backward()
    np.testing.assert_array_equal(mine, np.full(3, 10.0))
    np.testing.assert_array_equal(a.grad, np.full(3, 12.0))


def test_backward_on_a_leaf_gives_it_a_private_copy():
    a = ma.tensor(np.ones(2), requires_grad=True)
    g = np.array([3.0, 4.0])
    a.backward(g)
    assert not np.shares_memory(a.grad, g)
    np.testing.assert_array_equal(a.grad, g)


@given(
    hnp.array_shapes(min_dims=0, max_dims=4, max_side=3),
    hnp.array_shapes(min_dims=0, max_dims=4, max_side=3),
)
def test_broadcast_check_agrees_with_numpy(sa, sb):
    from minialign.autograd.ops import _check_broadcast

    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        with pytest.raises(ValueError, match="cannot be broadcast together"):
            _check_broadcast(sa, sb)
    else:
        _check_broadcast(sa, sb)
