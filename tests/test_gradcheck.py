"""gradcheck itself must fail on a wrong backward, and say clearly where."""

import re

import numpy as np
import pytest

import minialign as ma
from minialign.autograd.engine import as_tensor, make_result
from minialign.gradcheck import GradcheckError, gradcheck, gradcheck_directional


def square_ignoring_upstream(x):
    """x**2 whose backward forgets to multiply by g: correct only when g is all ones."""
    x = as_tensor(x)
    return make_result(x.data**2, (x,), lambda g: (2 * x.data,), "bad_square")


def square(x):
    x = as_tensor(x)
    return make_result(x.data**2, (x,), lambda g: (g * 2 * x.data,), "square")


def scale_rows_swapped(x):
    """Multiplies row i by (i + 1) but routes the gradient to the wrong row."""
    x = as_tensor(x)
    w = np.arange(1.0, x.shape[0] + 1)[:, None]
    return make_result(x.data * w, (x,), lambda g: ((g * w)[::-1],), "bad_rows")


def test_sum_seeding_would_miss_the_bug():
    """The reason for a random G: with G = 1 the wrong backward looks right."""
    x = ma.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    square_ignoring_upstream(x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_gradcheck_catches_a_backward_that_ignores_the_upstream_gradient():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(square_ignoring_upstream, [x], name="bad_square")
    msg = str(info.value)
    assert "bad_square" in msg  # which op
    assert "input 0" in msg  # which input
    assert "at index (" in msg  # which entry
    assert "(2, 3)" in msg  # shapes
    assert "expected" in msg and "received" in msg  # numeric vs autograd


def test_gradcheck_names_the_second_input_and_index():
    def f(a, b):
        return a + scale_rows_swapped(b)

    a, b = np.ones((3, 2)), np.arange(6.0).reshape(3, 2)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 2\)\) at index \(0, 0\)"):
        gradcheck(f, [a, b], name="f")


def test_gradcheck_passes_correct_ops_and_reports_values():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert gradcheck(square, [x], name="square")
    assert gradcheck(lambda a, b: (a @ b).tanh(), [x, x.T.copy()], name="tanh(a@b)")


def test_gradcheck_expected_value_is_the_true_derivative():
    """The 'expected' number in the message is the central difference, the true <G, f'>."""
    x = np.array([3.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: square_ignoring_upstream(t) * 1.0, [x], rng=np.random.default_rng(1))
    G = np.random.default_rng(1).standard_normal((1,))
    expected = float(re.search(r"expected (\S+)", str(info.value)).group(1))
    received = float(re.search(r"received (\S+)", str(info.value)).group(1))
    assert expected == pytest.approx(2 * 3.0 * G[0], rel=1e-6)
    assert received == pytest.approx(2 * 3.0, rel=1e-12)  # the wrong one: G ignored


def test_gradcheck_rejects_float32_leaves():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(square, [ma.tensor(np.ones(2, np.float32), requires_grad=True)])


def test_gradcheck_rejects_non_finite_outputs():
    with np.errstate(divide="ignore"):
        with pytest.raises(GradcheckError, match="non-finite"):
            gradcheck(ma.log, [np.array([0.0, 1.0])])


def test_gradcheck_skips_integer_inputs():
    ids = np.array([0, 2, 2])
    assert gradcheck(lambda w, i: w[i] * 2.0, [np.arange(6.0).reshape(3, 2), ids])


def test_directional_gradcheck_on_large_inputs(rng):
    W = rng.standard_normal((64, 48))
    x = rng.standard_normal((32, 64))

    def mlp(x, W):
        return ma.tanh(x @ W).sum(axis=0)

    assert gradcheck_directional(mlp, [x, W], n_directions=3, name="mlp")


def test_directional_gradcheck_catches_a_wrong_backward(rng):
    x = rng.standard_normal((40, 30))
    with pytest.raises(GradcheckError, match="directional gradcheck of bad_rows"):
        gradcheck_directional(scale_rows_swapped, [x], name="bad_rows")
    with pytest.raises(GradcheckError, match="expected .* received"):
        gradcheck_directional(square_ignoring_upstream, [x], name="bad_square")


def test_directional_gradcheck_restores_parameters_in_place(rng):
    W = ma.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    before = W.data.copy()
    x = rng.standard_normal((3, 5))
    assert gradcheck_directional(lambda _W: (ma.tensor(x) @ W).exp().sum(), [W])
    np.testing.assert_array_equal(W.data, before)


def test_finite_differences_run_under_no_grad(rng):
    """Only the one analytic pass records a graph; the 2 evaluations per entry (or per
    direction) are forward passes under no_grad, and the check still passes or fails."""
    modes = []

    def f(x):
        modes.append(ma.is_grad_enabled())
        return ma.tanh(x) * x

    x = rng.standard_normal((2, 3))
    assert gradcheck(f, [x])
    assert modes == [True] + [False] * (2 * x.size)
    modes.clear()
    assert gradcheck_directional(f, [x], n_directions=4)
    assert modes == [True] + [False] * (2 * 4)
    assert ma.is_grad_enabled()  # restored afterwards
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(square_ignoring_upstream, [x])
    assert ma.is_grad_enabled()  # restored after a failure too
