"""GRPO loop: true reward up on sentiment, process reward up on arithmetic, β vs KL,
zero-std groups, bitwise repeatability and resumption.

References are tiny TinyGPTs pre-trained in the session (sentiment: the shared
``tests/sentiment_fixture.py``), so the thresholds do not move when shipped files are rebuilt.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sentiment_fixture import SAMPLING, TASK, sentiment_reference

from minialign.nn import GPTConfig, TinyGPT
from minialign.tasks import ArithmeticTask, correct_trace, hacked_response
from minialign.train import GRPOConfig, Sampling, SFTConfig, evaluate_policy
from minialign.train.grpo import arithmetic_reward_fn, train_grpo
from minialign.train.sft import train_sft


def pretrain(task, steps: int):
    rng = np.random.default_rng(0)
    corpus = task.corpus(2000, rng)
    config = GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=2, n_head=2, n_embd=32)
    model = TinyGPT(config, rng=rng)
    config = SFTConfig(steps=steps, batch_size=32, learning_rate=3e-3)
    train_sft(model, corpus.ids, corpus.mask, config, rng=rng, progress=False)
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def sentiment():
    return TASK, sentiment_reference().frozen_copy(), SAMPLING  # shared with other trainer tests


@pytest.fixture(scope="module")
def arithmetic():
    task = ArithmeticTask()
    tok = task.tokenizer
    return task, pretrain(task, 400), Sampling(26, stop_token=tok.end_id, pad_id=tok.pad_id)


def fresh_policy(reference):
    return copy.deepcopy(reference).requires_grad_(True)


def run(setup, reward_fn=None, policy=None, *, run_options=None, **config):
    """A short seeded GRPO run; ``config`` overrides GRPOConfig fields."""
    task, reference, sampling = setup
    policy = fresh_policy(reference) if policy is None else policy
    config = GRPOConfig(**{**dict(steps=3, num_generations=4, batch_size=16), **config})
    history = train_grpo(policy, reference, reward_fn or task.true_reward, task.sample_prompts,
                         sampling, config, rng=0, progress=False, **(run_options or {}))  # fmt: skip
    return policy, history


def evaluate(setup, policy, true_reward) -> dict[str, float]:
    task, reference, sampling = setup
    prompts = task.sample_prompts(300, np.random.default_rng(123))  # held out: own generator
    return evaluate_policy(policy, reference, prompts, true_reward, sampling,
                           rng=np.random.default_rng(7))  # fmt: skip


def same_run(a, b):
    (pa, ha), (pb, hb) = a, b
    for (name, x), y in zip(pa.named_parameters(), pb.parameters()):
        np.testing.assert_array_equal(x.data, y.data, err_msg=name)
    assert ha.keys() == hb.keys()
    for key in ha.keys():
        if key != "seconds":
            np.testing.assert_array_equal(ha[key], hb[key], err_msg=key)


def test_grpo_raises_the_true_sentiment_reward(sentiment):
    task = sentiment[0]
    before = evaluate(sentiment, sentiment[1], task.true_reward)
    policy, history = run(sentiment, steps=30, num_generations=8, batch_size=64)
    after = evaluate(sentiment, policy, task.true_reward)
    assert after["true_reward"] > before["true_reward"] + 0.2, (before, after)
    assert after["kl"] > 0.1
    for key in ("loss", "policy_loss", "reward", "reward_std", "frac_zero_std", "kl", "beta",
                "clip_fraction", "approx_kl", "entropy", "length", "seconds"):  # fmt: skip
        assert len(history[key]) == 30 and np.isfinite(history[key]).all(), key


def test_grpo_raises_the_process_reward_on_arithmetic(arithmetic):
    task = arithmetic[0]

    def process(tokens, mask):
        return task.rewards(tokens, tokens, mask)[1]

    before = evaluate(arithmetic, arithmetic[1], process)["true_reward"]
    policy, history = run(arithmetic, arithmetic_reward_fn(task, lam=0.0), steps=40,
                          num_generations=8, batch_size=128, learning_rate=3e-4,
                          loss_type="bnpo")  # fmt: skip
    after = evaluate(arithmetic, policy, process)["true_reward"]
    assert after > before + 0.05, (before, after)
    assert {"reward_outcome", "reward_process"} <= set(history.keys())
    np.testing.assert_array_equal(history["reward"], history["reward_process"])  # λ = 0


def test_arithmetic_reward_fn_mixes_outcome_and_process():
    task, problem, lam = ArithmeticTask(), (7, "+", 5), 0.3
    tok = task.tokenizer
    texts = [correct_trace(problem), hacked_response(problem, np.random.default_rng(0)), "a11"]
    batch = tok.pack(task.encode_prompts([problem] * 3),
                     [tok.encode(t, add_end=True) for t in texts], task.block_size)  # fmt: skip
    out = arithmetic_reward_fn(task, lam)(batch.ids, batch.response_mask)
    np.testing.assert_allclose(out["outcome"], [1, 1, 0])
    np.testing.assert_allclose(out["process"], [1, 0, 0])
    np.testing.assert_allclose(out["reward"], [1, lam, 0])


def test_larger_beta_gives_smaller_kl(sentiment):
    kls = []
    for beta in (0.0, 0.5, 5.0):
        _, history = run(sentiment, steps=20, num_generations=8, batch_size=32, beta=beta,
                         learning_rate=3e-3)  # fmt: skip
        kls.append(history["kl"][-5:].mean())
    assert kls[0] > kls[1] > kls[2], kls


def test_zero_std_groups_give_zero_advantages_and_no_update(sentiment):
    reference = sentiment[1]
    policy, history = run(sentiment, lambda tokens, mask: np.ones(len(tokens)))
    np.testing.assert_array_equal(history["frac_zero_std"], 1.0)
    np.testing.assert_array_equal(history["loss"], 0.0)  # every advantage is exactly 0
    for (name, p), q in zip(policy.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)  # Adam step of 0 grads: 0


def test_frac_zero_std_counts_equal_groups(sentiment):
    def half_equal(tokens, mask):  # groups are adjacent rows: the first half all get 1
        B = len(tokens)
        return np.where(np.arange(B) < B // 2, 1.0, np.arange(B, dtype=float))

    _, history = run(sentiment, half_equal)
    np.testing.assert_array_equal(history["frac_zero_std"], 0.5)


def test_one_epoch_never_clips(sentiment):
    _, history = run(sentiment, epochs=1)
    np.testing.assert_array_equal(history["clip_fraction"], 0.0)
    _, history = run(sentiment, epochs=4, learning_rate=1e-2, epsilon=0.05)
    assert history["clip_fraction"].max() > 0


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_every_level_and_aggregation_runs(sentiment, level, aggregation):
    _, history = run(sentiment, steps=2, epochs=2, beta=0.1, importance_sampling_level=level,
                     loss_type=aggregation)  # fmt: skip
    assert np.isfinite(history["loss"]).all() and (history["policy_loss"] != 0).any()


def test_runs_are_bitwise_repeatable(sentiment):
    same_run(run(sentiment, epochs=2), run(sentiment, epochs=2))


def test_resume_equals_uninterrupted(sentiment, tmp_path):
    path = tmp_path / "grpo_run.npz"
    task = sentiment[0]
    uninterrupted = run(sentiment, steps=4, epochs=2)
    calls = []

    def stop_on_third_call(tokens, mask):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return task.true_reward(tokens, mask)

    _, history = run(sentiment, stop_on_third_call, steps=4, epochs=2, save_steps=2,
                     run_options=dict(checkpoint_path=path))  # fmt: skip
    assert history.interrupted and len(history["loss"]) == 2
    resumed = run(sentiment, steps=4, epochs=2, run_options=dict(checkpoint_path=path, resume=True))
    same_run(uninterrupted, resumed)
    # resumed, not restarted: the first steps' wall times are the stopped run's, read back
    np.testing.assert_array_equal(resumed[1]["seconds"][:2], history["seconds"][:2])


def test_eval_fn_is_logged_at_its_steps(sentiment):
    seen = []

    def eval_fn(step):
        seen.append(step)
        return {"eval_x": float(step)}

    _, history = run(sentiment, steps=5, eval_steps=2, run_options=dict(eval_fn=eval_fn))
    assert seen == [0, 2, 4, 5]
    np.testing.assert_array_equal(history.steps("eval_x"), [0, 2, 4, 5])


def test_nan_reward_raises_naming_the_iteration(sentiment):
    task = sentiment[0]
    calls = []

    def nan_on_second_call(tokens, mask):
        calls.append(1)
        r = task.true_reward(tokens, mask)
        return r * np.nan if len(calls) == 2 else r

    with pytest.raises(FloatingPointError, match="iteration 1"):
        run(sentiment, nan_on_second_call)


def test_bad_arguments(sentiment):
    with pytest.raises(ValueError, match="GRPOConfig.num_generations must be >= 2"):
        run(sentiment, num_generations=1)
    with pytest.raises(ValueError, match="importance_sampling_level"):
        run(sentiment, importance_sampling_level="word")
    with pytest.raises(ValueError, match="'reward'"):
        run(sentiment, lambda tokens, mask: {"score": np.zeros(len(tokens))})


def test_advantage_scaling_options_reach_the_update(sentiment):
    """``std_ddof``/``std_eps`` (TRL's Bessel sigma and epsilon) and ``scale_rewards="none"``
    (Dr. GRPO) change the advantages, so they change the trained policy; the default is the
    population sigma of the equation sheet (eq. 7)."""
    final = {}
    for name, options in {
        "equation": {},
        "explicit equation": dict(std_ddof=0, std_eps=1e-8, scale_rewards="group"),
        "trl": dict(std_ddof=1, std_eps=1e-4),
        "dr_grpo": dict(scale_rewards="none"),
    }.items():
        policy = fresh_policy(sentiment[1])
        run(sentiment, policy=policy, steps=2, **options)
        final[name] = policy.state_dict()
    same = lambda a, b: all(np.array_equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(final["equation"], final["explicit equation"])
    assert not same(final["equation"], final["trl"])
    assert not same(final["equation"], final["dr_grpo"])


def test_entropy_coef_keeps_the_policy_more_random(sentiment):
    """TRL's GRPOConfig.entropy_coef: the loss gains -c_H H[pi], so entropy falls less."""
    options = dict(steps=8, num_generations=8, batch_size=32, learning_rate=1e-2, epochs=2)
    _, plain = run(sentiment, **options)
    _, bonus = run(sentiment, entropy_coef=0.5, **options)
    assert bonus["entropy"][-3:].mean() > plain["entropy"][-3:].mean() + 0.05
    np.testing.assert_array_equal(bonus["entropy"][0], plain["entropy"][0])  # same first rollout
