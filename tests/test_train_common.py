"""The shared loop machinery: `run_loop` and `optimizer_step` on a one-parameter model."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.nn import Module, Parameter
from minialign.optim import SGD
from minialign.train.loop import load_run_state, optimizer_step, run_loop


class Scalar(Module):
    def __init__(self, value=1.0):
        self.w = Parameter(np.array([value]))

    def forward(self):
        return (self.w * self.w).sum()  # L = w^2, dL/dw = 2w


def make_step(model, opt, nan_at=None, interrupt_at=None):
    def step_fn(step):
        if step == interrupt_at:
            raise KeyboardInterrupt
        loss = model() * (np.nan if step == nan_at else 1.0)
        [grad_norm] = optimizer_step(loss, [(opt, model)], None)
        return {"loss": loss.item(), "grad_norm": grad_norm}

    return step_fn


@given(steps=st.integers(1, 12), log_every=st.integers(1, 5), eval_every=st.integers(1, 5))
def test_logging_and_evaluation_steps(steps, log_every, eval_every):
    model = Scalar()
    opt = SGD(model.parameters(), lr=0.1)
    h = run_loop("toy", make_step(model, opt), steps=steps, log_every=log_every,
                 eval_fn=lambda k: {"probe": float(k)}, eval_every=eval_every,
                 progress=False)  # fmt: skip
    logged = [s for s in range(steps) if s % log_every == 0 or s == steps - 1]
    assert list(h.steps("loss")) == logged == list(h.steps("seconds"))
    evals = [0] + [k for k in range(1, steps + 1) if k % eval_every == 0 or k == steps]
    assert list(h.steps("probe")) == evals and list(h["probe"]) == evals
    assert np.all(np.diff(h["seconds"]) >= 0)  # cumulative, never per-step
    # w <- w - lr * 2w: the loss after k updates is 0.8^(2k)
    np.testing.assert_allclose(h["loss"], 0.64 ** np.array(logged), rtol=1e-5)


def test_eval_at_update_logs_at_the_update_it_follows():
    model = Scalar()
    h = run_loop("toy", make_step(model, SGD(model.parameters(), lr=0.1)), steps=6,
                 eval_fn=lambda k: {"probe": float(k)}, eval_every=3, eval_at_update=True,
                 progress=False)  # fmt: skip
    assert list(h.steps("probe")) == [2, 5] and list(h["probe"]) == [3, 6]


def test_errors_name_the_loop_and_the_step():
    model = Scalar()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"^toy: the loss is nan at iteration 2; "):
        run_loop("toy", make_step(model, opt, nan_at=2), steps=5, unit="iteration",
                 progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint_path"):
        run_loop("toy", make_step(model, opt), steps=5, checkpoint_every=2, progress=False)
    with pytest.raises(ValueError, match="eval_every"):
        run_loop("toy", make_step(model, opt), steps=5, eval_every=0, progress=False)


def test_resume_continues_steps_and_seconds(tmp_path):
    path = tmp_path / "toy.npz"

    def run(interrupt_at=None, resume=False):
        model = Scalar()
        opt = SGD(model.parameters(), lr=0.1)
        h = run_loop("toy", make_step(model, opt, interrupt_at=interrupt_at), steps=7,
                     rng=np.random.default_rng(0), modules={"m": model}, optimizers={"o": opt},
                     checkpoint_path=path, checkpoint_every=3, resume=resume,
                     progress=False)  # fmt: skip
        return model, h

    m1, straight = run()
    m = Scalar()
    step, _, _ = load_run_state(path, modules={"m": m}, optimizers={}, rng=np.random.default_rng())
    assert step == 7 and np.array_equal(m.w.data, m1.w.data)  # saved at the end too, not just 3, 6
    path.unlink()
    _, stopped = run(interrupt_at=5)
    assert stopped.interrupted and list(stopped.steps("loss")) == [0, 1, 2, 3, 4]
    m2, resumed = run(resume=True)  # from the step-3 checkpoint
    np.testing.assert_array_equal(resumed["loss"], straight["loss"])
    np.testing.assert_array_equal(m1.w.data, m2.w.data)
    assert np.all(np.diff(resumed["seconds"]) >= 0)  # the clock carries over
    np.testing.assert_array_equal(resumed["seconds"][:3], stopped["seconds"][:3])


def test_optimizer_step_clips_each_model_and_returns_norms():
    a, b = Scalar(3.0), Scalar(-0.25)
    oa, ob = SGD(a.parameters(), lr=1.0), SGD(b.parameters(), lr=1.0)
    norms = optimizer_step(a() + b(), [(oa, a), (ob, b)], 1.0)
    np.testing.assert_allclose(norms, [6.0, 0.5])  # |2w| before clipping
    np.testing.assert_allclose([a.w.data[0], b.w.data[0]], [2.0, 0.25])  # a clipped to 1
    with pytest.raises(FloatingPointError, match="the loss is inf"):
        optimizer_step(a() * np.inf, [(oa, a)], 1.0)
