"""Bad input gets a ValueError that names the argument; NaN in a valid position is an error."""

import numpy as np
import pytest

from minialign.objectives import (
    AdaptiveKLController,
    bradley_terry_loss,
    combined_reward,
    discounted_returns,
    dpo_loss,
    gae_advantages,
    group_advantages,
    grpo_loss,
    kl_penalized_rewards,
    kl_penalty,
    mc_advantages,
    ppo_clip_loss,
    value_loss,
    whiten,
)

z2, z3 = np.zeros(2), np.zeros(3)
Z = np.zeros((2, 3))
NAN2 = np.array([0.0, np.nan])
NANZ = np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]])

BAD_ARGUMENTS = [
    (lambda: dpo_loss(z2, z2, z2, z2, 0.0), "tau must be > 0"),
    (lambda: dpo_loss(z2, z2, z2, z2, -1.0), "tau must be > 0"),
    (lambda: dpo_loss(z2, z3, z2, z2, 1.0), "policy_rejected_logps"),
    (lambda: dpo_loss(z2, z2, z2, z2, 1.0, loss_type="kto"), "loss_type"),
    (lambda: dpo_loss(z2, z2, z2, z2, 1.0, label_smoothing=0.5), "label_smoothing"),
    (lambda: ppo_clip_loss(z2, z2, z2, -0.1), "epsilon must be >= 0"),
    (lambda: ppo_clip_loss(z2, z2, z3, 0.2), "advantages"),
    (lambda: ppo_clip_loss(Z, Z, Z, 0.2, mask=np.ones((2, 2))), "mask has shape"),
    (lambda: ppo_clip_loss(Z, Z, Z, 0.2, mask=np.full((2, 3), 2)), "mask must hold only 0/1"),
    (lambda: ppo_clip_loss(Z, Z, Z, 0.2, mask=np.zeros((2, 3))), "selects no position"),
    (lambda: value_loss(z2, z2, z3), "returns"),
    (lambda: value_loss(z2, z2, z2, clip=-1.0), "clip must be >= 0"),
    (lambda: grpo_loss(Z, Z, z2, -0.2), "epsilon must be >= 0"),
    (lambda: grpo_loss(Z, Z, z3, 0.2), "advantages has shape"),
    (lambda: grpo_loss(Z, Z, z2, 0.2, level="word"), "level"),
    (lambda: grpo_loss(Z, Z, z2, 0.2, aggregation="sum"), "aggregation"),
    (lambda: grpo_loss(Z, Z, z2, 0.2, beta=0.1), "needs logp_ref"),
    (lambda: grpo_loss(Z, Z, z2, 0.2, beta=-0.1), "beta must be >= 0"),
    (lambda: group_advantages(np.ones((4, 1))), "group size N"),
    (lambda: group_advantages(np.ones(4), ddof=2), "ddof"),
    (lambda: combined_reward(z2, z2, 1.5), "lam must lie in"),
    (lambda: combined_reward(z2, z3, 0.5), "r_process"),
    (lambda: discounted_returns(z3, 1.1), "gamma must lie in"),
    (lambda: discounted_returns(z3, -0.1), "gamma must lie in"),
    (lambda: mc_advantages(z3, z2, 0.9), "values"),
    (lambda: gae_advantages(z3, z3, 0.9, 1.5), "lam must lie in"),
    (lambda: gae_advantages(z3, z3, 2.0, 0.5), "gamma must lie in"),
    (lambda: whiten(np.ones(1), ddof=1), "too few for ddof"),
    (lambda: kl_penalty(z2, z2, "k4"), "estimator"),
    (lambda: kl_penalty(z2, z3), "logp_ref"),
    (lambda: kl_penalized_rewards(z3, Z, Z, 0.1), "score has shape"),
    (lambda: kl_penalized_rewards(z2, Z, Z, -0.1), "beta must be >= 0"),
    (lambda: AdaptiveKLController(0.1, target=0.0, horizon=100), "target must be > 0"),
    (lambda: bradley_terry_loss(z2, z3), "rejected_rewards"),
]


@pytest.mark.parametrize("call, message", BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_raise_value_error_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


NAN_INPUTS = [
    (lambda: dpo_loss(NAN2, z2, z2, z2, 1.0), "policy_chosen_logps"),
    (lambda: dpo_loss(z2, z2, z2, NAN2, 1.0), "ref_rejected_logps"),
    (lambda: bradley_terry_loss(z2, NAN2), "rejected_rewards"),
    (lambda: ppo_clip_loss(NANZ, Z, Z, 0.2), "logp_new"),
    (lambda: ppo_clip_loss(Z, Z, NANZ, 0.2), "advantages"),
    (lambda: grpo_loss(Z, NANZ, z2, 0.2), "logp_old"),
    (lambda: grpo_loss(Z, Z, NAN2, 0.2), "advantages"),
    (lambda: group_advantages(NAN2), "rewards"),
    (lambda: gae_advantages(NANZ, Z, 1.0, 1.0), "rewards"),
    (lambda: kl_penalty(z2, NAN2, "k3"), "logp_ref"),
    (lambda: value_loss(z2, z2, NAN2), "returns"),
]


@pytest.mark.parametrize("call, name", NAN_INPUTS, ids=[n for _, n in NAN_INPUTS])
def test_nan_in_a_valid_position_is_a_clear_error(call, name):
    with pytest.raises(ValueError, match=rf"{name} holds nan at index .* valid"):
        call()


def test_nan_in_a_padded_position_is_fine():
    mask = np.array([[1, 0, 1], [1, 1, 1]])
    assert np.isfinite(ppo_clip_loss(NANZ, Z, NANZ, 0.2, mask).item())
