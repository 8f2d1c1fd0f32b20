"""Sphinx configuration for minialign's documentation site.

Build (warnings are errors):  sphinx-build -W -b html docs docs/_build/html
The pieces specific to this project (docstring math and tables, notebook pages,
offline MathJax, API pages) live in docs/_ext/minialign_docs.py.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # autodoc imports the package from the checkout

import minialign  # noqa: E402

project = "minialign"
author = "the minialign authors"
copyright = "the minialign authors, MIT licence"  # noqa: A001
release = version = minialign.__version__

extensions = [
    "myst_nb",  # Markdown pages (MyST) and notebooks, rendered from their committed outputs
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "minialign_docs",
]

root_doc = "index"
exclude_patterns = ["_build", "_ext", "**/.ipynb_checkpoints", "README.md"]
default_role = "py:obj"  # `name` in a docstring links to the API entry when there is one
nitpicky = False
suppress_warnings = []

# --- Markdown and notebooks -----------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # #slugs, so links to a section work on the site too
myst_heading_slug_func = "minialign_docs.heading_slug"  # note ids (#ppo-3), else GitHub-style
nb_execution_mode = "off"  # CI executes the notebooks; the site shows the committed outputs
nb_merge_streams = True
nb_output_stderr = "show"

# --- API reference --------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}  # members: chosen per page
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
add_module_names = False
python_display_short_literal_types = True

# --- Math: MathJax 3 served from the site itself (copied from the django-static-mathjax
# wheel at build time; see minialign_docs.vendor_mathjax). No CDN. ---------------------
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {
    "loader": {"load": ["[tex]/ams"]},
    "tex": {"packages": {"[+]": ["ams"]}},
    "options": {"enableMenu": False},
}

# --- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"minialign {release}"
html_static_path = ["_static"]
html_css_files = ["minialign.css"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "header_links_before_dropdown": 8,
}
html_sidebars = {
    "*": [],
    "notebooks/*": ["sidebar-nav-bs"],
    "api/*": ["sidebar-nav-bs"],
}  # top-level pages: full width
html_last_updated_fmt = None
html_context = {"default_mode": "light"}
