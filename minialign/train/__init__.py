"""minialign.train: the training loops, one file per algorithm.

Each file holds the algorithm's config (a frozen dataclass, TRL's field names where TRL
has the knob), its stage functions in the order of one iteration, and the loop, which
reads top to bottom: ``with Run(...) as run: for step in run.steps(): ...``. Every loop
takes plain arrays and models, seeds everything from one ``rng``, shows a progress bar,
stops cleanly on Ctrl-C, raises on a NaN loss naming the step, checkpoints and resumes
bitwise (``checkpoint_path``, ``resume``), and returns a `History` that `minialign.plots`
draws.

* `train_sft`           next-token pre-training (the reference models)       `SFTConfig`
* `train_reward_model`  Bradley–Terry on preference pairs (the proxy reward) `RewardConfig`
* `train_ppo`           rollouts, KL-shaped rewards, GAE, clipped updates    `PPOConfig`
* `train_grpo`          groups of samples per prompt, group advantages       `GRPOConfig`
* `train_dpo`           preference pairs straight into the policy            `DPOConfig`
* `best_of_n`           the baseline: n reference samples, keep the proxy's favourite
"""

from .best_of_n import best_of_n, best_of_n_kl
from .config import LoopConfig
from .dpo import DPOConfig, dpo_step, reference_logprobs, train_dpo
from .evaluate import evaluate_policy, make_eval_fn
from .grpo import (
    GRPOConfig,
    arithmetic_reward_fn,
    grpo_advantages,
    grpo_iteration,
    grpo_update,
    sample_groups,
    train_grpo,
)
from .history import History
from .ppo import (
    PPOConfig,
    PPOState,
    ppo_iteration,
    ppo_loss,
    ppo_targets,
    ppo_update,
    rollout_values,
    train_ppo,
)
from .reward_model import (
    RewardConfig,
    bayes_accuracy,
    evaluate_reward_model,
    reward_fn,
    reward_model_step,
    train_reward_model,
)
from .rollout import Rollout, Sampling, collect_rollout
from .run import Run
from .sft import SFTConfig, evaluate_loss, sft_step, train_sft, unigram_entropy
