"""Sphinx configuration of the et-hil site (``make docs``).

The pages are Markdown (MyST). Warnings are errors (``sphinx-build -W``) and every
cross-reference must resolve (``nitpicky``), so a renamed page, heading or Python
name fails the build instead of leaving a dead link. The pictures and the CLI page
are made from the code and from real runs (``docs/_ext``), never drawn by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The checkout's et_hil (whatever the working folder), and the site's own extensions.
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

# torch, torchao and ExecuTorch log about themselves on import (autodoc imports them).
from et_hil.programs.quiet import quiet_third_party_logs  # noqa: E402

quiet_third_party_logs()

project = "et-hil"
author = "the et-hil developers"
copyright = "the et-hil developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "et_hil_cli",  # the CLI page, from et_hil.cli's argument parser
    "et_hil_api",  # the API reference, from et_hil's public names
    "et_hil_xref",  # docstrings' references to undocumented names (pages stay strict)
]

root_doc = "index"
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_generated/run", "examples", "README.md"]
# Every reference must resolve: pages, headings (MyST) and Python objects alike.
nitpicky = True
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
# Headings get anchors, so a page links to another's section as page.md#section.
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_attr_annotations = True

html_theme = "furo"
html_title = "et-hil"
html_static_path: list[str] = []
html_show_sourcelink = False
