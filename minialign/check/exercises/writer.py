"""Write the exercise set into a directory: the student's version, or the teacher's solutions.

A template holds the solution; what the student gets instead sits beside it, commented:

    # --- solution ---
    <the solution's lines>
    # --- exercise ---
    # <the student's lines: a NotImplementedError, or the planted bug>
    # --- end ---

`render` keeps one side (uncommenting the student's) and drops the marker lines, so the
templates are ordinary Python that the linter and the tests read.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .catalog import EXERCISES

MARKERS = {
    "# --- solution ---": "solution",
    "# --- exercise ---": "exercise",
    "# --- end ---": None,
}


def render(source: str, solutions: bool) -> str:
    out, block = [], None
    for line in source.splitlines():
        if line.strip() in MARKERS:
            block = MARKERS[line.strip()]
            continue
        if block == "solution" and not solutions:
            continue
        if block == "exercise":
            if solutions:
                continue
            line = _uncomment(line)
        out.append(line)
    return "\n".join(out) + "\n"


def _uncomment(line: str) -> str:
    body = line.lstrip()
    indent = line[: len(line) - len(body)]
    body = body[2:] if body.startswith("# ") else body.removeprefix("#")
    return indent + body if body else ""


def template(name: str) -> str:
    return (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")


def readme() -> str:
    rows = ["| file | exercise | kind | graded as | minutes |", "|---|---|---|---|---|"]
    for e in EXERCISES:
        kind = "find the bug" if e.kind == "bug" else "write it"
        rows.append(
            f"| `{e.stem}.py` | {e.title} | {kind} | `{e.check}` ({e.framework}) | {e.minutes} |"
        )
    return template("README.md").replace("{table}", "\n".join(rows))


def write_exercises(directory, solutions: bool = False, force: bool = False) -> list[Path]:
    """Write every exercise and README.md into ``directory``; never overwrite a file
    unless ``force``. Returns the paths written."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise FileExistsError(f"{d} exists and is not a directory")
    files = {f"{e.stem}.py": render(template(f"{e.stem}.py"), solutions) for e in EXERCISES}
    files["README.md"] = readme()
    clash = sorted(name for name in files if (d / name).exists())
    if clash and not force:
        shown = ", ".join(clash[:3]) + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
        raise FileExistsError(f"{d} already holds {shown}; pass --force to overwrite them")
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
        written.append(d / name)
    return written
