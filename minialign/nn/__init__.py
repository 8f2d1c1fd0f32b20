"""minialign.nn: modules, the tiny GPT, heads, sampling and sequence log-probs."""

from .critics import RewardModel, ValueModel, last_response_index
from .generate import Generation, generate
from .gpt import GPTConfig, KVCache, TinyGPT
from .heads import RewardHead, ValueHead
from .layers import MLP, Block, CausalSelfAttention, Embedding, LayerNorm, Linear
from .logprobs import SequenceLogprobs, sequence_logprobs
from .module import Module, Parameter
