"""Execute the tutorials and store them with their outputs, so they read with pictures on a repository page.

    python tools/execute_notebooks.py                  # every notebook in tutorials/
    python tools/execute_notebooks.py tutorials/01_lrp_step_by_step.ipynb
    python tools/execute_notebooks.py --check          # execute and compare, write nothing

Each notebook runs top to bottom in a fresh Jupyter kernel (``python3``) in the tutorials
folder, with Jupyter's inline figure display (``MPLBACKEND`` is removed from the kernel's
environment, so figures appear as a student sees them; drawn at 80 dpi to keep the files small). Then the stored copy is made
small and stable: figures are PNGs re-encoded without metadata (to a 256-colour palette where
that is smaller), execution timestamps and widget state are dropped, and ``language_info`` is
reduced to the language name. An error in any cell stops the run and writes nothing for that
notebook. Run it again after changes to lrpcore and commit the notebooks.

The same functions are used by ``tests/test_notebooks.py`` to re-execute the committed notebooks.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
#: Seconds one cell may run.
CELL_TIMEOUT = 900
#: How the kernel draws figures: Jupyter's default (tight bounding box) at 80 dpi instead of 100, which keeps
#: the stored pictures about a third smaller and still sharp on a repository page.
FIGURES = '{"bbox_inches": "tight", "dpi": 80}'


def notebooks(paths: list[str] | None = None) -> list[Path]:
    """The notebooks to run: the given paths, or every ``tutorials/*.ipynb``."""
    if paths:
        return [Path(path).resolve() for path in paths]
    return sorted(TUTORIALS.glob("*.ipynb"))


def execute(path: Path, timeout: int = CELL_TIMEOUT) -> Any:
    """Run the notebook at ``path`` in a fresh kernel with the inline figure display; return the executed copy."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    saved = os.environ.pop("MPLBACKEND", None)       # the kernel must use Jupyter's own inline display
    root = str(ROOT)
    previous_path = os.environ.get("PYTHONPATH")
    # the kernel imports this checkout's lrpcore, whatever is installed
    os.environ["PYTHONPATH"] = root + (os.pathsep + previous_path if previous_path else "")
    try:
        import subprocess

        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                         extra_arguments=[f"--InlineBackend.print_figure_kwargs={FIGURES}"],
                                         resources={"metadata": {"path": str(path.parent)}})
        # the kernel process's own log (not the cells' output, which comes back in the notebook) stays quiet:
        # ipykernel warns there that a local kernel talks over unencrypted TCP on the loopback
        client.execute(stderr=subprocess.DEVNULL)
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
        if previous_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous_path
    return notebook


def _smaller_png(data: str) -> str:
    """A base64 PNG re-encoded without metadata (optimised; as a palette image when it has at most 256
    colours, which loses nothing)."""
    from PIL import Image

    raw = base64.b64decode(data)
    picture = Image.open(io.BytesIO(raw))
    picture.load()
    best = raw
    rgb = picture.convert("RGB")
    candidates = [rgb]
    if rgb.getcolors(256) is not None:          # None when there are more than 256 colours
        candidates.append(rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    for candidate in candidates:
        buffer = io.BytesIO()
        candidate.save(buffer, format="PNG", optimize=True)
        if len(buffer.getvalue()) < len(best):
            best = buffer.getvalue()
    return base64.b64encode(best).decode("ascii")


def clean(notebook: Any) -> Any:
    """Small, stable stored outputs: PNGs re-encoded, no timestamps, no widget state, short metadata."""
    notebook.metadata.pop("widgets", None)
    language = notebook.metadata.get("language_info", {}).get("name", "python")
    notebook.metadata["language_info"] = {"name": language}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = _smaller_png(data["image/png"])
    return notebook


def image_cells(notebook: Any) -> list[int]:
    """Indices of the code cells that show at least one picture."""
    return [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            and any("image/png" in output.get("data", {}) or "image/svg+xml" in output.get("data", {})
                    for output in cell.get("outputs", []))]


def bare_figure_reprs(notebook: Any) -> list[tuple[int, str]]:
    """(cell, text) of every output that is a figure's or axes' text repr with no picture: a figure that did not
    render (``<Figure size 660x270 with 3 Axes>``)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if text.lstrip().startswith(("<Figure", "<Axes", "<matplotlib.")) and \
                    not any(kind.startswith("image/") for kind in data):
                found.append((index, text.strip()[:80]))
    return found


def errors(notebook: Any) -> list[str]:
    return [f"{output.get('ename')}: {output.get('evalue')}" for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: every tutorials/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="execute and check pictures and errors, write nothing")
    args = parser.parse_args(argv)
    failed = 0
    for path in notebooks(args.paths):
        start = time.perf_counter()
        try:
            executed = clean(execute(path))
        except Exception as error:   # the cell's error, printed; the stored notebook is left as it was
            print(f"{path.name}: FAILED: {type(error).__name__}: {str(error)[-2000:]}", file=sys.stderr)
            failed += 1
            continue
        problems = bare_figure_reprs(executed)
        pictures = image_cells(executed)
        note = f"{len(pictures)} cells with pictures, {time.perf_counter() - start:.0f} s"
        if problems:
            print(f"{path.name}: figures that did not render: {problems}", file=sys.stderr)
            failed += 1
            continue
        if not args.check:
            nbformat.write(executed, path)
            note += f", {path.stat().st_size / 1e3:.0f} kB written"
        print(f"{path.name}: {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
