"""minialign.check: correct implementations pass in every framework; the API's edges.

Correct implementations: minialign's own objectives (NumPy arrays or Tensors in) and
independent PyTorch ones (tests/torch_objectives.py), each with and without the optional
keyword arguments. Planted bugs are in tests/test_check_bugs.py.
"""

import functools
import sys

import numpy as np
import pytest

import minialign.functional as F
from minialign import objectives
from minialign.check import NAMES, CheckReport, check
from minialign.check.registry import ENTRIES

REFERENCES = {name: getattr(objectives, name, None) or F.softmax for name in NAMES}
REQUIRED = {
    "bradley_terry_loss", "discounted_returns", "mc_advantages", "gae_advantages", "whiten",
    "kl_penalty", "probability_ratio", "ppo_clip_loss", "value_loss", "combined_reward",
    "group_advantages", "grpo_loss", "dpo_loss",
}  # fmt: skip


def _core(name):
    """minialign's function reduced to its positional arguments (no options to exercise)."""
    ref, n = REFERENCES[name], len(ENTRIES[name].args)
    return lambda *args: ref(*args[:n])


def test_every_required_name_is_known():
    assert REQUIRED <= set(NAMES)


@pytest.mark.parametrize("framework", ["numpy", "minialign"])
@pytest.mark.parametrize("name", NAMES)
def test_minialign_passes_its_own_check(name, framework):
    examples = 10 if framework == "numpy" else 20  # the values run again under "minialign"
    report = check(name, REFERENCES[name], framework, max_examples=examples)
    assert report.passed, str(report)
    assert "padding never changes a result" in report.properties or name in (
        "bradley_terry_loss", "combined_reward", "group_advantages", "dpo_loss", "softmax"
    )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_bare_equation_passes_under_the_default_conventions(name):
    report = check(name, _core(name), "minialign", max_examples=10)
    assert report.passed, str(report)
    assert "not exercised" in str(report) or name in ("combined_reward", "softmax")


@pytest.mark.parametrize("name", NAMES)
def test_independent_torch_implementations_pass(name):
    pytest.importorskip("torch")
    from torch_objectives import IMPLEMENTATIONS

    report = check(name, IMPLEMENTATIONS[name], "torch")
    assert report.passed, str(report)
    gradient = f"gradient = minialign's {name}"
    assert any(p.startswith(gradient) for p in report.properties) == (
        name in ("bradley_terry_loss", "kl_penalty", "probability_ratio", "ppo_clip_loss",
                 "value_loss", "grpo_loss", "dpo_loss", "softmax")
    )  # fmt: skip


@pytest.mark.parametrize(
    "name, options, fn",
    [
        ("whiten", {"ddof": 1}, lambda x, mask=None: objectives.whiten(x, mask, ddof=1)),
        ("group_advantages", {"ddof": 1, "eps": 1e-4},
         lambda r: objectives.group_advantages(r, eps=1e-4, ddof=1)),
        ("kl_penalty", {"estimator": "k3"}, lambda a, b, mask=None: objectives.kl_penalty(a, b, "k3", mask)),
        ("grpo_loss", {"level": "token", "aggregation": "dapo"},
         functools.partial(objectives.grpo_loss, level="token", aggregation="dapo")),
        ("value_loss", {"value_clip": 0.2}, lambda v, o, r: objectives.value_loss(v, o, r, clip=0.2)),
        ("dpo_loss", {"dpo_beta": True}, lambda a, b, c, d, beta: objectives.dpo_loss(a, b, c, d, 1 / beta)),
    ],
)  # fmt: skip
def test_a_convention_option_accepts_an_implementation_of_that_convention(name, options, fn):
    assert check(name, fn, "minialign", max_examples=15, **options).passed
    assert not check(name, fn, "minialign", max_examples=10).passed  # not the default


