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
4. The gradient is clipped to global norm ``grad_clip``; the norm *before* clipping is logged.
5. A NaN/inf loss or gradient stops training with an error naming the step.
6. Ctrl-C stops cleanly and returns the history so far (``history.interrupted`` is True).
   (A Ctrl-C that lands inside ``opt.step()`` can leave that one step half applied.)
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..nn.module import Module
from ..optim import AdamW, CosineSchedule, Optimizer, param_groups
from .history import History
from .loop import as_rng, optimizer_step, run_loop, training_mode


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
    was_training, total, count = model.training, 0.0, 0.0
    model.eval()
    try:
        with no_grad():
            for i in range(0, len(tokens), batch_size):
                m = mask[i : i + batch_size]
                n = float(m[:, 1:].sum())
                total += n * float(_batch_loss(model, tokens[i : i + batch_size], m).item())
                count += n
    finally:
        model.train(was_training)
    return total / count


def train_sft(
    model: Module,
    tokens,
    mask=None,
    *,
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 3e-3,
    rng: np.random.Generator | int | None = None,
    warmup: int | None = None,
    min_lr_ratio: float = 0.1,
    weight_decay: float = 0.1,
    grad_clip: float | None = 1.0,
    eval_tokens=None,
    eval_mask=None,
    eval_every: int | None = None,
    progress: bool = True,
    log_every: int = 1,
    optimizer: Optimizer | None = None,
    start_step: int = 0,
    end_step: int | None = None,
) -> History:
    """Train ``model`` in place on ``tokens`` (N, T) int with ``mask`` (N, T) (1 = real token).

    ``steps`` is the length of the learning-rate schedule (default warm-up: ``steps // 10``).
    To resume a run, pass the restored ``optimizer`` (see `minialign.checkpoint.load_into`),
    the generator in the state it had, and ``start_step``; ``end_step`` stops early
    (default ``steps``). History keys: ``loss``, ``lr``, ``grad_norm``, ``seconds``
    (wall time since the call began), and ``eval_loss`` when ``eval_tokens`` is given,
    logged at the step whose update it follows.
    """
    tokens, mask = _check_tokens("tokens", tokens, mask, model)
    if eval_tokens is not None:
        eval_tokens, eval_mask = _check_tokens("eval_tokens", eval_tokens, eval_mask, model)
    end_step = steps if end_step is None else end_step
    if not (steps >= 1 and batch_size >= 1 and log_every >= 1 and 0 <= start_step <= end_step):
        raise ValueError(
            f"train_sft: need steps >= 1, batch_size >= 1, log_every >= 1 and "
            f"0 <= start_step <= end_step, got steps={steps}, batch_size={batch_size}, "
            f"log_every={log_every}, start_step={start_step}, end_step={end_step}"
        )
    rng = as_rng(rng)
    warmup = min(steps // 10, 100) if warmup is None else warmup
    schedule = CosineSchedule(lr, total_steps=steps, warmup_steps=warmup, min_lr=lr * min_lr_ratio)
    opt = optimizer or AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95))

    def step_fn(step: int) -> dict[str, float]:
        schedule.apply(opt, step)
        rows = rng.integers(0, len(tokens), size=batch_size)
        loss = _batch_loss(model, tokens[rows], mask[rows])
        [grad_norm] = optimizer_step(loss, [(opt, model)], grad_clip)
        return dict(loss=loss.item(), lr=opt.lr, grad_norm=grad_norm)

    def eval_fn(done: int) -> dict[str, float]:
        return {"eval_loss": evaluate_loss(model, eval_tokens, eval_mask)}

    with training_mode(True, model):
        return run_loop(
            "train_sft", step_fn, steps=end_step, start=start_step, desc="sft",
            postfix=("loss", "lr"), log_every=log_every,
            eval_fn=None if eval_tokens is None else eval_fn,
            eval_every=eval_every or max(1, steps // 10), eval_at_update=True,
            progress=progress,
        )  # fmt: skip
