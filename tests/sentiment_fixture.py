"""A small pre-trained reference policy on the sentiment task, shared by the trainer tests.

Built once per test session (``functools.cache``; ~5 s single-threaded) and never mutated:
tests that train a policy copy it with `copy_policy`.
"""

import dataclasses
import functools

import numpy as np

from minialign.nn import GPTConfig, TinyGPT
from minialign.tasks import SentimentTask
from minialign.train import Sampling, SFTConfig, train_sft

TASK = SentimentTask()
TOK = TASK.tokenizer
MAX_NEW = TASK.block_size - TASK.prompt_len  # 12: up to 9 words + END + headroom
SAMPLING = Sampling(max_new_tokens=MAX_NEW, stop_token=TOK.end_id, pad_id=TOK.pad_id)
SAMPLING_KW = dataclasses.asdict(SAMPLING)  # the same, as keyword arguments of `generate`


@functools.cache
def sentiment_reference() -> TinyGPT:
    """TinyGPT(vocab 58, block 16, 2 layers, 2 heads, 32 dims) after 300 SFT steps."""
    config = GPTConfig(TOK.vocab_size, TASK.block_size, n_layer=2, n_head=2, n_embd=32)
    model = TinyGPT(config, rng=0)
    corpus = TASK.corpus(2000, np.random.default_rng(0))
    config = SFTConfig(steps=300, batch_size=32, learning_rate=1e-2)
    train_sft(model, corpus.ids, corpus.mask, config, rng=1, progress=False)
    return model


def copy_policy(model: TinyGPT) -> TinyGPT:
    policy = TinyGPT(model.config, rng=0)
    policy.load_state_dict(model.state_dict())
    return policy
