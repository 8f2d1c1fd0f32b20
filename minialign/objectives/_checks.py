"""Argument checks and masked reductions shared by the objectives.

Every check raises a ``ValueError`` that names the function, the argument, what it
received and what was expected. Two rules about padding live here:

* a non-finite value in a *valid* position is an error (NaN in a loss is never a result);
* whatever sits in a *padded* position (NaN, inf, garbage) is replaced by 0 with
  ``masked_fill`` before any arithmetic, so it can reach neither the value nor the
  gradient (``NaN * 0`` is NaN, so multiplying by the mask would not be enough).
"""

from __future__ import annotations

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


def unit_interval(fn: str, name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{fn}: {name} must lie in [0, 1], got {value}")
    return float(value)


def positive(fn: str, name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value}")
    return float(value)


def non_negative(fn: str, name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value}")
    return float(value)


def one_of(fn: str, name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{fn}: {name} must be one of {options}, got {value!r}")
    return value


def masked_mean(x: Tensor, mask: np.ndarray, axis=None) -> Tensor:
    r"""$\sum m\,x / \sum m$ over ``axis``; ``x`` must already be zero where ``mask`` is 0.

    Over everything (``axis=None``) an all-zero mask is an error; along an axis, a row with
    no valid position contributes 0 (its count is clamped to 1, as TRL does).
    """
    count = mask.sum(axis=axis)
    if axis is None and count == 0:
        raise ValueError("masked mean: the mask selects no position (its sum is 0)")
    return x.sum(axis=axis) / np.maximum(count, 1).astype(x.dtype)
