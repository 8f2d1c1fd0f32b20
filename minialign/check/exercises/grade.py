"""Grade exercises: run `check` on each file's function and summarise it in one row.

A row never raises: a missing file, a file that does not import, a wrong signature or an
unsolved exercise (``NotImplementedError``) is a failing row with a one-line reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..loader import LoadError, load_function
from ..report import CheckReport
from ..runner import check
from .catalog import BY_STEM, EXERCISES, Exercise


@dataclass
class Row:
    exercise: str
    passed: bool
    score: str  # properties that hold, "k/n"
    reason: str  # the first failing property and why ("" if passed)
    seconds: float
    report: CheckReport | None = None


def grade_file(path, exercise: Exercise | None = None) -> Row:
    path = Path(path)
    exercise = exercise or BY_STEM.get(path.stem)
    if exercise is None:
        known = ", ".join(e.stem for e in EXERCISES)
        return Row(path.stem, False, "-", f"not an exercise of this set ({known})", 0.0)
    start = time.perf_counter()
    try:
        fn = load_function(path, exercise.function)
        report = check(exercise.check, fn, exercise.framework, **exercise.options)
    except LoadError as exc:
        return Row(exercise.stem, False, "-", str(exc), time.perf_counter() - start)
    except (TypeError, ValueError) as exc:  # a signature check cannot take the arguments
        return Row(exercise.stem, False, "-", str(exc), time.perf_counter() - start)
    report.function = f"{path.name}:{exercise.function}"
    ok = sum(report.properties.values())
    return Row(exercise.stem, report.passed, f"{ok}/{len(report.properties)}",
               _reason(report), time.perf_counter() - start, report)  # fmt: skip


def grade(directory) -> list[Row]:
    """One row per exercise of the set, in order (a missing file is a failing row)."""
    d = Path(directory)
    rows = []
    for e in EXERCISES:
        path = d / f"{e.stem}.py"
        rows.append(
            grade_file(path, e) if path.exists() else Row(e.stem, False, "-", "missing file", 0.0)
        )
    return rows


def _reason(report: CheckReport) -> str:
    failure = report.first_failure
    if failure is None:
        return ""
    if "raised NotImplementedError" in failure.message:
        why = failure.message.split("raised ", 1)[1]
        return f"not done yet ({why})"
    return f"{failure.property}: {failure.message}"


def table(rows: list[Row], width: int = 110) -> str:
    name_w = max(len(r.exercise) for r in rows)
    lines = [f"{'exercise':<{name_w}}  {'passed':<11}  first failing property"]
    for r in rows:
        verdict = f"{'yes' if r.passed else 'no'} ({r.score})"
        reason = (
            r.reason
            if len(r.reason) <= width - name_w - 15
            else r.reason[: width - name_w - 18] + "..."
        )
        lines.append(f"{r.exercise:<{name_w}}  {verdict:<11}  {reason}".rstrip())
    done = sum(r.passed for r in rows)
    seconds = sum(r.seconds for r in rows)
    lines.append("")
    lines.append(
        f"{done} of {len(rows)} exercises pass ({100 * done / len(rows):.0f}%), graded in {seconds:.1f} s"
    )
    return "\n".join(lines)
