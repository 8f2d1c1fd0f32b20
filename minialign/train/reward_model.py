r"""Reward modelling: fit $r_\phi(x, y)$ to pairwise preferences with Bradley–Terry.

Each pair holds a prompt $x$, a preferred response $y^+$ and a dispreferred $y^-$. The
Bradley–Terry model says $P(y^+ \succ y^- \mid x) = \sigma(r_\phi(x, y^+) - r_\phi(x, y^-))$;
the reward model maximises the likelihood of the observed labels:

$$\mathcal L(\phi) = -\frac1B \sum_{b=1}^{B} \log\sigma\big(r_\phi(x_b, y^+_b) - r_\phi(x_b, y^-_b)
   - m_b\big) + c\,\frac1B \sum_b \big(r_\phi(x_b, y^+_b) + r_\phi(x_b, y^-_b)\big)^2$$

with an optional margin $m_b$ and centring coefficient $c$
(`minialign.objectives.bradley_terry_loss`). Only differences of rewards are identified:
adding a constant to $r_\phi$ leaves the loss unchanged, which is why $c$ exists.

Implementation details:

1. Scores are read at the **last response token** (`RewardModel.score`); chosen and
   rejected sequences go through the model in ONE forward pass of ``2B`` rows.
2. Batches are rows drawn uniformly with replacement by ``rng.integers``.
3. AdamW, weight decay on 2-D parameters only (`minialign.optim.param_groups`); the
   learning rate warms up linearly over ``warmup`` steps (default 0), then decays
   linearly to 0 at ``steps`` (Hugging Face's default, used by TRL); the gradient is clipped to ``grad_clip``, and the
   norm before clipping is logged as ``grad_norm``.
4. Metrics: ``loss`` and ``accuracy`` (on the training batch, ``preference_accuracy``:
   a tie counts as wrong), and every ``eval_every`` steps, on ``eval_pairs``:
   ``eval_loss``, ``eval_accuracy`` (agreement with the annotator's labels) and
   ``eval_true_accuracy`` (agreement with the ordering of the TRUE rewards, pairs whose
   true rewards tie left out). A noisy annotator caps ``eval_accuracy`` well below 1 —
   see `bayes_accuracy` — while ``eval_true_accuracy`` can approach 1.
5. NaN/inf loss -> ``FloatingPointError`` naming the step; Ctrl-C returns the history
   so far; ``checkpoint_path`` + ``checkpoint_every`` save a run state that
   ``resume=True`` continues bitwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..autograd import no_grad
from ..nn.critics import RewardModel
from ..objectives import bradley_terry_loss, preference_accuracy
from ..optim import AdamW, LinearSchedule, param_groups
from ..tasks.sentiment import PreferencePairs
from .history import History
from .loop import as_rng, check_finite, optimizer_step, run_loop


def reward_fn(rm: RewardModel) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``rm`` as a plain reward function ``(tokens, response_mask) -> (B,) float64``, no grad.

    This is the *proxy* reward handed to PPO, GRPO and best-of-n.
    """

    def score(tokens: np.ndarray, response_mask: np.ndarray) -> np.ndarray:
        was_training = rm.training
        rm.eval()
        try:
            with no_grad():
                return rm.score(tokens, response_mask).data.astype(np.float64)
        finally:
            rm.train(was_training)

    return score


def bayes_accuracy(pairs: PreferencePairs) -> float:
    r"""The best label accuracy any reward model can expect on ``pairs``: $\frac1n\sum_i \max(p_i, 1-p_i)$.

    $p_i$ is the annotator's probability of the label it gave (``pairs.p_chosen``); even
    the true reward agrees with a noisy annotator only this often, on average.
    """
    p = np.asarray(pairs.p_chosen, dtype=np.float64)
    return float(np.mean(np.maximum(p, 1.0 - p)))


def _scores(rm: RewardModel, pairs: PreferencePairs, rows) -> tuple:
    """(chosen, rejected) scores of ``rows``, each (B,), from one forward pass of 2B rows."""
    tokens = np.concatenate([pairs.chosen.ids[rows], pairs.rejected.ids[rows]])  # (2B, T)
    mask = np.concatenate([pairs.chosen.response_mask[rows], pairs.rejected.response_mask[rows]])
    scores = rm.score(tokens, mask)  # (2B,)
    B = len(tokens) // 2
    return scores[:B], scores[B:]


