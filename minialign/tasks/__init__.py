"""Toy worlds with a known true reward, small enough to train on in seconds.

* `bandit`      one prompt, K answers: every alignment optimum in closed form
* `sentiment`   continue a movie review positively (the DPO paper's IMDb task, in miniature)
* `arithmetic`  single-digit sums with checkable steps: outcome vs process rewards for GRPO

Sequence tasks share one layout (see `minialign.tokenizer.SequenceBatch`):
``BOS prompt response END PAD...``, right-padded, with ``mask`` (real tokens) and
``response_mask`` (the tokens a policy generates, END included). Every prompt of a
task has the same length (``task.prompt_len``), so prompts stack into a dense array.
"""

from .arithmetic import ArithmeticTask, correct_trace, corrupted_trace, hacked_response, score
from .bandit import (
    Bandit,
    best_of_n_distribution,
    best_of_n_kl_bound,
    expected_reward,
    kl,
    make_bandit,
    optimal_policy,
    win_rate,
)
from .sentiment import PreferencePairs, SentimentTask
