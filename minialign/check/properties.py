"""Named properties, and the ones every objective shares.

A `Property` pairs a name a person can read ("GAE with λ = 1 is the Monte-Carlo
advantage") with a hypothesis strategy of `Case` s and a test ``test(ctx, case)``. A
`Spec` is what `check` needs for one name: the reference (minialign's function with the
conventions applied) and the list of properties. The shared properties:

* **value = minialign's** (and **gradient = minialign's** under an autograd framework);
* **gradient = central differences** of the function's *own* value,
  $\\partial\\phi/\\partial x_i \\approx (\\phi(x + \\varepsilon e_i) - \\phi(x - \\varepsilon e_i))/2\\varepsilon$
  with $\\phi = \\langle G, f(x) \\rangle$: it separates "the backward is wrong" from
  "the formula is wrong";
* **padding never changes a result**: two more positions of garbage, masked out, leave
  every valid value and gradient unchanged and receive no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .context import Case, Ctx
from .strategies import GARBAGE, pad


@dataclass(frozen=True)
class Property:
    name: str
    cases: object  # a hypothesis strategy of Case
    test: Callable[[Ctx, Case], None]
    examples: int | None = None  # fewer than max_examples for the expensive ones


@dataclass(frozen=True)
class Spec:
    reference: Callable  # options -> the reference function
    properties: Callable  # ctx -> [Property]
    to_user: Callable | None = None  # options -> (case -> the case the user's function gets)


def agrees(ctx: Ctx, cases, name: str, valid_only: bool = True) -> list[Property]:
    """value (and gradient) = minialign's, and gradient = central differences.

    ``valid_only``: compare a per-token output at valid positions only (padding may hold
    anything), as for every objective except TRL's score placed after the last token."""
    same_value = _same_value if valid_only else _same_full_value
    props = [Property(f"value = minialign's {name}", cases, same_value)]
    if ctx.autograd:
        props.append(Property(f"gradient = minialign's {name}", cases, _same_gradient))
        props.append(
            Property("gradient = central differences of your own function", cases, _central, 12)
        )
    return props


def _same_value(ctx: Ctx, case: Case) -> None:
    """Per-token outputs are compared at valid positions only (padding may hold anything)."""
    got, expected = ctx.run(case).value, ctx.ref(case).value
    if case.mask is not None:
        width = case.mask.shape[-1]
        got, expected = _valid(got, case.mask, width), _valid(expected, case.mask, width)
    ctx.close(got, expected)


def _same_full_value(ctx: Ctx, case: Case) -> None:
    ctx.close(ctx.run(case).value, ctx.ref(case).value)


def _same_gradient(ctx: Ctx, case: Case) -> None:
    ctx.grads_close(ctx.run(case), ctx.ref(case).grads)


def _central(ctx: Ctx, case: Case, eps: float = 1e-6) -> None:
    got = ctx.run(case)
    G = got.upstream

    def phi(c: Case) -> float:
        value = ctx.value(c).value
        return float(np.sum(G * np.reshape(value, G.shape))) if np.size(value) == G.size else np.nan

    numeric = {}
    for name in ctx.entry.differentiable:
        x = case[name]
        d = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[idx] += eps
            lo[idx] -= eps
            d[idx] = (phi(case.replace(**{name: hi})) - phi(case.replace(**{name: lo}))) / (2 * eps)
        numeric[name] = d
    ctx.grads_close(got, numeric, rtol=1e-5, atol=1e-7)


def padding(ctx: Ctx, cases, token_args: tuple[str, ...], k: int = 2) -> Property:
    """Padding never changes a result (only if the function takes a ``mask``)."""

    def test(ctx: Ctx, case: Case) -> None:
        mask = case.mask
        T = mask.shape[-1]
        padded = {n: pad(case[n], k, GARBAGE) for n in token_args if case.get(n) is not None}
        padded["mask"] = pad(mask, k, 0.0)
        a = ctx.run(case)
        b = ctx.run(case.replace(**padded), f"the same inputs with {k} padded positions")
        ctx.close(_valid(b.value, mask, T + k), _valid(a.value, mask, T), "value after padding")
        expected = {n: pad(g, k, 0.0) for n, g in a.grads.items() if g is not None}
        ctx.grads_close(b, expected)

    return Property("padding never changes a result", cases, test)


def _valid(value, mask: np.ndarray, width: int):
    """A per-token output of ``width`` positions (``mask``'s, or more after padding) cut to
    ``mask``'s positions and set to 0 where padded; anything else (a scalar) as it is."""
    if isinstance(value, tuple):
        return tuple(_valid(v, mask, width) for v in value)
    value = np.asarray(value)
    if value.shape == mask.shape[:-1] + (width,):
        return np.where(mask > 0, value[..., : mask.shape[-1]], 0.0)
    return value


def masked_mean(x: np.ndarray, mask) -> float:
    """$\\sum m x / \\sum m$ (all positions if ``mask`` is None)."""
    m = np.ones_like(x) if mask is None else mask
    return float((x * m).sum() / m.sum())
