"""``import minialign.functional as F``: fused ops with hand-derived backward passes.

The implementations live in `minialign.autograd.functional` (the autograd layer
imports nothing else from minialign); this module is the public name.
"""

from .autograd.functional import *  # noqa: F403
from .autograd.functional import __all__  # noqa: F401
