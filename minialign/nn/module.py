"""`Module` and `Parameter`: a tree of named tensors that an optimiser can update.

A `Module` finds its parameters by walking its attributes: a `Parameter`, another
`Module`, or a list of modules. Names follow the attribute path, e.g.
``blocks.0.attn.qkv.weight``, so a state dict reads like the model's structure.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import numpy as np

from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf tensor that a module owns and an optimiser updates (``requires_grad=True``)."""

    def __init__(self, data, dtype=np.float32):
        super().__init__(np.array(data, dtype=dtype), requires_grad=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class: ``__call__`` runs ``forward``; parameters are found by attribute walking."""

    training: bool = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    # -- the parameter tree ---------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        """Every parameter with its dotted path, each listed once (shared ones by first name)."""
        out, seen = [], set()
        for name, param in self._walk_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                out.append((name, param))
        return out

    def _walk_parameters(self, prefix: str):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._walk_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    # -- modes and gradients ----------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) or, with ``mode=False``, evaluation mode."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter, e.g. for a reference model."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def frozen_copy(self) -> Module:
        """A deep copy in eval mode with every parameter frozen: a reference model."""
        return copy.deepcopy(self).eval().requires_grad_(False)

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy values in, checking first that names, shapes, dtypes (real floats) and
        values (finite) are right: on any error nothing has been copied."""
        params = dict(self.named_parameters())
        missing, unexpected = params.keys() - state.keys(), state.keys() - params.keys()
        if missing or unexpected:
            raise ValueError(
                f"load_state_dict: missing keys {sorted(missing)}, unexpected keys {sorted(unexpected)}"
            )
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.dtype.kind != "f":
                raise ValueError(
                    f"load_state_dict: {name} has dtype {value.dtype}; weights must be real floats"
                )
            if value.shape != p.shape:
                raise ValueError(
                    f"load_state_dict: {name} has shape {value.shape} in the state, {p.shape} in the model"
                )
            if not np.isfinite(value).all():
                index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
                raise ValueError(
                    f"load_state_dict: {name} holds {value[index]} at index {index}; "
                    f"weights must be finite"
                )
        for name, p in params.items():
            p.data[...] = state[name]

    def to_dtype(self, dtype) -> Module:
        """Cast every parameter in place (float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self


@contextlib.contextmanager
def training_mode(training: bool, *modules: Module):
    """Put ``modules`` in training (True) or evaluation (False) mode for a block, then
    give each back the mode it had: ``with training_mode(False, policy): ...``."""
    was_training = [m.training for m in modules]
    for m in modules:
        m.train(training)
    try:
        yield
    finally:
        for m, mode in zip(modules, was_training):
            m.train(mode)
