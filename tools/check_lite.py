"""Run notebooks of the browser site in headless Chromium and check what a reader would see.

    python tools/check_lite.py [--site DIR] [--notebooks 00 05 | --all] [--shots DIR]

Serves the site built by tools/build_lite.py on 127.0.0.1, opens each notebook in
JupyterLite's Notebook app, clears its committed outputs, runs all cells, and checks:
every code cell ran (it has a fresh execution count), no cell shows an error, every cell
that has a figure in the committed notebook has one now and it is drawn on the page, and
no request went to any host but 127.0.0.1, no console error, no failed request. Then, in
every cell with sliders (minialign.plots.interactive), it drags the first slider with the
mouse, as a reader would, and checks that the figure under it is drawn again with
other pixels and that no error is shown. Screenshots go to --shots (each slider before and
after it moved). Prints the first load and the Run All time of each notebook, and how long
each slider took to redraw its figure; exits 1 on any failure.

The browser is tools/browser.py: Debian's /usr/bin/chromium driven through the
`playwright` package (the `lite` extra), resolving every host but the loopback ones to
nothing; no browser is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, is_local  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SITE = ROOT / "docs" / "_build" / "html" / "lite"
DEFAULT_SHOTS = ROOT / "build" / "lite-check"
CI_NOTEBOOKS = ["00", "05"]
PREFIX = "/lite"  # where the docs site serves it

# The state of the open notebook, read from JupyterLite's model (window.jupyterapp).
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [];
  for (const cell of panel.content.model.cells) {
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    cells.push({
      count: cell.executionCount,
      errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      stderr: outputs.filter(o => o.name === 'stderr').map(o => o.text),
      images: outputs.filter(o => o.data && o.data['image/png']).length,
    });
  }
  const drawn = [...panel.node.querySelectorAll('.jp-OutputArea-output img')]
    .filter(img => img.complete && img.naturalWidth > 0).length;
  return {cells, drawn};
}"""

START_KERNEL = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.sessionContext.ready;
  await panel.sessionContext.session.kernel.info;
  await app.commands.execute('notebook:clear-all-cell-outputs');
}"""

# Scrolls the notebook to its last cell with a figure (the notebook draws only the cells
# near the viewport, so a DOM scroll would wait for an element that is not there yet).
SHOW_LAST_FIGURE = """async () => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  const cells = [...notebook.model.cells];
  const last = cells.map((c, i) => c.type === 'code' && c.outputs.toJSON()
    .some(o => o.data && o.data['image/png']) ? i : -1).filter(i => i >= 0).pop();
  if (last === undefined) return false;
  await notebook.scrollToItem(last, 'end');  // the figure is at the cell's foot
  return true;
}"""

# Code cells with sliders: their index among all cells (what scrollToItem takes).
SLIDER_CELLS = """() => [...window.jupyterapp.shell.currentWidget.content.model.cells]
  .map((c, i) => c.type === 'code' && c.outputs.toJSON()
    .some(o => o.data && o.data['application/vnd.jupyter.widget-view+json']) ? i : -1)
  .filter(i => i >= 0)"""

# The PNG a cell shows now (from the notebook's model: what a display update replaces).
CELL_FIGURE = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.model.cells.get(i);
  const out = cell.outputs.toJSON().find(o => o.data && o.data['image/png']);
  return out ? out.data['image/png'] : null;
}"""

# Scrolls cell i into view (its foot at the bottom, so the sliders and the figure show),
# waits until its first slider is drawn, and returns where to drag its handle: from its
# centre a sixth of the track to the right, or to the left if it is at its right end.
# (A drag, as a reader would do it: JupyterLab keeps the arrow keys for itself.)
SLIDER_DRAG = """async (i) => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  await notebook.scrollToItem(i, 'end');
  for (let t = 0; t < 200; t++) {
    const node = notebook.widgets[i].node;
    const handle = node.querySelector('.widget-slider .noUi-handle');
    if (handle) {
      const h = handle.getBoundingClientRect();
      const track = node.querySelector('.widget-slider .noUi-target').getBoundingClientRect();
      const right = Number(handle.getAttribute('aria-valuenow'))
        < Number(handle.getAttribute('aria-valuemax'));
      const x = h.x + h.width / 2, y = h.y + h.height / 2;
      return [x, y, x + (right ? 1 : -1) * track.width / 6];
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return null;
}"""

