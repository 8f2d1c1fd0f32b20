"""Reward and value models: which position is read, initialisation, checkpoints."""

import numpy as np
import pytest

from minialign import checkpoint
from minialign.gradcheck import gradcheck_directional
from minialign.nn import GPTConfig, RewardModel, TinyGPT, ValueModel, last_response_index

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


def _batch():
    tokens = np.array([[1, 4, 5, 6, 2, 0, 0, 0], [1, 7, 3, 2, 0, 0, 0, 0]])
    response_mask = np.array([[0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0, 0]])
    return tokens, response_mask


def test_last_response_index_and_empty_rows():
    _, mask = _batch()
    assert last_response_index(mask).tolist() == [4, 3]
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        last_response_index(np.array([[0, 1], [0, 0]]))


def test_reward_is_read_at_the_last_response_token_and_ignores_padding():
    model = RewardModel(CFG, rng=0)
    tokens, mask = _batch()
    per_prefix = model(tokens).data  # (B, T)
    score = model.score(tokens, mask).data
    np.testing.assert_allclose(score, per_prefix[[0, 1], [4, 3]], rtol=1e-6)
    garbage = tokens.copy()
    garbage[0, 5:] = 9  # change only the padding after the response
    garbage[1, 4:] = 3
    np.testing.assert_allclose(model.score(garbage, mask).data, score, rtol=1e-6)


def test_value_model_starts_at_zero_but_learns():
    policy = TinyGPT(CFG, rng=1)
    critic = ValueModel.from_policy(policy)
    tokens, _ = _batch()
    values = critic(tokens)
    assert np.all(values.data == 0.0)
    values.sum().backward()
    assert np.abs(critic.head.weight.grad).sum() > 0  # gradient reaches the zero head
    for (_, p), (_, q) in zip(critic.trunk.named_parameters(), policy.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_reward_model_gradient_float64():
    model = RewardModel(CFG, rng=2).to_dtype(np.float64)
    tokens, mask = _batch()
    gradcheck_directional(lambda *_: model.score(tokens, mask), model.parameters(), name="score")


@pytest.mark.parametrize("cls", [RewardModel, ValueModel])
def test_checkpoint_round_trip(tmp_path, cls):
    model = cls(CFG, rng=3)
    checkpoint.save(model, tmp_path / "m.npz")
    loaded = checkpoint.load(tmp_path / "m.npz")
    assert type(loaded) is cls
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m and np.array_equal(p.data, q.data)
