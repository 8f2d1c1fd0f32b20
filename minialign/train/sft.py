r"""Supervised (pre-)training: next-token cross-entropy on plain token arrays.

The model reads tokens $x_{<t}$ and predicts $x_t$; the loss averages over the
positions whose target is a real token (mask 1), so right-padding never counts:

$$\mathcal L(\theta) = -\frac{1}{\sum_{n,t} m_{n,t}} \sum_{n,t \ge 1} m_{n,t} \log p_\theta(x_{n,t} \mid x_{n,<t})$$

Implementation details (each one a choice worth knowing):

1. Batches are rows drawn uniformly *with replacement* by ``rng.integers``; columns that
   hold only padding in the whole batch are trimmed before the forward pass.
2. AdamW with betas (0.9, 0.95) (nanoGPT's) and weight decay on 2-D parameters only
   (`minialign.optim.param_groups`).
3. Learning rate: linear warm-up from 0, then cosine decay to ``min_lr_ratio · lr``.
4. The gradient is clipped to global norm ``max_grad_norm``; the norm *before* clipping is logged.
5. A NaN/inf loss or gradient stops training with an error naming the step.
6. Ctrl-C stops cleanly and returns the history so far (``history.interrupted`` is True).
   (A Ctrl-C that lands inside ``opt.step()`` can leave that one step half applied.)
7. ``checkpoint_path`` saves the model, the optimiser and the generator every
   ``save_steps`` and at the end; ``resume=True`` continues from it, bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..nn.module import Module, training_mode
from ..optim import AdamW, CosineSchedule, param_groups
from .config import LoopConfig, knob
from .history import History
from .run import Run, get_rng, optimizer_step


@dataclass(frozen=True)
class SFTConfig(LoopConfig):
    """Every setting of `train_sft` (TRL's ``SFTConfig`` names where TRL has the knob)."""

    steps: int = knob(300, "optimiser steps, also the length of the learning-rate schedule", min=1)
    batch_size: int = knob(16, "sequences per step, drawn with replacement", min=1, max=65536)
    learning_rate: float = knob(3e-3, "AdamW peak learning rate", gt=0)
    warmup_steps: int | None = knob(
        None, "steps of linear warm-up (None: min(steps // 10, 100))", min=0
    )
    min_lr_ratio: float = knob(
        0.1, "the cosine decays the rate to this fraction of learning_rate", min=0, max=1
    )
    weight_decay: float = knob(0.1, "AdamW weight decay of 2-D parameters", min=0)
    max_grad_norm: float | None = knob(
        1.0, "clip the gradient to this norm (None: no clipping)", gt=0
    )


def unigram_entropy(tokens, mask=None) -> float:
    r"""Entropy in nats of the token frequencies, $H = -\sum_v \hat p_v \log \hat p_v$.

    This is the loss of the best model that ignores context: a model that has learned
    the corpus's structure must beat it. Pass ``tokens[:, 1:], mask[:, 1:]`` to compare
    with the next-token loss, which only scores targets.
    """
    tokens = np.asarray(tokens)
    keep = np.ones(tokens.shape, bool) if mask is None else np.asarray(mask) > 0
    counts = np.bincount(tokens[keep].ravel().astype(np.intp))  # wasm32: intp is int32
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _check_tokens(name: str, tokens, mask, model: Module):
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] < 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(
            f"train_sft: {name} must be an integer array (N, T) with T >= 2, "
            f"got shape {tokens.shape} dtype {tokens.dtype}"
        )
    mask = np.ones(tokens.shape, np.float32) if mask is None else np.asarray(mask, np.float32)
    if mask.shape != tokens.shape:
        raise ValueError(f"train_sft: {name} mask shape {mask.shape} != tokens {tokens.shape}")
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    if tokens.min() < 0 or (vocab is not None and tokens.max() >= vocab):
        raise ValueError(
            f"train_sft: {name} ids must lie in [0, {vocab}), "
            f"got range [{tokens.min()}, {tokens.max()}]"
        )
    block = getattr(config, "block_size", None)
    if block is not None and tokens.shape[1] - 1 > block:
        raise ValueError(
            f"train_sft: {name} has T={tokens.shape[1]}, but the model sees at most "
            f"block_size={block} inputs (T - 1)"
        )
    empty = np.flatnonzero(mask[:, 1:].sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"train_sft: {name} rows {empty[:5].tolist()} have no target token "
            f"(mask[:, 1:] is all 0); drop them"
        )
    return tokens, mask


