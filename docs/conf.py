"""Sphinx configuration of the documentation site (``make docs`` builds it into build/docs).

Sphinx rather than mkdocs + mkdocstrings: the docstrings are reStructuredText (``literals``,
``::`` literal blocks, and about 450 cross-references such as :func:`load_model`), which
Sphinx's autodoc renders as written; mkdocstrings would print the roles as text. The guides
stay Markdown (README.md, docs/*.md), read by MyST-Parser.

The API reference is generated from the package (docs/_ext/apipages.py walks ``sketchrnn``
and writes docs/api/, its index included, git-ignored, at every build), so a module that
appears or moves is picked up without editing a list; each object is documented once, in the
module that defines it.
Cross-references resolve as Python resolves the names (docs/_ext/pyrefs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import sketchrnn  # noqa: E402

project = "sketchrnn"
release = version = sketchrnn.__version__
copyright = "the sketchrnn authors (Apache-2.0)"

nitpicky = True  # every cross-reference must name something (docs/_ext/pyrefs.py)
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "apipages",
    "pyrefs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_ext"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # `option(100, "...")` rather than a Field(...) repr
autodoc_default_options = {"show-inheritance": True}
autodoc_inherit_docstrings = False  # a method's page says what it says, not torch's docs

# Markdown pages.
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
highlight_language = "none"  # an unlabelled fence is a diagram or a listing, not Python
# The contract pages annotate JSON with // comments: shown plain rather than a build failure.
suppress_warnings = ["misc.highlighting_failure"]

html_theme = "furo"
html_title = f"sketchrnn {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False  # the Markdown sources are in the repository; no copies on the site
