"""Every objective under fuzzing, in float32 and float64: finite inputs give a finite answer
(value, and gradient where the loss is below sqrt(max) of its dtype) or a ValueError that names the function and an argument — never NaN,
never inf (no objective's exact answer is infinite for finite inputs).

Inputs mix ordinary values with the whole finite range of the dtype (±3.4e38 in float32,
subnormals), empty batches, empty rows, all-masked rows and, for the scalar options,
values outside their domain (NaN, ±inf, negative, non-integers).
"""

import inspect

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minialign.objectives as O
from minialign.autograd import Tensor

DTYPES = st.sampled_from([np.float32, np.float64])


def values(dtype):
    """Ordinary values most of the time, the whole finite range of ``dtype`` otherwise."""
    width = 32 if dtype == np.float32 else 64
    return st.one_of(
        st.floats(-10, 10, width=width),
        st.floats(allow_nan=False, allow_infinity=False, width=width),
    )


def arrays(draw, dtype, shape):
    return draw(hnp.arrays(dtype, shape, elements=values(dtype)))


def right_padded_mask(draw, shape, allow_empty_rows=True):
    lengths = draw(
        hnp.arrays(
            np.int64, shape[:-1], elements=st.integers(0 if allow_empty_rows else 1, shape[-1])
        )
    )
    return np.arange(shape[-1]) < lengths[..., None]


def scalar(lo=0.0, hi=None, bad=True):
    """A scalar option: usually in [lo, hi], sometimes extreme, sometimes outside the domain."""
    good = st.floats(lo, hi if hi is not None else 1e6, allow_nan=False)
    extreme = st.sampled_from([lo, 1e-300, 1e30, 1e300] if hi is None else [lo, hi])
    wild = st.one_of(st.just(np.nan), st.just(np.inf), st.just(-np.inf), st.floats(-1e9, -1e-9))
    return st.one_of(good, good, good, extreme, wild) if bad else st.one_of(good, good, extreme)


def leaf(x):
    return Tensor(np.array(x), requires_grad=True)


def check_finite(fn, result, arguments, leaves=()):
    """The result (and, for a scalar loss, the gradient of every leaf) must be finite."""
    if isinstance(result, dict):
        parts = list(result.values())
    elif isinstance(result, tuple):
        parts = list(result)
    else:
        parts = [result]
    for part in parts:
        data = part.data if isinstance(part, Tensor) else np.asarray(part)
        assert np.isfinite(data).all(), f"{fn}{arguments}: non-finite result {data}"
    # The chain rule multiplies inputs (and partial results) together, so its products can
    # overflow when an input or the loss exceeds sqrt(max) even though the loss fits; below
    # that the gradient must be finite too.
    scalar = isinstance(result, Tensor) and result.ndim == 0
    if scalar and leaves and below_sqrt_max(result.dtype, result, *arguments.values()):
        result.backward()
        for i, x in enumerate(leaves):
            if x.grad is not None:
                assert np.isfinite(x.grad).all(), f"{fn}{arguments}: gradient {i} is {x.grad}"


def below_sqrt_max(dtype, *values) -> bool:
    """Whether every number in ``values`` (arrays, Tensors, scalars; None and str skipped)
    is at most sqrt(max) of ``dtype`` in size."""
    bound = np.sqrt(np.finfo(dtype).max)
    for v in values:
        if v is None or isinstance(v, str):
            continue
        a = np.abs(np.asarray(v.data if isinstance(v, Tensor) else v, dtype=np.float64))
        if a.size and not a.max() <= bound:
            return False
    return True


def finite_or_named_error(fn, call, arguments, leaves=()):
    """Run ``call``; a ValueError must name ``fn`` and one of its arguments."""
    try:
        result = call()
    except ValueError as e:
        message = str(e)
        assert fn in message, f"the error does not name {fn}: {message}"
        assert any(name in message for name in arguments), (
            f"{fn}: the error names none of {sorted(arguments)}: {message}"
        )
        return None
    check_finite(fn, result, arguments, leaves)
    return result


def named(function, *args, **kwargs):
    """``{parameter name: value}`` of a call, for error messages."""
    return inspect.signature(function).bind(*args, **kwargs).arguments