def _batch_loss(model: Module, tokens: np.ndarray, mask: np.ndarray):
    """Cross-entropy of ``tokens[:, 1:]`` given ``tokens[:, :-1]``, trimming padding columns."""
    length = int(np.flatnonzero(mask.any(axis=0)).max()) + 1  # last column with a real token
    tokens, mask = tokens[:, :length], mask[:, :length]
    logits = model(tokens[:, :-1])  # (B, T-1, V)
    return F.cross_entropy(logits, tokens[:, 1:], mask[:, 1:])


def evaluate_loss(model: Module, tokens, mask=None, batch_size: int = 64) -> float:
    """Mean next-token loss per target token over a whole set, without gradients."""
    tokens, mask = _check_tokens("eval_tokens", tokens, mask, model)
    total, count = 0.0, 0.0
    with training_mode(False, model), no_grad():
        for i in range(0, len(tokens), batch_size):
            m = mask[i : i + batch_size]
            n = float(m[:, 1:].sum())
            total += n * float(_batch_loss(model, tokens[i : i + batch_size], m).item())
            count += n
    return total / count


def sft_step(model, optimizer, tokens, mask, max_grad_norm) -> dict[str, float]:
    """One update on a batch: next-token cross-entropy, backward, clip, step."""
    loss = _batch_loss(model, tokens, mask)
    [grad_norm] = optimizer_step(loss, [(optimizer, model)], max_grad_norm)
    return dict(loss=loss.item(), lr=optimizer.lr, grad_norm=grad_norm)


def train_sft(
    model: Module,
    tokens,
    mask=None,
    config: SFTConfig = SFTConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    *,
    rng: np.random.Generator | int | None = None,
    eval_tokens=None,
    eval_mask=None,
    checkpoint_path=None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``model`` in place on ``tokens`` (N, T) int with ``mask`` (N, T) (1 = real token).

    History keys: ``loss``, ``lr``, ``grad_norm``, ``seconds`` (wall time since the run
    began), and ``eval_loss`` when ``eval_tokens`` is given, logged at the step whose
    update it follows.
    """
    tokens, mask = _check_tokens("tokens", tokens, mask, model)
    if eval_tokens is not None:
        eval_tokens, eval_mask = _check_tokens("eval_tokens", eval_tokens, eval_mask, model)
    rng = get_rng(rng)
    lr, warmup = config.learning_rate, config.warmup_steps
    warmup = min(config.steps // 10, 100) if warmup is None else warmup
    schedule = CosineSchedule(lr, config.steps, warmup, min_lr=lr * config.min_lr_ratio)
    optimizer = AdamW(param_groups(model, config.weight_decay), lr=lr, betas=(0.9, 0.95))

    def eval_fn(done: int) -> dict[str, float]:
        return {"eval_loss": evaluate_loss(model, eval_tokens, eval_mask)}

    with (
        training_mode(True, model),
        Run(
            "sft",
            config,
            rng=rng,
            saved={"model": model, "optimizer": optimizer},
            eval_fn=None if eval_tokens is None else eval_fn,
            eval_after_update=True,
            checkpoint_path=checkpoint_path,
            resume=resume,
            progress=progress,
            postfix=("loss", "lr"),
        ) as run,  # fmt: skip
    ):
        for step in run.steps():
            schedule.apply(optimizer, step)
            rows = rng.integers(0, len(tokens), size=config.batch_size)  # (B,)
            run.log(
                step, sft_step(model, optimizer, tokens[rows], mask[rows], config.max_grad_norm)
            )
    return run.history
