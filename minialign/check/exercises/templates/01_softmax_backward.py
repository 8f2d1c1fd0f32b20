r"""Exercise 1: softmax, forward and backward, as one autograd op.

Write ``softmax(x)`` over the last axis as a single node of minialign's autograd: compute
the output with NumPy, and hand ``engine.make_result`` a closure that turns the upstream
gradient $\bar y = \partial L/\partial y$ into $\bar x = \partial L/\partial x$.

$$y_i = \frac{e^{x_i}}{\sum_j e^{x_j}}, \qquad
  \frac{\partial y_i}{\partial x_k} = y_i(\delta_{ik} - y_k), \qquad
  \bar x_k = \sum_i \bar y_i \frac{\partial y_i}{\partial x_k}
           = y_k\Big(\bar y_k - \sum_i \bar y_i\, y_i\Big)$$

Two things the grader probes: logits of $\pm 10^4$ (``np.exp(1e4)`` overflows; softmax
does not change when one constant is added to a whole row, so subtract the row's maximum
first), and a backward that forgets to multiply by $\bar y$ (it is graded with a
non-constant $\bar y$ and against central differences of your own forward pass).

Grade this file:  minialign check --exercises 01_softmax_backward.py

Notebook: notebooks/00_autograd.ipynb, §6 "Fused ops: softmax, log-softmax, and stability"
and §7 "Gradient checking, and why a random upstream gradient"
"""

import numpy as np

from minialign.autograd import engine


def softmax(x):
    """Softmax over the last axis of ``x`` (a Tensor or an array), as one autograd node."""
    x = engine.as_tensor(x)
    # --- solution ---
    e = np.exp(x.data - x.data.max(axis=-1, keepdims=True))  # every exponent <= 0
    y = e / e.sum(axis=-1, keepdims=True)

    def backward(g):  # g = dL/dy, the shape of y; returns (dL/dx,)
        return (y * (g - (g * y).sum(axis=-1, keepdims=True)),)

    return engine.make_result(y, (x,), backward, "softmax")
    # --- exercise ---
    # raise NotImplementedError(
    #     "exercise: compute y from x.data, write backward(g), return engine.make_result(...)"
    # )
    # --- end ---
