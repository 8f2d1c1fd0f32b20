"""What `check` knows about each name: its arguments, what is differentiable, its options.

This table needs neither hypothesis nor the property specs, so ``minialign check --list``
and the argument checks of `check` work on a bare install. ``args`` are the positional
arguments in minialign's order (the equation's core); ``options`` are keyword arguments
that are exercised only when the function under test accepts them by name;
``differentiable`` are the inputs whose gradient is compared under the ``"minialign"``
and ``"torch"`` frameworks (the others are constants: old log-probs, advantages,
reference log-probs).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    args: tuple[str, ...]
    options: tuple[str, ...]
    differentiable: tuple[str, ...]
    returns: str
    spec: str  # module under minialign.check.specs holding the properties


_ENTRIES = [
    Entry("bradley_terry_loss", ("chosen_rewards", "rejected_rewards"), ("margin", "center_coef"),
          ("chosen_rewards", "rejected_rewards"), "scalar loss", "reward_model"),
    Entry("discounted_returns", ("rewards", "gamma"), ("mask", "truncated", "bootstrap_values"),
          (), "returns (B, T)", "returns"),
    Entry("mc_advantages", ("rewards", "values", "gamma"),
          ("mask", "truncated", "bootstrap_values"), (), "advantages (B, T)", "returns"),
    Entry("gae_advantages", ("rewards", "values", "gamma", "lam"),
          ("mask", "truncated", "bootstrap_values"), (), "(advantages, returns), each (B, T)",
          "returns"),
    Entry("whiten", ("x",), ("mask", "shift_mean", "ddof", "eps"), (), "array (B, T)", "returns"),
    Entry("kl_penalty", ("logp", "logp_ref"), ("estimator", "mask"), ("logp",),
          "per-token estimate (B, T)", "kl"),
    Entry("kl_penalized_rewards", ("score", "logp", "logp_ref", "beta"), ("mask", "estimator"),
          (), "per-token rewards (B, T)", "kl"),
    Entry("probability_ratio", ("logp_new", "logp_old"), ("mask",), ("logp_new",),
          "ratio (B, T)", "ppo"),
    Entry("ppo_clip_loss", ("logp_new", "logp_old", "advantages", "epsilon"), ("mask",),
          ("logp_new",), "scalar loss", "ppo"),
    Entry("value_loss", ("values", "old_values", "returns"), ("clip", "mask"), ("values",),
          "scalar loss", "ppo"),
    Entry("combined_reward", ("r_outcome", "r_process", "lam"), (), (), "rewards (G, N)", "grpo"),
    Entry("group_advantages", ("rewards",), ("eps", "ddof", "std_floor", "scale"), (),
          "advantages (G, N)", "grpo"),
    Entry("grpo_loss", ("logp_new", "logp_old", "advantages", "epsilon"),
          ("mask", "beta", "logp_ref", "level", "aggregation", "max_completion_length",
           "epsilon_high"), ("logp_new",), "scalar loss", "grpo_loss"),
    Entry("dpo_loss", ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps",
                       "ref_rejected_logps", "tau"), ("loss_type", "label_smoothing"),
          ("policy_chosen_logps", "policy_rejected_logps"), "scalar loss", "dpo"),
    Entry("softmax", ("x",), (), ("x",), "probabilities over the last axis", "autograd"),
]  # fmt: skip

ENTRIES: dict[str, Entry] = {e.name: e for e in _ENTRIES}
NAMES: tuple[str, ...] = tuple(ENTRIES)


def get(name: str) -> Entry:
    """The entry for ``name``, or a ValueError that suggests the closest names."""
    if name in ENTRIES:
        return ENTRIES[name]
    close = difflib.get_close_matches(str(name), NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown name {name!r}{hint} (minialign check --list shows them all)")


def describe(name: str) -> str:
    """One line: ``name(args)  [options: ...]  -> returns``."""
    e = get(name)
    options = f"  [options: {', '.join(e.options)}]" if e.options else ""
    return f"{e.name}({', '.join(e.args)}){options}  -> {e.returns}"
