"""``minialign train METHOD``: one seeded training run from the shipped reference.

Each run writes into its `minialign.rundir.RunDir`: ``run.json`` (status), ``config.json``
(every setting), ``model.npz`` (the trained model, loadable with
`minialign.checkpoint.load`), ``history.json`` (every logged metric), ``result.json``
(the final measurement against the reference, the demo's yardstick), ``curves.png`` and
``run_state.npz`` (what ``--resume`` continues from, bit for bit). A run stopped by Ctrl-C
keeps its model, history and curves so far, has no ``result.json``, and its ``run.json``
says ``"interrupted"``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import plots
from .nn import GPTConfig, RewardModel, TinyGPT, generate
from .pretrained import RECIPES, load_reference, make_task, single_thread_blas
from .rundir import RunDir, finished, read_json
from .settings import Settings, knob
from .train import (
    RewardConfig,
    Sampling,
    arithmetic_reward_fn,
    evaluate_policy,
    reward_fn,
    train_dpo,
    train_grpo,
    train_ppo,
    train_reward_model,
    train_sft,
)


@dataclass(frozen=True)
class TaskOptions(Settings):
    """What a ``minialign train`` run trains on: flags of the command, not trainer settings."""

    task: str = knob(
        "sentiment",
        "the toy task (arithmetic: sft and grpo only)",
        choices=("sentiment", "arithmetic"),
    )
    pairs: int = knob(2000, "preference pairs to train on", min=1, max=1_000_000)
    beta_bt: float = knob(
        10.0, "annotator sharpness: P(chosen) = sigmoid(beta_bt · Δr)", min=0, max=1e6
    )
    reward: str = knob(
        "rm",
        "optimise a reward model trained on the pairs ('rm', the proxy) or the true reward",
        choices=("rm", "true"),
    )
    process_weight: float | None = knob(
        None, "arithmetic only: 1 - λ, the weight of the process reward (None: 0.5)", min=0, max=1
    )

    #: the options each method reads; the others are not flags of its command
    FOR_METHOD = {"sft": ("task",), "rm": ("pairs", "beta_bt"), "dpo": ("pairs", "beta_bt"),
                  "ppo": ("pairs", "beta_bt", "reward"), "grpo": ("task", "process_weight")}  # fmt: skip


def train_settings(method: str, config, options: TaskOptions, seed: int) -> dict:
    """Every setting of a train run, for ``config.json``."""
    return dict(method=method, config=dataclasses.asdict(config), seed=seed,
                options=dataclasses.asdict(options))  # fmt: skip


def train_command(method: str, config, options: TaskOptions, run: RunDir, *, seed: int = 0,
                  progress: bool = True, resume: bool = False) -> dict:  # fmt: skip
    """Run ``method`` with ``config`` on ``options`` and write ``run``; return the result."""
    task = make_task(options.task)
    loop = dict(rng=np.random.default_rng(seed), progress=progress, resume=resume,
                checkpoint_path=run.path / "run_state.npz")  # fmt: skip
    result: dict = {"method": method, "task": options.task, "seed": seed}
    with single_thread_blas():
        train = {"sft": _sft, "rm": _reward_model}.get(method, _policy)
        model, history = train(method, task, config, options, loop)
        run.written.add("run_state.npz")
        run.save_model("model.npz", model, method=method, task=options.task)
        run.write_json("history.json", history.as_dict())
        draw_history(run.path, run)
        finished(history)  # Ctrl-C: the files above are kept, the run is marked interrupted
        if method == "sft":
            result["final_loss"] = history.last("loss")
        elif method == "rm":
            result["eval_accuracy"] = history.last("eval_accuracy")
        else:
            result.update(_measure(task, options, model, seed))
    run.write_json("result.json", result)
    return result


def _sft(method, task, config, options, loop):
    recipe, tok = RECIPES[options.task], task.tokenizer
    model = TinyGPT(GPTConfig(tok.vocab_size, task.block_size, **recipe.model), rng=loop["rng"])
    corpus = task.corpus(recipe.corpus_size, loop["rng"])
    return model, train_sft(model, corpus.ids, corpus.mask, config, **loop)


def _pairs(task, options, rng, n=None):
    return task.make_preference_pairs(n or options.pairs, rng, beta_bt=options.beta_bt)


def _reward_model(method, task, config, options, loop):
    reference, rng = load_reference(options.task), loop["rng"]
    pairs = _pairs(task, options, rng)
    eval_pairs = _pairs(task, options, rng, max(1, options.pairs // 5))
    rm = RewardModel.from_policy(reference, rng=rng)
    return rm, train_reward_model(rm, pairs, config, eval_pairs=eval_pairs, **loop)


def _policy(method, task, config, options, loop):
    reference, rng = load_reference(options.task), loop["rng"]
    model = copy.deepcopy(reference).train().requires_grad_(True)
    if method == "dpo":
        return model, train_dpo(model, reference, _pairs(task, options, rng), config, **loop)
    if method == "grpo" and options.task == "arithmetic":
        weight = 0.5 if options.process_weight is None else options.process_weight
        reward = arithmetic_reward_fn(task, lam=1.0 - weight)
    elif method == "ppo" and options.reward == "rm":
        rm = RewardModel.from_policy(reference, rng=rng)
        finished(train_reward_model(rm, _pairs(task, options, rng), RewardConfig(steps=300),
                                    rng=rng, progress=loop["progress"]))  # fmt: skip
        reward = reward_fn(rm)
    else:
        reward = task.true_reward
    trainer = train_ppo if method == "ppo" else train_grpo
    prompts, sampling = task.sample_prompts, Sampling.for_task(task)
    return model, trainer(model, reference, reward, prompts, sampling, config, **loop)


def _measure(task, options, model, seed) -> dict:
    """The trained policy on 256 held-out prompts: the demo's yardstick (true reward, KL)."""
    reference, sampling = load_reference(options.task), Sampling.for_task(task)
    prompts = task.sample_prompts(256, np.random.default_rng(seed + 1))
    rng = np.random.default_rng(seed + 2)
    if options.task == "sentiment":
        return evaluate_policy(model, reference, prompts, task.true_reward, sampling, rng=rng)
    gen = generate(model, prompts, sampling.max_new_tokens, rng=rng,
                   stop_token=sampling.stop_token, pad_id=sampling.pad_id)  # fmt: skip
    outcome, process = task.rewards(gen.tokens, gen.tokens, gen.response_mask)
    return dict(accuracy=float(outcome.mean()), process_reward=float(process.mean()))


_CURVES = (("loss",), ("reward", "eval_true_reward"), ("kl", "eval_kl"),
           ("accuracy", "eval_accuracy"), ("rewards_margin",))  # fmt: skip


def draw_history(path, run: RunDir | None = None) -> list[Path]:
    """``curves.png`` of a train run: one panel per group of metrics its history has."""
    import matplotlib.pyplot as plt

    run = run or RunDir(Path(path))
    history = read_json(run.path / "history.json", dict)
    panels = [[k for k in group if k in history] for group in _CURVES]
    panels = [p for p in panels if p] or [list(history)[:1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, keys in zip(axes[0], panels):
        plots.plot_history(history, keys, ax=ax, title=", ".join(keys))
    fig.tight_layout()
    run.written.add("curves.png")
    return [run.save_figure("curves.png", fig)]
