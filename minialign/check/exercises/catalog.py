"""The exercise set: one entry per file, with what grades it.

Each exercise is a template in ``templates/`` that holds the solution and, in commented
blocks, what the student gets instead (see `writer`). The grader finds an exercise by its
file name, so a student cannot break grading by editing anything but the function body.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exercise:
    stem: str  # the file is <stem>.py
    title: str
    function: str  # the function in the file that is graded
    check: str  # the name it is checked as
    framework: str
    minutes: int  # a student's time for it, roughly
    options: dict = field(default_factory=dict)  # conventions for `check`
    kind: str = "write"  # "write" it, or "bug": find and fix a planted bug


EXERCISES = [
    Exercise("01_softmax_backward", "softmax: forward and backward as one autograd op",
             "softmax", "softmax", "minialign", 20),
    Exercise("02_bradley_terry_loss", "the Bradley–Terry loss of a reward model",
             "bradley_terry_loss", "bradley_terry_loss", "minialign", 10),
    Exercise("03_gae_advantages", "generalised advantage estimation, with padding",
             "gae_advantages", "gae_advantages", "numpy", 25),
    Exercise("04_ppo_clip_loss", "PPO's clipped surrogate loss", "ppo_clip_loss",
             "ppo_clip_loss", "minialign", 15),
    Exercise("05_kl_penalty_k3", "the k3 estimate of KL(π‖π_ref)", "kl_penalty",
             "kl_penalty", "minialign", 10, {"estimator": "k3"}),
    Exercise("06_group_advantages", "GRPO's group-relative advantages",
             "group_advantages", "group_advantages", "numpy", 15),
    Exercise("07_grpo_loss", "the GRPO loss with one ratio per output", "grpo_loss",
             "grpo_loss", "minialign", 20),
    Exercise("08_dpo_loss", "the DPO loss", "dpo_loss", "dpo_loss", "minialign", 15),
    Exercise("09_bug_wrong_sign", "find the bug: PPO's KL-penalised rewards",
             "kl_penalized_rewards", "kl_penalized_rewards", "numpy", 10, kind="bug"),
    Exercise("10_bug_off_by_one", "find the bug: discounted returns", "discounted_returns",
             "discounted_returns", "numpy", 10, kind="bug"),
    Exercise("11_bug_wrong_sigma", "find the bug: whitening advantages", "whiten", "whiten",
             "numpy", 10, kind="bug"),
    Exercise("12_bug_no_gradient", "find the bug: a PPO loss that never learns",
             "ppo_clip_loss", "ppo_clip_loss", "minialign", 10, kind="bug"),
]  # fmt: skip

BY_STEM = {e.stem: e for e in EXERCISES}