def run(data, function, *args, leaves=(), obj=None, **kwargs):
    fn = function.__name__ if obj is None else f"{obj}"
    arguments = named(function, *args, **kwargs)
    return finite_or_named_error(fn, lambda: function(*args, **kwargs), arguments, leaves)


# ---------------------------------------------------------------------------- pairs (B,)


@given(st.data())
def test_bradley_terry_loss(data):
    draw = data.draw
    dtype, B = draw(DTYPES), draw(st.integers(0, 4))
    chosen, rejected = leaf(arrays(draw, dtype, (B,))), leaf(arrays(draw, dtype, (B,)))
    margin = draw(st.none() | st.just(arrays(draw, dtype, (B,))))
    coef = draw(scalar())
    run(data, O.bradley_terry_loss, chosen, rejected, margin, coef, leaves=(chosen, rejected))


@given(st.data())
def test_preference_accuracy(data):
    draw = data.draw
    dtype, B = draw(DTYPES), draw(st.integers(0, 4))
    run(data, O.preference_accuracy, arrays(draw, dtype, (B,)), arrays(draw, dtype, (B,)))


def _four(draw):
    dtype, B = draw(DTYPES), draw(st.integers(0, 4))
    return [arrays(draw, dtype, (B,)) for _ in range(4)]


@given(st.data())
def test_dpo_delta(data):
    pc, pr, rc, rr = _four(data.draw)
    pc, pr = leaf(pc), leaf(pr)
    result = run(data, O.dpo_delta, pc, pr, rc, rr)
    if result is not None and result.size:
        result.sum().backward()
        assert np.isfinite(pc.grad).all() and np.isfinite(pr.grad).all()


@given(st.data())
def test_dpo_loss(data):
    draw = data.draw
    pc, pr, rc, rr = _four(draw)
    pc, pr = leaf(pc), leaf(pr)
    kwargs = dict(
        tau=draw(scalar()),
        loss_type=draw(st.sampled_from(O.dpo.LOSS_TYPES)),
        label_smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 0.49, 0.5, -0.1, np.nan])),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
    )
    result = run(data, O.dpo_loss, pc, pr, rc, rr, leaves=(pc, pr), **kwargs)
    if result is not None and kwargs["reduction"] == "none" and result.size:
        result.sum().backward()
        assert np.isfinite(pc.grad).all() and np.isfinite(pr.grad).all()


@given(st.data())
def test_implicit_rewards(data):
    run(data, O.implicit_rewards, *_four(data.draw), tau=data.draw(scalar()))


# ---------------------------------------------------------------------------- rows (B, T)


def _rows(draw, n_arrays):
    dtype = draw(DTYPES)
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 4)))
    arrays_ = [arrays(draw, dtype, shape) for _ in range(n_arrays)]
    mask = draw(st.none() | st.just(right_padded_mask(draw, shape)))
    return dtype, shape, arrays_, mask


def _truncation(draw, dtype, shape):
    if not draw(st.booleans()):
        return {}
    truncated = draw(hnp.arrays(bool, shape[:-1]))
    return dict(truncated=truncated, bootstrap_values=arrays(draw, dtype, shape[:-1]))


@given(st.data())
def test_discounted_returns(data):
    dtype, shape, (r,), mask = _rows(data.draw, 1)
    gamma = data.draw(scalar(0.0, 1.0))
    run(data, O.discounted_returns, r, gamma, mask, **_truncation(data.draw, dtype, shape))


@given(st.data())
def test_mc_advantages(data):
    dtype, shape, (r, v), mask = _rows(data.draw, 2)
    gamma = data.draw(scalar(0.0, 1.0))
    run(data, O.mc_advantages, r, v, gamma, mask, **_truncation(data.draw, dtype, shape))


@given(st.data())
def test_gae_advantages(data):
    draw = data.draw
    dtype, shape, (r, v), mask = _rows(draw, 2)
    gamma, lam = draw(scalar(0.0, 1.0)), draw(scalar(0.0, 1.0))
    run(data, O.gae_advantages, r, v, gamma, lam, mask, **_truncation(draw, dtype, shape))


