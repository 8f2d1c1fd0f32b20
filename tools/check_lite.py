"""Run notebooks of the browser site in headless Chromium and check what a reader would see.

    python tools/check_lite.py [--site DIR] [--notebooks 00 05 | --all] [--shots DIR]

Serves the site built by tools/build_lite.py on 127.0.0.1, opens each notebook in
JupyterLite's Notebook app, clears its committed outputs, runs all cells, and checks:
every code cell ran (it has a fresh execution count), no cell shows an error, every cell
that has a figure in the committed notebook has one now and it is drawn on the page, and
no request went to any host but 127.0.0.1 (Chromium also resolves every other host to
nothing, so a request elsewhere fails and is listed). Screenshots go to --shots. Prints
the first load and the Run All time of each notebook; exits 1 on any failure.

Chromium is Debian's /usr/bin/chromium driven through the `playwright` Python package
(installed by the `lite` extra); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SITE = ROOT / "docs" / "_build" / "html" / "lite"
DEFAULT_SHOTS = ROOT / "build" / "lite-check"
CHROMIUM = "/usr/bin/chromium"
CI_NOTEBOOKS = ["00", "05"]
PREFIX = "/lite"  # where the docs site serves it
# Chromium asks every origin for /favicon.ico; the site cannot answer for the origin's root.
BROWSER_NOISE = {"/favicon.ico"}

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

RUN_ALL = """async () => {
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
}"""


@dataclass
class Result:
    name: str
    load_s: float = 0.0
    run_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site under /lite/, as the docs site does; anything else is a 404."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".whl": "application/octet-stream",
    }

    def translate_path(self, path: str) -> str:
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


def check_notebook(context, base: str, path: Path, shots: Path, timeout_s: float) -> Result:
    result = Result(path.stem)
    page = context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    page.on("pageerror", lambda err: result.failures.append(f"page error: {err}"))
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and urlsplit(r.url).path not in BROWSER_NOISE
            and result.failures.append(f"HTTP {r.status}: {r.url}")
        ),
    )
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and not msg.text.startswith("Failed to load resource")  # listed by the "response" hook
            and result.failures.append(f"console error: {msg.text} ({msg.location.get('url')})")
        ),
    )
    start = time.perf_counter()
    page.goto(f"{base}{PREFIX}/notebooks/index.html?path={path.name}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
    page.evaluate(START_KERNEL)
    result.load_s = time.perf_counter() - start
    start = time.perf_counter()
    page.evaluate(RUN_ALL)
    result.run_s = time.perf_counter() - start
    page.wait_for_timeout(500)  # let the last figures decode
    judge(result, page.evaluate(NOTEBOOK_STATE), committed_images(path))
    page.screenshot(path=str(shots / f"{path.stem}-end.png"))
    figures = page.locator(".jp-OutputArea-output img")
    if figures.count():
        figures.last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{path.stem}-last-figure.png"))
    page.close()
    return result


def run(site: Path, names: list[str], shots: Path, timeout_s: float) -> list[Result]:
    notebooks = sorted((site / "files").glob("*.ipynb"))
    chosen = [nb for nb in notebooks if any(nb.name.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"check_lite: no notebooks matching {names} in {site / 'files'}")
    shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(site)
    off_machine: list[str] = []
    results = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith((base, "data:", "blob:"))
                    else off_machine.append(r.url)
                ),
            )
            for path in chosen:
                results.append(check_notebook(context, base, path, shots, timeout_s))
                print(f"{results[-1].name:40s} load {results[-1].load_s:5.1f} s  "
                      f"run all {results[-1].run_s:6.1f} s", flush=True)  # fmt: skip
            browser.close()
    finally:
        server.shutdown()
    if off_machine and results:
        results[-1].failures += [
            f"request off the machine: {url}" for url in sorted(set(off_machine))
        ]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE)
    parser.add_argument("--notebooks", nargs="+", default=CI_NOTEBOOKS, metavar="PREFIX")
    parser.add_argument("--all", action="store_true", help="every notebook")
    parser.add_argument("--shots", type=Path, default=DEFAULT_SHOTS, help="screenshot folder")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    args = parser.parse_args(argv)
    results = run(args.site, [""] if args.all else args.notebooks, args.shots, args.timeout)
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
