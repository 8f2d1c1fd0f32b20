"""End-to-end checks on the shipped reference models: the numbers the README promises."""

import copy

import numpy as np

from minialign.nn import generate
from minialign.pretrained import load_reference, make_task
from minialign.train import GRPOConfig, Sampling, arithmetic_reward_fn, train_grpo


def _accuracy(model, task, prompts, seed):
    gen = generate(model, prompts, task.block_size - task.prompt_len,
                   rng=np.random.default_rng(seed), stop_token=task.tokenizer.end_id,
                   pad_id=task.tokenizer.pad_id)  # fmt: skip
    outcome, process = task.rewards(gen.tokens, gen.tokens, gen.response_mask)
    return outcome.mean(), process.mean()


def test_grpo_raises_arithmetic_accuracy_of_the_shipped_reference():
    task, reference = make_task("arithmetic"), load_reference("arithmetic")
    prompts = task.sample_prompts(256, np.random.default_rng(7))
    acc_before, proc_before = _accuracy(reference, task, prompts, seed=8)
    policy = copy.deepcopy(reference).train().requires_grad_(True)
    config = GRPOConfig(steps=40, num_generations=8, batch_size=128, learning_rate=3e-4,
                        loss_type="bnpo")  # fmt: skip
    train_grpo(policy, reference, arithmetic_reward_fn(task, lam=0.5), task.sample_prompts,
               Sampling.for_task(task), config, rng=0, progress=False)  # fmt: skip
    acc_after, proc_after = _accuracy(policy, task, prompts, seed=8)
    assert acc_after > acc_before + 0.08, (acc_before, acc_after)
    assert proc_after > proc_before + 0.08, (proc_before, proc_after)
