"""The parts of the documentation build that are specific to minialign.

* **Docstrings** are reStructuredText with LaTeX between dollars, as a reader of the
  source sees it: ``$x$`` inline, ``$$...$$`` on lines of their own, and Symbol/Shape
  tables in RST's "simple table" form. `docstring_to_rst` turns the dollars into
  ``:math:`` roles and ``.. math::`` blocks, re-aligning table columns so the longer
  markup never breaks a table, and turns ``Notebook: notebooks/NN.ipynb, §N "Title"``
  into links to the notebook's page and section.
* **Notebooks** live in ``notebooks/`` at the top of the repository; they are copied
  into ``docs/notebooks/`` (not committed) so myst-nb renders them from their committed
  outputs. Links written for GitHub, ``[03_ppo §6 Title](../notebooks/03_ppo.ipynb)``,
  are pointed at the page and the section on the site.
* **API pages** (``docs/api/*.md``, not committed) are written from `API_PAGES`, one per
  public module; a public name that ends up on no page fails the build.
* **MathJax** is copied from the ``django-static-mathjax`` wheel (MathJax 3.2.2) into the
  site's ``_static/mathjax``, so formulas render without a network.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent

# (page, title, module, a sentence before the module's docstring). Each public name is
# documented once, on the page of the module users import it from.
API_PAGES = [
    ("minialign", "minialign: Tensor and ops", "minialign",
     "``import minialign as ma``: the `Tensor`, its operations, seeding and grad modes."),
    ("functional", "minialign.functional", "minialign.functional", ""),
    ("gradcheck", "minialign.gradcheck", "minialign.gradcheck", ""),
    ("nn", "minialign.nn", "minialign.nn", ""),
    ("optim", "minialign.optim", "minialign.optim", ""),
    ("objectives", "minialign.objectives", "minialign.objectives", ""),
    ("tasks", "minialign.tasks", "minialign.tasks", ""),
    ("tokenizer", "minialign.tokenizer", "minialign.tokenizer", ""),
    ("train", "minialign.train", "minialign.train",
     "Every option of these loops is mapped to TRL's config fields in the [TRL map](../trl.md)."),
    ("pretrained", "minialign.pretrained", "minialign.pretrained", ""),
    ("checkpoint", "minialign.checkpoint", "minialign.checkpoint", ""),
    ("plots", "minialign.plots", "minialign.plots", ""),
    ("perf", "minialign.perf", "minialign.perf", ""),
]  # fmt: skip


# ---------------------------------------------------------------------------------------
# Docstrings: dollars, tables and notebook references
# ---------------------------------------------------------------------------------------

DISPLAY = re.compile(r"^([ \t]*)\$\$(.*?)\$\$[ \t]*([.,;:]?)[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)((?:[^$\n]|\n(?![ \t]*\n))+?)(?<!\\)\$")
BORDER = re.compile(r"^[ \t]*=+(?: +=+)+[ \t]*$")
NOTEBOOK = re.compile(r"notebooks/(\d\d_\w+)\.ipynb")
SECTION = re.compile(r'§(\d+) "([^"]+)"')
START_OK = set(" \t\n'\"([{<-/:")
END_OK = set(" \t\n'\")]}>-/:.,;!?\\")


NOTE_ID = re.compile(r"([a-z]+-\d+)\b")


def heading_slug(title: str) -> str:
    """The anchor of a Markdown heading (``myst_heading_slug_func``): a heading that starts
    with a note id such as ``ppo-3`` is anchored at ``#ppo-3``; any other heading gets
    GitHub's slug of its text (so ``## 6. The clipped objective`` is ``#6-the-clipped-objective``)."""
    from myst_parser.slugs import github_slugify

    m = NOTE_ID.match(title)
    return m.group(1) if m else github_slugify(title)


def slug(title: str) -> str:
    """The anchor MyST gives a Markdown heading written ``title``: computed from the
    heading's text without its math, with code spans as plain text."""
    return heading_slug(re.sub(r"\$[^$]*\$", "", title).replace("`", ""))


def inline_math(text: str) -> str:
    """``$x$`` -> ``:math:`x``` with the escapes RST needs next to letters."""

    def role(m: re.Match) -> str:
        before = m.string[m.start() - 1] if m.start() else " "
        after = m.string[m.end()] if m.end() < len(m.string) else " "
        body = " ".join(m.group(1).split())  # one line: roles may not hold indentation
        return (
            ("" if before in START_OK else "\\ ")
            + f":math:`{body}`"
            + ("" if after in END_OK else "\\ ")
        )

    return INLINE.sub(role, text)


