"""Reward-model training: it learns the sentiment annotator up to the annotator's own noise."""

import numpy as np
import pytest
from sentiment_fixture import TASK, sentiment_reference

from minialign.autograd import is_grad_enabled
from minialign.nn import RewardModel
from minialign.train import RewardConfig
from minialign.train.reward_model import (
    bayes_accuracy,
    evaluate_reward_model,
    reward_fn,
    train_reward_model,
)

BETA_BT = 10.0  # annotator sharpness: Bayes accuracy ~0.89 on corpus pairs (0.77 at beta 4)


def rm_run(rm, pairs, *, rng, eval_pairs=None, margin=None, run_options=None, **config):
    """A seeded reward-model run; ``config`` overrides RewardConfig fields."""
    config = RewardConfig(**{**dict(batch_size=32, learning_rate=3e-3), **config})
    return train_reward_model(rm, pairs, config, eval_pairs=eval_pairs, margin=margin, rng=rng,
                              progress=False, **(run_options or {}))  # fmt: skip


@pytest.fixture(scope="module")
def data():
    train = TASK.make_preference_pairs(1000, np.random.default_rng(1), beta_bt=BETA_BT)
    held_out = TASK.make_preference_pairs(500, np.random.default_rng(99), beta_bt=BETA_BT)
    return train, held_out


@pytest.fixture(scope="module")
def trained(data):
    train, held_out = data
    rm = RewardModel.from_policy(sentiment_reference(), rng=0)
    history = rm_run(rm, train, eval_pairs=held_out, steps=100, rng=2)
    return rm, history


def test_held_out_accuracy_rises_from_chance_to_near_the_noise_ceiling(data, trained):
    _, held_out = data
    _, history = trained
    acc, true_acc = history["eval_accuracy"], history["eval_true_accuracy"]
    ceiling = bayes_accuracy(held_out)  # E[max(p, 1-p)]: the annotator's own noise
    assert 0.85 < ceiling < 0.93
    assert abs(acc[0] - 0.5) < 0.1 and abs(true_acc[0] - 0.5) < 0.1  # step 0: chance
    assert acc[-1] > max(0.8, ceiling - 0.08), (acc, ceiling)  # seeds 2-4: 0.83-0.86
    assert true_acc[-1] > 0.85  # the true ordering is learned better than the noisy labels
    assert history["eval_loss"][-1] < 0.45 < np.log(2) - 0.1 < history["eval_loss"][0] + 0.1
    assert list(history.steps("eval_accuracy")) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert history["loss"][-20:].mean() < history["loss"][:5].mean() - 0.2
    assert set(history.keys()) >= {"loss", "accuracy", "grad_norm", "seconds"}
    assert np.all(np.diff(history["seconds"]) >= 0)


def test_true_ordering_accuracy_is_scored_against_true_rewards(data, trained):
    """Swapping the labels flips label accuracy but not the true-reward accuracy."""
    rm, _ = trained
    _, held_out = data
    swapped = type(held_out)(
        held_out.prompt_ids, held_out.rejected, held_out.chosen,
        held_out.rejected_reward, held_out.chosen_reward, 1 - held_out.p_chosen,
    )  # fmt: skip
    a, b = evaluate_reward_model(rm, held_out), evaluate_reward_model(rm, swapped)
    # A pair is counted right in exactly one direction, except a pair of identical
    # responses: its two scores are equal up to round-off (they are computed in batches of
    # different shapes), so it may count in neither direction or in both.
    identical = np.mean(np.all(held_out.chosen.ids == held_out.rejected.ids, axis=1))
    assert abs(a["accuracy"] + b["accuracy"] - 1.0) <= identical + 1e-12
    assert a["true_accuracy"] == pytest.approx(b["true_accuracy"])
    assert bayes_accuracy(swapped) == pytest.approx(bayes_accuracy(held_out))


def test_reward_fn_is_the_score_without_grad(data, trained):
    rm, _ = trained
    train, _ = data
    fn = reward_fn(rm)
    r = fn(train.chosen.ids[:7], train.chosen.response_mask[:7])
    assert r.shape == (7,) and r.dtype == np.float64
    np.testing.assert_allclose(
        r, rm.score(train.chosen.ids[:7], train.chosen.response_mask[:7]).data
    )
    assert rm.training  # restored
    # extra padding columns never change a score
    pad = np.zeros((7, 3), np.int64)
    wide = fn(
        np.hstack([train.chosen.ids[:7], pad]), np.hstack([train.chosen.response_mask[:7], pad])
    )
    np.testing.assert_allclose(wide, r, rtol=1e-6, atol=1e-6)