# The cell's visible text where an error of the redraw would be shown, and whether its
# figure is on the page.
CELL_VIEW = """(i) => {
  const node = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const imgs = [...node.querySelectorAll('.jp-OutputArea-output img')];
  return {text: node.innerText, drawn: imgs.some(img => img.complete && img.naturalWidth > 0)};
}"""

# Starts Run All and returns at once; window.runAllDone turns true when it has finished.
RUN_ALL = """() => {
  window.runAllDone = false;
  window.jupyterapp.commands.execute('notebook:run-all-cells')
    .finally(() => { window.runAllDone = true; });
}"""


@dataclass
class Result:
    name: str
    load_s: float = 0.0
    run_s: float = 0.0
    run_cpu_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    cell_s: dict[int, float] = field(default_factory=dict)  # code cell -> seconds (approx.)
    slider_s: dict[int, float] = field(default_factory=dict)  # cell -> seconds to redraw

    def slow_cells(self, at_least_s: float = 5.0) -> str:
        slow = [f"{i}: {t:.0f} s" for i, t in self.cell_s.items() if t >= at_least_s]
        return ", ".join(slow) or "none"


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site under /lite/, as the docs site does; anything else is a 404."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".whl": "application/octet-stream",
    }

    def translate_path(self, path: str) -> str:
        if path == "/favicon.ico":  # Chromium asks the origin's root; the docs site has one
            return str(Path(self.directory) / "lab" / "favicon.ico")
        if not path.startswith(PREFIX + "/"):
            return str(Path(self.directory) / ".outside-the-site")  # no such file: a 404
        return super().translate_path(path[len(PREFIX) :])

    def log_message(self, *args) -> None:  # one line per file would drown the report
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_SiteHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def browser_cpu_s() -> float:
    """CPU seconds used so far by this process's descendants (Chromium, the kernel's worker
    thread included); wall time on a busy machine says little, this says what Run All costs.
    Linux only (/proc); elsewhere 0."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    todo, ticks = list(children.get(os.getpid(), [])), 0
    while todo:
        pid = todo.pop()
        ticks += int(stats[pid][11]) + int(stats[pid][12])  # utime + stime
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK") if stats else 0.0


def committed_images(path: Path) -> list[int]:
    """How many figures each code cell of the committed notebook shows."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in cells]


def judge(result: Result, state: dict, expected_images: list[int]) -> None:
    cells = state["cells"]
    if len(cells) != len(expected_images):
        result.failures.append(f"{len(cells)} code cells, the file has {len(expected_images)}")
    for i, (cell, want) in enumerate(zip(cells, expected_images)):
        if cell["count"] is None:
            result.failures.append(f"code cell {i} did not run")
        result.failures += [f"code cell {i}: {error}" for error in cell["errors"]]
        if want and not cell["images"]:
            result.failures.append(f"code cell {i} drew no figure (the committed one has {want})")
        result.stderr += cell["stderr"]
    if state["drawn"] < sum(c["images"] for c in cells):
        result.failures.append(
            f"{state['drawn']} figures drawn of {sum(c['images'] for c in cells)}"
        )


def move_sliders(visit, result: Result, timeout_s: float = 120) -> None:
    """In each cell with sliders, move the first one a step and wait for its figure to change."""
    page = visit.page
    for k, i in enumerate(page.evaluate(SLIDER_CELLS)):
        drag = page.evaluate(SLIDER_DRAG, i)
        if drag is None:
            result.failures.append(f"cell {i}: its sliders were never drawn")
            continue
        page.wait_for_timeout(500)  # let the figure decode before the screenshot
        visit.screenshot(f"{result.name}-slider{k}-before", full_page=False)
        before, start = page.evaluate(CELL_FIGURE, i), time.perf_counter()
        x, y, to_x = drag
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(to_x, y, steps=5)
        page.mouse.up()  # the slider reports its new value when it is let go
        while page.evaluate(CELL_FIGURE, i) == before:
            if time.perf_counter() - start > timeout_s:
                result.failures.append(f"cell {i}: moved a slider, the figure did not change")
                break
            page.wait_for_timeout(100)
        result.slider_s[i] = time.perf_counter() - start
        page.wait_for_timeout(500)
        view = page.evaluate(CELL_VIEW, i)
        if "draw failed" in view["text"] or not view["drawn"]:
            result.failures.append(f"cell {i}: after the slider moved: {view['text'][-300:]}")
        visit.screenshot(f"{result.name}-slider{k}-after", full_page=False)


