"""minialign.train: the training loops.

Every loop takes plain arrays and models, seeds everything from one ``rng``, shows a
``tqdm.auto`` progress bar, stops cleanly on Ctrl-C, raises on a NaN loss naming the
step, can checkpoint and resume bitwise, and returns a `History` that
`minialign.plots` draws.

* `train_sft`           next-token pre-training (the reference models)
* `train_reward_model`  Bradley–Terry on preference pairs (the proxy reward)
* `train_ppo`           rollouts, KL-penalised rewards, GAE, clipped updates
* `train_grpo`          groups of samples per prompt, group-normalised advantages
* `train_dpo`           preference pairs straight into the policy (IPO, hinge, cDPO too)
* `best_of_n`           the baseline: n reference samples, keep the proxy's favourite
"""

from .best_of_n import best_of_n, best_of_n_kl
from .common import evaluate_policy, make_eval_fn
from .dpo import reference_logprobs, train_dpo
from .grpo import arithmetic_reward_fn, train_grpo
from .history import History
from .ppo import ppo_targets, train_ppo
from .reward_model import bayes_accuracy, evaluate_reward_model, reward_fn, train_reward_model
from .rollout import Rollout, collect_rollout
from .sft import evaluate_loss, train_sft, unigram_entropy
