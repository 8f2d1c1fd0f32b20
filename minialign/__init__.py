"""minialign: how language models are aligned, built from scratch in NumPy.

::

    import minialign as ma
    x = ma.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # array([2., 4.])

Importing minialign tunes glibc's malloc for speed (``MINIALIGN_TUNE_MALLOC=0`` turns
that off); `minialign.perf` explains why.
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
from .perf import tune_on_import

# Keep NumPy's large temporaries inside the process instead of returning them to the OS
# after every step (glibc only; ``MINIALIGN_TUNE_MALLOC=0`` turns it off): see minialign.perf.
tune_on_import()

__version__ = "0.1.0"
