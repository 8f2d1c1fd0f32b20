"""PPO loop: it raises the true reward, β trades reward for KL, runs repeat and resume bitwise.

The reference is the tiny sentiment TinyGPT of ``tests/sentiment_fixture.py`` (pre-trained
in the session, not the shipped file), so the thresholds do not move when that is rebuilt.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from sentiment_fixture import SAMPLING, TASK, sentiment_reference

from minialign.autograd import Tensor
from minialign.nn import ValueModel
from minialign.train import GRPOConfig, PPOConfig, Sampling, evaluate_policy, make_eval_fn
from minialign.train.grpo import train_grpo
from minialign.train.ppo import ppo_targets, rollout_values, train_ppo
from minialign.train.rollout import Rollout, collect_rollout


@pytest.fixture(scope="module")
def setup():
    reference = sentiment_reference().frozen_copy()  # shared with the other trainer tests
    return TASK, reference, SAMPLING


def fresh_policy(reference):
    return copy.deepcopy(reference).requires_grad_(True)


def run(setup, reward_fn=None, policy=None, *, run_options=None, **config):
    """A short seeded PPO run; ``config`` overrides PPOConfig fields."""
    task, reference, sampling = setup
    policy = fresh_policy(reference) if policy is None else policy
    config = PPOConfig(**{**dict(steps=3, batch_size=16, num_mini_batches=2), **config})
    history = train_ppo(policy, reference, reward_fn or task.true_reward, task.sample_prompts,
                        sampling, config, rng=0, progress=False, **(run_options or {}))  # fmt: skip
    return policy, history


def true_reward_and_kl(setup, policy) -> tuple[float, float]:
    task, reference, sampling = setup
    prompts = task.sample_prompts(300, np.random.default_rng(123))  # held out: own generator
    out = evaluate_policy(policy, reference, prompts, task.true_reward, sampling,
                          rng=np.random.default_rng(7))  # fmt: skip
    return out["true_reward"], out["kl"]


def same_run(a, b):
    (pa, ha), (pb, hb) = a, b
    for (name, x), y in zip(pa.named_parameters(), pb.parameters()):
        np.testing.assert_array_equal(x.data, y.data, err_msg=name)
    assert ha.keys() == hb.keys()
    for key in ha.keys():
        if key != "seconds":
            np.testing.assert_array_equal(ha[key], hb[key], err_msg=key)
            np.testing.assert_array_equal(ha.steps(key), hb.steps(key), err_msg=key)


def test_ppo_raises_the_true_reward(setup):
    before, kl_before = true_reward_and_kl(setup, setup[1])
    policy, history = run(setup, steps=25, batch_size=32)
    after, kl_after = true_reward_and_kl(setup, policy)
    assert abs(kl_before) < 1e-4  # the reference against itself
    assert after > before + 0.3, (before, after)
    assert kl_after > 0.1
    assert history["reward"][-5:].mean() > history["reward"][:5].mean() + 0.2
    for key in ("loss", "policy_loss", "value_loss", "reward", "kl", "beta", "clip_fraction",
                "approx_kl", "entropy", "length", "seconds", "advantage_std", "epochs_run"):  # fmt: skip
        assert len(history[key]) == 25 and np.isfinite(history[key]).all(), key
    np.testing.assert_array_equal(history.steps("loss"), np.arange(25))


def test_larger_beta_gives_smaller_kl(setup):
    kls = []
    for beta in (0.0, 0.3, 3.0):
        policy, history = run(setup, steps=15, batch_size=32, beta=beta)
        kls.append(history["kl"][-5:].mean())
    assert kls[0] > kls[1] > kls[2], kls


def test_runs_are_bitwise_repeatable(setup):
    same_run(run(setup), run(setup))


def test_different_seeds_differ(setup):
    task, reference, sampling = setup
    (_, a) = run(setup, steps=1)
    b = train_ppo(fresh_policy(reference), reference, task.true_reward, task.sample_prompts,
                  sampling, PPOConfig(steps=1, batch_size=16), rng=1, progress=False)  # fmt: skip
    assert a["reward"][0] != b["reward"][0]


def test_resume_equals_uninterrupted(setup, tmp_path):
    path = tmp_path / "ppo_run.npz"
    task, reference, sampling = setup
    held_out = task.sample_prompts(16, np.random.default_rng(5))

    def with_eval(policy):  # make_eval_fn draws from its own generator, seeded by the step
        return make_eval_fn(policy, reference, held_out, task.true_reward, sampling, seed=3)

    options = dict(steps=4, adaptive_kl_target=0.5, kl_horizon=50, eval_steps=1)
    policy = fresh_policy(reference)
    uninterrupted = run(
        setup, policy=policy, run_options=dict(eval_fn=with_eval(policy)), **options
    )
    calls = []

    def stop_on_third_call(tokens, mask):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return setup[0].true_reward(tokens, mask)

    first = fresh_policy(reference)
    _, history = run(setup, stop_on_third_call, policy=first, save_steps=2, **options,
                     run_options=dict(eval_fn=with_eval(first), checkpoint_path=path))  # fmt: skip
    assert history.interrupted and len(history["loss"]) == 2
    policy = fresh_policy(reference)
    resumed = run(setup, policy=policy, **options,
                  run_options=dict(eval_fn=with_eval(policy), checkpoint_path=path, resume=True))  # fmt: skip
    same_run(uninterrupted, resumed)
    # resumed, not restarted: the first steps' wall times are the stopped run's, read back
    np.testing.assert_array_equal(resumed[1]["seconds"][:2], history["seconds"][:2])
    np.testing.assert_array_equal(resumed[1].steps("eval_true_reward"), [0, 1, 2, 3, 4])
    assert np.all(np.diff(resumed[1]["seconds"]) >= 0)  # cumulative, carried over on resume
    assert len(set(uninterrupted[1]["beta"])) > 1  # the adaptive β was restored, not reset


def test_nan_reward_raises_naming_the_iteration(setup):
    task = setup[0]
    calls = []

    def nan_on_third_call(tokens, mask):
        calls.append(1)
        r = task.true_reward(tokens, mask)
        return r * np.nan if len(calls) == 3 else r

    with pytest.raises(FloatingPointError, match="iteration 2"):
        run(setup, nan_on_third_call, steps=4, batch_size=8, num_mini_batches=1)


def test_adaptive_beta_follows_ziegler(setup):
    beta0, horizon, B, target = 0.1, 100.0, 16, 0.05
    _, history = run(setup, steps=4, beta=beta0, adaptive_kl_target=target, kl_horizon=horizon)
    beta, kl = history["beta"], history["kl"]
    error = np.clip(kl / target - 1, -0.2, 0.2)
    np.testing.assert_allclose(beta[1:], beta[:-1] * (1 + error[:-1] * B / horizon), rtol=1e-12)
    assert beta[0] == beta0 and len(set(beta)) == 4
    _, history = run(setup, steps=2, beta=beta0)  # no target: β is constant
    np.testing.assert_array_equal(history["beta"], [beta0, beta0])


def test_target_kl_stops_the_epochs_early(setup):
    reference = setup[1]
    policy, history = run(setup, steps=1, epochs=4, learning_rate=1e-2, target_kl=1e-6)
    assert history["epochs_run"][0] == 0  # the second minibatch already moved too far
    assert any(
        (p.data != q.data).any() for p, q in zip(policy.parameters(), reference.parameters())
    )
    _, history = run(setup, steps=1, epochs=4)
    assert history["epochs_run"][0] == 4


def test_first_minibatch_starts_at_ratio_one(setup):
    """One epoch of one minibatch: logp_new equals the rollout's logp_old, nothing is clipped."""
    _, history = run(setup, steps=2, epochs=1, num_mini_batches=1)
    np.testing.assert_array_equal(history["clip_fraction"], 0.0)
    assert (history["approx_kl"] < 1e-9).all()


