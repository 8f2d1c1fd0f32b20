"""minialign: how language models are aligned, built from scratch in NumPy.

::

    import minialign as ma
    x = ma.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # array([2., 4.])
"""

from .autograd import (
    Tensor,
    default_rng,
    detect_anomaly,
    is_grad_enabled,
    no_grad,
    seed,
    tensor,
)
from .autograd.ops import (
    abs,
    broadcast_to,
    clip,
    concatenate,
    exp,
    expand,
    gather,
    log,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    relu,
    reshape,
    split,
    sqrt,
    stack,
    sum,
    swapaxes,
    take_along_axis,
    tanh,
    transpose,
    var,
    where,
)

__version__ = "0.1.0"
