"""Notebooks: each has a py:percent twin with the same cells, and is committed with outputs.

Executing the notebooks is nbmake's job (``pytest --nbmake``, set up in pyproject.toml);
these tests check what GitHub shows a reader without running anything, reusing the
helpers of ``tools/notebooks.py``.
"""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

# nbmake starts its kernels from this process's environment: draw with Agg, no display.
os.environ.setdefault("MPLBACKEND", "Agg")


def _load_tool():
    spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
NOTEBOOKS = tool.all_notebooks()
ids = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks_and_every_twin_has_one():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"
    orphans = [p.name for p in tool._twins() if not p.with_suffix(".ipynb").exists()]
    assert not orphans, f"py twins without a notebook (run tools/notebooks.py sync): {orphans}"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids)
def test_notebook_has_an_identical_py_twin(ipynb):
    assert tool.twin(ipynb).exists(), f"{ipynb.name} has no twin {tool.twin(ipynb).name}"
    assert tool.sync_problem(ipynb) is None, (
        f"{tool.sync_problem(ipynb)}; run: python tools/notebooks.py run {ipynb.relative_to(ROOT)}"
    )
    metadata = tool.read_ipynb(ipynb).metadata
    assert metadata.get("jupytext", {}).get("formats") == tool.FORMATS


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids)
def test_notebook_is_committed_executed_in_order(ipynb):
    nb = tool.read_ipynb(ipynb)
    nbformat.validate(nb)
    assert tool.unexecuted_cells(nb) == [], f"{ipynb.name}: cells never executed"
    assert tool.counts_in_order(nb), f"{ipynb.name}: not executed top to bottom in one run"
    errors = [
        i
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors, f"{ipynb.name}: cells {errors} were saved with an error"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids)
def test_notebook_has_no_volatile_metadata(ipynb):
    nb = tool.read_ipynb(ipynb)
    assert nb.metadata["kernelspec"] == tool.KERNELSPEC
    assert "version" not in nb.metadata.get("language_info", {})
    timed = [i for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert not timed, f"{ipynb.name}: cells {timed} carry execution timings"


# -- the tool's own logic, on a throwaway pair ---------------------------------

PAIR = """# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Title

# %%
x = 1

# %%
print(x + 1)
"""


def _pair(tmp_path, text=PAIR):
    py = tmp_path / "nb.py"
    py.write_text(text)
    ipynb = tmp_path / "nb.ipynb"
    tool.write_atomic(tool.rebuild_from_twin(ipynb), ipynb)
    return py, ipynb


def test_sync_builds_the_notebook_from_its_twin(tmp_path):
    py, ipynb = _pair(tmp_path)
    nb = tool.read_ipynb(ipynb)
    assert tool.cell_sources(nb) == [
        ("markdown", "# Title"),
        ("code", "x = 1"),
        ("code", "print(x + 1)"),
    ]
    assert tool.sync_problem(ipynb) is None
    assert tool.unexecuted_cells(nb) == [1, 2]  # synced, not run: check must complain
    assert not list(tmp_path.glob("*.tmp")), "the atomic write left a temp file behind"


def test_an_edited_twin_is_out_of_sync_and_keeps_only_unchanged_outputs(tmp_path):
    py, ipynb = _pair(tmp_path)
    nb = tool.read_ipynb(ipynb)
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out{count}\n")]
    tool.write_atomic(nb, ipynb)
    os.utime(ipynb, (1, 1))  # the twin is the newer file, as after editing it

    py.write_text(PAIR.replace("print(x + 1)", "print(x + 2)"))
    assert "cell 2 differs" in tool.sync_problem(ipynb)
    rebuilt = tool.rebuild_from_twin(ipynb)
    codes = [c for c in rebuilt.cells if c.cell_type == "code"]
    assert codes[0].outputs[0]["text"] == "out0\n" and codes[0].execution_count == 1
    assert codes[1].outputs == [] and codes[1].execution_count is None


def test_clean_makes_ids_stable_and_drops_timings(tmp_path):
    _, ipynb = _pair(tmp_path)
    nb = tool.read_ipynb(ipynb)
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00"}
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    first = tool.clean(nb)
    assert "execution" not in first.cells[1].metadata
    assert first.metadata["kernelspec"]["display_name"] == "Python 3"
    assert "version" not in first.metadata["language_info"]
    again = tool.clean(tool.read_ipynb(ipynb))
    assert [c.id for c in first.cells] == [c.id for c in again.cells]
    assert len({c.id for c in first.cells}) == len(first.cells)


def test_clean_drops_widget_views_and_keeps_the_figure_under_them(tmp_path):
    _, ipynb = _pair(tmp_path)
    nb = tool.read_ipynb(ipynb)
    sliders = nbformat.v4.new_output("display_data", data={
        "text/plain": "VBox(children=(FloatSlider(value=0.2),))",
        tool.WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "abc"}})  # fmt: skip
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    nb.cells[1].outputs = [sliders, figure]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cleaned = tool.clean(nb)
    assert cleaned.cells[1].outputs == [figure] and "widgets" not in cleaned.metadata


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids)
def test_notebook_shows_no_widget_repr_on_github(ipynb):
    """Sliders live only in a live kernel; the committed file keeps the figure under them."""
    nb = tool.read_ipynb(ipynb)
    widgets = [
        i
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if tool.WIDGET_VIEW in out.get("data", {})
        or "children=(" in str(out.get("data", {}).get("text/plain", ""))
    ]
    assert not widgets, f"{ipynb.name}: cells {widgets} show a widget's text repr"


def test_check_names_the_broken_notebook(tmp_path):
    _, ipynb = _pair(tmp_path)
    problems = tool.check([ipynb], strays=False)
    assert len(problems) == 1 and "nb.ipynb" in problems[0] and "never executed" in problems[0]


def test_write_atomic_keeps_a_readable_file_mode(tmp_path):
    _, ipynb = _pair(tmp_path)
    assert ipynb.stat().st_mode & 0o044 == 0o044  # mkstemp's 0o600 must not leak through