@given(st.data())
def test_whiten(data):
    draw = data.draw
    _, _, (x,), mask = _rows(draw, 1)
    if draw(st.booleans()):  # constant rows: the case eps = 0 used to turn into NaN
        x = np.full_like(x, draw(values(x.dtype)))
    kwargs = dict(
        shift_mean=draw(st.booleans()),
        ddof=draw(st.sampled_from([0, 1, -1, 2, 0.5])),
        eps=draw(st.sampled_from([0.0, 1e-8, 1e-3, 1e30, -1e-8, np.nan, np.inf])),
    )
    run(data, O.whiten, x, mask, **kwargs)


# ---------------------------------------------------------------------------- GRPO


@given(st.data())
def test_combined_reward(data):
    dtype, _, (a, b), _ = _rows(data.draw, 2)
    run(data, O.combined_reward, a, b, data.draw(scalar(0.0, 1.0)))


@given(st.data())
def test_group_advantages(data):
    draw = data.draw
    dtype = draw(DTYPES)
    r = arrays(draw, dtype, (draw(st.integers(0, 3)), draw(st.integers(1, 5))))
    kwargs = dict(
        eps=draw(scalar()),
        ddof=draw(st.sampled_from([0, 1, -1, 2])),
        std_floor=draw(scalar()),
        scale=draw(st.booleans()),
    )
    run(data, O.group_advantages, r, **kwargs)


@given(st.data())
def test_frac_zero_std_groups(data):
    dtype = data.draw(DTYPES)
    r = arrays(data.draw, dtype, (data.draw(st.integers(0, 3)), data.draw(st.integers(1, 4))))
    run(data, O.frac_zero_std_groups, r)


@given(st.data())
def test_grpo_loss(data):
    draw = data.draw
    dtype, shape, (new, old, ref), mask = _rows(draw, 3)
    if draw(st.booleans()):  # (B,) whole-output log-probs
        new, old, ref = new[:, 0] if shape[1] else new[:, :0].sum(1), old.sum(1), ref.sum(1)
        mask = None
    advantages = arrays(draw, dtype, shape[:1])
    new = leaf(new)
    kwargs = dict(
        epsilon=draw(scalar()),
        mask=mask,
        beta=draw(scalar()),
        logp_ref=ref,
        level=draw(st.sampled_from(["sequence", "token"])),
        aggregation=draw(st.sampled_from(["grpo", "bnpo", "dr_grpo", "dapo"])),
        max_completion_length=draw(st.sampled_from([None, 1, 7, 0, -3, 2.5])),
        epsilon_high=draw(st.none() | scalar()),
        max_log_ratio=draw(scalar()),
    )
    run(data, O.grpo_loss, new, old, advantages, leaves=(new,), **kwargs)


# ---------------------------------------------------------------------------- KL


@given(st.data())
def test_kl_penalty(data):
    draw = data.draw
    _, _, (logp, ref), mask = _rows(draw, 2)
    estimator = draw(st.sampled_from(["k1", "k2", "k3"]))
    logp = leaf(logp)
    result = run(data, O.kl_penalty, logp, ref, estimator, mask, draw(scalar()))
    if result is not None and result.size:
        result.sum().backward()
        assert np.isfinite(logp.grad).all(), logp.grad


@given(st.data())
def test_categorical_kl(data):
    draw = data.draw
    dtype = draw(DTYPES)
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 4)))
    p, q = leaf(arrays(draw, dtype, shape)), leaf(arrays(draw, dtype, shape))
    result = run(data, O.categorical_kl, p, q)
    if result is not None and result.size:
        result.sum().backward()
        assert np.isfinite(p.grad).all() and np.isfinite(q.grad).all()


@given(st.data())
def test_kl_penalized_rewards(data):
    draw = data.draw
    dtype, shape, (logp, ref), mask = _rows(draw, 2)
    score = arrays(draw, dtype, shape[:1])
    estimator = draw(st.sampled_from(["k1", "k2", "k3"]))
    run(data, O.kl_penalized_rewards, score, logp, ref, draw(scalar()), mask, estimator)


