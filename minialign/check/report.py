"""`CheckReport`: which properties hold, and the smallest input where one does not.

``str(report)`` is meant to be read at once: a header, one line per property, then, for
each failure, the shrunk counterexample (the inputs the function received, what was
expected, what it returned, and for a gradient which input and which index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .context import fmt


@dataclass
class Failure:
    """One failing property and its smallest counterexample."""

    property: str
    message: str
    inputs: list[tuple[str, list[str]]] = field(default_factory=list)  # (label, lines)
    expected: np.ndarray | None = None
    got: np.ndarray | None = None
    upstream: np.ndarray | None = None
    note: str = ""

    def __str__(self) -> str:
        lines = [f"FAIL  {self.property}", f"  {self.message}"]
        for label, entries in self.inputs:
            lines.append(f"  {label}:")
            lines += [f"    {e}" for e in entries]
        for label, value in (("expected", self.expected), ("got", self.got)):
            if value is not None and np.size(value) > 1:
                lines.append(f"  {label + ':':<9} {fmt(np.asarray(value), 12)}")
        if self.upstream is not None:
            lines.append(f"  (gradients of sum(G * output) with G = {fmt(self.upstream, 44)})")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


@dataclass
class CheckReport:
    """The result of `check`.

    ``passed``      True if every property held
    ``properties``  {property name: passed}, in the order they ran
    ``failures``    a `Failure` (with its shrunk counterexample) per failing property
    ``seconds``     how long the check took (not part of ``str(report)``, which is the same
                    on every run)
    """

    name: str
    framework: str
    function: str
    properties: dict[str, bool] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.properties) and all(self.properties.values())

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def summary(self) -> str:
        n, ok = len(self.properties), sum(self.properties.values())
        verdict = "PASSED" if self.passed else "FAILED"
        return f"{verdict}: {ok} of {n} properties hold"

    def __str__(self) -> str:
        head = f"check {self.name} ({self.framework}) on {self.function}: {self.summary()}"
        lines = [head] + [f"  note: {n}" for n in self.notes]
        lines.append("")
        lines += [f"  {'ok  ' if ok else 'FAIL'}  {name}" for name, ok in self.properties.items()]
        shown: dict[tuple, str] = {}
        for failure in self.failures:
            key = (failure.message, str(failure.inputs))
            if key in shown:  # e.g. a NotImplementedError: every property fails the same way
                lines += ["", f"FAIL  {failure.property}", f"  the same failure as {shown[key]!r}"]
                continue
            shown[key] = failure.property
            lines += ["", str(failure)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckReport {self.name} ({self.framework}): {self.summary()}>"
