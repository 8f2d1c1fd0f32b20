"""Checking an optimiser's saved state before it is restored (`Optimizer.load_state_dict`).

A state dict comes from a file that may be damaged or hostile, so every entry is checked
before anything is assigned: names and counts, shapes, dtypes (floats for buffers, 0-d
integers >= 1 for step counts, 0-d finite numbers for hyperparameters), values (finite;
each hyperparameter in its domain, e.g. Adam's betas in [0, 1); second moments >= 0).
Errors are ValueErrors naming the optimiser class and the key.
"""

from __future__ import annotations

import numpy as np


def checked_state(opt, state: dict[str, np.ndarray]) -> tuple[dict, dict[int, dict]]:
    """``(scalars, per-parameter state)`` of ``state`` for the optimiser ``opt``, all checked.

    ``scalars`` maps ``lr``, each hyperparameter and ``group<g>.weight_decay`` to a Python
    number; the per-parameter state maps parameter index to ``{"step": int, buffer: array}``
    with the buffers cast to the parameter's dtype.
    """
    cls = type(opt).__name__
    expected = {"lr", *opt.hyperparameters}
    expected |= {f"group{g}.weight_decay" for g in range(len(opt.param_groups))}
    missing = expected - state.keys()
    if missing:
        raise ValueError(f"{cls}.load_state_dict: missing keys {sorted(missing)}")
    new_state: dict[int, dict] = {}
    for key in sorted(state.keys() - expected):
        head, _, name = key.partition(".")
        if not (head.startswith("param") and head[5:].isdigit()) or (
            name != "step" and name not in opt.buffers
        ):
            raise ValueError(f"{cls}.load_state_dict: unexpected key {key!r}")
        i = int(head[5:])
        if i >= len(opt.params):
            raise ValueError(
                f"{cls}.load_state_dict: state for parameter {i} but the optimiser "
                f"has {len(opt.params)} parameters"
            )
        value = np.asarray(state[key])
        if name != "step" and value.shape != opt.params[i].shape:
            raise ValueError(
                f"{cls}.load_state_dict: {key} has shape {value.shape}, "
                f"parameter {i} has shape {opt.params[i].shape}"
            )
        entry = new_state.setdefault(i, {})
        if name == "step":
            entry[name] = _saved_step(cls, key, value)
        else:
            _saved_buffer(cls, key, value, name in opt.non_negative_buffers)
            entry[name] = value.astype(opt.params[i].dtype)
    for i, entry in new_state.items():
        needed = {"step", *opt.buffers}
        if entry.keys() != needed:
            raise ValueError(
                f"{cls}.load_state_dict: parameter {i} has {sorted(entry)}, "
                f"expected {sorted(needed)}"
            )
    scalars = {key: _saved_scalar(cls, key, state[key]) for key in sorted(expected)}
    for key, value in scalars.items():
        test, what = opt.domains.get(key, (lambda v: v >= 0, ">= 0"))
        if not test(value):
            raise ValueError(f"{cls}.load_state_dict: {key} must be {what}, got {value!r}")
    return scalars, new_state


def _saved_scalar(cls: str, key: str, value):
    """A 0-d saved hyperparameter as a Python bool/int/float, finite."""
    value = np.asarray(value)
    if value.shape != () or value.dtype.kind not in "biuf" or not np.isfinite(value):
        raise ValueError(
            f"{cls}.load_state_dict: {key} must be a finite 0-d number, "
            f"got {value!r} (dtype {value.dtype})"
        )
    return value.item()


def _saved_step(cls: str, key: str, value: np.ndarray) -> int:
    if value.shape != () or value.dtype.kind not in "iu" or value < 1:
        raise ValueError(
            f"{cls}.load_state_dict: {key} must be a 0-d integer >= 1, "
            f"got {value!r} (dtype {value.dtype})"
        )
    return int(value)


def _saved_buffer(cls: str, key: str, value: np.ndarray, non_negative: bool) -> None:
    if value.dtype.kind != "f":
        raise ValueError(f"{cls}.load_state_dict: {key} has dtype {value.dtype}, not a float")
    bad = ~np.isfinite(value) | ((value < 0) if non_negative else False)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        must = "finite and >= 0" if non_negative else "finite"
        raise ValueError(
            f"{cls}.load_state_dict: {key} holds {value[index]} at index {index}; it must be {must}"
        )
