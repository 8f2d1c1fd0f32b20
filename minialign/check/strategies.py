"""Hypothesis strategies for the inputs of the objectives (imported only by `check`).

Everything random is drawn through hypothesis, so a failure shrinks to a small, readable
input (few rows, short rows, round numbers) and replays exactly. Masks are right-padded
(valid tokens first); they are drawn as the number of *padded* positions per row, so they
shrink toward "no padding" and a counterexample has padding only when padding matters.
Padded positions may hold anything: `pad` fills them with finite garbage.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .context import Case

GARBAGE = np.array([29.0, -17.0, 3.5, -30.0])  # what padded slots hold: finite, not small


def floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape, lo: float = -3.0, hi: float = 3.0, elements=None):
    """A float64 array of ``shape`` with elements in [lo, hi] (or drawn from ``elements``)."""
    return hnp.arrays(np.float64, tuple(shape), elements=elements or floats(lo, hi))


def sizes(max_b: int = 3, max_t: int = 4, min_t: int = 1):
    """(B, T): rows and positions per row."""
    return st.tuples(st.integers(1, max_b), st.integers(min_t, max_t))


@st.composite
def right_padded(draw, B: int, T: int, empty_rows: bool = True) -> np.ndarray:
    """A (B, T) 0./1. mask, each row 1...1 0...0, with at least one valid position in all.

    ``empty_rows``: whether a row may be all padding (legal for per-token targets and for
    losses that average over the batch's tokens)."""
    most = T if empty_rows else T - 1
    padded = np.array(draw(st.lists(st.integers(0, most), min_size=B, max_size=B)))
    lengths = T - padded
    if lengths.sum() == 0:
        lengths[0] = 1
    return (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)


def pad(x: np.ndarray, k: int, fill) -> np.ndarray:
    """``x`` (..., T) with ``k`` more positions on the last axis, filled from ``fill``."""
    extra = np.resize(np.asarray(fill, dtype=np.float64), x.shape[:-1] + (k,))
    return np.concatenate([x, extra], axis=-1)


def with_mask(ctx, B: int, T: int, empty_rows: bool = True):
    """A mask strategy if the function takes ``mask``, else ``just(None)``."""
    return right_padded(B, T, empty_rows) if ctx.accepts("mask") else st.just(None)


def options(ctx, choices: dict):
    """Draw a value for each keyword option the function accepts: {name: strategy}."""
    return st.fixed_dictionaries({k: s for k, s in choices.items() if ctx.accepts(k)})


@st.composite
def token_case(draw, ctx, names, log_ratio=(-1.0, 1.0), extra=None, empty_rows=True):
    """A Case of per-token log-probs (B, T): ``names[0]`` = ``names[1]`` + a log-ratio.

    ``extra`` maps more argument names to strategies of a (B, T) -> value function."""
    B, T = draw(sizes())
    old = draw(arrays((B, T), -5.0, 0.0))
    args = {names[0]: old + draw(arrays((B, T), *log_ratio)), names[1]: old}
    for name, make in (extra or {}).items():
        args[name] = draw(make(B, T))
    mask = draw(with_mask(ctx, B, T, empty_rows))
    return Case(args, {} if mask is None else {"mask": mask})
