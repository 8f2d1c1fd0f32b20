"""The runner every loop iterates (`Run`) and `optimizer_step`, on a one-parameter model."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.nn import Module, Parameter
from minialign.optim import SGD
from minialign.train import LoopConfig, Run
from minialign.train.run import load_run_state, optimizer_step


class Scalar(Module):
    def __init__(self, value=1.0):
        self.w = Parameter(np.array([value]))

    def forward(self):
        return (self.w * self.w).sum()  # L = w^2, dL/dw = 2w


def toy(config, *, nan_at=None, interrupt_at=None, **run_options):
    """The shape of every trainer: ``with Run(...) as run: for step in run.steps(): ...``."""
    model = Scalar()
    opt = SGD(model.parameters(), lr=0.1)
    saved = {"m": model, "o": opt}
    with Run("toy", config, rng=np.random.default_rng(0), saved=saved, progress=False,
             **run_options) as run:  # fmt: skip
        for step in run.steps():
            if step == interrupt_at:
                raise KeyboardInterrupt
            loss = model() * (np.nan if step == nan_at else 1.0)
            [grad_norm] = optimizer_step(loss, [(opt, model)], None)
            run.log(step, {"loss": loss.item(), "grad_norm": grad_norm})
    return model, run.history


@given(steps=st.integers(1, 12), log_every=st.integers(1, 5), eval_every=st.integers(1, 5))
def test_logging_and_evaluation_steps(steps, log_every, eval_every):
    config = LoopConfig(steps=steps, logging_steps=log_every, eval_steps=eval_every)
    _, h = toy(config, eval_fn=lambda k: {"probe": float(k)})
    logged = [s for s in range(steps) if s % log_every == 0 or s == steps - 1]
    assert list(h.steps("loss")) == logged == list(h.steps("seconds"))
    evals = [0] + [k for k in range(1, steps + 1) if k % eval_every == 0 or k == steps]
    assert list(h.steps("probe")) == evals and list(h["probe"]) == evals
    assert np.all(np.diff(h["seconds"]) >= 0)  # cumulative, never per-step
    # w <- w - lr * 2w: the loss after k updates is 0.8^(2k)
    np.testing.assert_allclose(h["loss"], 0.64 ** np.array(logged), rtol=1e-5)


def test_eval_steps_none_means_a_tenth_of_the_run():
    _, h = toy(LoopConfig(steps=30), eval_fn=lambda k: {"probe": float(k)})
    assert list(h.steps("probe")) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]


def test_eval_after_update_logs_at_the_update_it_follows():
    config = LoopConfig(steps=6, eval_steps=3)
    _, h = toy(config, eval_fn=lambda k: {"probe": float(k)}, eval_after_update=True)
    assert list(h.steps("probe")) == [2, 5] and list(h["probe"]) == [3, 6]


def test_errors_name_the_loop_and_the_step():
    with pytest.raises(FloatingPointError, match=r"^toy: the loss is nan at iteration 2; "):
        toy(LoopConfig(steps=5), nan_at=2, unit="iteration")


def test_ctrl_c_ends_the_loop_and_keeps_the_history():
    model, h = toy(LoopConfig(steps=9), interrupt_at=4)
    assert h.interrupted and list(h.steps("loss")) == [0, 1, 2, 3]
    np.testing.assert_allclose(model.w.data, [0.8**4])  # four updates, none half-done


def test_resume_continues_steps_and_seconds(tmp_path):
    path = tmp_path / "toy.npz"
    config = LoopConfig(steps=7, save_steps=3)
    m1, straight = toy(config, checkpoint_path=path)
    m = Scalar()
    step, _ = load_run_state(path, saved={"m": m}, rng=np.random.default_rng())
    assert step == 7 and np.array_equal(m.w.data, m1.w.data)  # saved at the end too, not just 3, 6
    path.unlink()
    _, stopped = toy(config, interrupt_at=5, checkpoint_path=path)
    assert stopped.interrupted and list(stopped.steps("loss")) == [0, 1, 2, 3, 4]
    m2, resumed = toy(config, checkpoint_path=path, resume=True)  # from the step-3 checkpoint
    np.testing.assert_array_equal(resumed["loss"], straight["loss"])
    np.testing.assert_array_equal(m1.w.data, m2.w.data)
    assert np.all(np.diff(resumed["seconds"]) >= 0)  # the clock carries over
    np.testing.assert_array_equal(resumed["seconds"][:3], stopped["seconds"][:3])


def test_resume_without_a_file_starts_from_scratch(tmp_path):
    _, h = toy(LoopConfig(steps=3), checkpoint_path=tmp_path / "none.npz", resume=True)
    assert list(h.steps("loss")) == [0, 1, 2]


def test_optimizer_step_clips_each_model_and_returns_norms():
    a, b = Scalar(3.0), Scalar(-0.25)
    oa, ob = SGD(a.parameters(), lr=1.0), SGD(b.parameters(), lr=1.0)
    norms = optimizer_step(a() + b(), [(oa, a), (ob, b)], 1.0)
    np.testing.assert_allclose(norms, [6.0, 0.5])  # |2w| before clipping
    np.testing.assert_allclose([a.w.data[0], b.w.data[0]], [2.0, 0.25])  # a clipped to 1
    with pytest.raises(FloatingPointError, match="the loss is inf"):
        optimizer_step(a() * np.inf, [(oa, a)], 1.0)


def test_resume_refuses_a_run_state_from_elsewhere_naming_the_file(tmp_path):
    path = tmp_path / "toy.npz"
    toy(LoopConfig(steps=7), checkpoint_path=path)  # a finished 7-step run
    with pytest.raises(ValueError, match=r"toy.npz: the run state is at step 7, past the 4 steps"):
        toy(LoopConfig(steps=4), checkpoint_path=path, resume=True)
    state = dict(np.load(path))
    meta = json.loads(str(state["__run__"]))
    for change, message in [
        ({"step": -3}, "'step' must be >= 0"),
        ({"step": "3"}, "'step' must be an integer"),
    ]:
        np.savez(path, **{**state, "__run__": np.array(json.dumps({**meta, **change}))})
        with pytest.raises(ValueError, match=message):
            toy(LoopConfig(steps=7), checkpoint_path=path, resume=True)
    path.write_text("not a zip file")
    with pytest.raises(ValueError, match="toy.npz"):
        toy(LoopConfig(steps=7), checkpoint_path=path, resume=True)
    np.savez(path, **{k: v for k, v in state.items() if not k.startswith("o/")})
    with pytest.raises(ValueError, match=r"no entries o/\*"):
        toy(LoopConfig(steps=7), checkpoint_path=path, resume=True)