def test_ppo_targets_align_rewards_values_and_advantages():
    """γ = λ = 1: Â at response column j is score − β Σ_{k≥j} k1_k − V(s_j); 0 on the prompt."""
    rng = np.random.default_rng(0)
    B, T, P, beta = 3, 8, 3, 0.1
    lengths = np.array([1, 3, 5])  # response tokens per row (END included)
    mask = np.zeros((B, T - 1), bool)
    for b, n in enumerate(lengths):
        mask[b, P - 1 : P - 1 + n] = True
    logp_old = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    logp_ref = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    values = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    scores = rng.normal(size=B)
    rewards, adv, ret = ppo_targets(scores, logp_old, logp_ref, values, mask, P, beta, 1.0, 1.0)
    k1 = (logp_old - logp_ref) * mask
    expected = (scores[:, None] - beta * np.cumsum(k1[:, ::-1], axis=1)[:, ::-1] - values) * mask
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, (adv + values) * mask, rtol=1e-6)
    last = P - 2 + lengths  # column of each row's last response token
    np.testing.assert_allclose(rewards[np.arange(B), last], scores - beta * k1[np.arange(B), last],
                               rtol=1e-5)  # fmt: skip
    assert (rewards[:, : P - 1] == 0).all() and (adv[~mask] == 0).all()


