"""Optimisers (SGD, AdamW), gradient clipping and learning-rate schedules.

An optimiser holds a list of parameters (`Parameter`) and, on ``step()``, moves each in place
using its ``.grad``. Parameters whose ``.grad`` is None (frozen, or unused by the loss)
are skipped and their state does not advance, as in PyTorch. Updates keep the
parameter's dtype: float32 parameters never see a float64 temporary.

``opt.lr`` is a plain attribute: a schedule sets it before each step,
``opt.lr = schedule.lr_at(step)``. Per-group weight decay is supported through
*parameter groups*, see `param_groups` for the split nanoGPT uses.

``state_dict()`` is a flat ``{name: np.ndarray}`` (moments, step counts, hyper-
parameters as 0-d arrays), so a checkpoint can store it in an ``.npz`` and a resumed
run continues bitwise identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .nn.module import Module, Parameter
from .optim_state import checked_state

__all__ = [
    "SGD",
    "AdamW",
    "Optimizer",
    "param_groups",
    "clip_grad_norm",
    "Schedule",
    "ConstantSchedule",
    "CosineSchedule",
    "LinearSchedule",
]


def param_groups(model: Module, weight_decay: float) -> list[dict]:
    """Split a model's parameters the way nanoGPT's ``configure_optimizers`` does.

    Every parameter with ``ndim >= 2`` (matmul weights *and* the token/position
    embeddings, which nanoGPT ties to the output head) is decayed; every parameter
    with ``ndim < 2`` (biases, LayerNorm gains and shifts) is not. Shrinking a
    LayerNorm gain toward 0 or a bias toward 0 has no regularising meaning, which
    is why they are excluded. (Some codebases also exclude embeddings; nanoGPT does not.)
    """
    params = model.parameters()
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": float(weight_decay)},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class Optimizer:
    """Shared machinery: parameter groups, the per-parameter loop, state dicts.

    Subclasses set ``hyperparameters`` (names of scalar attributes saved in the state
    dict) and ``buffers`` (names of per-parameter arrays), and implement ``_update``.
    """

    hyperparameters: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()
    # checked by load_state_dict: hyperparameter -> (test, "what it must be"); buffers >= 0
    domains: dict = {}
    non_negative_buffers: tuple[str, ...] = ()

    def __init__(self, params, lr: float, weight_decay: float):
        _check_nonneg("lr", lr)
        _check_nonneg("weight_decay", weight_decay)
        self.lr = float(lr)
        self.param_groups = _make_groups(params, float(weight_decay))
        self.params: list[Parameter] = [p for g in self.param_groups for p in g["params"]]
        self._decay = [g["weight_decay"] for g in self.param_groups for _ in g["params"]]
        # state[i] for parameter i: {"step": int, buffer name: ndarray}; created on first update.
        self.state: dict[int, dict] = {}

    def zero_grad(self) -> None:
        """Forget every gradient (set to None, so the next backward writes fresh ones)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: parameter {i} has shape {p.data.shape} "
                    f"but its grad has shape {p.grad.shape}"
                )
            state = self.state.setdefault(i, {"step": 0})
            state["step"] += 1
            self._update(p.data, p.grad.astype(p.data.dtype, copy=False), state, self._decay[i])

    def _update(self, p, g, state, weight_decay) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- state dicts -----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: ``lr``, hyperparameters, per-parameter buffers and steps.

        Keys: ``"lr"``, ``"<hyperparameter>"``, ``"group<g>.weight_decay"``,
        ``"param<i>.step"``, ``"param<i>.<buffer>"``; every value an ``np.ndarray``.
        """
        out = {"lr": np.array(self.lr)}
        for name in self.hyperparameters:
            out[name] = np.array(getattr(self, name))
        for g, group in enumerate(self.param_groups):
            out[f"group{g}.weight_decay"] = np.array(group["weight_decay"])
        for i, state in sorted(self.state.items()):
            out[f"param{i}.step"] = np.array(state["step"], dtype=np.int64)
            for name in self.buffers:
                out[f"param{i}.{name}"] = state[name].copy()
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` (copies the arrays). Checks names, counts, shapes, dtypes
        (real floats; integer steps >= 1) and values (finite, each hyperparameter in its
        domain) first: on any error, naming the key, the optimiser is left unchanged."""
        scalars, new_state = checked_state(self, state)
        self.lr = float(scalars["lr"])
        for name in self.hyperparameters:
            setattr(self, name, scalars[name])
        for g, group in enumerate(self.param_groups):
            group["weight_decay"] = float(scalars[f"group{g}.weight_decay"])
        self._decay = [g["weight_decay"] for g in self.param_groups for _ in g["params"]]
        self.state = new_state


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay.

    With learning rate $\eta$, momentum $\mu$, weight decay $\lambda$ (PyTorch's order):

    $$g_t \leftarrow g_t + \lambda \theta_{t-1}, \qquad
      b_t = \begin{cases} g_t & t = 1 \\ \mu b_{t-1} + g_t & t > 1 \end{cases}, \qquad
      d_t = \begin{cases} g_t + \mu b_t & \text{nesterov} \\ b_t & \text{otherwise} \end{cases}$$
    $$\theta_t = \theta_{t-1} - \eta\, d_t$$

    With $\mu = 0$ this is plain $\theta \leftarrow \theta - \eta (g + \lambda\theta)$. The decay
    here is *coupled* (added to the gradient), unlike AdamW's.
    """

    hyperparameters = ("momentum", "nesterov")
    domains = {"nesterov": (lambda v: isinstance(v, bool), "true or false")}

    def __init__(self, params, lr: float, momentum=0.0, weight_decay=0.0, nesterov=False):
        _check_nonneg("momentum", momentum)
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov=True needs momentum > 0, got momentum={momentum}")
        super().__init__(params, lr, weight_decay)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.buffers = ("momentum_buffer",) if self.momentum else ()

    def _update(self, p, g, state, weight_decay) -> None:
        if weight_decay:
            g = g + weight_decay * p  # a new array: never modify p.grad
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(g, copy=True)  # b_1 = g_1
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum
                buf += g  # b_t = μ b_{t-1} + g_t
            buf = state["momentum_buffer"]
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class AdamW(Optimizer):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), in PyTorch's update order.

    With learning rate $\eta$, $\beta_1, \beta_2$, $\epsilon$, weight decay $\lambda$, step $t \ge 1$:

    $$\theta \leftarrow \theta (1 - \eta\lambda)$$
    $$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$$
    $$\theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
      \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}$$

    The decay multiplies $\theta$ directly instead of entering $g$, so it is not rescaled
    by $\sqrt{v_t}$. The bias corrections undo the zero initialisation of $m, v$: on the
    first step $\hat m / \sqrt{\hat v} = g/|g|$, so every parameter moves by about $\eta$.
    """

    hyperparameters = ("beta1", "beta2", "eps")
    buffers = ("exp_avg", "exp_avg_sq")
    domains = {
        "beta1": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
        "beta2": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    }
    non_negative_buffers = ("exp_avg_sq",)  # its square root is taken

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        beta1, beta2 = betas
        for name, beta in (("betas[0]", beta1), ("betas[1]", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"AdamW: {name} must lie in [0, 1), got {beta}")
        _check_nonneg("eps", eps)
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _update(self, p, g, state, weight_decay) -> None:
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        p *= 1.0 - self.lr * weight_decay  # decoupled decay
        m *= self.beta1
        m += (1.0 - self.beta1) * g  # m_t
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)  # v_t
        step_size = self.lr / (1.0 - self.beta1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - self.beta2**t) + self.eps
        p -= step_size * (m / denom)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    r"""Rescale gradients in place so their joint L2 norm is at most ``max_norm``.

    $$\|g\| = \sqrt{\textstyle\sum_i \|g_i\|_2^2}, \qquad
      g_i \leftarrow g_i \cdot \frac{\text{max\_norm}}{\|g\|} \quad \text{if } \|g\| > \text{max\_norm}$$

    Returns $\|g\|$ *before* clipping (a float; log it to watch training). Parameters
    with ``grad`` None are ignored. Unlike PyTorch there is no ``+1e-6`` in the
    denominator, so a clipped gradient has norm exactly ``max_norm`` (up to rounding).
    Raises ``ValueError`` if the norm is NaN or infinite, naming the offending parameters.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    params = [p for p in params if p.grad is not None]
    # Squared norms are reduced per tensor in the grad's dtype, then summed as Python floats.
    squares = [float(np.vdot(p.grad, p.grad).real) for p in params]
    total = math.sqrt(sum(squares))
    if not math.isfinite(total):
        bad = [f"#{i} shape {p.shape}" for i, p in enumerate(params) if not np.isfinite(squares[i])]
        raise ValueError(
            f"clip_grad_norm: the gradient norm is {total}; non-finite gradients in "
            f"parameters {', '.join(bad) or '(overflow in the sum)'} - the loss has likely diverged"
        )
    if total > max_norm:
        scale = max_norm / total
        for p in params:
            p.grad *= scale
    return total


# ----------------------------------------------------------------------------
# Learning-rate schedules: lr_at(step) for step = 0, 1, 2, ...
# ----------------------------------------------------------------------------


class Schedule:
    r"""Linear warm-up, then a decay chosen by the subclass.

    $$\eta(s) = \eta_{\max} \cdot \frac{s}{W} \quad (s < W), \qquad
      \eta(s) = \eta_{\min} + (\eta_{\max} - \eta_{\min})\, f(p), \quad
      p = \mathrm{clip}\Big(\frac{s - W}{S - W}, 0, 1\Big) \quad (s \ge W)$$

    with $f(0) = 1$, $f(1) = 0$. Step 0 has learning rate 0 when $W > 0$ (the Hugging
    Face convention); $\eta(W) = \eta_{\max}$; $\eta(S) = \eta_{\min}$ and it stays there.
    Use with any optimiser: ``opt.lr = schedule.lr_at(step)`` or ``schedule.apply(opt, step)``.
    """

    def __init__(self, lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0):
        _check_nonneg("lr", lr)
        _check_nonneg("warmup_steps", warmup_steps)
        if not 0.0 <= min_lr <= lr:
            raise ValueError(
                f"{type(self).__name__}: min_lr must lie in [0, lr={lr}], got {min_lr}"
            )
        if total_steps < warmup_steps:
            raise ValueError(
                f"{type(self).__name__}: total_steps={total_steps} < warmup_steps={warmup_steps}"
            )
        self.lr, self.min_lr = float(lr), float(min_lr)
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)

    def decay(self, progress: float) -> float:
        """f(p): 1 at the start of the decay, 0 at its end."""
        raise NotImplementedError

    def lr_at(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"{type(self).__name__}.lr_at: step must be >= 0, got {step}")
        if step < self.warmup_steps:
            return self.lr * step / self.warmup_steps
        span = self.total_steps - self.warmup_steps
        progress = 1.0 if span <= 0 else min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr + (self.lr - self.min_lr) * self.decay(progress)

    __call__ = lr_at

    def apply(self, optimizer: Optimizer, step: int) -> float:
        """Set ``optimizer.lr`` for this step and return it."""
        optimizer.lr = self.lr_at(step)
        return optimizer.lr


class ConstantSchedule(Schedule):
    """Warm-up, then a constant ``lr`` (``total_steps`` only bounds the warm-up)."""

    def __init__(self, lr: float, warmup_steps: int = 0):
        super().__init__(lr, total_steps=warmup_steps, warmup_steps=warmup_steps, min_lr=lr)

    def decay(self, progress: float) -> float:
        return 1.0


class CosineSchedule(Schedule):
    r"""Warm-up, then cosine decay: $f(p) = \tfrac12 (1 + \cos \pi p)$."""

    def decay(self, progress: float) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class LinearSchedule(Schedule):
    r"""Warm-up, then linear decay: $f(p) = 1 - p$."""

    def decay(self, progress: float) -> float:
        return 1.0 - progress


# ----------------------------------------------------------------------------


def _check_nonneg(name: str, value) -> None:
    if not (isinstance(value, (int, float, np.integer, np.floating)) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _make_groups(params, default_decay: float) -> list[dict]:
    if isinstance(params, Module):
        raise ValueError("pass model.parameters() (or param groups), not the Module itself")
    params = list(params)
    if not params:
        raise ValueError("optimiser got an empty parameter list")
    if not isinstance(params[0], dict):
        params = [{"params": params}]
    groups, seen = [], set()
    for g, group in enumerate(params):
        unknown = group.keys() - {"params", "weight_decay"}
        if unknown or "params" not in group:
            raise ValueError(
                f"param group {g}: expected keys 'params' and optionally 'weight_decay', "
                f"got {sorted(group)}"
            )
        decay = float(group.get("weight_decay", default_decay))
        _check_nonneg(f"param group {g} weight_decay", decay)
        plist = list(group["params"])
        for p in plist:
            if not isinstance(p, Parameter) and not getattr(p, "requires_grad", False):
                raise ValueError(f"param group {g}: expected Parameters, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"param group {g}: a parameter of shape {p.shape} appears twice")
            seen.add(id(p))
        groups.append({"params": plist, "weight_decay": decay})
    return groups
