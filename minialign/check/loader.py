"""Load a function from a Python file, with one-line errors for everything that can go wrong.

Used by ``minialign check FILE.py:FUNCTION`` and by the exercise grader. The file is run
as a fresh module each time (nothing cached between gradings), with its own directory on
``sys.path`` while it imports, so it may import a helper module next to it.
"""

from __future__ import annotations

import difflib
import importlib.util
import itertools
import sys
import traceback
from pathlib import Path

_count = itertools.count()


class LoadError(Exception):
    """The file or the function cannot be used; the message is one line for the user."""


def load_function(path, name: str):
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"no such file: {path}")
    module_name = f"_minialign_user_{path.stem}_{next(_count)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise LoadError(f"{path.name} does not parse: {exc.msg} (line {exc.lineno})") from None
    except Exception as exc:
        raise LoadError(f"{path.name} failed to import: {_one_line(exc, path)}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    fn = getattr(module, name, None)
    if fn is None:
        found = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")]
        close = difflib.get_close_matches(name, found, n=1)
        hint = (
            f"; did you mean {close[0]}?"
            if close
            else f" (it defines: {', '.join(found) or 'nothing'})"
        )
        raise LoadError(f"{path.name} has no function {name}{hint}")
    if not callable(fn):
        raise LoadError(f"{path.name}: {name} is of type {type(fn).__name__}, not a function")
    return fn


def split_target(target: str) -> tuple[str, str]:
    """``FILE.py:FUNCTION`` -> (FILE.py, FUNCTION)."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise LoadError(f"expected FILE.py:FUNCTION, got {target!r}")
    return path, name


def _one_line(exc: BaseException, path: Path) -> str:
    home = path.resolve()
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == home
    ]
    where = f" (line {frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"
