"""The ``minialign check`` and ``minialign exercises`` commands.

    minialign check NAME FILE.py:FUNCTION [--framework numpy|minialign|torch] [--option K=V ...]
    minialign check --list
    minialign check --exercises DIR          (or one exercise file: its full report)
    minialign exercises init DIR [--solutions] [--force]

Exit codes: 0 the check (every exercise) passes, 1 it does not, 2 the command could not
run (a file that does not import, a missing function, a wrong signature, an unknown
name, a missing torch or hypothesis): one line on stderr, never a traceback.
`add_check_parser` and `add_exercises_parser` add the commands to the main parser; each
sets ``check_command`` to the function that runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from . import registry
from .frameworks import FRAMEWORKS
from .loader import LoadError, load_function, split_target

USAGE_ERROR = 2


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check",
        help="check your implementation of an objective (or grade exercises)",
        description="Run minialign's properties of NAME against FUNCTION in FILE.py and print "
        "a report with the smallest failing input of every failing property.",
        allow_abbrev=False,
    )
    p.add_argument("name", nargs="?", help="what FUNCTION implements (see --list)")
    p.add_argument("target", nargs="?", metavar="FILE.py:FUNCTION", help="your implementation")
    p.add_argument("--framework", choices=FRAMEWORKS, default="numpy",
                   help="numpy: values; minialign or torch: values and gradients")  # fmt: skip
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a convention or tolerance, e.g. ddof=1, estimator=k3, level=token "
                   "(docs/check.md lists them)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the names and their arguments")
    p.add_argument("--exercises", metavar="PATH",
                   help="grade an exercise directory (a table) or one exercise file")  # fmt: skip
    p.set_defaults(check_command=run_check)
    return p


def add_exercises_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "exercises", help="write a graded exercise set for a course", allow_abbrev=False
    )
    actions = p.add_subparsers(dest="action", required=True)
    init = actions.add_parser(
        "init", help="write the exercises and a README into DIR", allow_abbrev=False
    )
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--solutions", action="store_true", help="write the solved set (teachers)")
    init.add_argument("--force", action="store_true", help="overwrite files already in DIR")
    p.set_defaults(check_command=run_exercises)
    return p


def run_check(args) -> int:
    if args.list:
        for name in registry.NAMES:
            print(registry.describe(name))
        return 0
    if args.exercises:
        return _grade(Path(args.exercises))
    if not args.name or not args.target:
        return _fail("give NAME and FILE.py:FUNCTION (or --list, or --exercises DIR)")
    from .runner import check

    try:
        registry.get(args.name)
        options = _options(args.option)
        path, function = split_target(args.target)
        fn = load_function(path, function)
        report = check(args.name, fn, args.framework, **options)
    except (LoadError, ValueError, TypeError, ImportError) as exc:
        return _fail(str(exc))
    report.function = args.target
    print(report)
    print(f"\n({report.seconds:.1f} s)")
    return 0 if report.passed else 1


def run_exercises(args) -> int:
    from .exercises import EXERCISES, write_exercises

    try:
        write_exercises(args.directory, solutions=args.solutions, force=args.force)
    except (FileExistsError, OSError) as exc:
        return _fail(str(exc), "minialign exercises")
    which = "solutions" if args.solutions else "exercises"
    print(f"wrote {len(EXERCISES)} {which} and README.md to {args.directory}")
    print(f"grade them with: minialign check --exercises {args.directory}")
    return 0


def _grade(path: Path) -> int:
    from .exercises import grade, grade_file, table

    if not path.exists():
        return _fail(f"no such file or directory: {path}")
    try:
        if path.is_file():
            row = grade_file(path)
            print(row.report if row.report is not None else f"{row.exercise}: {row.reason}")
            return 0 if row.passed else 1
        rows = grade(path)
    except ImportError as exc:
        return _fail(str(exc))
    print(table(rows))
    return 0 if all(r.passed for r in rows) else 1


def _options(pairs: list[str]) -> dict:
    """``["ddof=1", "estimator=k3"]`` -> ``{"ddof": 1, "estimator": "k3"}``."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text  # a bare word: a string such as k3 or token
    return options


def _fail(message: str, command: str = "minialign check") -> int:
    message = message.removeprefix("check: ").splitlines()[0] if message else "failed"
    print(f"{command}: {message}", file=sys.stderr)
    return USAGE_ERROR
