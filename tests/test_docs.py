"""Cross-references in the documentation point at things that exist.

Three kinds of reference are checked, each against the source of truth:

- notebook sections, written ``§N "Title"`` after ``notebooks/NN_name.ipynb`` in the
  "Notebook:" paragraph of a docstring, or as links ``[NN_name §N Title](../notebooks/NN_name.ipynb)``
  in docs/objectives.md, must be a ``## N. Title`` heading of that notebook's py:percent
  twin (``# ## N. Title``), with the same number and the same words;
- docs/notebooks.md must list every notebook with exactly its headings, in order;
- every ``test_file.py::test_name`` (and ``::test_name``, continuing the file named
  before it on the same line) and every bare ```test_name``` in docs/objectives.md must be
  a ``def test_name(`` in tests/.

A renamed or renumbered heading, a renamed test, or a notebook added without an entry in
docs/notebooks.md fails here with the place that needs updating.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"

HEADING = re.compile(r"^# ## (\d+)\. (.+?)\s*$", re.M)  # a `## N. Title` Markdown heading
TITLE = re.compile(r"^# # (.+?)\s*$", re.M)  # the notebook's `# Title`
DOC_SECTION = re.compile(r'§(\d+) "([^"]+)"')  # §N "Title" in a docstring
MD_LINK = re.compile(r"\[([^\]]*)\]\(\.\./notebooks/([^)#]+)\)")
MD_SECTION = re.compile(r"^(\w+) §(\d+) (.+)$")  # link text `NN_name §N Title`


def headings(notebook: str, root: Path = NOTEBOOKS) -> dict[int, str] | None:
    """{N: Title} of the notebook's `## N. Title` headings, or None if it does not exist."""
    twin = root / f"{notebook}.py"
    if not (root / f"{notebook}.ipynb").exists() or not twin.exists():
        return None
    return {int(n): title for n, title in HEADING.findall(twin.read_text(encoding="utf-8"))}


def section_problems(refs, root: Path = NOTEBOOKS) -> list[str]:
    """Problems with (where, notebook, N, title) references; empty if all of them exist."""
    problems = []
    for where, notebook, number, title in refs:
        found = headings(notebook, root)
        if found is None:
            problems.append(f"{where}: no notebooks/{notebook}.ipynb with a .py twin")
        elif found.get(number) != title:
            actual = found.get(number, "<no such section>")
            problems.append(f'{where}: §{number} "{title}" is not a heading of {notebook}; '
                            f'§{number} is "{actual}"')  # fmt: skip
    return problems


def docstring_refs(package: Path = ROOT / "minialign"):
    """(refs, problems) from the "Notebook:" paragraph of every docstring in the package."""
    refs, problems = [], []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        for node in nodes:
            doc = ast.get_docstring(node) or ""
            for paragraph in re.findall(r"^Notebook:(.*?)(?:\n\s*\n|\Z)", doc, re.M | re.S):
                where = f"{path.relative_to(ROOT)} ({getattr(node, 'name', 'module')})"
                text = " ".join(paragraph.split())
                if text.startswith("none"):
                    continue  # an honest "no notebook steps through this"
                chunks = re.split(r"notebooks/(\w+)\.ipynb", text)  # [before, nb, text, nb, ...]
                if len(chunks) < 3 or chunks[0].strip():
                    problems.append(f"{where}: 'Notebook: {text}' names no notebooks/NN.ipynb")
                for notebook, rest in zip(chunks[1::2], chunks[2::2]):
                    sections = DOC_SECTION.findall(rest)
                    if not sections:
                        problems.append(f'{where}: {notebook} without a §N "Title"')
                    refs += [(where, notebook, int(n), title) for n, title in sections]
    return refs, problems


def objectives_md_refs(text: str):
    """(refs, problems) from the notebook links of docs/objectives.md."""
    refs, problems = [], []
    for label, target in MD_LINK.findall(text):
        m = MD_SECTION.match(label)
        notebook = target.removesuffix(".ipynb")
        if m is None or m.group(1) != notebook or not target.endswith(".ipynb"):
            problems.append(f"docs/objectives.md: link [{label}]({target}) is not "
                            f"[{notebook} §N Title](../notebooks/{notebook}.ipynb)")  # fmt: skip
            continue
        refs.append(("docs/objectives.md", notebook, int(m.group(2)), m.group(3)))
    return refs, problems


