"""Tensor's operators and NumPy-named methods: each one line that calls an op.

`engine.Tensor` inherits them from `TensorMethods`, so ``a + b``, ``a @ w``,
``x.sum(axis=-1)`` and ``x.T`` work as on an ``np.ndarray``. Nothing here computes
anything: the op and its backward live in `ops.py`, `reductions.py` and
`shape_ops.py`. ``ops`` is imported on first use because it imports the engine.
"""

from __future__ import annotations


def _ops():
    from . import ops

    return ops


def _raw(x):
    return x.data if isinstance(x, TensorMethods) else x


def _mask(values):
    """A boolean Tensor that carries no gradient."""
    from .engine import Tensor

    return Tensor(values)


class TensorMethods:
    """Mixed into `engine.Tensor`; ``self`` is always a Tensor."""

    # -- arithmetic operators (the reflected ``__r*__`` run when the left operand is
    #    a number or an ndarray: ``2 * x``, ``ndarray + x``)
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __pow__(self, other):
        return _ops().power(self, other)

    def __rpow__(self, other):
        return _ops().power(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __abs__(self):
        return _ops().abs(self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    # -- comparisons give boolean tensors that carry no gradient (masks)
    def __lt__(self, other):
        return _mask(self.data < _raw(other))

    def __le__(self, other):
        return _mask(self.data <= _raw(other))

    def __gt__(self, other):
        return _mask(self.data > _raw(other))

    def __ge__(self, other):
        return _mask(self.data >= _raw(other))

    # -- methods with NumPy's names
    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops().min(self, axis, keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return _ops().var(self, axis, ddof, keepdims)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def tanh(self):
        return _ops().tanh(self)

    def relu(self):
        return _ops().relu(self)

    def abs(self):
        return _ops().abs(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def clip(self, lo=None, hi=None):
        return _ops().clip(self, lo, hi)

    def astype(self, dtype):
        return _ops().astype(self, dtype)

    def reshape(self, *shape):
        return _ops().reshape(self, *shape)

    def transpose(self, *axes):
        return _ops().transpose(self, *axes)

    @property
    def T(self):
        return _ops().transpose(self)

    def swapaxes(self, a, b):
        return _ops().swapaxes(self, a, b)

    def broadcast_to(self, shape):
        return _ops().broadcast_to(self, shape)

    expand = broadcast_to

    def masked_fill(self, mask, value):
        return _ops().masked_fill(self, mask, value)
