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
from minialign.train.common import evaluate_policy
from minialign.train.grpo import arithmetic_reward_fn, train_grpo
from minialign.train.sft import train_sft


def pretrain(task, steps: int):
    rng = np.random.default_rng(0)
    corpus = task.corpus(2000, rng)
    config = GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=2, n_head=2, n_embd=32)
    model = TinyGPT(config, rng=rng)
    train_sft(model, corpus.ids, corpus.mask, steps=steps, batch_size=32, lr=3e-3, rng=rng,
              progress=False)  # fmt: skip
    tok = task.tokenizer
    return model.eval().requires_grad_(False), dict(stop_token=tok.end_id, pad_id=tok.pad_id)


@pytest.fixture(scope="module")
def sentiment():
    return TASK, sentiment_reference().frozen_copy(), SAMPLING  # shared with other trainer tests


@pytest.fixture(scope="module")
def arithmetic():
    task = ArithmeticTask()
    reference, kw = pretrain(task, 400)
    return task, reference, dict(kw, max_new_tokens=26)


def fresh_policy(reference):
    return copy.deepcopy(reference).requires_grad_(True)


def run(setup, reward_fn=None, policy=None, **options):
    task, reference, kw = setup
    policy = fresh_policy(reference) if policy is None else policy
    args = dict(iterations=3, group_size=4, prompts_per_iteration=4, rng=0, progress=False)
    history = train_grpo(policy, reference, reward_fn or task.true_reward, task.sample_prompts,
                         **kw, **{**args, **options})  # fmt: skip
    return policy, history


def evaluate(setup, policy, true_reward) -> dict[str, float]:
    task, reference, kw = setup
    prompts = task.sample_prompts(300, np.random.default_rng(123))  # held out: own generator
    return evaluate_policy(policy, reference, prompts, true_reward, rng=np.random.default_rng(7),
                           **kw)  # fmt: skip


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
    policy, history = run(sentiment, iterations=30, group_size=8, prompts_per_iteration=8)
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
    policy, history = run(arithmetic, arithmetic_reward_fn(task, lam=0.0), iterations=40,
                          group_size=8, prompts_per_iteration=16, lr=3e-4,
                          aggregation="bnpo")  # fmt: skip
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
        _, history = run(sentiment, iterations=20, group_size=8, prompts_per_iteration=4,
                         beta=beta, lr=3e-3)  # fmt: skip
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
    _, history = run(sentiment, epochs=4, lr=1e-2, epsilon=0.05)
    assert history["clip_fraction"].max() > 0


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_every_level_and_aggregation_runs(sentiment, level, aggregation):
    _, history = run(sentiment, iterations=2, epochs=2, beta=0.1, level=level,
                     aggregation=aggregation)  # fmt: skip
    assert np.isfinite(history["loss"]).all() and (history["policy_loss"] != 0).any()


def test_runs_are_bitwise_repeatable(sentiment):
    same_run(run(sentiment, epochs=2), run(sentiment, epochs=2))


def test_resume_equals_uninterrupted(sentiment, tmp_path):
    path = tmp_path / "grpo_run.npz"
    task = sentiment[0]
    uninterrupted = run(sentiment, iterations=4, epochs=2)
    calls = []

    def stop_on_third_call(tokens, mask):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return task.true_reward(tokens, mask)

    _, history = run(sentiment, stop_on_third_call, iterations=4, epochs=2,
                     checkpoint_path=path, checkpoint_every=2)  # fmt: skip
    assert history.interrupted and len(history["loss"]) == 2
    resumed = run(sentiment, iterations=4, epochs=2, checkpoint_path=path, resume=True)
    same_run(uninterrupted, resumed)


def test_eval_fn_is_logged_at_its_steps(sentiment):
    seen = []

    def eval_fn(step):
        seen.append(step)
        return {"eval_x": float(step)}

    _, history = run(sentiment, iterations=5, eval_fn=eval_fn, eval_every=2)
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
    with pytest.raises(ValueError, match="group_size"):
        run(sentiment, group_size=1)
    with pytest.raises(ValueError, match="level"):
        run(sentiment, level="word")
    with pytest.raises(ValueError, match="'reward'"):
        run(sentiment, lambda tokens, mask: {"score": np.zeros(len(tokens))})


def test_advantage_scaling_options_reach_the_update(sentiment):
    """``std_ddof``/``std_eps`` (TRL's Bessel sigma and epsilon) and ``scale_rewards=False``
    (Dr. GRPO) change the advantages, so they change the trained policy; the default is the
    population sigma of the equation sheet (eq. 7)."""
    final = {}
    for name, options in {
        "seed": {},
        "explicit seed": dict(std_ddof=0, std_eps=1e-8, scale_rewards=True),
        "trl": dict(std_ddof=1, std_eps=1e-4),
        "dr_grpo": dict(scale_rewards=False),
    }.items():
        policy = fresh_policy(sentiment[1])
        run(sentiment, policy=policy, iterations=2, **options)
        final[name] = policy.state_dict()
    same = lambda a, b: all(np.array_equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(final["seed"], final["explicit seed"])
    assert not same(final["seed"], final["trl"])
    assert not same(final["seed"], final["dr_grpo"])
