"""The op registry, run through PyTorch's float64 autograd: same values, same gradients.

Each case in `tests/strategies.OP_CASES` that names a PyTorch equivalent is computed
both ways on the same inputs, and both backward passes are seeded with the same
random upstream gradient G (drawn by hypothesis).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_registry import OP_CASES, as_leaves
from strategies import floats

torch = pytest.importorskip("torch")

CASES = [pytest.param(c, id=c.name) for c in OP_CASES if c.torch is not None]


def _torch_leaf(a):
    return torch.tensor(np.array(a, order="C"), dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_values_and_gradients_match_torch(case, data):
    arrays, params = data.draw(case.inputs, label="inputs")
    ours = as_leaves(arrays)
    theirs = [_torch_leaf(a) for a in arrays]
    y = case.op(*ours, **params)
    y_t = case.torch(torch, *theirs, **params)
    assert tuple(y_t.shape) == y.shape, f"{case.name}: torch {tuple(y_t.shape)} vs {y.shape}"
    np.testing.assert_allclose(y.data, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)

    G = data.draw(hnp.arrays(np.float64, y.shape, elements=floats()), label="G")
    y.backward(G)
    y_t.backward(torch.from_numpy(G))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad
        np.testing.assert_allclose(
            got, expected, rtol=1e-9, atol=1e-12, err_msg=f"{case.name}: input {k}"
        )


def test_every_case_except_dropout_is_cross_checked():
    assert {c.name for c in OP_CASES if c.torch is None} == {"dropout"}


# Conventions at kinks and ties are minialign's own choice, pinned by test_ops.py
# (test_gradient_conventions_at_kinks_and_ties). PyTorch is compared only where its
# convention has stayed put across releases; where it moved, the versions are named.
TORCH_MOVED = {
    "clip at bounds": "torch 2.13 passes the gradient at a bound (1), 2.14 does not (0)",
}


def test_kink_and_tie_conventions_match_torch_where_torch_is_stable():
    from test_ops import KINKS

    torch_fns = {
        "relu at 0": torch.relu,
        "abs at 0": torch.abs,
        "clip at bounds": lambda x: torch.clamp(x, -1.0, 1.0),
        "max ties share": torch.amax,
        "min ties share": lambda x: torch.amin(x, dim=0),
        "maximum tie splits": lambda x: torch.maximum(x, torch.tensor(1.0, dtype=x.dtype)),
        "minimum tie splits": lambda x: torch.minimum(x, torch.tensor(1.0, dtype=x.dtype)),
    }
    assert set(torch_fns) == set(KINKS)
    for name, (_, x, expected) in KINKS.items():
        if name in TORCH_MOVED:
            continue
        t = _torch_leaf(np.array(x))
        torch_fns[name](t).sum().backward()
        np.testing.assert_array_equal(t.grad.numpy(), expected, err_msg=name)
