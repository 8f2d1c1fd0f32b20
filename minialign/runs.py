"""``minialign train METHOD``: one seeded training run from the shipped reference.

Each run writes into its directory: ``model.npz`` (the trained model, a checkpoint
loadable with `minialign.checkpoint.load`), ``history.json`` (every logged metric)
and ``result.json`` (the final measurement against the reference, the same yardstick
as ``minialign demo``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from . import checkpoint
from .checkpoint import write_text_atomic
from .nn import GPTConfig, RewardModel, TinyGPT, generate
from .pretrained import RECIPES, load_reference, make_task, single_thread_blas
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


def train_command(args, config, out: Path) -> dict:
    """Run ``args.method`` with ``config`` and write the run directory; return the result."""
    task = make_task(args.task)
    rng = np.random.default_rng(args.seed)
    progress = not args.no_progress
    result: dict = {"method": args.method, "task": args.task, "seed": args.seed}
    with single_thread_blas():
        if args.method == "sft":
            model, history = _sft(task, args, config, rng, progress)
            result["final_loss"] = history.last("loss")
        elif args.method == "rm":
            model, history = _reward_model(task, args, config, rng, progress)
            result["eval_accuracy"] = history.last("eval_accuracy")
        else:
            model, history = _policy(task, args, config, rng, progress)
            result.update(_measure(task, args, model))
    result["interrupted"] = history.interrupted
    checkpoint.save(model, out / "model.npz", extra={"method": args.method, "task": args.task})
    write_text_atomic(out / "history.json", json.dumps(history.as_dict(), indent=2) + "\n")
    write_text_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _sft(task, args, config, rng, progress):
    recipe, tok = RECIPES[args.task], task.tokenizer
    model = TinyGPT(GPTConfig(tok.vocab_size, task.block_size, **recipe.model), rng=rng)
    corpus = task.corpus(recipe.corpus_size, rng)
    return model, train_sft(model, corpus.ids, corpus.mask, config, rng=rng, progress=progress)


def _pairs(task, args, rng, n=None):
    return task.make_preference_pairs(n or args.pairs, rng, beta_bt=args.beta_bt)


def _reward_model(task, args, config, rng, progress):
    reference = load_reference(args.task)
    pairs, eval_pairs = _pairs(task, args, rng), _pairs(task, args, rng, max(1, args.pairs // 5))
    rm = RewardModel.from_policy(reference, rng=rng)
    history = train_reward_model(rm, pairs, config, eval_pairs=eval_pairs, rng=rng,
                                 progress=progress)  # fmt: skip
    return rm, history


def _policy(task, args, config, rng, progress):
    reference = load_reference(args.task)
    model = copy.deepcopy(reference).train().requires_grad_(True)
    sampling = Sampling.for_task(task)
    if args.method == "dpo":
        history = train_dpo(model, reference, _pairs(task, args, rng), config, rng=rng,
                            progress=progress)  # fmt: skip
        return model, history
    if args.method == "grpo" and args.task == "arithmetic":
        reward = arithmetic_reward_fn(task, lam=1.0 - args.process_weight)
    elif args.method == "ppo" and args.reward == "rm":
        rm = RewardModel.from_policy(reference, rng=rng)
        train_reward_model(rm, _pairs(task, args, rng), RewardConfig(steps=300), rng=rng,
                           progress=progress)  # fmt: skip
        reward = reward_fn(rm)
    else:
        reward = task.true_reward
    trainer = train_ppo if args.method == "ppo" else train_grpo
    history = trainer(model, reference, reward, task.sample_prompts, sampling, config, rng=rng,
                      progress=progress)  # fmt: skip
    return model, history


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
