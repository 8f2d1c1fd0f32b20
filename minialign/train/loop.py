"""One loop for every trainer, and the safety rails it carries.

Every trainer (sft, reward model, DPO, PPO, GRPO) writes only its
``step_fn(step) -> metrics`` and hands it to `run_loop`, which owns the rest: resuming,
the progress bar, evaluation every ``eval_every`` steps, Ctrl-C (`interruptible`: a
clean stop that keeps the history), NaN guards naming the step, checkpoints
(`save_run_state`/`load_run_state`: every model, optimiser, the generator and the
history in one ``.npz``, atomically, no pickle) and the ``seconds`` metric: wall time
since the run began, evaluations included, carried over on resume. `optimizer_step` is
the update every ``step_fn`` ends with: zero, backward once, clip, step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..autograd import Tensor, get_rng
from ..checkpoint import write_npz_atomic
from ..nn.module import Module
from ..optim import Optimizer, clip_grad_norm
from .history import History


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """An int seeds a new generator; None means minialign's default (``ma.seed``)."""
    return np.random.default_rng(rng) if isinstance(rng, (int, np.integer)) else get_rng(rng)


@contextlib.contextmanager
def interruptible(history: History, name: str):
    """``with interruptible(history, "ppo"): ...`` — Ctrl-C ends the block, not the program."""
    try:
        yield
    except KeyboardInterrupt:
        history.interrupted = True
        tqdm.write(f"{name}: interrupted; returning the history so far")


@contextlib.contextmanager
def training_mode(training: bool, *modules: Module):
    """Put ``modules`` in train (True) or eval (False) mode for the block, then restore each."""
    was_training = [m.training for m in modules]
    for m in modules:
        m.train(training)
    try:
        yield
    finally:
        for m, mode in zip(modules, was_training):
            m.train(mode)


def check_finite(value: float, what: str) -> float:
    """``value`` as a float, or a FloatingPointError "``what`` is nan" (`run_loop` adds the step)."""
    value = float(value)
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is {value}")
    return value


