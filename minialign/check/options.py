"""The keyword options of `check`: conventions that legitimately differ, and tolerances.

The defaults are the source equations' conventions (docs/equations.md), which are also
minialign's defaults. Each convention is used only when the function under test does not
take the matching argument itself: a function with a ``ddof`` parameter is called with
both values, one without is expected to follow ``ddof=``. docs/trl.md and
docs/check.md say which setting matches TRL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckOptions:
    """Options of `check` (all keyword arguments; see docs/check.md).

    ============  ========  ================================================================
    option        default   meaning
    ============  ========  ================================================================
    ddof          0         ``group_advantages``, ``whiten``: 0 is the population
                            $\\sigma$ (1/N, the seed); 1 is Bessel's (1/(N-1)), as TRL's
                            GRPO ``nanstd`` and PPO ``masked_whiten``
    eps           None      the $\\varepsilon$ of $\\sigma$: ``group_advantages`` adds it
                            to $\\sigma$ (minialign 1e-8; TRL 1e-4), ``whiten`` to the
                            variance (1e-8 in both); None means minialign's default
    estimator     "k1"      ``kl_penalty``, ``kl_penalized_rewards``: which of Schulman's
                            k1/k2/k3 the function computes (GRPO uses "k3")
    level         "sequence"  ``grpo_loss``: the seed's one ratio per output; "token" is
                            DeepSeekMath's and TRL's per-token ratio
    aggregation   "grpo"    ``grpo_loss``: "grpo", "bnpo", "dr_grpo" or "dapo" (TRL's
                            ``loss_type``; TRL's default is "dapo")
    value_clip    None      ``value_loss``: the clip range $\\epsilon_v$ (None: unclipped)
    dpo_beta      False     ``dpo_loss``: True if the fifth argument is TRL's
                            $\\beta = 1/\\tau$ rather than the seed's temperature $\\tau$
    score_offset  0         ``kl_penalized_rewards``: 0 puts the score on the last valid
                            token (InstructGPT); 1 one position after it, as TRL's PPO does
    mask_dtype    "float"   masks are passed as 0./1. floats, or "bool"
    rtol, atol    1e-6, 1e-9  tolerances for values and gradients (float64)
    max_examples  30        hypothesis examples per property
    ============  ========  ================================================================
    """

    ddof: int = 0
    eps: float | None = None
    estimator: str = "k1"
    level: str = "sequence"
    aggregation: str = "grpo"
    value_clip: float | None = None
    dpo_beta: bool = False
    score_offset: int = 0
    mask_dtype: str = "float"
    rtol: float = 1e-6
    atol: float = 1e-9
    max_examples: int = 30

    def __post_init__(self):
        allowed = {
            "ddof": (0, 1),
            "estimator": ("k1", "k2", "k3"),
            "level": ("sequence", "token"),
            "aggregation": ("grpo", "bnpo", "dr_grpo", "dapo"),
            "dpo_beta": (False, True),
            "score_offset": (0, 1),
            "mask_dtype": ("float", "bool"),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(
                    f"check: {name} must be one of {values}, got {getattr(self, name)!r}"
                )
        for name in ("rtol", "atol"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"check: {name} must be >= 0, got {getattr(self, name)!r}")
        if self.eps is not None and not self.eps >= 0:
            raise ValueError(f"check: eps must be >= 0 or None, got {self.eps!r}")
        if self.value_clip is not None and not self.value_clip >= 0:
            raise ValueError(f"check: value_clip must be >= 0 or None, got {self.value_clip!r}")
        if int(self.max_examples) != self.max_examples or self.max_examples < 1:
            raise ValueError(
                f"check: max_examples must be a positive integer, got {self.max_examples!r}"
            )

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> CheckOptions:
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(
                f"check: unknown option(s) {', '.join(unknown)}; options are {', '.join(known)}"
            )
        return cls(**kwargs)

    def changed(self) -> dict:
        """The options that differ from their defaults (shown in the report)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }
