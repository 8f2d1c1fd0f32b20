"""minialign.nn: modules, the tiny GPT, heads, sampling and sequence log-probs."""

from .module import Module, Parameter
