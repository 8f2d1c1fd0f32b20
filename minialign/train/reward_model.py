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
   linearly to 0 at ``steps`` (Hugging Face's default, used by TRL); the gradient is
   clipped to ``max_grad_norm``, and the norm before clipping is logged as ``grad_norm``.
4. Metrics: ``loss`` and ``accuracy`` (on the training batch, ``preference_accuracy``:
   a tie counts as wrong), and every ``eval_steps`` steps, on ``eval_pairs``:
   ``eval_loss``, ``eval_accuracy`` (agreement with the annotator's labels) and
   ``eval_true_accuracy`` (agreement with the ordering of the TRUE rewards, pairs whose
   true rewards tie left out). A noisy annotator caps ``eval_accuracy`` well below 1 —
   see `bayes_accuracy` — while ``eval_true_accuracy`` can approach 1.
5. NaN/inf loss -> ``FloatingPointError`` naming the step; Ctrl-C returns the history
   so far; ``checkpoint_path`` (every ``save_steps`` and at the end) saves a run state
   that ``resume=True`` continues bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..nn.critics import RewardModel, last_response_index
from ..nn.module import training_mode
from ..objectives import bradley_terry_loss, preference_accuracy
from ..optim import AdamW, LinearSchedule, param_groups
from ..tokenizer import PreferencePairs
from .config import LoopConfig, knob
from .history import History
from .run import Run, check_finite, get_rng, optimizer_step


@dataclass(frozen=True)
class RewardConfig(LoopConfig):
    """Every setting of `train_reward_model` (TRL's ``RewardConfig`` names)."""

    steps: int = knob(200, "optimiser steps, one batch of pairs each", min=1)
    batch_size: int = knob(32, "pairs per step, drawn with replacement", min=1, max=65536)
    learning_rate: float = knob(
        1e-3, "AdamW peak learning rate (linear warm-up, then linear decay to 0)", gt=0
    )
    warmup_steps: int = knob(0, "steps of linear warm-up", min=0)
    center_rewards_coefficient: float = knob(
        0.0, "c, weight of mean((r+ + r-)^2), which pins the reward's offset", min=0
    )
    weight_decay: float = knob(0.0, "AdamW weight decay of 2-D parameters", min=0)
    max_grad_norm: float | None = knob(
        1.0, "clip the gradient to this norm (None: no clipping)", gt=0
    )


#: Rows scored per forward pass by `reward_fn`. A multiple of 24: OpenBLAS then computes each
#: row of a matrix product exactly as it would in one pass over all rows (measured on the
#: project's machine), so scoring in chunks gives the same bits while holding ~100 MB, not
#: the ~1 GB that best-of-64 over 512 prompts (33,280 rows) needs in one pass.
SCORE_CHUNK_ROWS = 4800


def reward_fn(rm: RewardModel, chunk_rows: int = SCORE_CHUNK_ROWS):
    """``rm`` as a plain reward function ``(tokens, response_mask) -> (B,) float64``, no grad.

    This is the *proxy* reward handed to PPO, GRPO and best-of-n. Large batches are scored
    ``chunk_rows`` rows at a time (every chunk reads the same columns).
    """

    def score(tokens: np.ndarray, response_mask: np.ndarray) -> np.ndarray:
        length = int(last_response_index(response_mask).max()) + 1  # the same for every chunk
        out = np.empty(len(tokens), dtype=np.float64)
        with training_mode(False, rm), no_grad():
            for i in range(0, len(tokens), chunk_rows):
                rows = slice(i, i + chunk_rows)
                out[rows] = rm.score(tokens[rows], response_mask[rows], length=length).data
        return out

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
    chosen, rejected = [], []
    with training_mode(False, rm), no_grad():  # no dropout while measuring
        for i in range(0, len(pairs.chosen), batch_size):
            c, r = _scores(rm, pairs, np.arange(i, min(i + batch_size, len(pairs.chosen))))
            chosen.append(c.data)
            rejected.append(r.data)
    chosen, rejected = np.concatenate(chosen), np.concatenate(rejected)  # (n,), (n,)
    true_diff = np.sign(pairs.chosen_reward - pairs.rejected_reward)  # (n,)
    agree = np.sign(chosen.astype(np.float64) - rejected) == true_diff
    return {
        "loss": float(bradley_terry_loss(chosen, rejected).item()),
        "accuracy": preference_accuracy(chosen, rejected),
        "true_accuracy": float(np.mean(agree[true_diff != 0])),
    }


def reward_model_step(rm, optimizer, pairs: PreferencePairs, rows, margin,
                      config: RewardConfig) -> dict[str, float]:  # fmt: skip
    """One update on the pairs ``rows``: Bradley–Terry loss, backward, clip, step."""
    chosen, rejected = _scores(rm, pairs, rows)  # (B,), (B,)
    check_finite(chosen.data.sum() + rejected.data.sum(), "the sum of the scores")
    loss = bradley_terry_loss(chosen, rejected, None if margin is None else margin[rows],
                              config.center_rewards_coefficient)  # fmt: skip
    [grad_norm] = optimizer_step(loss, [(optimizer, rm)], config.max_grad_norm)
    return dict(loss=loss.item(), accuracy=preference_accuracy(chosen.data, rejected.data),
                grad_norm=grad_norm, lr=optimizer.lr)  # fmt: skip


def train_reward_model(
    rm: RewardModel,
    pairs: PreferencePairs,
    config: RewardConfig = RewardConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    *,
    eval_pairs: PreferencePairs | None = None,
    margin=None,
    rng: np.random.Generator | int | None = None,
    checkpoint_path=None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``rm`` in place on ``pairs`` with the Bradley–Terry loss; see the module doc.

    ``margin`` is None, a float, or one value per pair (n,). History keys: ``loss``,
    ``accuracy``, ``grad_norm``, ``lr``, ``seconds`` (wall time since the run began,
    carried over on resume), and with ``eval_pairs``: ``eval_loss``, ``eval_accuracy``,
    ``eval_true_accuracy`` (logged at step 0 too, before any update).
    """
    n = len(pairs.chosen)
    if n < 1:
        raise ValueError("train_reward_model: pairs is empty; need at least one preference pair")
    if margin is not None:
        margin = np.broadcast_to(np.asarray(margin, dtype=np.float64), (n,))
    rng = get_rng(rng)
    optimizer = AdamW(param_groups(rm, config.weight_decay), lr=config.learning_rate)
    schedule = LinearSchedule(config.learning_rate, config.steps, config.warmup_steps)

    def eval_fn(step: int) -> dict[str, float]:
        return {f"eval_{k}": v for k, v in evaluate_reward_model(rm, eval_pairs).items()}

    with Run("reward model", config, rng=rng, saved={"rm": rm, "optimizer": optimizer},
             eval_fn=None if eval_pairs is None else eval_fn, checkpoint_path=checkpoint_path,
             resume=resume, progress=progress) as run:  # fmt: skip
        for step in run.steps():
            schedule.apply(optimizer, step)
            rows = rng.integers(0, n, size=config.batch_size)  # (B,)
            run.log(step, reward_model_step(rm, optimizer, pairs, rows, margin, config))
    return run.history
