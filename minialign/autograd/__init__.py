"""minialign.autograd: a reverse-mode autograd on NumPy. Imports nothing else from minialign."""

from . import functional, ops
from .engine import (
    Tensor,
    data_of,
    default_rng,
    detect_anomaly,
    get_rng,
    is_grad_enabled,
    no_grad,
    seed,
    tensor,
    unbroadcast,
)
from .gradcheck import gradcheck, gradcheck_directional
from .ops import (
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
    maximum,
    mean,
    minimum,
    relu,
    reshape,
    split,
    sqrt,
    stack,
    swapaxes,
    take_along_axis,
    tanh,
    transpose,
    var,
    where,
)