def test_trl_score_one_position_after_the_last_token():
    torch = pytest.importorskip("torch")
    from torch_objectives import kl_penalized_rewards

    trl = functools.partial(kl_penalized_rewards, score_offset=1)
    assert check("kl_penalized_rewards", trl, "torch", score_offset=1).passed
    report = check("kl_penalized_rewards", trl, "torch")
    assert not report.passed and "rewards at index" in str(report)
    assert torch.get_num_threads() >= 1  # check restores the thread count it lowered


def test_report_is_deterministic_and_readable():
    def wrong_sign(chosen, rejected):
        return np.mean(np.logaddexp(0.0, chosen - rejected))

    first, second = check("bradley_terry_loss", wrong_sign), check("bradley_terry_loss", wrong_sign)
    assert isinstance(first, CheckReport) and str(first) == str(second)
    assert first.properties == second.properties and not first.passed
    text = str(first)
    assert text.startswith("check bradley_terry_loss (numpy) on ")
    assert "Traceback" not in text and "Falsifying" not in text and "hypothesis" not in text
    assert len(first.failures) == sum(not ok for ok in first.properties.values())


def test_an_exception_in_the_function_is_a_failing_property_with_its_input(capsys):
    def crashes(logp_new, logp_old):
        if logp_new.shape[1] > 1:
            raise IndexError("only one token")
        return np.exp(logp_new - logp_old)

    report = check("probability_ratio", crashes)
    assert not report.passed
    failure = report.first_failure
    assert "raised IndexError: only one token (test_check.py, line" in failure.message
    assert "logp_new = [[0., 0.]]" in str(failure)  # the smallest input that raises
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_returning_nothing_is_reported():
    report = check("combined_reward", lambda a, b, lam: None)
    assert "your function returned NoneType, not an array or a number" in str(report)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="did you mean grpo_loss"):
        check("grpo_los", objectives.grpo_loss)
    with pytest.raises(ValueError, match="framework must be one of"):
        check("grpo_loss", objectives.grpo_loss, "jax")
    with pytest.raises(TypeError, match="unknown option.*bessel"):
        check("whiten", objectives.whiten, bessel=True)
    with pytest.raises(ValueError, match="estimator must be one of"):
        check("kl_penalty", objectives.kl_penalty, estimator="k4")
    with pytest.raises(TypeError, match=r"takes 1 positional arguments \(x\); it must take the 2"):
        check("bradley_terry_loss", lambda x: x)
    with pytest.raises(TypeError, match="requires scale beyond the arguments"):
        check("whiten", lambda x, *, scale: x)


def test_missing_hypothesis_or_torch_is_one_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="framework 'torch' needs PyTorch"):
        check("dpo_loss", objectives.dpo_loss, "torch")
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match=r'pip install "minialign\[check\]"'):
        check("dpo_loss", objectives.dpo_loss)


def test_the_drawn_inputs_do_not_depend_on_what_else_is_imported(tmp_path):
    """Hypothesis mixes constants from local modules into its draws; check turns that off."""
    seen = []

    def recording(r_outcome, r_process, lam):
        seen.append((r_outcome.tobytes(), r_process.tobytes(), lam))
        return lam * r_outcome + (1 - lam) * r_process

    check("combined_reward", recording)
    before, seen[:] = list(seen), []
    (tmp_path / "lots_of_constants.py").write_text(
        "VALUES = [0.015625, 2.5, -7.25, 1e-3, 3, 17, 0.1, 0.3, 0.7, 1.75, -2.125]\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import lots_of_constants  # noqa: F401

        check("combined_reward", recording)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lots_of_constants", None)
    assert seen == before


def test_a_required_mask_parameter_is_always_given():
    def ppo(logp_new, logp_old, advantages, epsilon, mask):
        return objectives.ppo_clip_loss(logp_new, logp_old, advantages, epsilon, mask)

    report = check("ppo_clip_loss", ppo, "minialign", max_examples=10)
    assert report.passed and "padding never changes a result" in report.properties
