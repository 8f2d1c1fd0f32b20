"""``minialign check`` and ``minialign exercises``: exit codes, one-line errors, the graded set."""

import subprocess
import sys

import pytest

from minialign.check import NAMES
from minialign.check.exercises import EXERCISES, render
from minialign.check.exercises.writer import template
from minialign.cli import main

CORRECT = """
import numpy as np

def dpo(pc, pr, rc, rr, tau):
    delta = (pc - rc) - (pr - rr)
    return np.mean(np.logaddexp(0.0, -delta / tau))

def dpo_flipped(pc, pr, rc, rr, tau):
    return dpo(pr, pc, rr, rc, tau)

def two(a, b):
    return a

value = 3
"""


@pytest.fixture
def impl(tmp_path):
    path = tmp_path / "impl.py"
    path.write_text(CORRECT)
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "raises.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    return path


def test_list_prints_every_name_with_its_arguments(capsys):
    assert main(["check", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(NAMES)
    assert "gae_advantages(rewards, values, gamma, lam)  [options: mask, truncated, " in lines[3]


def test_a_passing_and_a_failing_implementation(impl, capsys):
    assert main(["check", "dpo_loss", f"{impl}:dpo"]) == 0
    out = capsys.readouterr().out
    assert f"check dpo_loss (numpy) on {impl}:dpo: PASSED" in out
    assert main(["check", "dpo_loss", f"{impl}:dpo_flipped", "--option", "max_examples=10"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "inputs:" in out and "max_examples=10" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["dpo_los", "{dir}/impl.py:dpo"], "unknown name 'dpo_los'; did you mean dpo_loss"),
        (["dpo_loss", "{dir}/nofile.py:dpo"], "no such file"),
        (["dpo_loss", "{dir}/broken.py:f"], "broken.py does not parse: invalid syntax (line 1)"),
        (["dpo_loss", "{dir}/raises.py:f"], "raises.py failed to import: RuntimeError: boom (line 2)"),
        (["dpo_loss", "{dir}/impl.py:dop"], "impl.py has no function dop; did you mean dpo?"),
        (["dpo_loss", "{dir}/impl.py:two"], "two takes 2 positional arguments (a, b); it must take the 5"),
        (["dpo_loss", "{dir}/impl.py:value"], "value is of type int, not a function"),
        (["dpo_loss", "{dir}/impl.py"], "expected FILE.py:FUNCTION"),
        (["dpo_loss", "{dir}/impl.py:dpo", "--option", "bogus=1"], "unknown option(s) bogus"),
        (["dpo_loss", "{dir}/impl.py:dpo", "--option", "dpo_beta"], "--option expects KEY=VALUE"),
        (["dpo_loss"], "give NAME and FILE.py:FUNCTION"),
        (["--exercises", "{dir}/nowhere"], "no such file or directory"),
    ],
)  # fmt: skip
def test_a_user_mistake_is_one_line_on_stderr(impl, capsys, args, message):
    args = [a.format(dir=impl.parent) for a in args]
    assert main(["check", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("minialign check: ")
    assert message in captured.err


def test_missing_torch_or_hypothesis_is_one_line(impl, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["check", "dpo_loss", f"{impl}:dpo", "--framework", "torch"]) == 2
    assert "framework 'torch' needs PyTorch" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    assert main(["check", "dpo_loss", f"{impl}:dpo"]) == 2
    assert 'pip install "minialign[check]"' in capsys.readouterr().err


def test_exercises_init_never_overwrites_without_force(tmp_path, capsys):
    d = tmp_path / "course"
    assert main(["exercises", "init", str(d)]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([f"{e.stem}.py" for e in EXERCISES] + ["README.md"])
    (d / "03_gae_advantages.py").write_text("# my work\n")
    assert main(["exercises", "init", str(d), "--solutions"]) == 2
    err = capsys.readouterr().err
    assert "already holds" in err and "--force" in err and err.count("\n") == 1
    assert (d / "03_gae_advantages.py").read_text() == "# my work\n"
    assert main(["exercises", "init", str(d), "--solutions", "--force"]) == 0
    assert "NotImplementedError" not in (d / "03_gae_advantages.py").read_text()
    readme = (d / "README.md").read_text()
    assert "minialign check --exercises ." in readme and "| `12_bug_no_gradient.py` |" in readme


def test_the_untouched_set_grades_0_and_the_solutions_100_percent(tmp_path, capsys):
    student, teacher = tmp_path / "student", tmp_path / "teacher"
    assert main(["exercises", "init", str(student)]) == 0
    assert main(["exercises", "init", str(teacher), "--solutions"]) == 0
    capsys.readouterr()
    assert main(["check", "--exercises", str(student)]) == 1
    out = capsys.readouterr().out
    assert "0 of 12 exercises pass (0%)" in out
    assert out.count("not done yet (NotImplementedError: exercise:") == 8
    assert "Traceback" not in out
    assert main(["check", "--exercises", str(teacher)]) == 0
    out = capsys.readouterr().out
    assert "12 of 12 exercises pass (100%)" in out, out


def test_a_bug_exercise_fails_on_its_bug_and_one_file_prints_its_report(tmp_path, capsys):
    main(["exercises", "init", str(tmp_path)])
    capsys.readouterr()
    assert main(["check", "--exercises", str(tmp_path / "12_bug_no_gradient.py")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("check ppo_clip_loss (minialign) on 12_bug_no_gradient.py:ppo_clip_loss")
    assert "no gradient reached logp_new" in out
    alone = tmp_path / "alone"  # a set with one (broken) file: the others are missing
    alone.mkdir()
    (alone / "02_bradley_terry_loss.py").write_text("def bradley_terry_loss(:\n")
    assert main(["check", "--exercises", str(alone)]) == 1
    out = capsys.readouterr().out
    assert "02_bradley_terry_loss.py does not parse: invalid syntax (line 1)" in out
    assert out.count("missing file") == len(EXERCISES) - 1


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.stem)
def test_every_template_renders_to_two_different_python_files(exercise):
    source = template(f"{exercise.stem}.py")
    student, solution = render(source, solutions=False), render(source, solutions=True)
    compile(student, exercise.stem, "exec")
    compile(solution, exercise.stem, "exec")
    assert student != solution and "# ---" not in student + solution
    assert ("NotImplementedError" in student) == (exercise.kind == "write")
    assert f"def {exercise.function}(" in student and "Grade this file:" in student


def test_the_command_line_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "minialign", "check", "--list"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("bradley_terry_loss(")