def save_run_state(
    path,
    *,
    step: int,
    modules: dict[str, Module],
    optimizers: dict,
    rng: np.random.Generator,
    history: History,
    extra: dict | None = None,
) -> None:
    """Everything needed to resume a run bitwise, in one ``.npz`` written atomically."""
    meta = {
        "step": int(step),
        "rng": rng.bit_generator.state,
        "history": history.as_dict(),
        "extra": extra or {},
    }
    arrays = {"__run__": np.array(json.dumps(meta))}
    for name, module in modules.items():
        arrays.update({f"model/{name}/{k}": v for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        arrays.update({f"optim/{name}/{k}": np.asarray(v) for k, v in opt.state_dict().items()})
    write_npz_atomic(path, arrays)


def load_run_state(
    path, *, modules: dict[str, Module], optimizers: dict, rng: np.random.Generator
) -> tuple[int, History, dict]:
    """Restore what `save_run_state` wrote into the given objects; returns (step, history, extra)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if "__run__" not in arrays:
        raise ValueError(f"{path}: not a minialign run state (no '__run__' entry)")
    meta = json.loads(str(arrays["__run__"]))

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    for name, module in modules.items():
        module.load_state_dict(section(f"model/{name}/"))
    for name, opt in optimizers.items():
        opt.load_state_dict(section(f"optim/{name}/"))
    rng.bit_generator.state = meta["rng"]
    return meta["step"], History.from_dict(meta["history"]), meta["extra"]


def optimizer_step(
    loss: Tensor, pairs: Sequence[tuple[Optimizer, Module]], max_grad_norm: float | None
) -> list[float]:
    """Backpropagate ``loss`` once, then for each ``(optimizer, model)`` clip the model's
    gradient to ``max_grad_norm`` (None: no clipping) and step. Returns each model's
    gradient norm before clipping. A non-finite loss or gradient is a FloatingPointError."""
    check_finite(loss.item(), "the loss")
    for opt, _ in pairs:
        opt.zero_grad()
    loss.backward()
    norms = []
    for opt, model in pairs:
        try:
            norms.append(clip_grad_norm(model.parameters(), max_grad_norm or math.inf))
        except ValueError as e:
            raise FloatingPointError(f"the gradient is not finite ({e})") from e
        opt.step()
    return norms


def run_loop(
    name: str,
    step_fn: Callable[[int], dict[str, float]],
    *,
    steps: int,
    start: int = 0,
    desc: str | None = None,
    unit: str = "step",
    postfix: Sequence[str] = ("loss",),
    log_every: int = 1,
    eval_fn: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 1,
    eval_at_update: bool = False,
    progress: bool = True,
    rng: np.random.Generator | None = None,
    modules: dict[str, Module] | None = None,
    optimizers: dict | None = None,
    get_extra: Callable[[], dict] = dict,
    set_extra: Callable[[dict], None] = lambda extra: None,
    checkpoint_path=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> History:
    """Run ``step_fn(step) -> metrics`` for ``step`` in ``[start, steps)`` and log everything.

    * Logging: ``metrics`` (plus ``seconds``) at ``step`` when ``step % log_every == 0`` and
      at the last step; ``postfix`` names the metrics the ``tqdm`` bar shows (``desc``).
    * Evaluation: ``eval_fn(k)`` after ``k`` updates, every ``eval_every`` and at the end,
      logged at step ``k`` (``eval_at_update``: at ``k - 1``, the update it follows, with
      no evaluation before the first); and at step 0 unless the run is resumed.
    * Safety: ``metrics["loss"]`` must be finite; a FloatingPointError from ``step_fn``
      is re-raised naming ``name`` and the ``unit`` (step/iteration); Ctrl-C stops
      cleanly with ``history.interrupted`` set.
    * Checkpoints: every ``checkpoint_every`` steps and at the end, `save_run_state` of
      ``modules``, ``optimizers``, ``rng``, the history and ``get_extra()``. With
      ``resume`` and an existing ``checkpoint_path`` the run continues from it (then
      ``set_extra(extra)``); without one it starts from scratch.
    * ``seconds``: wall time since the run began, evaluations included, carried over
      from the checkpoint on resume.
    """
    if not (0 <= start <= steps and eval_every >= 1 and log_every >= 1) or (
        checkpoint_every is not None and checkpoint_every < 1
    ):
        raise ValueError(
            f"{name}: need 0 <= start <= steps and eval_every, log_every, checkpoint_every "
            f">= 1, got start={start}, steps={steps}, eval_every={eval_every}, "
            f"log_every={log_every}, checkpoint_every={checkpoint_every}"
        )
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError(f"{name}: checkpoint_every needs a checkpoint_path")
    state = dict(modules=modules or {}, optimizers=optimizers or {}, rng=rng)
    history = History()
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        start, history, extra = load_run_state(checkpoint_path, **state)
        set_extra(extra)
    clock = time.perf_counter() - (history.last("seconds") if "seconds" in history else 0.0)
    if eval_fn is not None and start == 0 and not eval_at_update:
        history.log(0, **eval_fn(0))  # the starting point (the reference, usually)
    bar = tqdm(range(start, steps), desc=desc or name, disable=not progress)
    with contextlib.closing(bar), interruptible(history, name):
        for step in bar:
            try:
                metrics = step_fn(step)
                if "loss" in metrics:
                    check_finite(metrics["loss"], "the loss")
            except FloatingPointError as e:
                raise FloatingPointError(
                    f"{name}: {e} at {unit} {step}; lower the learning rate or check the inputs"
                ) from e
            done, last = step + 1, step == steps - 1
            if step % log_every == 0 or last:
                history.log(step, **metrics, seconds=time.perf_counter() - clock)
                shown = {k: f"{metrics[k]:.4g}" for k in postfix if k in metrics}
                bar.set_postfix(shown, refresh=False)
            if eval_fn is not None and (done % eval_every == 0 or last):
                history.log(step if eval_at_update else done, **eval_fn(done))
            if checkpoint_every and (done % checkpoint_every == 0 or last):
                save_run_state(
                    checkpoint_path, step=done, history=history, extra=get_extra(), **state
                )
    return history
