"""The runner every training loop iterates, and the one update every loop ends with.

Each trainer reads top to bottom::

    with Run("ppo", config, rng=rng, saved={"policy": policy, ...}, ...) as run:
        for step in run.steps():
            run.log(step, ppo_iteration(...))
    return run.history

`Run` owns what is not the algorithm: resuming from a checkpoint (bitwise equal to an
uninterrupted run), the progress bar, evaluation every ``config.eval_steps``, logging,
checkpoints every ``config.save_steps`` (every object in ``saved``, the generator and
the history in one ``.npz``, written atomically, no pickle), the NaN guard naming the
step, Ctrl-C (the ``with`` block ends, the history so far is kept, ``interrupted`` set),
and the ``seconds`` metric (wall time since the run began, carried over on resume).

`optimizer_step` is the update: zero the gradients, backward once, clip, step.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..autograd import Tensor, get_rng
from ..checkpoint import read_json_entry, read_npz, remove_orphans, restore_rng, write_npz_atomic
from ..nn.module import Module
from ..optim import Optimizer, clip_grad_norm
from .config import LoopConfig
from .history import History

__all__ = ["Run", "check_finite", "get_rng", "optimizer_step", "save_run_state", "load_run_state"]


def check_finite(value: float, what: str) -> float:
    """``value`` as a float, or a FloatingPointError "``what`` is nan" (`Run` adds the step)."""
    value = float(value)
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is {value}")
    return value


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


def save_run_state(path, *, step: int, saved: dict, rng: np.random.Generator, history: History):
    """Everything needed to resume a run bitwise, in one ``.npz`` written atomically.

    ``saved`` maps a name to anything with ``state_dict()`` (models, optimisers, the
    adaptive-KL controller); its arrays are stored under ``"<name>/<key>"``.
    """
    meta = {"step": int(step), "rng": rng.bit_generator.state, "history": history.as_dict()}
    arrays = {"__run__": np.array(json.dumps(meta))}
    for name, obj in saved.items():
        arrays.update({f"{name}/{k}": np.asarray(v) for k, v in obj.state_dict().items()})
    write_npz_atomic(path, arrays)


def load_run_state(path, *, saved: dict, rng: np.random.Generator) -> tuple[int, History]:
    """Restore what `save_run_state` wrote into ``saved`` and ``rng``; returns (step, history).

    The file is read without trusting it (`minialign.archive.read_npz`); every error is a
    ValueError naming the file and the entry."""
    arrays = read_npz(path)
    meta = read_json_entry(path, arrays, "__run__", {"step": int, "rng": dict, "history": dict},
                           "a minialign run state")  # fmt: skip
    if meta["step"] < 0:
        raise ValueError(f"{path}: entry '__run__' key 'step' must be >= 0, got {meta['step']}")
    try:
        history = History.from_dict(meta["history"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{path}: entry '__run__' key 'history' is not a history ({e!r})"
        ) from None
    for name, obj in saved.items():
        prefix = f"{name}/"
        state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"{path}: no entries {prefix}*; a run state of another kind of run")
        try:
            obj.load_state_dict(state)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: entries {prefix}*: {e}") from None
    restore_rng(path, rng, meta["rng"], "entry '__run__' key 'rng'")
    return meta["step"], history


class Run:
    """``with Run(...) as run: for step in run.steps(): run.log(step, metrics)``.

    * ``config``: ``steps``, ``eval_steps``, ``logging_steps``, ``save_steps`` (`LoopConfig`).
    * ``eval_fn(k)`` runs after ``k`` updates, every ``config.eval_interval`` steps and
      at the end, logged at step ``k``, and at step 0 before training unless resumed;
      ``eval_after_update``: logged at ``k - 1``, the step it follows, and not at step 0.
    * ``saved``: name -> object with ``state_dict``/``load_state_dict``, checkpointed
      with ``rng`` and the history to ``checkpoint_path`` every ``config.save_steps``
      steps and at the end. ``resume`` continues from that file if it exists.
    * ``unit`` names a step in errors ("iteration 3"); ``postfix`` the metrics the bar shows.
    """

    def __init__(
        self,
        name: str,
        config: LoopConfig,
        *,
        rng: np.random.Generator,
        saved: dict | None = None,
        eval_fn: Callable[[int], dict[str, float]] | None = None,
        eval_after_update: bool = False,
        checkpoint_path: str | os.PathLike | None = None,
        resume: bool = False,
        progress: bool = True,
        unit: str = "step",
        postfix: Sequence[str] = ("loss",),
    ):
        self.name, self.config, self.rng, self.saved = name, config, rng, saved or {}
        self.eval_fn, self.eval_after_update = eval_fn, eval_after_update
        self.checkpoint_path, self.resume, self.progress = checkpoint_path, resume, progress
        self.unit, self.postfix = unit, tuple(postfix)
        self.history, self.step = History(), None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is KeyboardInterrupt:  # Ctrl-C: a clean stop that keeps the history
            self.history.interrupted = True
            tqdm.write(f"{self.name}: interrupted; returning the history so far")
            return True
        if kind is FloatingPointError:
            raise FloatingPointError(
                f"{self.name}: {error} at {self.unit} {self.step}; "
                "lower the learning rate or check the inputs"
            ) from error
        return False

    def steps(self) -> Iterator[int]:
        """Yield the steps still to run; between them evaluate and checkpoint."""
        start = self._restore()
        carried = self.history.last("seconds") if "seconds" in self.history else 0.0
        clock = time.perf_counter() - carried
        if self.eval_fn is not None and start == 0 and not self.eval_after_update:
            self.history.log(0, **self.eval_fn(0))  # the starting point (the reference, usually)
        total, every = self.config.steps, self.config.eval_interval
        bar = tqdm(range(start, total), desc=self.name, disable=not self.progress, unit=self.unit)
        self._clock, self._bar = clock, bar
        with bar:
            for step in bar:
                self.step = step
                yield step
                done, last = step + 1, step == total - 1
                if self.eval_fn is not None and (done % every == 0 or last):
                    self.history.log(step if self.eval_after_update else done, **self.eval_fn(done))
                save = self.config.save_steps
                if self.checkpoint_path is not None and (last or (save and done % save == 0)):
                    self._save(done)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record one step's metrics (every ``config.logging_steps`` and at the last step).

        A non-finite ``metrics["loss"]`` is a FloatingPointError naming the step."""
        if "loss" in metrics:
            check_finite(metrics["loss"], "the loss")
        if step % self.config.logging_steps == 0 or step == self.config.steps - 1:
            self.history.log(step, **metrics, seconds=time.perf_counter() - self._clock)
            shown = {k: f"{metrics[k]:.4g}" for k in self.postfix if k in metrics}
            self._bar.set_postfix(shown, refresh=False)

    def _restore(self) -> int:
        path = self.checkpoint_path
        if path is not None:
            remove_orphans(path)  # temp files of writes that a kill interrupted
        if not (self.resume and path is not None and os.path.exists(path)):
            return 0
        start, self.history = load_run_state(path, saved=self.saved, rng=self.rng)
        if start > self.config.steps:
            raise ValueError(f"{path}: the run state is at step {start}, past the "
                             f"{self.config.steps} steps this run asks for")  # fmt: skip
        return start

    def _save(self, done: int) -> None:
        save_run_state(self.checkpoint_path, step=done, saved=self.saved, rng=self.rng,
                       history=self.history)  # fmt: skip
