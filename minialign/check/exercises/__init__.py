"""Graded exercises for a course: ``minialign exercises init DIR`` and
``minialign check --exercises DIR`` (docs/teaching.md).

`EXERCISES` lists the set; `write_exercises` writes it (the student's version, or the
solutions); `grade` / `grade_file` run `minialign.check.check` on each file.
"""

from .catalog import BY_STEM, EXERCISES, Exercise
from .grade import Row, grade, grade_file, table
from .writer import render, write_exercises

__all__ = [
    "BY_STEM",
    "EXERCISES",
    "Exercise",
    "Row",
    "grade",
    "grade_file",
    "render",
    "table",
    "write_exercises",
]
