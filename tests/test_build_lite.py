"""tools/build_lite.py takes a wheel's bytes only if they match the official lock file.

No network: each test makes a small npm-style Pyodide tarball and a wheel source zip.
"""

import hashlib
import importlib.util
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_lite", ROOT / "tools" / "build_lite.py")
build_lite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_lite)

PACKAGES = sorted(
    set(build_lite.KERNEL_PACKAGES + build_lite.MINIALIGN_DEPENDS) - set(build_lite.PYPI_WHEELS)
)
tmp_dirs = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _entry(name: str, data: bytes, depends=()) -> dict:
    return {"name": name, "file_name": f"{name}-1.0-py3-none-any.whl", "depends": list(depends),
            "sha256": hashlib.sha256(data).hexdigest(), "imports": [name]}  # fmt: skip


def _make_sources(tmp: Path, wheels: dict[str, bytes], served: dict[str, bytes]):
    """An npm tarball whose lock lists ``wheels`` (plus one package nobody needs) and a
    wheel source zip that holds ``served`` under the lock's file names."""
    entries = {name: _entry(name, data) for name, data in wheels.items()}
    entries["unused-package"] = _entry("unused-package", b"never copied")
    entries["tqdm"] = _entry("tqdm", b"Pyodide's own tqdm, replaced from PyPI")
    lock = {"info": {"version": build_lite.PYODIDE_VERSION}, "packages": entries}
    npm = tmp / "pyodide.tgz"
    with tarfile.open(npm, "w:gz") as tar:
        for name, data in [("pyodide-lock.json", json.dumps(lock).encode())] + [
            (core, core.encode()) for core in build_lite.PYODIDE_CORE
        ]:
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    source = tmp / "source.whl"
    with zipfile.ZipFile(source, "w") as zf:
        for name, data in served.items():
            zf.writestr(build_lite.WHEEL_SOURCE[2] + entries[name]["file_name"], data)
    return npm, source


def test_what_the_site_loads_with_minialign_is_served_and_pinned():
    served = set(build_lite.PYPI_WHEELS)
    assert set(build_lite.SITE_EXTRAS) <= served  # ipywidgets: the sliders' Python side
    pins = [(n, v, d) for n, (v, d, _) in build_lite.PYPI_WHEELS.items()] + [
        (n, v, d) for n, (v, d) in build_lite.LAB_EXTENSIONS.items()
    ]
    for name, version, digest in pins:  # an exact version and a full sha256 each
        assert re.fullmatch(r"\d+(\.\d+)+", version) and re.fullmatch("[0-9a-f]{64}", digest), name
    for name, (_, _, depends) in build_lite.PYPI_WHEELS.items():  # Pyodide has the rest
        assert set(depends) - served <= set(build_lite.KERNEL_PACKAGES) | {"traitlets"}, name


def test_closure_follows_depends_across_spellings():
    lock = {"packages": {"a": {"depends": ["B_c"]}, "b-c": {"depends": ["d"]}, "d": {"depends": []},
                         "e": {"depends": []}}}  # fmt: skip
    assert build_lite.closure(lock, ["a"]) == ["a", "b-c", "d"]


@tmp_dirs
@given(st.dictionaries(st.sampled_from(PACKAGES), st.binary(min_size=1, max_size=64), min_size=1))
def test_matching_wheels_are_copied_and_the_lock_is_pruned(tmp_path_factory, wheels):
    tmp = tmp_path_factory.mktemp("ok")
    wheels = {name: wheels.get(name, name.encode()) for name in PACKAGES}
    npm, source = _make_sources(tmp, wheels, wheels)
    lock = build_lite.copy_pyodide(npm, source, tmp / "out")
    assert set(lock["packages"]) == set(wheels)  # no unused package, no Pyodide tqdm
    for name, data in wheels.items():
        assert (tmp / "out" / lock["packages"][name]["file_name"]).read_bytes() == data
    assert all((tmp / "out" / core).exists() for core in build_lite.PYODIDE_CORE)


@tmp_dirs
@given(st.sampled_from(PACKAGES), st.binary(min_size=1, max_size=64), st.data())
def test_one_changed_byte_in_any_wheel_fails_the_build(tmp_path_factory, victim, data, draw):
    tmp = tmp_path_factory.mktemp("bad")
    wheels = {name: name.encode() for name in PACKAGES}
    wheels[victim] = data
    i = draw.draw(st.integers(0, len(data) - 1), label="byte")
    tampered = bytearray(data)
    tampered[i] ^= draw.draw(st.integers(1, 255), label="xor")
    npm, source = _make_sources(tmp, wheels, {**wheels, victim: bytes(tampered)})
    with pytest.raises(build_lite.BuildError, match="differs from pyodide-lock.json"):
        build_lite.copy_pyodide(npm, source, tmp / "out")


def test_a_wheel_missing_from_the_source_fails_the_build(tmp_path):
    wheels = {name: name.encode() for name in PACKAGES}
    served = {name: data for name, data in wheels.items() if name != "numpy"}
    npm, source = _make_sources(tmp_path, wheels, served)
    with pytest.raises(build_lite.BuildError, match="has no numpy"):
        build_lite.copy_pyodide(npm, source, tmp_path / "out")


def test_a_cached_download_with_another_hash_is_refused(tmp_path):
    (tmp_path / "tqdm-4.66.2-py3-none-any.whl").write_bytes(b"not the pinned wheel")
    version, digest, _ = build_lite.PYPI_WHEELS["tqdm"]
    with pytest.raises(build_lite.BuildError, match="is not the pinned"):
        build_lite.fetch_pypi("tqdm", version, digest, tmp_path)


def test_the_npm_tarball_is_checked_against_its_integrity(tmp_path):
    (tmp_path / f"pyodide-{build_lite.PYODIDE_VERSION}.tgz").write_bytes(b"something else")
    with pytest.raises(build_lite.BuildError, match="is not the pinned"):
        build_lite.fetch_npm_pyodide(tmp_path)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_the_site_copy_of_a_notebook_is_the_same_notebook_with_joined_lines(path, tmp_path):
    copy = build_lite.joined_notebook(path, tmp_path)
    assert nbformat.read(copy, as_version=4) == nbformat.read(path, as_version=4)
    cells = json.loads(copy.read_text())["cells"]
    values = [c["source"] for c in cells] + [
        v
        for c in cells
        for o in c.get("outputs", [])
        for v in [o.get("text"), *o.get("data", {}).values()]
    ]
    assert not any(isinstance(v, list) for v in values)