def evaluate_reward_model(
    rm: RewardModel, pairs: PreferencePairs, *, batch_size: int = 256
) -> dict[str, float]:
    """``loss``, ``accuracy`` (vs the labels) and ``true_accuracy`` (vs the true rewards) on ``pairs``.

    ``true_accuracy`` is the fraction of pairs, among those whose true rewards differ,
    that ``rm`` orders the same way as the true reward (a score tie counts as wrong).
    """
    chosen, rejected, was_training = [], [], rm.training
    rm.eval()  # no dropout while measuring
    try:
        with no_grad():
            for i in range(0, len(pairs.chosen), batch_size):
                c, r = _scores(rm, pairs, np.arange(i, min(i + batch_size, len(pairs.chosen))))
                chosen.append(c.data)
                rejected.append(r.data)
    finally:
        rm.train(was_training)
    chosen, rejected = np.concatenate(chosen), np.concatenate(rejected)  # (n,), (n,)
    true_diff = np.sign(pairs.chosen_reward - pairs.rejected_reward)  # (n,)
    agree = np.sign(chosen.astype(np.float64) - rejected) == true_diff
    return {
        "loss": float(bradley_terry_loss(chosen, rejected).item()),
        "accuracy": preference_accuracy(chosen, rejected),
        "true_accuracy": float(np.mean(agree[true_diff != 0])),
    }


def train_reward_model(
    rm: RewardModel,
    pairs: PreferencePairs,
    *,
    eval_pairs: PreferencePairs | None = None,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-3,
    warmup: int = 0,
    rng: np.random.Generator | int | None = None,
    margin=None,
    center_coef: float = 0.0,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    eval_every: int | None = None,
    progress: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> History:
    """Train ``rm`` in place on ``pairs`` with the Bradley–Terry loss; see the module doc.

    ``margin`` is None, a float, or one value per pair (n,). ``eval_every`` defaults to
    ``steps // 10``. History keys: ``loss``, ``accuracy``, ``grad_norm``, ``lr``, ``seconds``
    (wall time since the run began, carried over on resume), and with ``eval_pairs``: ``eval_loss``,
    ``eval_accuracy``, ``eval_true_accuracy`` (logged at step 0 too, before any update).
    """
    n = len(pairs.chosen)
    if not (steps >= 1 and batch_size >= 1 and n >= 1):
        raise ValueError(
            f"train_reward_model: need steps >= 1, batch_size >= 1 and at least one pair, "
            f"got steps={steps}, batch_size={batch_size}, {n} pairs"
        )
    if margin is not None:
        margin = np.broadcast_to(np.asarray(margin, dtype=np.float64), (n,))
    rng = as_rng(rng)
    opt = AdamW(param_groups(rm, weight_decay), lr=lr)
    schedule = LinearSchedule(lr, total_steps=steps, warmup_steps=warmup)

    def step_fn(step: int) -> dict[str, float]:
        schedule.apply(opt, step)
        rows = rng.integers(0, n, size=batch_size)  # (B,)
        chosen, rejected = _scores(rm, pairs, rows)
        check_finite(chosen.data.sum() + rejected.data.sum(), "the sum of the scores")
        loss = bradley_terry_loss(
            chosen, rejected, None if margin is None else margin[rows], center_coef
        )
        [grad_norm] = optimizer_step(loss, [(opt, rm)], grad_clip)
        return dict(loss=loss.item(), accuracy=preference_accuracy(chosen.data, rejected.data),
                    grad_norm=grad_norm, lr=opt.lr)  # fmt: skip

    def eval_fn(step: int) -> dict[str, float]:
        metrics = evaluate_reward_model(rm, eval_pairs)
        return {f"eval_{k}": v for k, v in metrics.items()}

    return run_loop(
        "train_reward_model", step_fn, steps=steps, desc="reward model",
        eval_fn=None if eval_pairs is None else eval_fn,
        eval_every=eval_every or max(1, steps // 10), progress=progress, rng=rng,
        modules={"rm": rm}, optimizers={"adamw": opt},
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
    )  # fmt: skip
