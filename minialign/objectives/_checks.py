"""Argument checks and masked reductions shared by the objectives.

Every check raises a ``ValueError`` that names the function, the argument, what it
received and what was expected. Two rules about padding live here:

* a non-finite value in a *valid* position is an error (NaN in a loss is never a result);
* whatever sits in a *padded* position (NaN, inf, garbage) is replaced by 0 with
  ``masked_fill`` before any arithmetic, so it can reach neither the value nor the
  gradient (``NaN * 0`` is NaN, so multiplying by the mask would not be enough).
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.engine import Tensor, as_tensor, data_of


def raw(x) -> np.ndarray:
    return np.asarray(data_of(x))


def mask_arg(fn: str, mask, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean mask of exactly ``shape`` (``None`` means every position is valid)."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = raw(mask)
    if m.shape != shape:
        raise ValueError(f"{fn}: mask has shape {m.shape}, expected {shape} (same as the values)")
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"{fn}: mask must hold only 0/1 (or booleans), got values {np.unique(m)}")
    return m.astype(bool)


def right_padded(fn: str, mask: np.ndarray) -> np.ndarray:
    """Check each row of ``mask`` is ones then zeros (valid tokens first, then padding)."""
    if mask.shape[-1] > 1 and (mask[..., 1:] > mask[..., :-1]).any():
        raise ValueError(
            f"{fn}: mask must be right-padded (each row 1…1 0…0); a 0 is followed by a 1"
        )
    return mask


def tensor_arg(fn: str, name: str, x, mask: np.ndarray | None = None) -> Tensor:
    """``x`` as a float Tensor, finite at valid positions, zero at padded ones."""
    t = as_tensor(x)
    if t.dtype.kind not in "fiub":
        raise ValueError(f"{fn}: {name} must hold real numbers, got dtype {t.dtype}")
    if not np.issubdtype(t.dtype, np.floating):
        t = Tensor(t.data.astype(np.float64))
    bad = ~np.isfinite(t.data)
    if mask is not None:
        bad &= mask
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{fn}: {name} holds {t.data[idx]} at index {idx}, a valid (unmasked) position; "
            f"inputs must be finite there (NaN in a loss input is an error, not a result)"
        )
    if mask is not None and not mask.all():
        t = t.masked_fill(~mask, 0.0)  # padding can no longer reach values or gradients
    return t


def array_arg(fn: str, name: str, x, mask: np.ndarray | None = None) -> np.ndarray:
    """Like `tensor_arg`, for quantities computed without gradient: a NumPy array."""
    return tensor_arg(fn, name, raw(x), mask).data


def same_shape(fn: str, **named) -> tuple[int, ...]:
    shapes = {k: raw(v).shape for k, v in named.items() if v is not None}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ValueError(f"{fn}: shapes must match, got {listed}")
    return next(iter(shapes.values()))


def number(fn: str, name: str, value) -> float:
    """``value`` as a float: a real, finite number (an int, a float or a 0-d NumPy value)."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 0 or np.iscomplexobj(value):
        raise ValueError(f"{fn}: {name} must be a real number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a real number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{fn}: {name} must be a finite number, got {value!r}")
    return result


def unit_interval(fn: str, name: str, value: float) -> float:
    if not 0.0 <= number(fn, name, value) <= 1.0:
        raise ValueError(f"{fn}: {name} must lie in [0, 1], got {value}")
    return float(value)


def positive(fn: str, name: str, value: float) -> float:
    if not number(fn, name, value) > 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value}")
    return float(value)


def non_negative(fn: str, name: str, value: float) -> float:
    if not number(fn, name, value) >= 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value}")
    return float(value)


def reciprocal_fits(fn: str, name: str, value: float, dtype) -> float:
    """``value`` > 0 whose reciprocal fits in ``dtype`` (so dividing by it cannot give inf/NaN)."""
    if not value >= 1.0 / np.finfo(dtype).max:
        raise ValueError(
            f"{fn}: {name}={value} is too small for {np.dtype(dtype).name} (1/{name} overflows); "
            f"use a larger {name} or float64 inputs"
        )
    return float(value)


def integer(fn: str, name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; floats (even 2.0), bools and NaN are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def non_empty(fn: str, what: str, size: int) -> None:
    """A mean over no element is undefined: say so instead of returning NaN."""
    if size == 0:
        raise ValueError(f"{fn}: {what} is empty; a mean over no element is undefined")


def one_of(fn: str, name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{fn}: {name} must be one of {options}, got {value!r}")
    return value


def masked_mean(x: Tensor, mask: np.ndarray, axis=None, fn: str = "masked mean") -> Tensor:
    r"""$\sum m\,x / \sum m$ over ``axis``; ``x`` must already be zero where ``mask`` is 0.

    Over everything (``axis=None``) an all-zero mask is an error; along an axis, a row with
    no valid position contributes 0 (its count is clamped to 1, as TRL does).
    """
    count = mask.sum(axis=axis)
    if axis is None and count == 0:
        raise ValueError(f"{fn}: the mask selects no position (its sum is 0)")
    return x.sum(axis=axis) / np.maximum(count, 1).astype(x.dtype)


def finite_result(fn: str, result, **inputs):
    """Return ``result`` if it is finite; else a ValueError naming the inputs' magnitudes.

    Inputs were checked finite on the way in, so a non-finite result means an overflow:
    the answer (or a step to it) does not fit in the dtype.
    """
    for part in result if isinstance(result, (tuple, list)) else (result,):
        data = part.data if isinstance(part, Tensor) else np.asarray(part)
        if not np.isfinite(data).all():
            break
    else:
        return result
    sizes = ", ".join(f"|{k}| up to {_largest(v):.3g}" for k, v in inputs.items() if v is not None)
    raise ValueError(
        f"{fn}: the result overflows {data.dtype} although the inputs are finite ({sizes}); "
        f"rescale the inputs or compute in float64"
    )


def _largest(x) -> float:
    a = np.abs(raw(x).astype(np.float64))
    return float(np.max(a, where=np.isfinite(a), initial=0.0))  # padding may hold NaN


def pow2_exponent(x: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    r"""$e$ with $\max|x| \cdot 2^{-e} \in [\tfrac12, 1)$ (0 where $x$ is all 0), as an int array.

    Scaling by a power of 2 changes no digit of a float, so a statistic computed on
    ``np.ldexp(x, -e)`` and scaled back by $2^e$ is the same number, without the overflow
    (or underflow) of squaring a huge (or tiny) value on the way.
    """
    return np.frexp(np.max(np.abs(x), axis=axis, keepdims=keepdims, initial=0.0))[1]
