"""Check autograd against central differences, in float64.

For a function $y = f(x_1, \\dots, x_k)$ of any output shape we draw a random
upstream gradient $G$ (same shape as $y$) and compare the gradient of the scalar
$\\phi(x) = \\langle G, f(x) \\rangle$ computed by ``backward(G)`` with

$$\\frac{\\partial \\phi}{\\partial x_{i}} \\approx
  \\frac{\\phi(x + \\varepsilon e_i) - \\phi(x - \\varepsilon e_i)}{2 \\varepsilon}.$$

A random $G$ (rather than ``.sum()``, i.e. $G = 1$) catches a backward that forgets
to multiply by the upstream gradient, or mixes up its positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .engine import Tensor, data_of, get_rng, no_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with central differences."""


def _prepare(inputs: Sequence) -> tuple[list, list[int]]:
    """Float inputs become float64 leaves that require grad; others pass through."""
    prepared, wrt = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != np.float64:
                raise TypeError(f"gradcheck: input {i} is {x.dtype}; gradcheck needs float64")
            prepared.append(x)
            wrt.append(i)
        elif isinstance(x, (Tensor, np.ndarray)) and np.issubdtype(
            np.asarray(data_of(x)).dtype, np.floating
        ):
            prepared.append(Tensor(np.array(data_of(x), dtype=np.float64), requires_grad=True))
            wrt.append(i)
        else:
            prepared.append(x)
    if not wrt:
        raise ValueError("gradcheck: no floating-point input to differentiate")
    return prepared, wrt


def _phi(f, inputs, G) -> float:
    """$\\phi = \\langle G, f(x) \\rangle$: a forward pass only, so no graph is recorded."""
    with no_grad():
        out = f(*inputs)
    return float(np.sum(G * data_of(out)))


def _analytic(f, inputs, wrt, rng):
    for i in wrt:
        inputs[i].grad = None
    out = f(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
    if not np.all(np.isfinite(out.data)):
        raise GradcheckError(
            f"gradcheck: f returned non-finite values at the test point: {out.data}"
        )
    G = rng.standard_normal(out.shape)
    out.backward(G)
    grads = [
        np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.copy() for i in wrt
    ]
    return G, grads


def gradcheck(
    f: Callable[..., Tensor],
    inputs: Sequence,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    rng: np.random.Generator | None = None,
    name: str = "f",
) -> bool:
    """Compare every entry of every float input's gradient with central differences.

    Returns True, or raises `GradcheckError` naming the input, the index, the
    shapes, and the expected (numeric) and received (autograd) values.
    """
    rng = get_rng(rng) if rng is not None else np.random.default_rng(0)
    inputs, wrt = _prepare(inputs)
    G, grads = _analytic(f, inputs, wrt, rng)
    for k, i in enumerate(wrt):
        x = inputs[i].data
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            saved = x[idx]
            x[idx] = saved + eps
            plus = _phi(f, inputs, G)
            x[idx] = saved - eps
            minus = _phi(f, inputs, G)
            x[idx] = saved
            numeric[idx] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(grads[k], numeric, rtol=rtol, atol=atol)
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck of {name}: input {i} (shape {x.shape}) at index {idx}: "
                f"expected {numeric[idx]:.10g} (central differences), received {grads[k][idx]:.10g} "
                f"(autograd); {int(bad.sum())} of {bad.size} entries differ "
                f"(rtol={rtol}, atol={atol}); input shapes {[np.shape(data_of(x)) for x in inputs]}"
            )
    return True


def gradcheck_directional(
    f: Callable[..., Tensor],
    inputs: Sequence,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    n_directions: int = 3,
    rng: np.random.Generator | None = None,
    name: str = "f",
) -> bool:
    """A cheaper check for large inputs (a whole model): along random directions $v$,

    $$\\sum_i \\langle \\nabla_{x_i} \\phi, v_i \\rangle \\approx
      \\frac{\\phi(x + \\varepsilon v) - \\phi(x - \\varepsilon v)}{2 \\varepsilon}.$$

    Inputs that are Tensors with ``requires_grad`` (e.g. a model's float64 parameters)
    are perturbed in place and restored; ``f`` may then ignore its arguments.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    inputs, wrt = _prepare(inputs)
    G, grads = _analytic(f, inputs, wrt, rng)
    for _ in range(n_directions):
        vs = [rng.standard_normal(inputs[i].shape) for i in wrt]
        received = sum(float(np.sum(g * v)) for g, v in zip(grads, vs))
        originals = [inputs[i].data.copy() for i in wrt]

        def phi_at(step: float, vs=vs, originals=originals) -> float:
            for i, v, x0 in zip(wrt, vs, originals):
                inputs[i].data[...] = x0 + step * v
            return _phi(f, inputs, G)

        plus, minus = phi_at(+eps), phi_at(-eps)
        for i, x0 in zip(wrt, originals):
            inputs[i].data[...] = x0
        expected = (plus - minus) / (2 * eps)
        if not np.isclose(received, expected, rtol=rtol, atol=atol):
            raise GradcheckError(
                f"directional gradcheck of {name}: expected {expected:.10g} (central differences), "
                f"received {received:.10g} (autograd) along a random direction; "
                f"input shapes {[np.shape(data_of(inputs[i])) for i in wrt]}"
            )
    return True
