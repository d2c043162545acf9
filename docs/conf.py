"""Sphinx configuration of lrpcore's documentation: API reference from the docstrings and the tutorials.

Build (CI does, with warnings as errors):  sphinx-build -W -b html docs docs/_build/html

The tutorials are the committed notebooks in ../tutorials (docs/tutorials is a link to them),
shown with the outputs they were stored with: nothing is executed here (``nb_execution_mode =
"off"``); ``python tools/execute_notebooks.py`` refreshes them. The command-line page is written
from the commands' own ``--help`` at build time.
"""
from __future__ import annotations

import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)          # document this checkout's lrpcore, whatever is installed

import lrpcore  # noqa: E402

project = "lrpcore"
author = "the lrpcore authors"
release = version = lrpcore.__version__
copyright = "lrpcore authors"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# notebooks: shown as committed (executed, with their figures); never run during the build
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"          # the signatures show them; type aliases in annotations do not resolve
autodoc_mock_imports = ["cupy", "torch", "dask", "distributed", "cv2", "keras"]
nitpicky = False

html_theme = "alabaster"
html_title = f"lrpcore {release}"
html_theme_options = {"description": "Layer-wise Relevance Propagation you can see and verify",
                      "fixed_sidebar": True, "page_width": "1180px", "sidebar_width": "230px"}
html_static_path: list[str] = []


def _write_cli_page(app) -> None:
    """docs/_generated/cli.md: every subcommand's --help, so the page is always the command's own text."""
    import argparse
    import io
    from contextlib import redirect_stdout

    from lrpcore.cli import build_parser

    parser = build_parser()
    sections = ["# The command line\n",
                "Every command is `lrpcore COMMAND ...`; `lrpcore COMMAND --help` prints the text below.\n"]
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, subparser in actions[0].choices.items():
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            subparser.print_help()
        sections.append(f"## lrpcore {name}\n\n```text\n{buffer.getvalue().rstrip()}\n```\n")
    folder = os.path.join(app.srcdir, "_generated")
    os.makedirs(folder, exist_ok=True)
    text = "\n".join(sections)
    path = os.path.join(folder, "cli.md")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


_LITERAL = re.compile(r"(``.+?``|:[\w:.-]+:`[^`]*`)")


def _bars_are_text(app, what, name, obj, options, lines) -> None:
    """Docstrings write |R| and ‖R‖ for magnitudes and norms, and never use reST substitutions: a ``|``
    outside literals and literal blocks is text (escaped here), not the start of a substitution."""
    block_indent = None
    for number, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not line.strip() or indent > block_indent:
                continue              # inside a literal block (after "::"): shown as it is
            block_indent = None
        parts = _LITERAL.split(line)
        lines[number] = "".join(part if position % 2 else part.replace("|", "\\|")
                                for position, part in enumerate(parts))
        if line.rstrip().endswith("::"):
            block_indent = indent


def setup(app):
    os.environ.setdefault("COLUMNS", "100")   # argparse wraps --help at the terminal width
    app.connect("builder-inited", _write_cli_page)
    app.connect("autodoc-process-docstring", _bars_are_text)
