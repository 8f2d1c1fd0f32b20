"""Keep each notebook and its ``py:percent`` twin in step, and run them.

The ``.py`` twin is the source you edit and review; the ``.ipynb`` is what GitHub
renders, so it is committed *with* its outputs. Pairing uses jupytext's
``formats: ipynb,py:percent``.

    python tools/notebooks.py run [notebooks/00_autograd.ipynb ...]
        rebuild cells from the .py twin if it changed, execute top to bottom with
        this interpreter, write the outputs back (atomically), print wall times;
        no arguments = every notebooks/*.ipynb in order
    python tools/notebooks.py sync
        .py -> .ipynb cell sources, keeping the outputs of cells whose source is
        unchanged; executes nothing
    python tools/notebooks.py check
        exit 1 naming each notebook whose twin differs or that has a code cell
        that was never executed

Volatile metadata (cell timings, kernel display names, the Python version) is
stripped and cell ids are derived from the cell source, so re-running a notebook
only changes the lines whose outputs changed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
FORMATS = "ipynb,py:percent"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # PNGs that GitHub renders
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # an ipywidgets output (sliders)


# ----------------------------------------------------------------------------
# Reading and comparing a pair
# ----------------------------------------------------------------------------


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def twin(ipynb: Path) -> Path:
    """``notebooks/00_autograd.ipynb`` -> ``notebooks/00_autograd.py``."""
    return Path(ipynb).with_suffix(".py")


def read_ipynb(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def read_py(path: Path) -> NotebookNode:
    return jupytext.read(str(path), fmt="py:percent")


def cell_sources(nb: NotebookNode) -> list[tuple[str, str]]:
    """What the pair must agree on: each cell's type and source text, in order."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def sync_problem(ipynb: Path) -> str | None:
    """Why the pair is out of sync, or None if the sources agree cell by cell."""
    py = twin(ipynb)
    if not py.exists():
        return f"{ipynb.name} has no py:percent twin {py.name}"
    if not Path(ipynb).exists():
        return f"{py.name} has no notebook {Path(ipynb).name}"
    a, b = cell_sources(read_py(py)), cell_sources(read_ipynb(ipynb))
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"cell {i} differs between {py.name} and {Path(ipynb).name}"
    if len(a) != len(b):
        return f"{py.name} has {len(a)} cells, {Path(ipynb).name} has {len(b)}"
    return None


def unexecuted_cells(nb: NotebookNode) -> list[int]:
    """Indices of code cells without a recorded run (no execution count)."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None
    ]


def counts_in_order(nb: NotebookNode) -> bool:
    """Execution counts 1, 2, 3, ... down the page: the notebook was run top to bottom."""
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    return counts == list(range(1, len(counts) + 1))


def check(paths: list[Path], strays: bool = True) -> list[str]:
    """Every problem found, one line each, naming the notebook (``strays``: also twins
    in notebooks/ that have no .ipynb)."""
    problems = []
    for ipynb in paths:
        reason = sync_problem(ipynb)
        if reason:
            problems.append(f"{ipynb}: out of sync: {reason}")
            continue
        nb = read_ipynb(ipynb)
        missing = unexecuted_cells(nb)
        if missing:
            problems.append(f"{ipynb}: code cells {missing} have no outputs (never executed)")
        elif not counts_in_order(nb):
            problems.append(f"{ipynb}: execution counts are not 1, 2, 3, ... (not run in order)")
    for py in _twins() if strays else []:
        if py.with_suffix(".ipynb") not in paths and not py.with_suffix(".ipynb").exists():
            problems.append(f"{py}: py twin without a notebook (run `sync`)")
    return problems


# ----------------------------------------------------------------------------
# Writing a pair
# ----------------------------------------------------------------------------


def _cell_id(source: str, taken: set[str]) -> str:
    """A stable id from the cell's text (nbformat's default is random: noisy diffs)."""
    base = hashlib.sha1(source.encode()).hexdigest()[:8]
    cid, k = base, 1
    while cid in taken:
        cid, k = f"{base}-{k}", k + 1
    taken.add(cid)
    return cid


def clean(nb: NotebookNode) -> NotebookNode:
    """Drop what changes from run to run or machine to machine but says nothing."""
    taken: set[str] = set()
    for cell in nb.cells:
        cell.id = _cell_id(cell.source, taken)
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":  # a widget's view is nothing without its live kernel:
            outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
            cell.outputs = _merge_streams(outputs)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("jupytext", {})["formats"] = FORMATS
    nb.metadata["jupytext"].pop("text_representation", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.metadata.pop("widgets", None)  # widget state: the views above are gone, so is this
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def _merge_streams(outputs: list) -> list:
    """Consecutive stdout (or stderr) chunks as one output: how a kernel happens to split
    printed text between messages varies from run to run, the text does not."""
    merged: list = []
    for out in outputs:
        previous = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.name == out.name):  # fmt: skip
            previous.text = "".join(previous.text) + "".join(out.text)
        else:
            merged.append(out)
    return merged


def rebuild_from_twin(ipynb: Path) -> NotebookNode:
    """The twin's cells; a cell whose type and source are unchanged keeps its outputs."""
    new = read_py(twin(ipynb))
    old = read_ipynb(ipynb) if Path(ipynb).exists() else nbformat.v4.new_notebook()
    unused = list(old.cells)
    for cell in new.cells:
        match = next(
            (c for c in unused if (c.cell_type, c.source) == (cell.cell_type, cell.source)), None
        )
        if match is not None:
            unused.remove(match)
            if cell.cell_type == "code":
                cell.outputs = match.get("outputs", [])
                cell.execution_count = match.get("execution_count")
    if "language_info" in old.metadata:
        new.metadata["language_info"] = old.metadata["language_info"]
    return clean(new)


