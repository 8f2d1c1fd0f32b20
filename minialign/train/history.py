"""`History`: what a training loop measured, step by step, ready for `minialign.plots`."""

from __future__ import annotations

import numpy as np


class History:
    """Named metrics, each a series of ``(step, value)`` pairs logged at its own pace.

    ``history.log(step, loss=..., lr=...)`` appends; ``history["loss"]`` is the values as
    an array, ``history.steps("loss")`` the steps they were logged at. Training metrics
    may be logged every step and evaluation metrics every few hundred: each key keeps
    its own steps. ``interrupted`` is True if the loop was stopped with Ctrl-C.
    """

    def __init__(self):
        self._steps: dict[str, list[int]] = {}
        self._values: dict[str, list[float]] = {}
        self.interrupted = False

    def log(self, step: int, **metrics: float) -> None:
        for key, value in metrics.items():
            self._steps.setdefault(key, []).append(int(step))
            self._values.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._values:
            raise KeyError(f"History has no metric {key!r}; it has {self.keys()}")
        return np.array(self._values[key])

    def steps(self, key: str) -> np.ndarray:
        self[key]  # noqa: B018 - same error for an unknown key
        return np.array(self._steps[key])

    def last(self, key: str) -> float:
        return self._values[key][-1] if self._values.get(key) else float("nan")

    def keys(self) -> list[str]:
        return list(self._values)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __len__(self) -> int:
        """The number of distinct steps at which anything was logged."""
        return len({s for steps in self._steps.values() for s in steps})

    def as_dict(self) -> dict[str, dict[str, list]]:
        """``{metric: {"step": [...], "value": [...]}}``: plain lists, JSON-serialisable."""
        return {
            k: {"step": list(self._steps[k]), "value": list(self._values[k])} for k in self._values
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls()
        for key, series in d.items():
            h._steps[key] = [int(s) for s in series["step"]]
            h._values[key] = [float(v) for v in series["value"]]
        return h

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={self.last(k):.4g}" for k in self.keys())
        return f"History({len(self)} steps; last: {last})"