def test_value_model_is_trained_and_reference_is_not(setup):
    reference = setup[1]
    state = {k: v.copy() for k, v in reference.state_dict().items()}
    value_model = ValueModel.from_policy(reference)
    head = value_model.head.state_dict()
    run(setup, steps=2, run_options=dict(value_model=value_model))
    changed = [not np.array_equal(v, value_model.head.state_dict()[k]) for k, v in head.items()]
    assert any(changed)
    for k, v in reference.state_dict().items():
        np.testing.assert_array_equal(v, state[k])


def test_bad_arguments(setup):
    task, reference, sampling = setup
    with pytest.raises(ValueError, match="same object"):
        train_ppo(reference, reference, task.true_reward, task.sample_prompts, sampling)
    with pytest.raises(ValueError, match="pad_id"):
        Sampling(sampling.max_new_tokens, sampling.stop_token, pad_id=sampling.stop_token)
    with pytest.raises(ValueError, match="PPOConfig.batch_size must be >= 1"):
        run(setup, batch_size=0)


def test_dict_rewards_log_their_extra_entries(setup):
    task = setup[0]

    def reward_fn(tokens, mask):
        return {
            "reward": task.true_reward(tokens, mask),
            "words": task.response_lengths(tokens, mask),
        }

    _, history = run(setup, reward_fn, steps=2)
    _, plain = run(setup, steps=2)
    np.testing.assert_array_equal(history["reward"], plain["reward"])  # "reward" is optimised
    assert (history["reward_words"] > 0).all()  # the rest is logged as reward_<name>


# --- responses cut off at max_new_tokens: truncation="bootstrap" and missing_eos_penalty ---


def hand_built_rollout(B=4, T=9, P=3, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([2, 6, 4, 6])  # response tokens per row; 6 = T - P = max_new_tokens
    mask = np.zeros((B, T - 1), bool)
    for b, n in enumerate(lengths):
        mask[b, P - 1 : P - 1 + n] = True
    logp_old = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    logp_ref = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    values = rng.normal(size=(B, T - 1)).astype(np.float32) * mask
    return rng.normal(size=B), logp_old, logp_ref, values, mask, P, lengths


@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.8, 0.0)])
def test_bootstrap_changes_only_truncated_rows_by_the_discounted_value(gamma, lam):
    """Â changes by (γλ)^(last - t) γ V(s_{T+1}) on truncated rows, nothing else moves."""
    scores, logp_old, logp_ref, values, mask, P, lengths = hand_built_rollout()
    truncated = np.array([False, True, False, True])
    v_boot = np.array([np.nan, 2.5, np.nan, -1.5])  # unused where terminated: may be NaN
    args = (scores, logp_old, logp_ref, values, mask, P, 0.1, gamma, lam)
    r0, a0, ret0 = ppo_targets(*args)
    r1, a1, ret1 = ppo_targets(*args, truncated=truncated, bootstrap_values=v_boot)
    np.testing.assert_array_equal(r1, r0)  # the per-token rewards themselves are unchanged
    np.testing.assert_array_equal(a1[~truncated], a0[~truncated])
    np.testing.assert_array_equal(ret1[~truncated], ret0[~truncated])
    last = P - 2 + lengths[:, None]  # (B, 1) column of each row's last response token
    steps = np.maximum(last - np.arange(mask.shape[1]), 0)  # (B, T-1): last - t
    shift = (gamma * lam) ** steps * gamma * np.nan_to_num(v_boot)[:, None] * mask
    np.testing.assert_allclose(a1 - a0, shift, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret1 - ret0, shift, rtol=1e-5, atol=1e-5)
    assert (a1[truncated][:, : P - 1] == 0).all()  # still 0 on the prompt


