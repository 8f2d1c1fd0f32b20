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
   over ``warmup_steps`` (default 0), then decays linearly to 0 at ``steps`` (Hugging
   Face's default, used by TRL's DPOTrainer); the gradient is clipped to
   ``max_grad_norm`` and its norm before clipping is logged.
5. Metrics per step, all on the training batch: ``loss``, ``rewards_chosen``,
   ``rewards_rejected``, ``rewards_margin``, ``rewards_accuracy`` — DPO's implicit reward
   $\hat r = (\log\pi_\theta - \log\pi_{\rm ref})/\tau$ (TRL's ``rewards/*``; only the
   margin is trained, so ``rewards_chosen`` may fall) — ``grad_norm``, ``lr``, ``seconds``
   (wall time since the run began, carried over on resume).
6. ``eval_fn(step) -> dict`` is called at step 0 (before any update), every
   ``eval_steps`` steps and at the end; its values are logged under their own names.
   Use it for the true reward and KL (`minialign.train.evaluate.make_eval_fn`), with its
   OWN generator, so that evaluating never shifts the training batches.
7. NaN/inf loss or gradient -> ``FloatingPointError`` naming the step; Ctrl-C returns
   the history so far; ``checkpoint_path`` (every ``save_steps`` and at the end) saves a
   run state that ``resume=True`` continues to the same result, bitwise.

The loop is `dpo_step` per batch; the notes dpo-1 to dpo-6 of docs/implementation_notes.md explain the
choices (summed log-probs and the implicit reward, log 2 at $\Delta = 0$, falling
chosen rewards, the optimum, the variants, the precomputed reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..nn import sequence_logprobs
from ..nn.module import Module, training_mode
from ..objectives import dpo_loss, implicit_rewards
from ..objectives.dpo import LOSS_TYPES
from ..optim import AdamW, LinearSchedule, param_groups
from ..tokenizer import PreferencePairs
from .config import LoopConfig, knob
from .history import History
from .run import Run, check_finite, get_rng, optimizer_step


@dataclass(frozen=True)
class DPOConfig(LoopConfig):
    """Every setting of `train_dpo` (TRL's ``DPOConfig`` names where TRL has the knob)."""

    tau: float = knob(1.0, "τ, temperature of the margin (TRL: beta = 1/τ)", gt=0)
    loss_type: str = knob(
        "sigmoid", "sigmoid (DPO), ipo, hinge (SLiC) or robust", choices=LOSS_TYPES
    )
    label_smoothing: float = knob(
        0.0, "ε, probability that a label is flipped (cDPO, robust)", min=0, max=0.5
    )
    steps: int = knob(200, "optimiser steps, one batch of pairs each", min=1)
    batch_size: int = knob(32, "pairs per step, drawn with replacement", min=1, max=65536)
    learning_rate: float = knob(
        1e-3, "AdamW peak learning rate (linear warm-up, then linear decay to 0)", gt=0
    )
    warmup_steps: int = knob(0, "steps of linear warm-up", min=0)
    weight_decay: float = knob(0.0, "AdamW weight decay of 2-D parameters", min=0)
    max_grad_norm: float | None = knob(
        1.0, "clip the gradient to this norm (None: no clipping)", gt=0
    )


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
    chosen, rejected, n = [], [], len(pairs.chosen)
    with training_mode(False, reference), no_grad():  # no dropout in the frozen reference
        for i in range(0, n, batch_size):
            c, r = _pair_logprobs(reference, pairs, np.arange(i, min(i + batch_size, n)))
            chosen.append(c.data)
            rejected.append(r.data)
    return np.concatenate(chosen), np.concatenate(rejected)


def dpo_step(policy, optimizer, pairs: PreferencePairs, ref_logps, rows,
             config: DPOConfig) -> dict[str, float]:  # fmt: skip
    """One update on the pairs ``rows``: $L_{\\rm DPO}$, backward, clip, step; its metrics.

    ``ref_logps`` = (ref_chosen, ref_rejected), each (n,), from `reference_logprobs`.

    Notebook: notebooks/05_dpo.ipynb, §8 "One DPO step by hand" (written out, bitwise equal).
    """
    chosen, rejected = _pair_logprobs(policy, pairs, rows)  # (B,), (B,)
    check_finite(chosen.data.sum() + rejected.data.sum(), "the sum of the policy log-probs")
    logps = (chosen, rejected, ref_logps[0][rows], ref_logps[1][rows])
    loss = dpo_loss(*logps, config.tau, config.loss_type, config.label_smoothing)
    [grad_norm] = optimizer_step(loss, [(optimizer, policy)], config.max_grad_norm)
    rewards = implicit_rewards(chosen.data, rejected.data, *logps[2:], config.tau)
    return dict(loss=loss.item(), **{f"rewards_{k}": v for k, v in rewards.items()},
                grad_norm=grad_norm, lr=optimizer.lr)  # fmt: skip


def train_dpo(
    policy: Module,
    reference: Module,
    pairs: PreferencePairs,
    config: DPOConfig = DPOConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    *,
    rng: np.random.Generator | int | None = None,
    eval_fn=None,
    checkpoint_path=None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``policy`` in place with DPO on ``pairs`` against the frozen ``reference``.

    ``policy`` usually starts as a copy of ``reference``; ``config.tau`` is the
    temperature (the DPO paper's $\\beta = 1/\\tau$). History keys: implementation detail 5
    of the module doc, plus ``eval_fn``'s.
    """
    n = len(pairs.chosen)
    if n < 1:
        raise ValueError("train_dpo: pairs is empty; need at least one preference pair")
    rng = get_rng(rng)
    ref_logps = reference_logprobs(reference, pairs)  # (n,), (n,)
    optimizer = AdamW(param_groups(policy, config.weight_decay), lr=config.learning_rate)
    schedule = LinearSchedule(config.learning_rate, config.steps, config.warmup_steps)
    saved = {"policy": policy, "optimizer": optimizer}
    with Run(f"dpo ({config.loss_type})", config, rng=rng, saved=saved, eval_fn=eval_fn,
             checkpoint_path=checkpoint_path, resume=resume, progress=progress,
             postfix=("loss", "rewards_margin")) as run:  # fmt: skip
        for step in run.steps():
            schedule.apply(optimizer, step)
            rows = rng.integers(0, n, size=config.batch_size)  # (B,)
            run.log(step, dpo_step(policy, optimizer, pairs, ref_logps, rows, config))
    return run.history
