"""Every trainer's settings as one frozen dataclass (`minialign.settings`), TRL's names.

`LoopConfig` holds what every loop shares (how long it runs, when it evaluates, logs and
saves); `RolloutConfig` adds what the loops that sample their own data share (PPO, GRPO).
Each trainer's config (``SFTConfig`` ... ``DPOConfig``) lives in the trainer's own file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings, knob

__all__ = ["LoopConfig", "RolloutConfig", "Settings", "knob"]


@dataclass(frozen=True)
class LoopConfig(Settings):
    """The fields every loop shares: how long it runs, when it evaluates, logs and saves.

    A subclass re-declares a field to change its default and adds its own; it may
    define ``check(self)`` for rules that tie fields together.
    """

    steps: int = knob(
        100, "number of steps (an RL step is one whole iteration; TRL: max_steps)", min=1
    )
    eval_steps: int | None = knob(
        None, "evaluate every this many steps (None: steps // 10; TRL: eval_steps)", min=1
    )
    logging_steps: int = knob(
        1, "log the training metrics every this many steps (TRL: logging_steps)", min=1
    )
    save_steps: int | None = knob(
        None,
        "with a checkpoint path: save every this many steps, and at the end (TRL: save_steps)",
        min=1,
    )

    @property
    def eval_interval(self) -> int:
        """``eval_steps``, or ``steps // 10`` (at least 1) when it is None."""
        return self.eval_steps or max(1, self.steps // 10)


@dataclass(frozen=True)
class RolloutConfig(LoopConfig):
    """What the loops that sample their own data (PPO, GRPO) share."""

    temperature: float = knob(
        1.0, "sampling temperature, also used for every log-prob in the loss", gt=0
    )
    missing_eos_penalty: float | None = knob(
        None, "subtract this from the score of responses without END (None: no penalty; TRL's knob)"
    )
    eval_steps: int | None = knob(
        10, "run eval_fn every this many iterations (None: steps // 10)", min=1
    )

    def check_divides(self, total: str, part: str) -> None:
        """``getattr(self, total)`` must be a multiple of ``getattr(self, part)``."""
        if getattr(self, total) % getattr(self, part):
            raise ValueError(f"{type(self).__name__}.{total} ({getattr(self, total)}) must be a "
                             f"multiple of {part} ({getattr(self, part)})")  # fmt: skip
