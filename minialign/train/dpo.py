r"""Direct preference optimisation: train the policy on preference pairs, no reward model, no RL.

For a pair $(x, y^+, y^-)$ the log-ratio margin against the frozen reference is

$$\Delta_\theta = \big[\log\pi_\theta(y^+\mid x) - \log\pi_{\rm ref}(y^+\mid x)\big]
               - \big[\log\pi_\theta(y^-\mid x) - \log\pi_{\rm ref}(y^-\mid x)\big],$$

with $\log\pi(y\mid x) = \sum_t \log\pi(y_t \mid x, y_{<t})$ **summed** over response
tokens, and DPO minimises

$$L_{\rm DPO}(\theta) = -\mathbb E_{(x, y^+, y^-)}\Big[\log\sigma\big(\Delta_\theta / \tau\big)\Big],$$

where the temperature $\tau$ is the DPO paper's $1/\beta$. If the labels follow Bradley–Terry,
$P(y^+ \succ y^-) = \sigma(\beta_{BT}(r^+ - r^-))$, the optimum is
$\pi^* \propto \pi_{\rm ref}\exp(\tau\beta_{BT}\,r)$: the KL-regularised optimum with
coefficient $1/(\tau\beta_{BT})$, so a larger $\tau$ lets the policy move further.
``loss_type`` picks a variant of `minialign.objectives.dpo_loss` ("sigmoid" = DPO with
optional cDPO ``label_smoothing``, "ipo", "hinge", "robust").

Implementation details:

1. The reference log-probs of every pair are computed ONCE, before training, under
   ``no_grad`` (the reference is frozen; TRL's ``precompute_ref_log_probs``).
2. Chosen and rejected sequences go through the policy in ONE forward pass of ``2B``
   rows; columns past the last response token of the batch are trimmed.
3. Log-probs are summed over response tokens for every ``loss_type`` (TRL averages
   them for IPO; with sums, IPO's target margin $\tau/2$ is in nats per *sequence*).
4. AdamW (weight decay 0 by default, as TRL); the learning rate warms up linearly
   over ``warmup`` steps (default 0), then decays linearly to 0 at ``steps`` (Hugging
   Face's default, used by TRL's DPOTrainer); the gradient is clipped to ``grad_clip``
   and its norm before clipping is logged.
5. Metrics per step, all on the training batch: ``loss``, ``rewards_chosen``,
   ``rewards_rejected``, ``rewards_margin``, ``rewards_accuracy`` — DPO's implicit reward
   $\hat r = (\log\pi_\theta - \log\pi_{\rm ref})/\tau$ (TRL's ``rewards/*``; only the
   margin is trained, so ``rewards_chosen`` may fall) — ``grad_norm``, ``lr``, ``seconds``
   (wall time since the run began, carried over on resume).
6. ``eval_fn(step) -> dict`` is called at step 0 (before any update), every
   ``eval_every`` steps and at the end; its values are logged under their own names.
   Use it for the true reward and KL (`minialign.train.common.evaluate_policy`), with its
   OWN generator, so that evaluating never shifts the training batches.
7. NaN/inf loss or gradient -> ``FloatingPointError`` naming the step; Ctrl-C returns
   the history so far; ``checkpoint_path`` + ``checkpoint_every`` save a run state that
   ``resume=True`` continues to the same result, bitwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..autograd import no_grad
from ..nn import sequence_logprobs
from ..nn.module import Module
from ..objectives import dpo_loss, implicit_rewards
from ..objectives.dpo import LOSS_TYPES
from ..optim import AdamW, LinearSchedule, param_groups
from ..tasks.sentiment import PreferencePairs
from .history import History
from .loop import as_rng, check_finite, optimizer_step, run_loop


def _pair_logprobs(model: Module, pairs: PreferencePairs, rows) -> tuple:
    """Summed response log-probs (chosen, rejected), each (B,), from one pass of 2B rows."""
    tokens = np.concatenate([pairs.chosen.ids[rows], pairs.rejected.ids[rows]])  # (2B, T)
    mask = np.concatenate([pairs.chosen.response_mask[rows], pairs.rejected.response_mask[rows]])
    T = int(np.flatnonzero(mask.any(axis=0)).max()) + 1  # drop all-padding columns
    total = sequence_logprobs(model, tokens[:, :T], mask[:, :T]).total  # (2B,)
    B = len(tokens) // 2
    return total[:B], total[B:]


def reference_logprobs(reference: Module, pairs: PreferencePairs, batch_size: int = 256):
    """$\\log\\pi_{\\rm ref}(y^\\pm \\mid x)$ of every pair, two float arrays (n,), without grad."""
    chosen, rejected, was_training, n = [], [], reference.training, len(pairs.chosen)
    reference.eval()  # no dropout in the frozen reference
    try:
        with no_grad():
            for i in range(0, n, batch_size):
                c, r = _pair_logprobs(reference, pairs, np.arange(i, min(i + batch_size, n)))
                chosen.append(c.data)
                rejected.append(r.data)
    finally:
        reference.train(was_training)
    return np.concatenate(chosen), np.concatenate(rejected)


def train_dpo(
    policy: Module,
    reference: Module,
    pairs: PreferencePairs,
    *,
    tau: float = 1.0,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-3,
    warmup: int = 0,
    rng: np.random.Generator | int | None = None,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    eval_fn: Callable[[int], dict[str, float]] | None = None,
    eval_every: int | None = None,
    progress: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> History:
    """Train ``policy`` in place with DPO on ``pairs`` against the frozen ``reference``.

    ``policy`` usually starts as a copy of ``reference``. ``tau`` is the seed's temperature
    (the DPO paper's $\\beta = 1/\\tau$). ``eval_every`` defaults to ``steps // 10``.
    History keys: see implementation detail 5 of the module doc, plus ``eval_fn``'s.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"train_dpo: loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if not tau > 0:
        raise ValueError(f"train_dpo: tau must be > 0, got {tau}")
    n = len(pairs.chosen)
    if not (steps >= 1 and batch_size >= 1 and n >= 1):
        raise ValueError(
            f"train_dpo: need steps >= 1, batch_size >= 1 and at least one pair, "
            f"got steps={steps}, batch_size={batch_size}, {n} pairs"
        )
    rng = as_rng(rng)
    ref_chosen, ref_rejected = reference_logprobs(reference, pairs)  # (n,), (n,)
    opt = AdamW(param_groups(policy, weight_decay), lr=lr)
    schedule = LinearSchedule(lr, total_steps=steps, warmup_steps=warmup)

    def step_fn(step: int) -> dict[str, float]:
        schedule.apply(opt, step)
        rows = rng.integers(0, n, size=batch_size)  # (B,)
        chosen, rejected = _pair_logprobs(policy, pairs, rows)  # (B,), (B,)
        check_finite(chosen.data.sum() + rejected.data.sum(), "the sum of the policy log-probs")
        logps = (chosen, rejected, ref_chosen[rows], ref_rejected[rows])
        loss = dpo_loss(*logps, tau, loss_type, label_smoothing)
        [grad_norm] = optimizer_step(loss, [(opt, policy)], grad_clip)
        rewards = implicit_rewards(chosen.data, rejected.data, *logps[2:], tau)
        return dict(loss=loss.item(), **{f"rewards_{k}": v for k, v in rewards.items()},
                    grad_norm=grad_norm, lr=opt.lr)  # fmt: skip

    return run_loop(
        "train_dpo", step_fn, steps=steps, desc=f"dpo ({loss_type})",
        postfix=("loss", "rewards_margin"), eval_fn=eval_fn,
        eval_every=eval_every or max(1, steps // 10), progress=progress, rng=rng,
        modules={"policy": policy}, optimizers={"adamw": opt},
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
    )  # fmt: skip
