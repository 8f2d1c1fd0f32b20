"""Load local pages in Debian's headless Chromium, offline, and report what happened.

A small wrapper around the ``playwright`` package (PyPI) that drives the system browser
``/usr/bin/chromium`` (Debian's ``chromium`` package; ``apt-get install -y chromium``).
Playwright's own browser download is never used. The browser starts with a fresh
profile directory and a host-resolver rule that resolves nothing but 127.0.0.1 and
localhost, so a page that tries to reach another host fails to load it, and the
attempt is recorded.

Library use (``tools/`` is not a package: put it on ``sys.path`` first)::

    sys.path.insert(0, "tools")
    from browser import Browser

    with Browser(screenshot_dir="shots") as browser:
        visit = browser.visit("http://127.0.0.1:8000/index.html", wait_for=".MathJax")
        visit.page.evaluate("document.title")      # the live playwright Page
        visit.screenshot("front")                  # -> shots/front.png
        assert visit.ok, visit.problems()          # console errors, page errors,
                                                   # failed or off-machine requests

Command line (prints a JSON report, exits 1 if the page had problems)::

    python tools/browser.py http://127.0.0.1:8000/ [--screenshot out.png] [--wait-for SELECTOR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # every host name resolves to nothing, except the loopback ones
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine (loopback hosts, data:, blob:, about:)."""
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome-error", "devtools"):
        return True
    return parsed.hostname in LOCAL_HOSTS


@dataclass
class Visit:
    """What happened while one URL loaded: the live page and everything it logged."""

    url: str
    page: object  # playwright.sync_api.Page
    screenshot_dir: Path
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Save a PNG of the page as ``<screenshot_dir>/<name>.png`` and return its path."""
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.screenshots.append(path)
        return path

    def problems(self) -> list[str]:
        """Every console error, uncaught exception, failed request and off-machine request."""
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"request left the machine: {u}" for u in self.external_requests]
            + [f"request failed: {u}" for u in self.failed_requests]
        )

    @property
    def ok(self) -> bool:
        return not self.problems()

    def report(self) -> dict:
        return {
            "url": self.url,
            "console_errors": self.console_errors,
            "page_errors": self.page_errors,
            "external_requests": self.external_requests,
            "failed_requests": self.failed_requests,
            "screenshots": [str(p) for p in self.screenshots],
        }


def chromium_path(path: str = CHROMIUM) -> str:
    """The Chromium executable, or a clear error saying how to install it."""
    if shutil.which(path) is None:
        raise RuntimeError(
            f"{path} not found: install Debian's browser with `apt-get install -y chromium`"
        )
    return path


class Browser:
    """Headless Chromium with a fresh profile that can reach only 127.0.0.1 and localhost.

    ``viewport`` is (width, height) in CSS pixels; ``extra_args`` are appended to the
    command line. Use as a context manager; :meth:`visit` opens one page per URL.
    """

    def __init__(
        self,
        screenshot_dir: str | Path = "screenshots",
        *,
        executable: str = CHROMIUM,
        viewport: tuple[int, int] = (1280, 900),
        extra_args: tuple[str, ...] = (),
    ):
        self.screenshot_dir = Path(screenshot_dir)
        self.executable = chromium_path(executable)
        self.viewport = viewport
        self.args = list(FLAGS) + list(extra_args)
        self._profile = None
        self._playwright = None
        self.context = None

    def __enter__(self) -> Browser:
        from playwright.sync_api import sync_playwright

        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        self._playwright = sync_playwright().start()
        width, height = self.viewport
        self.context = self._playwright.chromium.launch_persistent_context(
            self._profile.name,
            executable_path=self.executable,
            headless=True,
            args=self.args,
            viewport={"width": width, "height": height},
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.context is not None:
                self.context.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()
            if self._profile is not None:
                self._profile.cleanup()

    def visit(
        self,
        url: str,
        *,
        wait_until: str = "load",
        wait_for: str | None = None,
        timeout_ms: float = 30_000,
        settle_ms: float = 500,
    ) -> Visit:
        """Open ``url`` in a new page and record its console errors and requests.

        ``wait_until`` is playwright's load state ("load", "domcontentloaded",
        "networkidle"); ``wait_for`` a CSS selector that must appear (e.g. the output
        element of a math renderer); ``settle_ms`` a last pause for late scripts.
        """
        page = self.context.new_page()
        visit = Visit(url=url, page=page, screenshot_dir=self.screenshot_dir)
        page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))

        def on_request(request):
            if not is_local(request.url):
                visit.external_requests.append(request.url)

        def on_failed(request):
            if is_local(request.url):  # off-machine ones are already listed
                visit.failed_requests.append(f"{request.url} ({request.failure})")

        def on_response(response):
            if response.status >= 400:
                visit.failed_requests.append(f"{response.url} (HTTP {response.status})")

        page.on("request", on_request)
        page.on("requestfailed", on_failed)
        page.on("response", on_response)
        page.goto(url, wait_until=wait_until, timeout=timeout_ms)
        if wait_for is not None:
            page.wait_for_selector(wait_for, timeout=timeout_ms, state="attached")
        page.wait_for_timeout(settle_ms)
        return visit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--screenshot", help="save a full-page PNG here")
    parser.add_argument("--wait-for", help="CSS selector that must appear before the report")
    parser.add_argument(
        "--wait-until", default="load", help="load | domcontentloaded | networkidle"
    )
    args = parser.parse_args(argv)
    shot = Path(args.screenshot) if args.screenshot else None
    with Browser(shot.parent if shot else "screenshots") as browser:
        visit = browser.visit(args.url, wait_until=args.wait_until, wait_for=args.wait_for)
        if shot:
            visit.screenshot(shot.stem)
        print(json.dumps(visit.report(), indent=2))
        return 0 if visit.ok else 1


if __name__ == "__main__":
    sys.exit(main())