def named_tests(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """([(file, test)], [bare test names]) named in a Markdown page."""
    pairs = []
    for line in text.splitlines():
        current = None
        for file, name in re.findall(r"`(?:tests/)?(test_\w+\.py)?::(test_\w+)`", line):
            current = file or current
            pairs.append((current, name))
    bare = re.findall(r"`(test_\w+)`", text)
    return pairs, bare


def test_every_docstring_notebook_reference_is_a_real_section():
    refs, problems = docstring_refs()
    assert len(refs) >= 25, f"only {len(refs)} docstring references found: is the parser broken?"
    problems += section_problems(refs)
    assert not problems, "\n".join(problems)


def test_every_notebook_link_in_objectives_md_is_a_real_section():
    text = (DOCS / "objectives.md").read_text(encoding="utf-8")
    refs, problems = objectives_md_refs(text)
    assert len(refs) >= 30, f"only {len(refs)} notebook links found: is the parser broken?"
    assert "planned" not in text.lower(), "docs/objectives.md still calls something planned"
    problems += section_problems(refs)
    assert not problems, "\n".join(problems)


def test_every_test_named_in_objectives_md_exists():
    text = (DOCS / "objectives.md").read_text(encoding="utf-8")
    pairs, bare = named_tests(text)
    assert len(pairs) >= 40, f"only {len(pairs)} test references found: is the parser broken?"
    tests = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py")}
    problems = []
    for file, name in pairs:
        if file is None:
            problems.append(f"::{name} does not follow a test file on its line")
        elif file not in tests:
            problems.append(f"tests/{file} does not exist (named before ::{name})")
        elif not re.search(rf"^def {name}\(", tests[file], re.M):
            problems.append(f"tests/{file} has no def {name}(")
    for name in bare:
        if not any(re.search(rf"^def {name}\(", src, re.M) for src in tests.values()):
            problems.append(f"`{name}` is not a test in tests/")
    assert not problems, "\n".join(problems)


def test_notebooks_md_lists_every_notebook_with_its_headings():
    text = (DOCS / "notebooks.md").read_text(encoding="utf-8")
    blocks = re.split(r"^## ", text, flags=re.M)[1:]
    listed = {}
    for block in blocks:
        m = re.match(r"\[(.+)\]\(\.\./notebooks/(\w+)\.ipynb\)", block)
        assert m, (
            f"docs/notebooks.md: section header is not [Title](../notebooks/NN.ipynb): {block[:60]!r}"
        )
        title, notebook = m.groups()
        items = {int(n): t for n, t in re.findall(r"^(\d+)\. (.+?)\s*$", block, re.M)}
        found = headings(notebook)
        assert found is not None, f"docs/notebooks.md lists {notebook}, which does not exist"
        twin_title = TITLE.search((NOTEBOOKS / f"{notebook}.py").read_text(encoding="utf-8"))
        assert twin_title and twin_title.group(1) == title, (notebook, title)
        assert items == found, (
            f"docs/notebooks.md, {notebook}: sections listed {items} but the notebook has {found}"
        )
        listed[notebook] = items
    on_disk = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert sorted(listed) == on_disk, f"docs/notebooks.md lists {sorted(listed)}; on disk {on_disk}"


def test_the_checker_catches_a_renamed_or_renumbered_heading(tmp_path):
    (tmp_path / "03_ppo.ipynb").write_text("{}")
    (tmp_path / "03_ppo.py").write_text(
        "# %% [markdown]\n# ## 1. The objective $J(\\theta)$\n#\n# ## 2. The clipped loss\n"
    )
    ok = [("x", "03_ppo", 1, "The objective $J(\\theta)$"), ("x", "03_ppo", 2, "The clipped loss")]
    assert section_problems(ok, tmp_path) == []
    renamed = [("x", "03_ppo", 2, "The clipped objective")]
    renumbered = [("x", "03_ppo", 3, "The clipped loss")]
    missing = [("x", "04_grpo", 1, "Outcome and process rewards")]
    for refs in (renamed, renumbered, missing):
        assert len(section_problems(refs, tmp_path)) == 1, refs
    # the parsers read the forms this repository writes
    refs, problems = objectives_md_refs(
        "| [03_ppo §6 The clipped objective](../notebooks/03_ppo.ipynb) |"
    )
    assert refs == [("docs/objectives.md", "03_ppo", 6, "The clipped objective")] and not problems
    _, problems = objectives_md_refs("[03_ppo](../notebooks/03_ppo.ipynb)")
    assert len(problems) == 1
    pairs, bare = named_tests("| `test_a.py::test_b`, `::test_c` | `test_d` |")
    assert pairs == [("test_a.py", "test_b"), ("test_a.py", "test_c")] and bare == ["test_d"]
