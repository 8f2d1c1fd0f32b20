"""minialign.train: the training loops (supervised pre-training here; reward, PPO, GRPO, DPO).

Every loop takes plain arrays and a model, seeds everything from one ``rng``, shows a
``tqdm.auto`` progress bar, and returns a `History` that `minialign.plots` draws.
"""

from .history import History
from .sft import evaluate_loss, train_sft, unigram_entropy
