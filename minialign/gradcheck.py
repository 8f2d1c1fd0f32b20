"""``from minialign.gradcheck import gradcheck``: autograd against central differences."""

from .autograd.gradcheck import GradcheckError, gradcheck, gradcheck_directional

__all__ = ["GradcheckError", "gradcheck", "gradcheck_directional"]