def _short_run(pairs, steps=6, rng=5, rm=None, run_options=None, **kwargs):
    rm = rm or RewardModel.from_policy(sentiment_reference(), rng=0)
    return rm, rm_run(rm, pairs, steps=steps, rng=rng, run_options=run_options, **kwargs)


def interrupt_at_training_call(rm, k):
    """Make the k-th training forward pass (grad enabled) raise KeyboardInterrupt (Ctrl-C)."""
    score, calls = rm.score, []

    def patched(tokens, mask):
        if is_grad_enabled():
            calls.append(1)
            if len(calls) == k:
                raise KeyboardInterrupt
        return score(tokens, mask)

    rm.score = patched
    return rm


def test_repeatable_and_resumable_bitwise(data, tmp_path):
    train, held_out = data
    common = dict(eval_pairs=held_out, eval_steps=2)
    rm1, h1 = _short_run(train, **common)
    rm2, h2 = _short_run(train, **common)
    path = tmp_path / "rm.npz"
    stopped = interrupt_at_training_call(RewardModel.from_policy(sentiment_reference(), rng=0), 5)
    _, h_stopped = _short_run(train, rm=stopped, save_steps=3,
                              run_options=dict(checkpoint_path=path), **common)  # fmt: skip
    assert h_stopped.interrupted and list(h_stopped.steps("loss")) == [0, 1, 2, 3]
    resume = dict(checkpoint_path=path, resume=True)
    rm3, h3 = _short_run(train, run_options=resume, **common)  # steps 3..5
    np.testing.assert_array_equal(h3["seconds"][:3], h_stopped["seconds"][:3])  # read back
    for h in (h2, h3):
        assert h.keys() == h1.keys()
        for key in h1.keys():
            if key != "seconds":
                assert np.array_equal(h[key], h1[key]) and np.array_equal(
                    h.steps(key), h1.steps(key)
                )
    for rm in (rm2, rm3):
        for (name, a), b in zip(rm1.state_dict().items(), rm.state_dict().values()):
            assert np.array_equal(a, b), name
    _, h4 = _short_run(train, rng=6)  # and the seed matters
    assert not np.array_equal(h4["loss"], h1["loss"])


def test_centring_and_margin(data):
    train, _ = data
    free, _ = _short_run(train, steps=30)
    centred, _ = _short_run(train, steps=30, center_rewards_coefficient=1.0)

    def mean_score(rm):
        return abs(np.mean(reward_fn(rm)(train.chosen.ids[:200], train.chosen.response_mask[:200])))

    assert mean_score(centred) < 0.5 * mean_score(free) + 0.05
    _, h0 = _short_run(train, steps=2)
    _, h1 = _short_run(train, steps=2, margin=1.0)
    assert h1["loss"][0] > h0["loss"][0] + 0.2  # log σ(Δ - 1) < log σ(Δ): a margin costs


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_names_the_step(data):
    train, _ = data
    rm = RewardModel.from_policy(sentiment_reference(), rng=0)
    with pytest.raises(FloatingPointError, match=r"at step 1\b"):
        rm_run(rm, train, steps=4, batch_size=8, learning_rate=1e30, rng=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(steps=0), "RewardConfig.steps must be >= 1"),
     (dict(center_rewards_coefficient=-1.0), "RewardConfig.center_rewards_coefficient")],
)  # fmt: skip
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig(**kwargs)


def test_empty_pairs_are_an_error(data):
    rm = RewardModel.from_policy(sentiment_reference(), rng=0)
    with pytest.raises(ValueError, match="pairs is empty"):
        train_reward_model(rm, data[0].take(np.arange(0)), progress=False)


def test_progress_bar(data, capsys):
    rm = RewardModel.from_policy(sentiment_reference(), rng=0)
    train_reward_model(rm, data[0], RewardConfig(steps=2, batch_size=4), rng=0)
    assert "reward model" in capsys.readouterr().err  # tqdm draws on stderr


def test_reward_fn_scores_in_chunks_with_the_same_bits(data, trained):
    """Chunks of a multiple of 24 rows give each row exactly the bits of one big pass (the
    reason the demo's best-of-64 fits in memory without changing a number)."""
    train, _ = data
    rm, _ = trained
    tokens = np.concatenate([train.chosen.ids, train.rejected.ids])[:600]
    mask = np.concatenate([train.chosen.response_mask, train.rejected.response_mask])[:600]
    whole = reward_fn(rm, chunk_rows=10**9)(tokens, mask)
    for chunk in (24, 96, 240):
        np.testing.assert_array_equal(reward_fn(rm, chunk_rows=chunk)(tokens, mask), whole)
    assert whole.dtype == np.float64 and whole.shape == (600,)
