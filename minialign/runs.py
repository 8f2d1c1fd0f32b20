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
from .nn import GPTConfig, RewardModel, TinyGPT
from .pretrained import RECIPES, load_reference, make_task, single_thread_blas
from .train.common import evaluate_policy


def train_command(args, out: Path) -> dict:
    """Run ``args.method`` and write the run directory; return the result record."""
    from .train import (
        arithmetic_reward_fn,
        train_dpo,
        train_grpo,
        train_ppo,
        train_reward_model,
        train_sft,
    )
    from .train.reward_model import reward_fn

    task_name = getattr(args, "task", "sentiment")
    task = make_task(task_name)
    tok = task.tokenizer
    gen_kw = dict(max_new_tokens=task.block_size - task.prompt_len, stop_token=tok.end_id,
                  pad_id=tok.pad_id)  # fmt: skip
    rng = np.random.default_rng(args.seed)
    progress = not args.no_progress
    result: dict = {"method": args.method, "task": task_name, "seed": args.seed}

    with single_thread_blas():
        if args.method == "sft":
            recipe = RECIPES[task_name]
            config = GPTConfig(
                vocab_size=tok.vocab_size, block_size=task.block_size, **recipe.model
            )
            model = TinyGPT(config, rng=rng)
            corpus = task.corpus(recipe.corpus_size, rng)
            history = train_sft(model, corpus.ids, corpus.mask, steps=args.steps, lr=args.lr,
                                batch_size=args.batch_size, rng=rng, progress=progress)  # fmt: skip
            result["final_loss"] = history.last("loss")
        elif args.method == "rm":
            reference = load_reference(task_name)
            pairs = task.make_preference_pairs(args.pairs, rng, beta_bt=args.beta_bt)
            eval_pairs = task.make_preference_pairs(args.pairs // 5, rng, beta_bt=args.beta_bt)
            model = RewardModel.from_policy(reference, rng=rng)
            history = train_reward_model(model, pairs, eval_pairs=eval_pairs, steps=args.steps,
                                         batch_size=args.batch_size, lr=args.lr, rng=rng,
                                         progress=progress)  # fmt: skip
            result["eval_accuracy"] = history.last("eval_accuracy")
        else:
            reference = load_reference(task_name)
            model = copy.deepcopy(reference).train().requires_grad_(True)
            if args.method == "ppo":
                if args.reward == "true":
                    reward = task.true_reward
                else:
                    rm = RewardModel.from_policy(reference, rng=rng)
                    pairs = task.make_preference_pairs(2000, rng, beta_bt=10.0)
                    train_reward_model(rm, pairs, steps=300, rng=rng, progress=progress)
                    reward = reward_fn(rm)
                history = train_ppo(model, reference, reward, task.sample_prompts, **gen_kw,
                                    iterations=args.iterations, batch_size=args.batch_size,
                                    minibatch_size=max(1, args.batch_size // 2), epochs=args.epochs,
                                    lam=args.lam, beta=args.beta, epsilon=args.epsilon,
                                    target_kl=args.target_kl, lr=args.lr, rng=rng,
                                    progress=progress)  # fmt: skip
            elif args.method == "grpo":
                reward = (task.true_reward if task_name == "sentiment"
                          else arithmetic_reward_fn(task, lam=1.0 - args.process_weight))  # fmt: skip
                history = train_grpo(model, reference, reward, task.sample_prompts, **gen_kw,
                                     group_size=args.group_size,
                                     prompts_per_iteration=max(1, args.batch_size // args.group_size),
                                     iterations=args.iterations, beta=args.beta,
                                     epsilon=args.epsilon, level=args.level,
                                     aggregation=args.aggregation, lr=args.lr, rng=rng,
                                     progress=progress)  # fmt: skip
            else:
                pairs = task.make_preference_pairs(args.pairs, rng, beta_bt=args.beta_bt)
                history = train_dpo(model, reference, pairs, tau=args.tau, loss_type=args.loss_type,
                                    label_smoothing=args.label_smoothing, steps=args.steps,
                                    batch_size=args.batch_size, lr=args.lr, rng=rng,
                                    progress=progress)  # fmt: skip
            if task_name == "sentiment":
                prompts = task.sample_prompts(256, np.random.default_rng(args.seed + 1))
                result.update(evaluate_policy(model, reference, prompts, task.true_reward, **gen_kw,
                                              rng=np.random.default_rng(args.seed + 2)))  # fmt: skip
            else:
                from .nn import generate

                prompts = task.sample_prompts(256, np.random.default_rng(args.seed + 1))
                gen = generate(model, prompts, rng=np.random.default_rng(args.seed + 2), **gen_kw)
                outcome, process = task.rewards(gen.tokens, gen.tokens, gen.response_mask)
                result.update(accuracy=float(outcome.mean()), process_reward=float(process.mean()))

    result["interrupted"] = history.interrupted
    checkpoint.save(model, out / "model.npz", extra={"method": args.method, "task": task_name})
    write_text_atomic(out / "history.json", json.dumps(history.as_dict(), indent=2) + "\n")
    write_text_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result
