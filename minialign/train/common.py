"""What every RL loop shares: one yardstick for all methods, and the loop's safety rails.

**One yardstick.** `evaluate_policy` samples responses from a policy for a fixed set
of prompts and reports the *true* reward of the task, the proxy (reward-model) reward
if a reward model is given, and the KL to the reference measured the same way for every
method (PPO, GRPO, DPO, best-of-n):

$$\\widehat{\\mathrm{KL}}(\\pi \\| \\pi_{\\rm ref}) = \\frac1B \\sum_{b=1}^{B} \\sum_{t \\in y_b}
   \\big[\\log \\pi(y_{b,t} \\mid x_b, y_{b,<t}) - \\log \\pi_{\\rm ref}(y_{b,t} \\mid x_b, y_{b,<t})\\big],
   \\qquad y_b \\sim \\pi(\\cdot \\mid x_b),$$

the sequence-level k1 estimator: unbiased for the KL between the two distributions over
whole responses (per sample it can be negative; the average is not, in expectation).

`make_eval_fn` wraps it into the ``eval_fn(step)`` every loop accepts.

**One loop.** Every trainer (sft, reward model, DPO, PPO, GRPO) writes only its
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

from ..autograd import Tensor, get_rng, no_grad
from ..checkpoint import write_npz_atomic
from ..nn import generate, sequence_logprobs
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


def sample_with_reference(
    policy: Module, reference: Module, prompts: np.ndarray, *, max_new_tokens: int,
    stop_token: int, pad_id: int, rng: np.random.Generator, temperature: float = 1.0,
):  # fmt: skip
    """Sample one response per prompt row from ``policy`` (KV cache) and score its tokens
    under ``reference``, without gradient: ``(Generation, SequenceLogprobs of reference)``."""
    with no_grad():
        gen = generate(policy, prompts, max_new_tokens, temperature=temperature, rng=rng,
                       stop_token=stop_token, pad_id=pad_id)  # fmt: skip
        ref_logp = sequence_logprobs(reference, gen.tokens, gen.response_mask, temperature)
    return gen, ref_logp


def evaluate_policy(
    policy: Module,
    reference: Module,
    prompts: np.ndarray,
    true_reward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    max_new_tokens: int,
    stop_token: int,
    pad_id: int,
    rng: np.random.Generator,
    reward_model: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Sample one response per prompt and measure it: true reward, proxy reward, KL, length.

    ``true_reward(tokens, response_mask) -> (B,)`` and ``reward_model(tokens,
    response_mask) -> (B,)`` score whole sequences; KL is the sequence-level k1 above.
    """
    gen, ref_logp = sample_with_reference(policy, reference, prompts, rng=rng,
                                          max_new_tokens=max_new_tokens, stop_token=stop_token,
                                          pad_id=pad_id, temperature=temperature)  # fmt: skip
    kl = gen.logprobs.sum(axis=1) - ref_logp.total.data  # (B,)
    out = {
        "true_reward": float(np.mean(true_reward(gen.tokens, gen.response_mask))),
        "kl": float(np.mean(kl)),
        "length": float(gen.response_mask.sum(axis=1).mean()),
    }
    if reward_model is not None:
        out["proxy_reward"] = float(np.mean(reward_model(gen.tokens, gen.response_mask)))
    return out


def make_eval_fn(
    policy: Module,
    reference: Module,
    prompts: np.ndarray,
    true_reward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    max_new_tokens: int,
    stop_token: int,
    pad_id: int,
    seed: int = 0,
    reward_model: Callable | None = None,
    temperature: float = 1.0,
) -> Callable[[int], dict[str, float]]:
    """An ``eval_fn(step)`` for the loops: `evaluate_policy` on fixed held-out ``prompts``.

    Each call draws from its own generator ``default_rng([seed, step])``, never from the
    training generator, so evaluating does not change training and a resumed run
    evaluates exactly as an uninterrupted one. Keys get an ``eval_`` prefix.
    """
    options = dict(max_new_tokens=max_new_tokens, stop_token=stop_token, pad_id=pad_id,
                   reward_model=reward_model, temperature=temperature)  # fmt: skip

    def eval_fn(step: int) -> dict[str, float]:
        rng = np.random.default_rng([seed, step])
        metrics = evaluate_policy(policy, reference, prompts, true_reward, rng=rng, **options)
        return {f"eval_{k}": v for k, v in metrics.items()}

    return eval_fn


# -- resumable runs ------------------------------------------------------------------


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


# -- the loop ------------------------------------------------------------------------


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