class PrefixSum:
    """A fake value model whose V(tokens <= t) is the sum of the tokens up to t."""

    def __call__(self, tokens):
        return Tensor(np.cumsum(tokens, axis=1).astype(np.float32))


def test_rollout_values_reads_the_bootstrap_after_the_last_token():
    P, pad = 2, 0
    tokens = np.array([[5, 6, 7, 9, pad, pad], [5, 6, 1, 2, 3, 4]])  # 9 = END; row 1 cut off
    response_mask = np.array([[0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], bool)
    mask, zeros = response_mask[:, 1:], np.zeros((2, 5), np.float32)
    rollout = Rollout(tokens, response_mask, mask, zeros, zeros, np.zeros(2), P, {})
    old, boot = rollout_values(PrefixSum(), rollout, "bootstrap")
    np.testing.assert_array_equal(old, np.cumsum(tokens[:, :-1], axis=1) * mask)
    np.testing.assert_array_equal(boot, [5 + 6 + 7 + 9, 5 + 6 + 1 + 2 + 3 + 4])  # V(all tokens)
    old_terminal, none = rollout_values(PrefixSum(), rollout, "terminal")
    assert none is None
    np.testing.assert_array_equal(old_terminal, old)


def test_missing_eos_penalty_lowers_exactly_the_rows_without_end(setup):
    task, reference, sampling = setup
    short = dataclasses.replace(sampling, max_new_tokens=4)  # some rows are cut off
    prompts = task.sample_prompts(32, np.random.default_rng(0))

    def rollout(**options):
        return collect_rollout(reference, reference, task.true_reward, prompts, short,
                               np.random.default_rng(1), **options)  # fmt: skip

    plain, penalised = rollout(), rollout(missing_eos_penalty=2.0)
    has_end = ((plain.tokens == short.stop_token) & plain.response_mask).any(axis=1)
    np.testing.assert_array_equal(plain.truncated, ~has_end)
    assert 0 < has_end.sum() < len(has_end)  # both kinds occur
    np.testing.assert_array_equal(penalised.tokens, plain.tokens)
    np.testing.assert_array_equal(penalised.scores[has_end], plain.scores[has_end])
    np.testing.assert_allclose(penalised.scores[~has_end], plain.scores[~has_end] - 2.0)


def test_truncation_options_in_the_loops(setup):
    task, reference, sampling = setup
    sampling = dataclasses.replace(sampling, max_new_tokens=4)  # some rows are cut off
    short = (task, reference, sampling)
    _, terminal = run(short, steps=2)
    _, default = run(short, steps=2, truncation="terminal", missing_eos_penalty=None)
    np.testing.assert_array_equal(default["value_loss"], terminal["value_loss"])
    _, boot = run(short, steps=2, truncation="bootstrap")
    # iteration 0: the value head starts at zero (V = 0, so the bootstrap adds 0) and both
    # runs make the same update; iteration 1: same rollout, V(s_{T+1}) != 0, other targets
    np.testing.assert_array_equal(boot["advantage_std"][0], terminal["advantage_std"][0])
    np.testing.assert_array_equal(boot["reward"], terminal["reward"])
    assert boot["advantage_std"][1] != terminal["advantage_std"][1]
    _, penalised = run(short, steps=2, missing_eos_penalty=1.0)
    assert penalised["reward"][0] < terminal["reward"][0]
    with pytest.raises(ValueError, match="truncation"):
        run(short, truncation="bootstrapped")
    g = dict(steps=1, num_generations=4, batch_size=16)
    plain = train_grpo(fresh_policy(reference), reference, task.true_reward, task.sample_prompts,
                       sampling, GRPOConfig(**g), rng=0, progress=False)  # fmt: skip
    penal = train_grpo(fresh_policy(reference), reference, task.true_reward, task.sample_prompts,
                       sampling, GRPOConfig(**g, missing_eos_penalty=1.0), rng=0, progress=False)  # fmt: skip
    assert penal["reward"][0] < plain["reward"][0]
