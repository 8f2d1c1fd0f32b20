"""Check the built documentation site in a real browser, offline.

    python tools/check_site.py [--site docs/_build/html] [--out docs/_build/screenshots]

1. Reads every page of the built site (no browser): no page or stylesheet loads anything
   from another host (external *links* a reader may follow are allowed), and every
   link inside the site points at a page and an anchor that exist.
2. Serves the site on 127.0.0.1 (``http.server`` in a thread of this tool) and loads the
   front page, the ``dpo_loss`` API entry, the notebook 03 page and the equation sheet
   in headless Chromium (tools/browser.py, which can resolve no other host). On each:
   MathJax typeset every formula (output elements present, no raw TeX left, no "Math
   input error"), every image loaded (``naturalWidth > 0``), no request left the
   machine, no console errors. Screenshots (the first screen and the whole page) go
   to ``--out``: look at them.

Exits 1 listing every problem.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, is_local  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# (screenshot name, path in the site, what must be on the screen first)
PAGES = [
    ("front", "index.html", None),
    (
        "dpo_loss",
        "api/objectives.html#minialign.objectives.dpo_loss",
        "#minialign\\.objectives\\.dpo_loss",
    ),
    ("notebook_03", "notebooks/03_ppo.html", None),
    ("equations", "equations.html", None),
]

LOADS = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*?\bsrc=[\"']([^\"']+)"
    r"|<link\b[^>]*?\bhref=[\"']([^\"']+)"
    r"|url\(\s*[\"']?([^\"')]+)"
    r"|@import\s+[\"']([^\"']+)",
    re.I,
)
ANCHORS = re.compile(r"<a\b[^>]*?\bhref=[\"']([^\"']+)", re.I)
IDS = re.compile(r"\bid=[\"']([^\"']+)")


def off_site(url: str) -> bool:
    return url.startswith("//") or (bool(urlparse(url).scheme) and not is_local(url))


def static_problems(site: Path) -> tuple[list[str], int]:
    """Off-site loads and broken in-site links in the built files; (problems, pages)."""
    problems, ids = [], {}
    lite = site / "lite"  # the JupyterLite app: tools/check_lite.py checks it
    pages = sorted(p for p in site.rglob("*.html") if lite not in p.parents)
    for page in pages:
        ids[page] = set(IDS.findall(page.read_text(encoding="utf-8", errors="replace")))
    for path in pages + sorted(p for p in site.rglob("*.css") if lite not in p.parents):
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(site)
        for groups in LOADS.findall(text):
            url = next(g for g in groups if g)
            if off_site(url) and not url.startswith("data:"):
                problems.append(f"{where} loads {url} from another host")
        if path.suffix != ".html":
            continue
        for href in ANCHORS.findall(text):
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("//", "mailto:")):
                continue  # a link out of the site: a reader's choice, nothing is loaded
            target = (path.parent / unquote(parsed.path)).resolve() if parsed.path else path
            if lite.resolve() in target.parents and not lite.exists():
                continue  # "run in your browser" links: the lite site is built separately
            if lite.resolve() in target.parents:  # a page of the app: it must exist
                if not target.exists():
                    problems.append(f"{where} links to missing file {href}")
                continue
            if target.is_dir():
                target = target / "index.html"
            if target.suffix != ".html":
                if not target.exists():
                    problems.append(f"{where} links to missing file {href}")
                continue
            if target not in ids:
                problems.append(f"{where} links to missing page {href}")
            elif parsed.fragment and unquote(parsed.fragment) not in ids[target]:
                problems.append(f"{where} links to missing anchor {href}")
    return problems, len(pages)


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the browser report says what failed
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


MATH_STATE = """async () => {
  if (!window.MathJax || !MathJax.startup) return {loaded: false};
  await MathJax.startup.promise;
  const raw = [...document.querySelectorAll('.math')].filter(
    e => !e.querySelector('mjx-container') && /\\\\[(\\[]/.test(e.textContent));
  return {
    loaded: true,
    rendered: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
    errorText: document.body.innerText.includes('Math input error'),
    raw: raw.map(e => e.textContent.slice(0, 60)),
  };
}"""

IMAGES = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done);
    setTimeout(done, 10000);
  })));
  return images.map(img => ({src: img.getAttribute('src').slice(0, 80), width: img.naturalWidth}));
}"""


def check_page(browser: Browser, base: str, name: str, path: str, wait: str | None) -> list[str]:
    visit = browser.visit(urljoin(base, path), wait_until="load", wait_for=wait)
    math = visit.page.evaluate(MATH_STATE)
    images = visit.page.evaluate(IMAGES)
    visit.screenshot(name, full_page=False)
    visit.screenshot(f"{name}_full", full_page=True)
    problems = [f"{path}: {p}" for p in visit.problems()]
    if not math["loaded"]:
        problems.append(f"{path}: MathJax did not load")
    else:
        if math["rendered"] == 0:
            problems.append(f"{path}: no typeset formula (mjx-container) on the page")
        if math["errors"] or math["errorText"]:
            problems.append(f"{path}: {math['errors']} MathJax errors (Math input error)")
        problems += [f"{path}: formula left as raw TeX: {t!r}" for t in math["raw"]]
    problems += [f"{path}: image did not load: {i['src']}" for i in images if i["width"] == 0]
    print(
        f"  {path}: {math.get('rendered', 0)} formulas, {len(images)} images, "
        f"{len(visit.console_errors)} console errors, {len(visit.external_requests)} "
        f"off-machine requests"
    )
    visit.page.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "docs" / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "screenshots")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"no built site in {args.site}: run sphinx-build -W -b html docs docs/_build/html")
        return 1
    start = time.perf_counter()
    problems, n_pages = static_problems(args.site)
    print(f"read {n_pages} pages: {len(problems)} problems")
    server, base = serve(args.site)
    try:
        with Browser(args.out) as browser:
            for name, path, wait in PAGES:
                problems += check_page(browser, base, name, path, wait)
    finally:
        server.shutdown()
        server.server_close()
    for problem in problems:
        print("PROBLEM:", problem)
    print(
        f"site check: {len(problems)} problems, {time.perf_counter() - start:.1f} s; "
        f"screenshots in {args.out}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
