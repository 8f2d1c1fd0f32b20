"""The directory one command writes into: created exclusively, written atomically, with a status.

Every command that writes results (``demo``, ``frontier``, ``train``, ``pretrain``) owns
one `RunDir`:

* **Created exclusively.** ``runs/<command>-<time>`` is made with ``mkdir`` (which fails
  if the name exists), so two runs started in the same second get two directories
  (``-2``, ``-3``, ... are appended). ``--name`` must be one plain path component.
  An existing ``--out``/``--name`` directory that is not empty needs ``--force``, and
  ``--force`` empties it first, but only if everything in it is a file minialign
  writes: it never deletes a directory of yours.
* **Written atomically.** Each file goes to a temporary name, is flushed to disk and
  renamed (`minialign.checkpoint.write_text_atomic`), so a file is either the old
  version or the new one, never half of each. A file that someone else created in the
  directory while the run was going is never overwritten.
* **A status.** ``run.json`` says ``"running"`` from the start and ``"complete"``,
  ``"interrupted"`` or ``"failed"`` at the end, with the command line and the times. A
  run killed outright stays ``"running"``: nothing in the directory looks complete
  when it is not. Results are written as they are produced, so an interrupted run
  keeps every stage it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from .checkpoint import remove_orphans, write_text_atomic

#: Every name a minialign command writes into a run directory (and may delete with --force).
RUN_FILES = frozenset({
    "run.json", "config.json", "summary.json", "metrics.jsonl", "history.json",
    "result.json", "model.npz", "run_state.npz", "frontier.png", "curves.png",
})  # fmt: skip
_TEMPORARY = re.compile(r"^\..*\.tmp")  # what an interrupted atomic write leaves behind


class UsageError(ValueError):
    """A mistake in the command line (exit status 2), as opposed to a failure while running."""


def finished(history):
    """``history`` if its loop ran to the end; a KeyboardInterrupt if Ctrl-C stopped it.

    Training loops catch Ctrl-C and return what they have; a pipeline of several stages
    calls this after each one, so the whole command stops instead of going on."""
    if history.interrupted:
        raise KeyboardInterrupt
    return history


class RunDir:
    """A run directory; see the module docstring. ``RunDir.create(...)`` makes one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.written: set[str] = set()
        self.info: dict = {}
        self.records: list[dict] = []  # summary.json, as results come in
        self.metrics: list[dict] = []  # metrics.jsonl

    # -- choosing and creating the directory ----------------------------------------------

    @classmethod
    def create(cls, command: str, *, out=None, name=None, force=False, resume=False) -> RunDir:
        """``--out DIR`` or ``runs/<name>`` or a fresh ``runs/<command>-<time>``."""
        if out is not None and name is not None:
            raise UsageError("give --out or --name, not both")
        if out is not None and not str(out).strip():
            raise UsageError("--out must not be empty")
        if name is not None:
            _check_name(name)
        if out is None and name is None:
            return cls(_fresh(Path("runs"), f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"))
        path = Path(out) if out is not None else Path("runs") / name
        flag = "--out" if out is not None else "--name"
        if path.exists() and not path.is_dir():
            raise UsageError(f"{flag} {path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not resume:
            if not force:
                raise UsageError(f"{path} already exists and is not empty; pass --force to "
                                 f"replace its run, or choose another {flag}")  # fmt: skip
            _clear(path)
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        if resume:  # continue a run here: its files are ours to replace, its debris to clear
            run.written |= {e.name for e in path.iterdir() if e.name in RUN_FILES}
            for name in RUN_FILES:
                remove_orphans(path / name)
        return run

    # -- the status ------------------------------------------------------------------------

    def start(self, command: str, settings: dict) -> RunDir:
        """Write ``run.json`` (status "running") and ``config.json`` (every setting)."""
        self.info = {"command": command, "status": "running", "argv": sys.argv[1:],
                     "started": time.strftime("%Y-%m-%d %H:%M:%S"), "finished": None}  # fmt: skip
        self.write_json("run.json", self.info)
        self.write_json("config.json", settings)
        return self

    def finish(self, status: str, **extra) -> None:
        """Record the outcome in ``run.json`` (with the process's CPU time and peak memory);
        a second Ctrl-C cannot interrupt this write."""
        self.info.update(status=status, finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                         cpu_seconds=round(time.process_time(), 1),
                         peak_memory_mb=peak_memory_mb(), **extra)  # fmt: skip
        with ignore_interrupts():
            self.write_json("run.json", self.info)

    # -- writing files -----------------------------------------------------------------------

    def _target(self, name: str) -> Path:
        target = self.path / name
        if name not in self.written and target.exists():
            raise FileExistsError(f"{target} appeared while this run was going; not overwriting it")
        self.written.add(name)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return write_text_atomic(self._target(name), text)

    def write_json(self, name: str, obj) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2) + "\n")

    def write_jsonl(self, name: str, rows) -> Path:
        return self.write_text(name, "".join(json.dumps(r) + "\n" for r in rows))

    def add_results(self, records, metric_rows=()) -> None:
        """Append finished results and rewrite ``summary.json`` and ``metrics.jsonl``."""
        self.records.extend(records)
        self.metrics.extend(metric_rows)
        self.write_jsonl("metrics.jsonl", self.metrics)
        self.write_json("summary.json", self.records)

    def read_results(self) -> tuple[list[dict], list[dict]]:
        """``(summary, metrics)`` as written by `add_results`; errors name the file."""
        summary = read_json(self.path / "summary.json", list)
        path, metrics = self.path / "metrics.jsonl", []
        if path.exists():
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    metrics.append(_parse(path, line, dict, f"line {i}"))
        return summary, metrics

    def save_figure(self, name: str, fig) -> Path:
        from .plots import save_figure

        target = self._target(name)
        save_figure(fig, target)
        return target

    def save_model(self, name: str, model, **extra) -> Path:
        from . import checkpoint

        return checkpoint.save(model, self._target(name), extra=extra)


def peak_memory_mb() -> float | None:
    """The process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows, Pyodide
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def read_json(path: Path, kind=dict):
    """The JSON value in ``path``, which must be a ``kind``; a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return _parse(path, path.read_text(encoding="utf-8"), kind, "the file")


def _parse(path: Path, text: str, kind, where: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: {where} is not valid JSON ({e})") from None
    if not isinstance(value, kind):
        raise ValueError(
            f"{path}: {where} holds a {type(value).__name__}, expected a {kind.__name__}"
        )
    return value


@contextlib.contextmanager
def ignore_interrupts():
    """Ctrl-C is ignored inside the block (main thread only): for the last few writes."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_name(name: str) -> None:
    """``--name`` is one plain path component under ``runs/``: no separators, no ``..``."""
    bad = (not name.strip() or name in (".", "..") or os.sep in name or "/" in name
           or (os.altsep and os.altsep in name) or name.startswith("-"))  # fmt: skip
    if bad:
        raise UsageError(f"--name must be a plain name like 'my-run' (it goes under runs/), "
                         f"got {name!r}; use --out for another place")  # fmt: skip


def _fresh(base: Path, stem: str) -> Path:
    """``base/stem``, or ``base/stem-2``, ``-3``, ..., whichever ``mkdir`` creates first."""
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run directory {base / stem}-N")


def _clear(path: Path) -> None:
    """Delete the files a previous minialign run wrote in ``path`` (for --force)."""
    entries = list(path.iterdir())
    foreign = [e.name for e in entries
               if not (e.is_file() and (e.name in RUN_FILES or _TEMPORARY.match(e.name)))]  # fmt: skip
    if foreign:
        shown = ", ".join(sorted(foreign)[:5])
        raise UsageError(f"{path} holds files minialign did not write ({shown}); "
                         f"--force only replaces a minialign run directory")  # fmt: skip
    for entry in entries:
        entry.unlink()
