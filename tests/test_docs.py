"""Cross-references in the documentation point at things that exist.

What is checked, each against the source of truth:

- notebook sections, written ``§N "Title"`` after ``notebooks/NN_name.ipynb`` in the
  "Notebook:" paragraph of a docstring, or as links ``[NN_name §N Title](../notebooks/NN_name.ipynb)``
  in docs/equations.md and docs/implementation_notes.md, must be a ``## N. Title`` heading
  of that notebook's py:percent twin (``# ## N. Title``), with the same number and words;
- docs/notebooks.md must list every notebook with exactly its headings, in order;
- every ``test_file.py::test_name`` (and ``::test_name``, continuing the file named
  before it on the same line) and every bare ```test_name``` in those two pages must be
  a ``def test_name(`` in tests/;
- the equation sheet has the 13 equations of the source notes, in order, each with its
  LaTeX, a function that imports, tests and a notebook section; every ``{py:obj}`` on it
  names an importable object;
- the implementation notes have every id the code cites (``note ppo-3`` in a docstring,
  ``implementation_notes.md#ppo-3`` in a page), and every note names a test or says that
  none pins it; ``eq. N`` in a docstring is one of the 13 equations;
- no file cites documents users do not have (the planning notes outside the repository).

A renamed or renumbered heading, a renamed test or function, a note id cited but not
written, or a notebook added without an entry in docs/notebooks.md fails here with the
place that needs updating.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

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


def page_refs(text: str, page: str = "docs/equations.md"):
    """(refs, problems) from the notebook links of a docs page."""
    refs, problems = [], []
    for label, target in MD_LINK.findall(text):
        m = MD_SECTION.match(label)
        notebook = target.removesuffix(".ipynb")
        if m is None or m.group(1) != notebook or not target.endswith(".ipynb"):
            problems.append(f"{page}: link [{label}]({target}) is not "
                            f"[{notebook} §N Title](../notebooks/{notebook}.ipynb)")  # fmt: skip
            continue
        refs.append((page, notebook, int(m.group(2)), m.group(3)))
    return refs, problems


def named_tests(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """([(file, test)], [bare test names]) named in a Markdown page. A ``::test`` continues
    the file named before it on the same logical line: a table row, or a list item or
    paragraph line together with the wrapped lines that follow it."""
    pairs = []
    for line in re.split(r"\n(?=\s*(?:$|[-|#(]|\d+\. ))", text):
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


# (page, at least this many notebook links, at least this many test references)
PAGES = [("equations.md", 30, 50), ("implementation_notes.md", 6, 50)]


@pytest.mark.parametrize("page, min_links, _", PAGES)
def test_every_notebook_link_in_the_pages_is_a_real_section(page, min_links, _):
    text = (DOCS / page).read_text(encoding="utf-8")
    refs, problems = page_refs(text, f"docs/{page}")
    assert len(refs) >= min_links, f"only {len(refs)} notebook links in {page}: parser broken?"
    assert "planned" not in text.lower(), f"docs/{page} still calls something planned"
    problems += section_problems(refs)
    assert not problems, "\n".join(problems)


def named_test_problems(text: str) -> tuple[list[str], int]:
    """Problems with the tests a page names, and how many file::test references it has."""
    pairs, bare = named_tests(text)
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
    return problems, len(pairs)


@pytest.mark.parametrize("page, _, min_tests", PAGES)
def test_every_test_named_in_the_pages_exists(page, _, min_tests):
    problems, n = named_test_problems((DOCS / page).read_text(encoding="utf-8"))
    assert n >= min_tests, f"only {n} test references in {page}: is the parser broken?"
    assert not problems, "\n".join(problems)


# ---- the equation sheet ----------------------------------------------------------------

EQUATION_SECTION = re.compile(
    r"^\((eq-\d+)\)=\n### (\d+)\. (.+?)\n(.*?)(?=^\(eq-\d+\)=|^## |\Z)", re.M | re.S
)
PY_OBJ = re.compile(r"\{py:obj\}`~?([\w.]+)`")
SOURCE_SYMBOLS = [  # a fragment of each of the 13 equations as the source prints it
    r"\sum_{t=0}^T \gamma^t\,r_\phi(x_t,y_t)", r"\hat{A}_t \;=\;", r"r_{\theta}(x,y) \;=\;",
    r"L^{\text{CLIP}}(\theta) \;=\;", r"- \beta.\,\textrm{KL}", r"r_i = \lambda\,r_{\rm outcome}",
    r"\sigma = \sqrt{\frac{1}{N}", r"A_i = \frac{r_i - \mu}{\sigma}", r"\rho_i = \frac{\pi_\theta(o_i",
    r"L^{\rm GRPO}(\theta) =", r"\Delta_\theta(x,y^+,y^-) =", r"L_{\mathrm{DPO}}(\theta) =",
    r"\sigma(z)=1/(1+e^{-z})",
]  # fmt: skip


def resolve(name: str):
    """The object a dotted name in the docs points at (ImportError/AttributeError if none)."""
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def equation_problems(text: str) -> tuple[list[str], int]:
    problems, sections = [], EQUATION_SECTION.findall(text)
    for i, (label, number, title, body) in enumerate(sections, start=1):
        where = f"docs/equations.md, equation {number} ({title})"
        if label != f"eq-{i}" or int(number) != i:
            problems.append(f"{where}: expected label (eq-{i})= and number {i}")
        display = re.findall(r"^\$\$(.+?)\$\$$", body, re.M)
        if not display or SOURCE_SYMBOLS[i - 1] not in display[0]:
            problems.append(f"{where}: no $$...$$ line with the source's formula")
        fields = {
            k: v
            for k, v in re.findall(r"^- \*\*(\w+):?\*\*:?(.*?)(?=^- \*\*|\Z)", body, re.M | re.S)
        }
        functions = PY_OBJ.findall(fields.get("Function", "") + fields.get("Functions", ""))
        if not functions:
            problems.append(f"{where}: no {{py:obj}} function")
        tests = named_tests(fields.get("Tests", ""))[0]
        if not tests:
            problems.append(f"{where}: no test named")
        if not MD_LINK.findall(fields.get("Notebook", "")):
            problems.append(f"{where}: no notebook section linked")
    return problems, len(sections)


def test_equation_sheet_has_13_equations_each_with_function_tests_and_notebook():
    text = (DOCS / "equations.md").read_text(encoding="utf-8")
    problems, n = equation_problems(text)
    assert n == 13, f"docs/equations.md has {n} equations, expected the source's 13"
    for name in PY_OBJ.findall(text):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            problems.append(f"docs/equations.md names {{py:obj}}`{name}`, which does not import")
    assert not problems, "\n".join(problems)


# ---- the implementation notes ----------------------------------------------------------

NOTE_IDS = (
    ["sign-1", "kl-1", "kl-2", "kl-3"]
    + [f"ppo-{i}" for i in range(1, 10)]
    + [f"grpo-{i}" for i in range(1, 7)]
    + [f"dpo-{i}" for i in range(1, 7)]
)  # fmt: skip  (cited by the code: the order and the numbers are stable)
NOTE_SECTION = re.compile(
    r"^\(([a-z]+-\d+)\)=\n### (\S+) · (.+?)\n(.*?)(?=^\([a-z]+-\d+\)=$|^## |\Z)", re.M | re.S
)
NOTE_REF = r"(?:sign|kl|ppo|grpo|dpo|mask)-\d+"
DOCSTRING_NOTE = re.compile(rf"\bnotes?\s+({NOTE_REF}(?:(?:,\s*|\s+and\s+|\s+to\s+){NOTE_REF})*)")
NO_TEST = "no test in `tests/`"


def notes(text: str) -> dict[str, str]:
    """{id: body} of docs/implementation_notes.md, checking label and heading agree."""
    found = {}
    for label, heading_id, _title, body in NOTE_SECTION.findall(text):
        assert label == heading_id, f"note ({label})= is headed {heading_id}"
        assert label not in found, f"note {label} appears twice"
        found[label] = body
    return found


def test_implementation_notes_have_the_cited_ids_in_order_each_pinned():
    text = (DOCS / "implementation_notes.md").read_text(encoding="utf-8")
    found = notes(text)
    ids = list(found)
    assert [i for i in ids if i in NOTE_IDS] == NOTE_IDS, f"note ids or order changed: {ids}"
    problems = []
    for note, body in found.items():
        pinned = named_tests(body)[0] or re.findall(r"`(test_\w+)`", body)
        if not pinned and NO_TEST not in body:
            problems.append(f"note {note} names no test and does not say '{NO_TEST}'")
    assert not problems, "\n".join(problems)


def cited_notes_and_equations() -> list[tuple[str, str]]:
    """(where, 'note id' | 'eq-N') for every citation in the package and the docs pages."""
    cited = []
    for path in sorted((ROOT / "minialign").rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        for group in DOCSTRING_NOTE.findall(src):
            cited += [(where, note) for note in re.findall(NOTE_REF, group)]
        cited += [(where, f"eq-{n}") for n in re.findall(r"\beq\.\s+(\d+)\b", src)]
    for path in sorted(DOCS.glob("*.md")):
        src = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        cited += [
            (where, note) for note in re.findall(rf"implementation_notes\.md#({NOTE_REF})", src)
        ]
        cited += [(where, eq) for eq in re.findall(r"equations\.md#(eq-\d+)", src)]
        cited += [(where, note) for note in re.findall(rf"\]\(#({NOTE_REF})\)", src)]
    return cited


def test_every_cited_note_and_equation_exists():
    found = notes((DOCS / "implementation_notes.md").read_text(encoding="utf-8"))
    cited = cited_notes_and_equations()
    assert len(cited) >= 40, f"only {len(cited)} citations found: is the parser broken?"
    equations = {f"eq-{i}" for i in range(1, 14)}
    missing = [
        f"{where} cites {ref}" for where, ref in cited if ref not in found and ref not in equations
    ]
    assert not missing, "\n".join(missing)


# Directories still being rewritten when this check was written; remove them from the
# list as they are cleaned (the words below must then never come back).
# Documents that live outside the repository: users do not have them. (Spelled in pieces
# so that this file is not itself a hit of the tools that grep for them.)
FOREIGN = ("RLHF" + "_NOTES", "../" + "shared/")


def test_nothing_cites_documents_users_do_not_have():
    problems = []
    for path in sorted([*(ROOT / "minialign").rglob("*.py"), *(ROOT / "notebooks").glob("*"),
                        *DOCS.glob("*.md"), *(ROOT / "tests").glob("*.py"), ROOT / "README.md"]):  # fmt: skip
        where = str(path.relative_to(ROOT))
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        problems += [f"{where} cites {word}" for word in FOREIGN if word in text]
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
    refs, problems = page_refs("| [03_ppo §6 The clipped objective](../notebooks/03_ppo.ipynb) |")
    assert refs == [("docs/equations.md", "03_ppo", 6, "The clipped objective")] and not problems
    _, problems = page_refs("[03_ppo](../notebooks/03_ppo.ipynb)")
    assert len(problems) == 1
    # the equation sheet's and the notes' parsers see what is missing
    one = (
        "(eq-1)=\n### 1. The RL objective\n\n$$J(\\theta) \\;=\\; \\sum_{t=0}^T \\gamma^t\\,r_\\phi(x_t,y_t)$$\n\n"
        "- **Function:** {py:obj}`~minialign.objectives.discounted_returns`\n"
        "- **Tests:** `test_a.py::test_b`\n- **Notebook:** [03_ppo §1 T](../notebooks/03_ppo.ipynb)\n"
    )
    assert equation_problems(one) == ([], 1)
    assert len(equation_problems(one.replace("(eq-1)=\n### 1.", "(eq-2)=\n### 2."))[0]) == 1
    assert (
        len(equation_problems(one.replace("**Tests:** `test_a.py::test_b`", "**Tests:**"))[0]) == 1
    )
    assert len(equation_problems(one.replace("{py:obj}", ""))[0]) == 1
    assert list(notes("(kl-1)=\n### kl-1 · Three\n\ntext\n\n(kl-2)=\n### kl-2 · Two\n")) == [
        "kl-1",
        "kl-2",
    ]
    with pytest.raises(AssertionError):
        notes("(kl-1)=\n### kl-2 · Mislabelled\n")
    pairs, bare = named_tests("| `test_a.py::test_b`, `::test_c` | `test_d` |")
    assert pairs == [("test_a.py", "test_b"), ("test_a.py", "test_c")] and bare == ["test_d"]


def test_ci_builds_the_site_with_the_readme_docs_command_and_checks_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    docs = [c.strip() for c in commands if "sphinx-build" in c]
    assert docs == [
        'python -m pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html'
    ]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert docs[0] in ci, "CI does not run the README's docs command"
    assert ci.index("python tools/check_site.py") > ci.index(docs[0]), (
        "no browser check after the build"
    )
