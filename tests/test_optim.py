"""Optimisers, clipping and schedules: closed forms, PyTorch agreement, resumable state."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.nn import Module, Parameter
from minialign.optim import (
    SGD,
    AdamW,
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    clip_grad_norm,
    param_groups,
)


def make_params(rng, shapes=((3, 4), (4,), (2, 2, 3)), dtype=np.float32):
    return [Parameter(rng.normal(size=s), dtype=dtype) for s in shapes]


def set_grads(params, rng, scale=1.0):
    for p in params:
        p.grad = (scale * rng.normal(size=p.shape)).astype(p.dtype)


# ---------------------------------------------------------------------------- closed forms


def test_sgd_one_step_is_p_minus_lr_g(rng):
    params = make_params(rng)
    before = [p.data.copy() for p in params]
    set_grads(params, rng)
    SGD(params, lr=0.1).step()
    for p, b in zip(params, before):
        np.testing.assert_allclose(p.data, b - np.float32(0.1) * p.grad, rtol=1e-6)
        assert p.data.dtype == np.float32


def test_sgd_momentum_two_steps_closed_form(rng):
    (p,) = make_params(rng, shapes=((5,),), dtype=np.float64)
    p0 = p.data.copy()
    g1, g2 = rng.normal(size=5), rng.normal(size=5)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = g1
    opt.step()
    p.grad = g2
    opt.step()
    # b1 = g1, b2 = 0.9 g1 + g2; p2 = p0 - lr (b1 + b2)
    np.testing.assert_allclose(p.data, p0 - 0.1 * (g1 + 0.9 * g1 + g2), rtol=1e-12)


@given(
    lr=st.floats(1e-4, 1e-1),
    wd=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_adamw_first_step_moves_by_lr_sign_g(lr, wd, seed):
    r = np.random.default_rng(seed)
    p = Parameter(r.normal(size=(6, 5)), dtype=np.float64)
    g = r.normal(size=(6, 5))
    g = np.where(np.abs(g) < 1e-3, 1e-3, g)  # keep |g| >> eps
    p.grad = g
    p0 = p.data.copy()
    AdamW([p], lr=lr, weight_decay=wd).step()
    # bias correction makes m_hat = g and sqrt(v_hat) = |g| on step 1: exact closed form ...
    decayed = p0 * (1 - lr * wd)
    np.testing.assert_allclose(p.data, decayed - lr * g / (np.abs(g) + 1e-8), rtol=1e-12)
    # ... so each parameter moves by lr * sign(g), up to eps / |g| <= 1e-5 relative
    np.testing.assert_allclose(p.data, decayed - lr * np.sign(g), rtol=0, atol=1.1e-5 * lr)


def test_adamw_minimises_a_quadratic(rng):
    A = rng.normal(size=(4, 4))
    H = A @ A.T + 0.5 * np.eye(4)  # positive definite
    b = rng.normal(size=4)
    x_star = np.linalg.solve(H, b)
    x = Parameter(np.zeros(4), dtype=np.float64)
    opt = AdamW([x], lr=0.05, weight_decay=0.0)
    for _ in range(2000):
        x.grad = H @ x.data - b  # gradient of ½ xᵀHx - bᵀx
        opt.step()
    np.testing.assert_allclose(x.data, x_star, atol=1e-3)


def test_updates_stay_float32_and_are_in_place(rng):
    params = make_params(rng)
    buffers = [p.data for p in params]
    for opt in (SGD(params, 0.1, momentum=0.9, weight_decay=0.1, nesterov=True), AdamW(params)):
        for _ in range(3):
            set_grads(params, rng)
            opt.step()
        for p, buf in zip(params, buffers):
            assert p.data is buf and p.data.dtype == np.float32
        assert all(
            a.dtype == np.float32
            for k, a in opt.state_dict().items()
            if "param" in k and "step" not in k
        )


def test_params_without_grad_are_skipped(rng):
    params = make_params(rng)
    frozen_before = params[1].data.copy()
    opt = AdamW(params, lr=0.1, weight_decay=0.5)
    set_grads(params, rng)
    params[1].grad = None
    opt.step()
    np.testing.assert_array_equal(params[1].data, frozen_before)  # not even decayed
    assert 1 not in opt.state and opt.state[0]["step"] == 1


def test_zero_grad_clears_every_grad(rng):
    params = make_params(rng)
    set_grads(params, rng)
    opt = SGD(params, lr=0.1)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_param_groups_follow_nanogpt_rule():
    class Tiny(Module):
        def __init__(self):
            self.wte = Parameter(np.zeros((5, 3)))
            self.w = Parameter(np.zeros((3, 3)))
            self.b = Parameter(np.zeros(3))
            self.ln_gain = Parameter(np.ones(3))

    m = Tiny()
    decay, no_decay = param_groups(m, 0.1)
    assert [p.shape for p in decay["params"]] == [(5, 3), (3, 3)]
    assert [p.shape for p in no_decay["params"]] == [(3,), (3,)]
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    # the no-decay group really is not decayed
    for p in m.parameters():
        p.grad = np.zeros_like(p.data)
    opt = AdamW(param_groups(m, 0.5), lr=0.1)
    opt.step()
    np.testing.assert_array_equal(m.ln_gain.data, np.ones(3, np.float32))
    np.testing.assert_allclose(m.w.data, 0.0)  # 0 * (1 - lr wd) is still 0 ...
    m.w.data[...] = 1.0
    opt.step()
    np.testing.assert_allclose(m.w.data, 0.95, rtol=1e-6)  # ... but 1 shrinks by lr * wd


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: SGD(ps, lr=-1.0), "lr"),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
        (lambda ps: AdamW(ps, betas=(1.0, 0.999)), "betas"),
        (lambda ps: AdamW(ps, weight_decay=-0.1), "weight_decay"),
        (lambda ps: AdamW([]), "empty"),
        (lambda ps: AdamW(ps + ps[:1]), "twice"),
        (lambda ps: AdamW([{"params": ps, "lr": 0.1}]), "param group 0"),
    ],
)
def test_bad_arguments_raise(rng, make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params(rng))


# ---------------------------------------------------------------------------- clipping


@given(scale=st.floats(1e-3, 1e3), max_norm=st.floats(0.1, 10.0), seed=st.integers(0, 2**32 - 1))
def test_clip_grad_norm(scale, max_norm, seed):
    r = np.random.default_rng(seed)
    params = make_params(r, dtype=np.float64)
    set_grads(params, r, scale)
    before = [p.grad.copy() for p in params]
    expected = math.sqrt(sum(float((g**2).sum()) for g in before))
    total = clip_grad_norm(params, max_norm)
    assert isinstance(total, float)
    assert total == pytest.approx(expected, rel=1e-12)
    after = math.sqrt(sum(float((p.grad**2).sum()) for p in params))
    if expected > max_norm:
        assert after == pytest.approx(max_norm, rel=1e-12)
        for p, g in zip(params, before):  # direction kept
            np.testing.assert_allclose(p.grad, g * (max_norm / expected), rtol=1e-12)
    else:
        for p, g in zip(params, before):
            np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_keeps_float32_and_skips_none(rng):
    params = make_params(rng)
    set_grads(params, rng, 100.0)
    params[0].grad = None
    clip_grad_norm(params, 1.0)
    assert params[0].grad is None
    assert all(p.grad.dtype == np.float32 for p in params[1:])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_rejects_non_finite(rng, bad):
    params = make_params(rng)
    set_grads(params, rng)
    params[2].grad[0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"non-finite.*#2 shape \(2, 2, 3\)"):
        clip_grad_norm(params, 1.0)


# ---------------------------------------------------------------------------- schedules


@given(
    lr=st.floats(1e-5, 1.0),
    warmup=st.integers(0, 50),
    decay=st.integers(1, 200),
    min_frac=st.floats(0.0, 1.0),
    kind=st.sampled_from([CosineSchedule, LinearSchedule]),
)
def test_schedule_shape(lr, warmup, decay, min_frac, kind):
    total, min_lr = warmup + decay, lr * min_frac
    s = kind(lr, total_steps=total, warmup_steps=warmup, min_lr=min_lr)
    lrs = np.array([s.lr_at(t) for t in range(total + 5)])
    if warmup:
        assert lrs[0] == 0.0
        assert np.all(np.diff(lrs[: warmup + 1]) > 0)  # strictly rising warm-up
    assert lrs[warmup] == pytest.approx(lr)  # peak
    assert np.all(np.diff(lrs[warmup:]) <= 1e-15)  # never rises after the peak
    assert lrs[total] == pytest.approx(min_lr, abs=1e-12)  # reaches min at the end ...
    assert np.all(lrs[total:] == lrs[total])  # ... and stays
    assert np.all((lrs >= 0) & (lrs <= lr * (1 + 1e-12)))


def test_cosine_midpoint_and_linear_midpoint():
    cos = CosineSchedule(1.0, total_steps=110, warmup_steps=10, min_lr=0.2)
    lin = LinearSchedule(1.0, total_steps=110, warmup_steps=10, min_lr=0.2)
    assert cos.lr_at(60) == pytest.approx(0.6)  # halfway: (max + min) / 2
    assert cos.lr_at(35) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lin.lr_at(35) == pytest.approx(0.2 + 0.8 * 0.75)
    assert cos.lr_at(5) == lin.lr_at(5) == pytest.approx(0.5)


def test_constant_schedule_and_apply(rng):
    s = ConstantSchedule(0.3, warmup_steps=3)
    assert [s(t) for t in range(6)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3, 0.3])
    opt = SGD(make_params(rng), lr=1.0)
    assert s.apply(opt, 1) == opt.lr == pytest.approx(0.1)


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="min_lr"):
        CosineSchedule(0.1, 10, min_lr=0.2)
    with pytest.raises(ValueError, match="warmup_steps"):
        CosineSchedule(0.1, total_steps=5, warmup_steps=10)


# ---------------------------------------------------------------------------- resumable state


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
    ],
)
def test_state_dict_round_trip_resumes_bitwise(make):
    def run(steps, resume_at=None):
        r = np.random.default_rng(7)
        params = make_params(r)
        grads = [[r.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(steps)]
        opt = make(params)
        schedule = CosineSchedule(0.01, total_steps=steps, warmup_steps=2)
        for t in range(steps):
            if t == resume_at:  # rebuild the optimiser from its state dict
                saved = {k: v.copy() for k, v in opt.state_dict().items()}
                opt = make(params)
                opt.load_state_dict(saved)
            schedule.apply(opt, t)
            for p, g in zip(params, grads[t]):
                p.grad = g.copy()
            opt.step()
        return [p.data for p in params]

    for a, b in zip(run(8), run(8, resume_at=4)):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_rejects_mismatches(rng):
    params = make_params(rng)
    set_grads(params, rng)
    opt = AdamW(params)
    opt.step()
    state = opt.state_dict()
    other = AdamW(make_params(rng, shapes=((3, 4), (5,), (2, 2, 3))))
    with pytest.raises(ValueError, match=r"param1.exp_avg has shape \(4,\)"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="missing keys"):
        AdamW(params).load_state_dict({k: v for k, v in state.items() if k != "lr"})
    with pytest.raises(ValueError, match="unexpected key"):
        AdamW(params).load_state_dict({**state, "param0.bogus": np.zeros(1)})


# ---------------------------------------------------------------------------- PyTorch


def _torch_run(torch_cls, kwargs, params64, grads):
    import torch

    tparams = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params64]
    opt = torch_cls(tparams, **kwargs)
    for step_grads in grads:
        for tp, g in zip(tparams, step_grads):
            tp.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [tp.detach().numpy() for tp in tparams]


@pytest.mark.parametrize(
    "ours, torch_name, kwargs",
    [
        (SGD, "SGD", dict(lr=0.1)),
        (SGD, "SGD", dict(lr=0.1, momentum=0.9)),
        (SGD, "SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.1)),
        (SGD, "SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
        (AdamW, "AdamW", dict(lr=0.01)),
        (AdamW, "AdamW", dict(lr=0.03, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ],
)
def test_matches_torch_optim(rng, ours, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    shapes = [(3, 4), (4,), (2, 2, 3)]
    params64 = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(10)]
    params = [Parameter(p, dtype=np.float64) for p in params64]
    opt = ours(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    expected = _torch_run(getattr(torch.optim, torch_name), kwargs, params64, grads)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-12, atol=1e-14)


def test_clip_grad_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    shapes = [(3, 4), (4,)]
    grads = [10 * rng.normal(size=s) for s in shapes]
    params = [Parameter(np.zeros(s), dtype=np.float64) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    tparams = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 1.0).item()
    assert clip_grad_norm(params, 1.0) == pytest.approx(expected, rel=1e-12)
    for p, tp in zip(params, tparams):  # torch divides by (norm + 1e-6): agree to ~1e-6
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-5)