def display_math(text: str) -> str:
    """``$$...$$`` on lines of their own -> a ``.. math::`` block at the same indent."""

    def block(m: re.Match) -> str:
        indent, body = m.group(1), m.group(2)
        lines = [line.strip() for line in body.strip().splitlines()]
        inner = "\n".join(f"{indent}   {line}" for line in lines if line)
        return f"\n{indent}.. math::\n\n{inner}\n\n"

    return DISPLAY.sub(block, text)


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def simple_table(lines: list[str], where: str, page_prefix: str = "../") -> list[str]:
    """Re-lay a simple table after converting the math in each cell.

    ``lines`` run from the top border to the bottom border. Text that crosses a column
    gap (except in the last column) would break the table in RST: it is reported."""
    cols = _columns(lines[0])
    indent = lines[0][: cols[0][0]]
    rows: list[list[str] | None] = []  # None = a border
    for line in lines:
        if BORDER.match(line):
            rows.append(None)
            continue
        cells = []
        for i, (start, end) in enumerate(cols):
            stop = cols[i + 1][0] if i + 1 < len(cols) else len(line)
            if i + 1 < len(cols) and line[end:stop].strip():
                logger.warning(
                    f"{where}: table text crosses a column gap: {line.strip()!r}",
                    type="minialign",
                )
            cells.append(inline_math(doc_links(line[start:stop].strip(), page_prefix)))
        rows.append(cells)
    widths = [
        max([len(r[i]) for r in rows if r is not None] + [end - start])
        for i, (start, end) in enumerate(cols)
    ]
    out = []
    for r in rows:
        if r is None:
            out.append(indent + "  ".join("=" * w for w in widths))
        else:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1])] + [r[-1]]
            out.append((indent + "  ".join(cells)).rstrip())
    return out


def notebook_links(text: str, page_prefix: str) -> str:
    """``notebooks/NN.ipynb, §N "Title" and §M "Title"`` -> links to the page and sections."""

    def rewrite(paragraph: str) -> str:
        chunks = NOTEBOOK.split(paragraph)  # [before, nb, after, nb, after, ...]
        out = [chunks[0]]
        for notebook, rest in zip(chunks[1::2], chunks[2::2]):
            url = f"{page_prefix}notebooks/{notebook}.html"
            out.append(f"`notebooks/{notebook}.ipynb <{url}>`__")

            def section(m, url=url):
                title = " ".join(m.group(2).replace("`", "").split())  # may wrap lines
                anchor = slug(f"{m.group(1)}. {title}")
                label = title.replace("$", "")
                return f'`§{m.group(1)} "{label}" <{url}#{anchor}>`__'

            out.append(SECTION.sub(section, rest))
        return "".join(out)

    return re.sub(
        r"^([ \t]*Notebook:.*?)(?=\n[ \t]*\n|\Z)",
        lambda m: rewrite(m.group(1)),
        text,
        flags=re.M | re.S,
    )


NOTE_REF = r"(?:sign|kl|ppo|grpo|dpo|mask)-\d+"
NOTES = re.compile(rf"\b(notes?\s+)({NOTE_REF}(?:(?:,\s*|\s+and\s+|\s+to\s+){NOTE_REF})*)")
EQUATION = re.compile(r"\beq\.\s+(\d+)\b")
DOC_PAGE = re.compile(r"(?<![`/\w])docs/(equations|implementation_notes|trl|notebooks)\.md\b")


def doc_links(text: str, page_prefix: str) -> str:
    """``note ppo-3`` (also ``notes grpo-3 to grpo-6``) and ``eq. 5`` -> links to the
    implementation notes and the equation sheet."""

    def notes(m: re.Match) -> str:
        ids = re.sub(
            NOTE_REF,
            lambda n: f"`{n.group(0)} <{page_prefix}implementation_notes.html#{n.group(0)}>`__",
            m.group(2),
        )
        return m.group(1) + ids

    text = NOTES.sub(notes, text)
    text = DOC_PAGE.sub(lambda m: f"`{m.group(0)} <{page_prefix}{m.group(1)}.html>`__", text)
    return EQUATION.sub(
        lambda m: f"`eq. {m.group(1)} <{page_prefix}equations.html#eq-{m.group(1)}>`__", text
    )


