"""The README's two commands are the ones CI and users run: keep them honest."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", quickstart, re.S)]


def test_readme_has_two_quickstart_commands():
    commands = _readme_commands()
    assert len(commands) == 2, f"expected a main-job and a test command, found {commands}"
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = _readme_commands()[1]
    assert test_command in [line.strip() for line in ci], (
        f"the README test command {test_command!r} is not a line of .ci/run"
    )


def test_modules_stay_readable_in_one_sitting():
    """STYLE.md: a module past ~300 lines of code is probably two ideas."""
    budget = 400  # physical lines, docstrings and blank lines included
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "minialign").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > budget
    }
    assert not too_long, f"modules over {budget} lines: {too_long}"
