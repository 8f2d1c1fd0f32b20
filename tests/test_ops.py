"""Every registered op: forward equals NumPy, backward equals central differences.

The registry lives in `tests/strategies.py` (shared with the PyTorch cross-check).
Inputs are float64 and are often non-contiguous views (transposed or strided), so
an op that assumes C order shows up here. ``gradcheck`` uses a random upstream
gradient G, so a backward that ignores G (and would pass with ``.sum()``) fails.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_registry import OP_CASES, as_leaves

import minialign as ma
from minialign.gradcheck import gradcheck

CASES = [pytest.param(case, id=case.name) for case in OP_CASES]


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_forward_matches_numpy(case, data):
    arrays, params = data.draw(case.inputs, label="inputs")
    out = case.op(*as_leaves(arrays), **params)
    expected = case.ref(*arrays, **params)
    assert isinstance(out, ma.Tensor)
    assert out.shape == np.shape(expected), (
        f"{case.name}: shape {out.shape} != {np.shape(expected)}"
    )
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12, err_msg=case.name)


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_gradient_matches_central_differences(case, data):
    arrays, params = data.draw(case.inputs, label="inputs")
    gradcheck(lambda *xs: case.op(*xs, **params), as_leaves(arrays), rtol=1e-5, name=case.name)


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_float32_in_float32_out(case, data):
    """Ops keep float32 data and gradients float32 (model parameters are float32)."""
    arrays, params = data.draw(case.inputs, label="inputs")
    leaves = [ma.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = case.op(*leaves, **params)
    assert out.dtype == np.float32, f"{case.name} returned {out.dtype}"
    out.backward(np.ones(out.shape, dtype=np.float32))
    for leaf in leaves:
        assert leaf.grad is not None and leaf.grad.dtype == np.float32, case.name


def test_registry_covers_every_op_in_the_brief():
    names = {case.name for case in OP_CASES}
    required = {
        "add", "sub", "mul", "div", "pow", "scalar-x", "x**3", "2**x", "neg", "matmul", "exp",
        "log", "tanh", "relu", "abs", "sqrt", "maximum", "minimum", "clip", "where", "sum",
        "mean", "max", "min", "var", "reshape", "transpose", "T", "swapaxes", "broadcast_to",
        "expand", "concatenate", "stack", "split", "getitem_basic", "getitem_fancy",
        "take_along_axis", "masked_fill", "softmax", "log_softmax", "logsumexp", "sigmoid",
        "logsigmoid", "softplus", "cross_entropy", "gelu", "layer_norm", "embedding", "dropout",
    }  # fmt: skip
    assert required <= names, required - names


# -- specific cases the random search might take long to hit -----------------------------


def test_repeated_fancy_index_accumulates():
    x = ma.tensor(np.arange(4.0), requires_grad=True)
    x[[0, 0, 2, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [7.0, 0.0, 3.0, 0.0])


def test_repeated_take_along_axis_accumulates():
    x = ma.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = ma.take_along_axis(x, np.array([[1, 1, 1], [0, 2, 0]]), axis=1)
    out.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, [[0, 3, 0], [2, 0, 1]])


def test_negative_step_slice_gradient():
    x = ma.tensor(np.arange(5.0), requires_grad=True)
    x[::-2].backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 2.0, 0.0, 1.0])


def test_boolean_mask_index_gradient():
    x = ma.tensor(np.arange(4.0), requires_grad=True)
    x[np.array([True, False, True, True])].backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 2.0, 3.0])


def test_transpose_with_negative_axes():
    x = ma.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = x.transpose(-1, 0, 1)
    assert y.shape == (4, 2, 3)
    g = np.arange(24.0).reshape(4, 2, 3)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, np.transpose(g, (1, 2, 0)))


def test_split_pieces_equal_numpy():
    x = ma.tensor(np.arange(10.0).reshape(2, 5), requires_grad=True)
    pieces = ma.split(x, [1, 3], axis=1)
    for p, q in zip(pieces, np.split(x.data, [1, 3], axis=1)):
        np.testing.assert_array_equal(p.data, q)
    pieces[1].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 1, 0, 0]] * 2)
    assert [p.shape for p in ma.split(x, 5, axis=-1)] == [(2, 1)] * 5  # equal sections


def test_matmul_vector_vector_gives_0d():
    a = ma.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = ma.tensor([4.0, 5.0, 6.0], requires_grad=True)
    out = a @ b
    assert out.shape == () and out.item() == 32.0
    out.backward()
    np.testing.assert_array_equal(a.grad, b.data)
    np.testing.assert_array_equal(b.grad, a.data)


def test_ndarray_on_the_left_dispatches_to_tensor():
    x = ma.tensor(np.ones((2, 2)), requires_grad=True)
    for out in (np.ones(2) + x, np.ones(2) - x, np.eye(2) @ x, np.full(2, 2.0) * x):
        assert isinstance(out, ma.Tensor)


# -- conventions exactly at kinks and ties (PyTorch's; the random cases avoid these points) --

KINKS = {
    # name: (function, input, expected gradient under G = 1)
    "relu at 0": (ma.relu, [0.0, 1.0], [0.0, 1.0]),
    "abs at 0": (ma.abs, [0.0, -2.0], [0.0, -1.0]),
    "clip at bounds": (lambda x: x.clip(-1.0, 1.0), [-1.0, 1.0, 2.0], [1.0, 1.0, 0.0]),
    "max ties share": (lambda x: x.max(), [3.0, 1.0, 3.0], [0.5, 0.0, 0.5]),
    "min ties share": (lambda x: x.min(axis=0), [[1.0, 2.0], [1.0, 0.0]], [[0.5, 0], [0.5, 1]]),
    "maximum tie splits": (lambda x: ma.maximum(x, 1.0), [1.0, 2.0, 0.0], [0.5, 1.0, 0.0]),
    "minimum tie splits": (lambda x: ma.minimum(x, 1.0), [1.0, 2.0, 0.0], [0.5, 0.0, 1.0]),
}


@pytest.mark.parametrize("name", KINKS)
def test_gradient_conventions_at_kinks_and_ties(name):
    f, x, expected = KINKS[name]
    t = ma.tensor(np.array(x), requires_grad=True)
    f(t).sum().backward()
    np.testing.assert_array_equal(t.grad, expected)