def write_atomic(nb: NotebookNode, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: never a half-written notebook."""
    path = Path(path)
    nbformat.validate(nb)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".ipynb.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def needs_rebuild(ipynb: Path) -> bool:
    if not Path(ipynb).exists():
        return True
    return sync_problem(ipynb) is not None


def sync(paths: list[Path]) -> None:
    for ipynb in paths:
        if needs_rebuild(ipynb):
            _refuse_if_notebook_edited(ipynb)
            write_atomic(rebuild_from_twin(ipynb), ipynb)
            print(f"synced {ipynb} from {twin(ipynb).name}")


def _refuse_if_notebook_edited(ipynb: Path) -> None:
    """The .py twin wins, unless the .ipynb is newer: then someone edited it in Jupyter."""
    py = twin(ipynb)
    if not py.exists():
        sys.exit(f"{ipynb} has no twin; make one: jupytext --set-formats {FORMATS} {ipynb}")
    if Path(ipynb).exists() and py.exists() and Path(ipynb).stat().st_mtime > py.stat().st_mtime:
        sys.exit(
            f"{ipynb} is newer than {py.name} and their cells differ. To keep the notebook's "
            f"edits: jupytext --to py:percent {ipynb}; to discard them: touch {py}"
        )


# ----------------------------------------------------------------------------
# Executing
# ----------------------------------------------------------------------------


def _kernel_manager():
    """A python3 kernel that is *this* interpreter, whatever kernelspecs are installed."""
    if importlib.util.find_spec("ipykernel") is None:
        sys.exit(f"ipykernel is not installed for {sys.executable}: pip install -e '.[dev]'")
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = get_kernel_dict()  # argv starts with sys.executable; advertises what it supports
    spec = {k: v for k, v in spec.items() if k in ("argv", "metadata")}

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name, *args, **kwargs):
            return KernelSpec(resource_dir="", **KERNELSPEC, **spec)

    options = {}
    if "transport_encryption" in KernelManager.class_trait_names():  # newer jupyter_client only
        import zmq

        if zmq.has("curve"):  # encrypt kernel traffic (and silence ipykernel's warning)
            options["transport_encryption"] = "auto"
    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter(), **options)


def execute(nb: NotebookNode, cwd: Path, timeout: int) -> NotebookNode:
    """Run every cell in order in a fresh kernel started in ``cwd``; raise on the first error."""
    from nbclient import NotebookClient

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = dict(os.environ, MPLBACKEND=INLINE_BACKEND, PYTHONHASHSEED="0")
    km = _kernel_manager()
    client = NotebookClient(nb, km=km, timeout=timeout, record_timing=False, allow_errors=False)
    try:
        client.execute(cwd=str(cwd), env=env)
    finally:  # shut the kernel down before this process exits (else it warns, orphaned)
        if km.has_kernel:
            km.shutdown_kernel(now=False)
    return nb


def run(paths: list[Path], timeout: int) -> None:
    for ipynb in paths:
        ipynb = Path(ipynb)
        if needs_rebuild(ipynb):
            _refuse_if_notebook_edited(ipynb)
            nb = rebuild_from_twin(ipynb)
        else:
            nb = read_ipynb(ipynb)
        start = time.perf_counter()
        execute(nb, cwd=ipynb.resolve().parent, timeout=timeout)
        seconds = time.perf_counter() - start
        write_atomic(clean(nb), ipynb)
        print(f"{ipynb}: executed in {seconds:.1f} s")


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def _resolve(paths: list[str]) -> list[Path]:
    if not paths:  # every notebook, and every twin that has no notebook yet
        return sorted({*all_notebooks(), *(p.with_suffix(".ipynb") for p in _twins())})
    out = []
    for p in paths:
        p = Path(p)
        p = p.with_suffix(".ipynb") if p.suffix == ".py" else p
        if not p.exists() and not twin(p).exists():
            sys.exit(f"no such notebook or twin: {p}")
        out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="sync from the .py twin, execute, save outputs")
    p_run.add_argument("notebooks", nargs="*", help="default: every notebooks/*.ipynb")
    p_run.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    p_sync = sub.add_parser("sync", help="copy .py cell sources into the .ipynb, no execution")
    p_sync.add_argument("notebooks", nargs="*")
    p_check = sub.add_parser("check", help="fail if a pair differs or a cell has no outputs")
    p_check.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)

    paths = _resolve(args.notebooks)
    if args.command == "run":
        run(paths, args.timeout)
    elif args.command == "sync":
        sync(paths)
    else:
        problems = check(paths, strays=not args.notebooks)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return 1
        print(f"{len(paths)} notebook(s) in sync, with outputs")
    return 0


def _twins() -> list[Path]:
    """py:percent files in notebooks/ that declare themselves paired with an .ipynb."""
    return [
        p for p in sorted(NOTEBOOK_DIR.glob("*.py")) if "formats: ipynb,py:percent" in p.read_text()
    ]


if __name__ == "__main__":
    raise SystemExit(main())