def docstring_to_rst(lines: list[str], where: str, page_prefix: str = "../") -> list[str]:
    """The docstring's lines as Sphinx-ready reStructuredText (see the module docstring)."""
    out, i = [], 0
    while i < len(lines):  # tables first: their cells are converted one by one
        if BORDER.match(lines[i]):
            j, borders = i + 1, 1
            while j < len(lines):
                if BORDER.match(lines[j]):
                    borders += 1
                    if j + 1 == len(lines) or not lines[j + 1].strip():
                        break
                j += 1
            out.append("\x00".join(simple_table(lines[i : j + 1], where, page_prefix)))
            i = j + 1
        else:
            out.append(lines[i])
            i += 1
    text = "\n".join(out)
    text = notebook_links(text, page_prefix)
    text = "\n".join(
        line if "\x00" in line else doc_links(line, page_prefix) for line in text.split("\n")
    )
    text = display_math(text)
    # inline math may span the lines of a paragraph (not a blank line, not a table row)
    chunks = []
    for chunk in text.split("\n\n"):
        if "\x00" in chunk:  # a table (already converted) with text around it
            lines = chunk.split("\n")
            chunk = "\n".join(line if "\x00" in line else inline_math(line) for line in lines)
        else:
            chunk = inline_math(chunk)
        chunks.append(chunk)
    return "\n\n".join(chunks).replace("\x00", "\n").split("\n")


def process_docstring(app, what, name, obj, options, lines):
    lines[:] = docstring_to_rst(list(lines), name)


# ---------------------------------------------------------------------------------------
# Pages generated at build time: notebooks and the API
# ---------------------------------------------------------------------------------------


RUN_IN_BROWSER = (
    '<p class="minialign-run-lite"><a href="../lite/notebooks/index.html?path={name}">'
    "&#9654; Run this notebook in your browser</a> (JupyterLite: Python runs in the page, "
    "nothing to install; built by <code>python tools/build_lite.py</code>)</p>"
)


def copy_notebooks(app) -> None:
    """notebooks/*.ipynb -> docs/notebooks/, each opening with a link that runs it in the
    browser (only files that changed are written, so rebuilds are quick)."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    for old in target.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name, src in wanted.items():
        nb = json.loads(src.read_text(encoding="utf-8"))
        link = RUN_IN_BROWSER.format(name=name)
        first = nb["cells"][0] if nb["cells"] else None
        if first and first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# "):
            title, _, rest = "".join(first["source"]).partition("\n")
            first["source"] = f"{title}\n\n{link}\n{rest}"  # right under the title
        else:
            nb["cells"].insert(0, {"cell_type": "markdown", "id": "run-in-browser",
                                   "metadata": {}, "source": link})  # fmt: skip
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        dst = target / name
        if not dst.exists() or dst.read_text(encoding="utf-8") != text:
            dst.write_text(text, encoding="utf-8")


def public_names(module_name: str) -> list[str]:
    """The names a user imports from the module: its ``__all__``, or else every public
    class and function defined in it (or, for a package, in one of its modules)."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    inside = (module_name, module_name + ".") if hasattr(module, "__path__") else (module_name,)
    names = []
    for name, value in vars(module).items():
        home = getattr(value, "__module__", None) or ""
        public = not name.startswith("_") and not inspect.ismodule(value)
        if public and callable(value) and (home == module_name or home.startswith(inside)):
            names.append(name)
    return names


def _entry(module: str, name: str, value) -> str:
    if inspect.isclass(value):
        return f".. autoclass:: {module}.{name}\n   :members:\n"
    if callable(value):
        return f".. autofunction:: {module}.{name}\n"
    return f".. autodata:: {module}.{name}\n   :no-value:\n"


