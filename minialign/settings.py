"""Settings as frozen dataclasses whose fields document and check themselves.

A field is declared with `knob`, which records its doc and its valid range::

    epsilon: float = knob(0.2, "ε: clip range of the ratio (TRL: cliprange)", min=0)

`check_field` validates one value against that record: `Settings.__post_init__` uses it
for every field when an object is made (errors name the field), and the command line
(`minialign.flags`) uses the same record for its flags, help texts and parse-time checks,
so a flag can never drift from its field. The trainers' configs (`minialign.train`) are
`Settings`; their field names follow TRL where TRL has the knob, and where minialign keeps
an equation's symbol (``beta``, ``epsilon``, ``tau``, ``lam``) the doc names TRL's field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass, field


def knob(default, doc: str, *, min=None, max=None, gt=None, choices=None):  # noqa: A002
    """A config field: its default, a one-line ``doc``, and its valid range.

    ``min``/``max`` are inclusive bounds, ``gt`` an exclusive lower bound, ``choices`` the
    allowed strings. Numbers must be finite; ``None`` is allowed only where the field's
    type says ``| None``.
    """
    meta = dict(doc=doc, min=min, max=max, gt=gt, choices=choices)
    return field(default=default, metadata=meta)


def field_type(cls, name: str) -> tuple[type, bool]:
    """``(int | float | bool | str, optional)`` of field ``name`` of dataclass ``cls``."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) < len(typing.get_args(hint))
    return (args[0] if args else hint), optional


def check_field(cls, name: str, value):
    """``value`` if it is valid for field ``name`` of config ``cls``, else a ValueError."""
    meta = {f.name: f for f in dataclasses.fields(cls)}[name].metadata
    kind, optional = field_type(cls, name)
    where = f"{cls.__name__}.{name}"
    if value is None:
        if not optional:
            raise ValueError(f"{where} must be set, got None")
    elif kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
    elif kind is str:
        if meta["choices"] and value not in meta["choices"]:
            raise ValueError(f"{where} must be one of {meta['choices']}, got {value!r}")
    else:
        _check_number(where, value, kind is int, meta)
    return value


def _check_number(where: str, value, integer: bool, meta) -> None:
    expected = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ValueError(
            f"{where} must be {'an integer' if integer else 'a number'}, got {value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")
    low, high, above = meta["min"], meta["max"], meta["gt"]
    if low is not None and not value >= low:
        raise ValueError(f"{where} must be >= {low}, got {value!r}")
    if high is not None and not value <= high:
        raise ValueError(f"{where} must be <= {high}, got {value!r}")
    if above is not None and not value > above:
        raise ValueError(f"{where} must be > {above}, got {value!r}")


def describe(cls, name: str) -> str:
    """Field ``name``'s doc and its valid range, for ``--help``."""
    meta = {f.name: f for f in dataclasses.fields(cls)}[name].metadata
    rules = [f">= {meta['min']}" if meta["min"] is not None else "",
             f"<= {meta['max']}" if meta["max"] is not None else "",
             f"> {meta['gt']}" if meta["gt"] is not None else ""]  # fmt: skip
    rules = ", ".join(r for r in rules if r)
    return meta["doc"] + (f"; {rules}" if rules else "")


@dataclass(frozen=True)
class Settings:
    """A frozen dataclass of `knob` fields, each checked when the object is made."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_field(type(self), f.name, getattr(self, f.name))
        self.check()

    def check(self) -> None:
        """Rules that tie several fields together (none here)."""
