"""The alignment objectives as small pure functions on Tensors (or NumPy arrays).

Each function reads like the equation it implements; the docstrings carry the
equations (as the source notes write them), the sign convention, the options and
the notebook section that steps through them. The equation sheet (docs/equations.md)
maps every equation to its function, its tests and its notebook section; the
implementation notes (docs/implementation_notes.md) record the choices the equations
leave open, cited in the docstrings as "note ppo-3" and so on.

Losses (``*_loss``) are always minimised and return a scalar Tensor. Returns,
advantages and penalised rewards are targets: NumPy arrays, computed without gradient.
Metrics return Python floats. Imports only ``minialign.autograd`` and NumPy.
"""

from .advantages import discounted_returns, gae_advantages, mc_advantages, whiten
from .dpo import dpo_delta, dpo_loss, implicit_rewards
from .grpo import combined_reward, frac_zero_std_groups, group_advantages, grpo_loss
from .kl import (
    AdaptiveKLController,
    best_of_n_policy,
    categorical_kl,
    kl_penalized_rewards,
    kl_penalty,
    kl_regularized_objective,
    kl_regularized_optimum,
)
from .ppo import (
    approx_kl,
    clip_fraction,
    entropy_bonus,
    ppo_clip_loss,
    probability_ratio,
    value_loss,
)
from .reward_model import bradley_terry_loss, preference_accuracy

__all__ = [
    # reward model
    "bradley_terry_loss", "preference_accuracy",
    # returns and advantages
    "discounted_returns", "mc_advantages", "gae_advantages", "whiten",
    # KL
    "kl_penalty", "categorical_kl", "kl_penalized_rewards", "AdaptiveKLController",
    "kl_regularized_objective", "kl_regularized_optimum", "best_of_n_policy",
    # PPO
    "probability_ratio", "ppo_clip_loss", "value_loss", "entropy_bonus",
    "clip_fraction", "approx_kl",
    # GRPO
    "combined_reward", "group_advantages", "frac_zero_std_groups", "grpo_loss",
    # DPO
    "dpo_delta", "dpo_loss", "implicit_rewards",
]  # fmt: skip
