"""No int64-only NumPy paths: the library must run in Pyodide, where ``intp`` is int32.

On wasm32 (Pyodide 0.27.7, NumPy 2.0.2) these calls raise ``TypeError: Cannot cast array
data from dtype('int64') to dtype('int32') according to the rule 'safe'`` when handed an
int64 index array, because they convert it to ``intp`` with safe casting: ``np.bincount``,
``np.take``, ``np.put``, ``np.choose`` and ``np.repeat`` with an array of repeats. Fancy
indexing, ``np.add.at``, ``take_along_axis`` and ``put_along_axis`` accept int64 there.
(Measured by running each call in Pyodide; tools/build_lite.py builds that Pyodide.)

On a 64-bit machine int64 *is* intp, so nothing fails. Inside ``wasm32_intp()``,
``np.intp`` is int32 as on wasm32 and these functions refuse arrays wider than int32
when minialign's own modules call them, so the tests below fail on a 64-bit machine
where the browser would. (Slightly stricter than wasm32: an index array that NumPy made,
e.g. from ``argsort``, is int64 here and int32 there; cast it with ``astype(np.intp)``.)
"""

from __future__ import annotations

import contextlib
import functools
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.pretrained import make_task
from minialign.train import unigram_entropy

# function name -> the positional index and keyword of its intp argument
STRICT = {"bincount": (0, "x"), "take": (1, "indices"), "put": (1, "ind"),
          "choose": (0, "a"), "repeat": (1, "repeats")}  # fmt: skip


def _rejects_on_wasm32(value) -> bool:
    """True if wasm32 NumPy refuses to cast this index argument to int32 safely."""
    return (
        isinstance(value, np.ndarray)
        and value.ndim > 0
        and value.dtype.kind in "iu"
        and not np.can_cast(value.dtype, np.int32, "safe")
    )


def _strict(name: str, original, position: int, keyword: str):
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        value = args[position] if len(args) > position else kwargs.get(keyword)
        if caller.startswith("minialign") and _rejects_on_wasm32(value):
            raise TypeError(
                f"np.{name} called from {caller} with a {value.dtype} array: "
                f"Cannot cast array data from dtype('{value.dtype}') to dtype('int32') "
                "according to the rule 'safe' (wasm32, where intp is int32)"
            )
        return original(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def wasm32_intp():
    """Within the block ``np.intp`` is int32 and minialign's calls to the STRICT functions
    refuse int64 index arrays, as on wasm32."""
    saved = {name: getattr(np, name) for name in [*STRICT, "intp"]}
    try:
        for name, (position, keyword) in STRICT.items():
            setattr(np, name, _strict(name, saved[name], position, keyword))
        np.intp = np.int32
        yield
    finally:
        for name, original in saved.items():
            setattr(np, name, original)


def _call_as_library(source: str, **names):
    """Evaluate ``source`` as if written in a minialign module (what the guard checks)."""
    return eval(source, {"__name__": "minialign._probe", "np": np, **names})


def test_the_guard_rejects_int64_like_wasm32_and_accepts_intp():
    int64 = np.array([0, 1, 1], dtype=np.int64)
    with wasm32_intp():
        for source in ["np.bincount(x)", "np.take(a, x)", "np.put(a, x, 1.0)", "np.repeat(a, x)",
                       "np.choose(x, [a, a])"]:  # fmt: skip
            with pytest.raises(TypeError, match="Cannot cast"):
                _call_as_library(source, x=int64, a=np.arange(3.0))
            _call_as_library(source, x=int64.astype(np.intp), a=np.arange(3.0))  # the fix
        assert np.bincount(int64).tolist() == [1, 2]  # tests and NumPy itself are not guarded
    assert _call_as_library("np.bincount(x)", x=int64).tolist() == [1, 2]  # restored after


token_arrays = st.integers(1, 6).flatmap(
    lambda b: st.integers(1, 8).flatmap(
        lambda t: st.tuples(
            st.lists(st.integers(0, 30), min_size=b * t, max_size=b * t),
            st.lists(st.booleans(), min_size=b * t, max_size=b * t),
            st.just((b, t)),
        )
    )
)


@given(token_arrays)
def test_unigram_entropy_takes_int64_tokens_on_wasm32(data):
    values, keep, shape = data
    tokens = np.array(values, dtype=np.int64).reshape(shape)
    mask = np.array(keep).reshape(shape)
    mask.flat[0] = True  # at least one token counts
    expected = unigram_entropy(tokens, mask)
    with wasm32_intp():
        assert unigram_entropy(tokens, mask) == expected
        assert unigram_entropy(tokens.astype(np.int32), mask) == expected


@given(st.data())
def test_sentiment_true_reward_takes_int64_ids_on_wasm32(data):
    task = make_task("sentiment")
    V = task.tokenizer.vocab_size
    B = data.draw(st.integers(1, 5), label="B")
    T = data.draw(st.integers(1, 9), label="T")
    flat = data.draw(st.lists(st.integers(0, V - 1), min_size=B * T, max_size=B * T), label="ids")
    ids = np.array(flat, dtype=np.int64).reshape(B, T)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T))).reshape(
        B, T
    )
    expected = task.true_reward(ids, mask)
    with wasm32_intp():
        np.testing.assert_array_equal(task.true_reward(ids, mask), expected)
        np.testing.assert_array_equal(task.true_reward(ids.astype(np.int32), mask), expected)