def api_page(title: str, module: str, intro: str) -> str:
    """One page: the module's docstring, then an entry per public name in the order of
    ``__all__`` (or of the namespace). A package's names are grouped by the module that
    defines them, each group under that module's own docstring (where the explanations
    of a whole file live, e.g. the position table of the PPO loop)."""
    mod = importlib.import_module(module)
    groups: dict[str, list[str]] = {}
    for name in public_names(module):
        value = getattr(mod, name)
        home = getattr(value, "__module__", module) if hasattr(mod, "__path__") else module
        groups.setdefault(home if home.startswith(module) else module, []).append(name)
    intro = f"{intro}\n\n" if intro else ""
    parts = [f"# {title}\n\n{intro}```{{eval-rst}}\n.. automodule:: {module}\n```\n"]
    for home, names in groups.items():
        entries = "\n".join(_entry(module, n, getattr(mod, n)) for n in names)
        header = ""
        if home != module:
            header = (
                f"## `{home}`\n\n```{{eval-rst}}\n.. automodule:: {home}\n   :no-index:\n```\n\n"
            )
        parts.append(f"{header}```{{eval-rst}}\n.. currentmodule:: {module}\n\n{entries}```\n")
    return "\n".join(parts)


def write_api_pages(app) -> None:
    """docs/api/*.md from API_PAGES (rewritten only when their text changes)."""
    folder = DOCS / "api"
    folder.mkdir(exist_ok=True)
    pages = {
        f"{name}.md": api_page(title, module, intro) for name, title, module, intro in API_PAGES
    }
    toc = "\n".join(name.removesuffix(".md") for name in pages)
    pages["index.md"] = (
        "# API reference\n\nEvery public name, from its docstring: the equation it computes "
        "(rendered), its symbols and shapes, and the notebook section that steps through "
        f"it.\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n"
    )
    for old in folder.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def check_api_coverage(app, env) -> None:
    """Every public name of every API module has an entry (else a warning, so -W fails)."""
    documented = set(env.domaindata["py"]["objects"])
    for _, _, module, _ in API_PAGES:
        for name in public_names(module):
            if f"{module}.{name}" not in documented:
                logger.warning(f"API reference: {module}.{name} has no entry", type="minialign")


# ---------------------------------------------------------------------------------------
# Links written for GitHub, pointed at the site
# ---------------------------------------------------------------------------------------

MD_NOTEBOOK_LINK = re.compile(r"\]\(((?:\.\./)+)notebooks/(\d\d_\w+)\.ipynb\)")
MD_LINK_WITH_LABEL = re.compile(r"\[(\d\d_\w+) §(\d+) ([^\]]+)\]\((?:\.\./)+notebooks/\1\.ipynb\)")


def rewrite_markdown_links(app, docname: str, source: list[str]) -> None:
    """In docs/*.md, ``(../notebooks/NN.ipynb)`` (right on GitHub) -> the notebook's page,
    and ``[NN §N Title](...)`` -> that section of it."""
    if docname.startswith(("notebooks/", "api/")) or app.env.doc2path(docname).suffix != ".md":
        return
    text = source[0]
    depth = docname.count("/")
    here = "../" * depth

    def labelled(m: re.Match) -> str:
        notebook, number, title = m.groups()
        return f"[{notebook} §{number} {title}]({here}notebooks/{notebook}.ipynb#{slug(f'{number}. {title}')})"

    text = MD_LINK_WITH_LABEL.sub(labelled, text)
    text = MD_NOTEBOOK_LINK.sub(lambda m: f"]({here}notebooks/{m.group(2)}.ipynb)", text)
    source[0] = text


# ---------------------------------------------------------------------------------------
# Offline MathJax
# ---------------------------------------------------------------------------------------

MATHJAX_SKIP = {"mml-svg.js", "tex-svg.js", "tex-svg-full.js", "tex-mml-svg.js", "node-main.js",
                "tex-chtml-full-speech.js", "tex-chtml-full.js", "latest.js", "mml-chtml.js",
                "tex-mml-chtml.js"}  # fmt: skip


def mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax wheel: MathJax 3.2.2's built components

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").exists():
        raise RuntimeError(f"no MathJax in {es5}: pip install -e '.[docs]'")
    return es5


def vendor_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    shutil.copytree(
        mathjax_source(),
        target,
        dirs_exist_ok=True,
        ignore=lambda folder, names: [n for n in names if n in MATHJAX_SKIP],
    )


def setup(app):
    app.connect("builder-inited", copy_notebooks)
    app.connect("builder-inited", write_api_pages)
    app.connect("autodoc-process-docstring", process_docstring)
    app.connect("source-read", rewrite_markdown_links)
    app.connect("env-check-consistency", check_api_coverage)
    app.connect("build-finished", vendor_mathjax)
    mathjax_source()  # fail early, with the fix, if the package is missing
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