def check_notebook(browser: Browser, base: str, path: Path, timeout_s: float) -> Result:
    result = Result(path.stem)
    start = time.perf_counter()
    visit = browser.visit(
        f"{base}{PREFIX}/notebooks/index.html?path={path.name}", timeout_ms=timeout_s * 1000
    )
    page = visit.page
    page.set_default_timeout(timeout_s * 1000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
    page.evaluate(START_KERNEL)
    result.load_s = time.perf_counter() - start
    start = last = time.perf_counter()
    cpu_start = browser_cpu_s()
    page.evaluate(RUN_ALL)
    ran = 0
    while not page.evaluate("() => window.runAllDone"):
        now_ran = sum(c["count"] is not None for c in page.evaluate(NOTEBOOK_STATE)["cells"])
        if now_ran > ran:  # cells run in order: code cell `ran` took the time since `last`
            result.cell_s[ran] = time.perf_counter() - last
            ran, last = now_ran, time.perf_counter()
        if time.perf_counter() - start > timeout_s:
            result.failures.append(f"Run All still busy after {timeout_s:.0f} s, at cell {ran}")
            break
        page.wait_for_timeout(250)
    result.cell_s[ran] = time.perf_counter() - last
    result.run_s = time.perf_counter() - start
    result.run_cpu_s = browser_cpu_s() - cpu_start
    page.wait_for_timeout(500)  # let the last figures decode
    judge(result, page.evaluate(NOTEBOOK_STATE), committed_images(path))
    visit.screenshot(f"{path.stem}-end", full_page=False)
    if page.evaluate(SHOW_LAST_FIGURE):
        page.wait_for_timeout(1000)  # cells off screen are drawn when scrolled to
        visit.screenshot(f"{path.stem}-last-figure", full_page=False)
    if not result.failures:
        move_sliders(visit, result)
    result.failures += visit.problems()
    page.close()
    return result


def run(
    site: Path, names: list[str], shots: Path, timeout_s: float, verbose: bool = False
) -> list[Result]:
    notebooks = sorted((site / "files").glob("*.ipynb"))
    chosen = [nb for nb in notebooks if any(nb.name.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"check_lite: no notebooks matching {names} in {site / 'files'}")
    server, base = serve(site)
    off_machine: list[str] = []  # the kernel's Web Worker fetches too: watch the whole context
    results = []
    try:
        with Browser(screenshot_dir=shots) as browser:
            browser.context.on("request", lambda r: is_local(r.url) or off_machine.append(r.url))
            for path in chosen:
                results.append(check_notebook(browser, base, path, timeout_s))
                r = results[-1]
                print(f"{r.name:32s} load {r.load_s:5.1f} s  run all {r.run_s:6.1f} s "
                      f"(browser CPU {r.run_cpu_s:6.1f} s)", flush=True)  # fmt: skip
                if r.slider_s:
                    redraws = ", ".join(f"cell {i}: {t:.1f} s" for i, t in r.slider_s.items())
                    print(f"  a slider moved, its figure redrawn: {redraws}", flush=True)
                if verbose:
                    print(f"  code cells over 5 s: {r.slow_cells()}", flush=True)
    finally:
        server.shutdown()
    if off_machine and results:
        results[-1].failures += [f"request left the machine: {u}" for u in sorted(set(off_machine))]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE)
    parser.add_argument("--notebooks", nargs="+", default=CI_NOTEBOOKS, metavar="PREFIX")
    parser.add_argument("--all", action="store_true", help="every notebook")
    parser.add_argument("--shots", type=Path, default=DEFAULT_SHOTS, help="screenshot folder")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    parser.add_argument("--verbose", action="store_true", help="list the code cells over 5 s")
    args = parser.parse_args(argv)
    names = [""] if args.all else args.notebooks
    results = run(args.site, names, args.shots, args.timeout, args.verbose)
    failed = False
    for result in results:
        for line in result.stderr:
            print(f"{result.name} stderr: {line.strip()[:200]}")
        for failure in result.failures:
            print(f"FAIL {result.name}: {failure}")
        failed |= bool(result.failures)
    bad = sum(bool(r.failures) for r in results)
    # not pytest's "N passed" wording: CI reads that line as the suite's count
    print(f"check_lite: {len(results) - bad} of {len(results)} notebooks ran clean in Chromium")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