@given(st.data())
def test_adaptive_kl_controller(data):
    draw = data.draw
    controller = O.AdaptiveKLController(draw(scalar(bad=False)), 6.0, 10_000)
    for _ in range(3):
        kl = draw(st.one_of(values(np.float64), st.sampled_from([np.nan, np.inf, -np.inf])))
        n = draw(st.sampled_from([0, 1, 64, 10**6, -1, 2.5]))
        call = lambda kl=kl, n=n: controller.update(kl, n)  # noqa: E731
        finite_or_named_error("AdaptiveKLController", call, ("current_kl", "n_steps"))
        assert np.isfinite(controller.value) and controller.value >= 0


def _logits(draw, n_arrays):
    dtype = draw(DTYPES)
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 4)))
    return [arrays(draw, dtype, shape) for _ in range(n_arrays)]


@given(st.data())
def test_kl_regularized_objective(data):
    logits, ref, rewards = _logits(data.draw, 3)
    logits = leaf(logits)
    beta = data.draw(scalar())
    run(data, O.kl_regularized_objective, logits, ref, rewards, beta, leaves=(logits,))


@given(st.data())
def test_kl_regularized_optimum(data):
    ref, rewards = _logits(data.draw, 2)
    run(data, O.kl_regularized_optimum, ref, rewards, data.draw(scalar()))


@given(st.data())
def test_best_of_n_policy(data):
    draw = data.draw
    K = draw(st.integers(0, 5))
    weights = draw(hnp.arrays(np.float64, (K,), elements=st.floats(0, 10)))
    if draw(st.booleans()) and weights.sum() > 0:
        weights = weights / weights.sum()  # a distribution; otherwise usually not
    rewards = arrays(draw, draw(DTYPES), (K,))
    n = draw(st.sampled_from([1, 2, 16, 10**6, 0, -1, 2.5]))
    result = run(data, O.best_of_n_policy, weights, rewards, n)
    if result is not None:
        assert np.all(result >= 0) and abs(result.sum() - 1) < 1e-6, result


# ---------------------------------------------------------------------------- PPO


@given(st.data())
def test_probability_ratio(data):
    _, _, (new, old), mask = _rows(data.draw, 2)
    new = leaf(new)
    result = run(data, O.probability_ratio, new, old, mask, data.draw(scalar()))
    if result is not None and result.size:
        result.sum().backward()
        assert np.isfinite(new.grad).all(), new.grad


@given(st.data())
def test_ppo_clip_loss(data):
    _, _, (new, old, advantages), mask = _rows(data.draw, 3)
    new = leaf(new)
    epsilon = data.draw(scalar())
    run(data, O.ppo_clip_loss, new, old, advantages, epsilon, mask, leaves=(new,))


@given(st.data())
def test_value_loss(data):
    _, _, (values_, old, returns), mask = _rows(data.draw, 3)
    values_ = leaf(values_)
    clip = data.draw(st.none() | scalar())
    run(data, O.value_loss, values_, old, returns, clip, mask, leaves=(values_,))


@given(st.data())
def test_entropy_bonus(data):
    draw = data.draw
    dtype = draw(DTYPES)
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    logits = leaf(arrays(draw, dtype, shape + (draw(st.integers(0, 4)),)))
    mask = draw(st.none() | st.just(right_padded_mask(draw, shape)))
    run(data, O.entropy_bonus, logits, mask, leaves=(logits,))


@given(st.data())
def test_clip_fraction(data):
    _, _, (new, old), mask = _rows(data.draw, 2)
    result = run(data, O.clip_fraction, new, old, data.draw(scalar()), mask)
    assert result is None or 0.0 <= result <= 1.0


@given(st.data())
def test_approx_kl(data):
    _, _, (new, old), mask = _rows(data.draw, 2)
    result = run(data, O.approx_kl, new, old, mask)
    assert result is None or result >= 0.0


def test_every_public_objective_is_fuzzed():
    fuzzed = {name[len("test_") :] for name in globals() if name.startswith("test_")}
    fuzzed.add("AdaptiveKLController")
    assert set(O.__all__) - fuzzed - {"adaptive_kl_controller"} == set()
