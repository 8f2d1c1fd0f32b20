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

**Safety rails.** `interruptible` turns Ctrl-C into a clean stop that keeps the
history; `check_finite` turns a NaN loss into an error naming the step;
`save_run_state`/`load_run_state` write every model, optimiser, the generator state and
the history to one ``.npz`` (atomically, no pickle) so a run can be resumed bitwise.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from ..autograd import get_rng, no_grad
from ..checkpoint import write_npz_atomic
from ..nn import generate, sequence_logprobs
from ..nn.module import Module
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


def check_finite(value: float, name: str, step: int) -> float:
    """Raise a clear error if a loss went NaN or infinite (a NaN is an error, not a result)."""
    value = float(value)
    if not math.isfinite(value):
        raise FloatingPointError(
            f"{name} became {value} at step {step}; lower the learning rate or check the inputs"
        )
    return value


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
    with no_grad():
        gen = generate(
            policy,
            prompts,
            max_new_tokens,
            temperature=temperature,
            rng=rng,
            stop_token=stop_token,
            pad_id=pad_id,
        )
        ref_logp = sequence_logprobs(reference, gen.tokens, gen.response_mask, temperature)
    kl = gen.logprobs.sum(axis=1) - ref_logp.total.data  # (B,)
    out = {
        "true_reward": float(np.mean(true_reward(gen.tokens, gen.response_mask))),
        "kl": float(np.mean(kl)),
        "length": float(gen.response_mask.sum(axis=1).mean()),
    }
    if reward_model is not None:
        out["proxy_reward"] = float(np.mean(reward_model(gen.tokens, gen.response_mask)))
    return out


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
