"""Every notebook in tutorials/ executes top to bottom and shows its figures as a student sees them.

The notebooks are committed with their outputs (``python tools/execute_notebooks.py`` writes
them). Here each one is executed again in a fresh kernel with Jupyter's inline figure display
(no ``MPLBACKEND=Agg``: that would hide every figure) and checked:

- no cell raises;
- every cell that shows a picture in the committed notebook shows one again;
- no output is a figure's bare text repr (``<Figure size 660x270 with 3 Axes>``), the sign of a
  figure that did not render;
- the committed notebook has outputs at all, and its pictures are PNGs of modest size.
"""
from __future__ import annotations

import base64
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))
#: Largest stored picture (bytes) before the notebooks get heavy on a repository page.
LARGEST_PICTURE = 250_000


def _tool():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_executes_and_shows_its_figures(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    tool = _tool()
    committed = nbformat.read(path, as_version=4)
    executed = tool.execute(path)
    errors = tool.errors(executed)
    assert not errors, f"{path.name}: {errors[0]}"
    expected = tool.image_cells(committed)
    found = tool.image_cells(executed)
    missing = sorted(set(expected) - set(found))
    assert not missing, (f"{path.name}: cells {missing} showed a picture in the committed notebook but not now "
                         f"(run python tools/execute_notebooks.py after changing a figure)")
    assert tool.bare_figure_reprs(executed) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_committed_notebook_has_its_outputs_and_small_pictures(path):
    nbformat = pytest.importorskip("nbformat")
    tool = _tool()
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code), \
        f"{path.name} is stored unexecuted: run python tools/execute_notebooks.py"
    assert tool.bare_figure_reprs(notebook) == []
    assert tool.errors(notebook) == []
    for cell in code:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                assert len(base64.b64decode(png)) < LARGEST_PICTURE, f"{path.name}: a picture over {LARGEST_PICTURE} B"


def test_there_are_notebooks_and_the_first_shows_a_real_image():
    nbformat = pytest.importorskip("nbformat")
    assert any(path.name.startswith("01_") for path in NOTEBOOKS)
    first = nbformat.read(next(path for path in NOTEBOOKS if path.name.startswith("01_")), as_version=4)
    assert len(_tool().image_cells(first)) >= 3
    assert "shapes_cnn" in "".join(cell.source for cell in first.cells)


def test_the_check_catches_a_figure_that_did_not_render():
    """The notebook checks fail on what they are meant to catch (tutorial 05 before the fix)."""
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    tool = _tool()
    notebook = new_notebook(cells=[new_code_cell("plot()", outputs=[new_output(
        "execute_result", data={"text/plain": "<Figure size 660x270 with 3 Axes>"}, execution_count=1)])])
    assert tool.bare_figure_reprs(notebook) == [(0, "<Figure size 660x270 with 3 Axes>")]
    assert tool.image_cells(notebook) == []
    notebook.cells[0].outputs[0].data["image/png"] = "iVBORw0KGgo="
    assert tool.bare_figure_reprs(notebook) == [] and tool.image_cells(notebook) == [0]


def test_lrpcore_figures_display_once_as_png_without_pyplot():
    """In IPython, a Figure (or the Axes of one) made by lrpcore.plot displays as a PNG, even if pyplot was never
    imported; the Axes of other figures keep IPython's plain repr."""
    pytest.importorskip("IPython")
    import numpy as np
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    from lrpcore.plot import heatmap, heatmap_grid

    shell = InteractiveShell.instance()
    try:
        formatter = shell.display_formatter
        figure = heatmap_grid(np.eye(4)[None], title="t")
        data, _ = formatter.format(figure)
        assert "image/png" in data
        assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
        data, _ = formatter.format(heatmap(np.eye(4)))
        assert "image/png" in data                          # a single-panel function's Axes
        data, _ = formatter.format(Figure().add_subplot())  # someone else's Axes: plain repr only
        assert "image/png" not in data and data["text/plain"].startswith("<Axes")
    finally:
        InteractiveShell.clear_instance()
