"""``minialign train METHOD``: one seeded training run from the shipped reference.

Each run writes into its `minialign.rundir.RunDir`: ``run.json`` (status), ``config.json``
(every setting), ``model.npz`` (the trained model, loadable with
`minialign.checkpoint.load`), ``history.json`` (every logged metric), ``result.json``
(the final measurement against the reference, the demo's yardstick), ``curves.png`` and
``run_state.npz`` (what ``--resume`` continues from, bit for bit). A run stopped by Ctrl-C
keeps its model and history so far, with ``"interrupted": true``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from . import plots
from .nn import GPTConfig, RewardModel, TinyGPT, generate
from .pretrained import RECIPES, load_reference, make_task, single_thread_blas
from .rundir import RunDir, finished, read_json
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


def train_settings(args, config) -> dict:
    """Every setting of a train run, for ``config.json``."""
    options = {k: getattr(args, k) for k in ("task", "pairs", "beta_bt", "reward", "process_weight")
               if hasattr(args, k)}  # fmt: skip
    return dict(method=args.method, config=dataclasses.asdict(config), seed=args.seed, **options)


def train_command(args, config, run: RunDir) -> dict:
    """Run ``args.method`` with ``config`` and write ``run``; return the result record."""
    task = make_task(args.task)
    rng = np.random.default_rng(args.seed)
    options = dict(rng=rng, progress=not args.no_progress, checkpoint_path=run.path / "run_state.npz",
                   resume=args.resume)  # fmt: skip
    result: dict = {"method": args.method, "task": args.task, "seed": args.seed}
    with single_thread_blas():
        if args.method == "sft":
            model, history = _sft(task, args, config, options)
            result["final_loss"] = history.last("loss")
        elif args.method == "rm":
            model, history = _reward_model(task, args, config, options)
            result["eval_accuracy"] = history.last("eval_accuracy")
        else:
            model, history = _policy(task, args, config, options)
            if not history.interrupted:
                result.update(_measure(task, args, model))
    result["interrupted"] = history.interrupted
    run.written.add("run_state.npz")
    run.save_model("model.npz", model, method=args.method, task=args.task)
    run.write_json("history.json", history.as_dict())
    run.write_json("result.json", result)
    draw_history(run.path, run)
    finished(history)  # Ctrl-C: the files above are kept, the run is marked interrupted
    return result


def _sft(task, args, config, options):
    recipe, tok = RECIPES[args.task], task.tokenizer
    model = TinyGPT(GPTConfig(tok.vocab_size, task.block_size, **recipe.model), rng=options["rng"])
    corpus = task.corpus(recipe.corpus_size, options["rng"])
    return model, train_sft(model, corpus.ids, corpus.mask, config, **options)


def _pairs(task, args, rng, n=None):
    return task.make_preference_pairs(n or args.pairs, rng, beta_bt=args.beta_bt)


def _reward_model(task, args, config, options):
    reference, rng = load_reference(args.task), options["rng"]
    pairs, eval_pairs = _pairs(task, args, rng), _pairs(task, args, rng, max(1, args.pairs // 5))
    rm = RewardModel.from_policy(reference, rng=rng)
    return rm, train_reward_model(rm, pairs, config, eval_pairs=eval_pairs, **options)


def _policy(task, args, config, options):
    reference, rng = load_reference(args.task), options["rng"]
    model = copy.deepcopy(reference).train().requires_grad_(True)
    sampling = Sampling.for_task(task)
    if args.method == "dpo":
        return model, train_dpo(model, reference, _pairs(task, args, rng), config, **options)
    if args.method == "grpo" and args.task == "arithmetic":
        reward = arithmetic_reward_fn(task, lam=1.0 - args.process_weight)
    elif args.method == "ppo" and args.reward == "rm":
        rm = RewardModel.from_policy(reference, rng=rng)
        finished(train_reward_model(rm, _pairs(task, args, rng), RewardConfig(steps=300), rng=rng,
                                    progress=options["progress"]))  # fmt: skip
        reward = reward_fn(rm)
    else:
        reward = task.true_reward
    trainer = train_ppo if args.method == "ppo" else train_grpo
    return model, trainer(
        model, reference, reward, task.sample_prompts, sampling, config, **options
    )


def _measure(task, args, model) -> dict:
    """The trained policy on 256 held-out prompts: the demo's yardstick (true reward, KL)."""
    reference, sampling = load_reference(args.task), Sampling.for_task(task)
    prompts = task.sample_prompts(256, np.random.default_rng(args.seed + 1))
    rng = np.random.default_rng(args.seed + 2)
    if args.task == "sentiment":
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
