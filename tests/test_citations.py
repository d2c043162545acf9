"""Citations in docstrings and tutorials point at the sections of the sources that say it (issue 14, item 6).

The thesis ("In-Depth Hyperparameter Selection for Layer-wise Relevance Propagation") treats the
numerical instabilities and their "patches" in §§2.1.4–2.1.5, not in a section 2.4.
"""
from __future__ import annotations

import json
import pathlib
import re

import pytest

import lrpcore.instability
import lrpcore.stability
import lrpcore.stabilizers

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", [lrpcore.stabilizers, lrpcore.instability, lrpcore.stability])
def test_instability_modules_cite_thesis_sections_2_1_4_to_2_1_5(module):
    assert "§§2.1.4–2.1.5" in module.__doc__


def _texts():
    for path in sorted((REPOSITORY / "lrpcore").rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")
    for path in sorted((REPOSITORY / "tutorials").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        yield path, "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


def test_no_text_cites_a_thesis_section_2_4():
    wrong = re.compile(r"Selection for LRP\"?,? \(?section 2\.4|thesis[^\n]{0,80}section 2\.4", re.IGNORECASE)
    found = [str(path.relative_to(REPOSITORY)) for path, text in _texts() if wrong.search(text)]
    assert not found, f"'section 2.4' of the thesis is §§2.1.4–2.1.5: {found}"


def test_tutorial_05_cites_the_thesis_sections_in_its_markdown():
    cells = json.loads((REPOSITORY / "tutorials" / "05_numerical_stability.ipynb").read_text(encoding="utf-8"))["cells"]
    markdown = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert "§§2.1.4–2.1.5" in markdown


def test_rules_and_canonize_cite_the_chapters_own_places():
    """Montavon et al. 2019: LRP-γ is defined in §10.2.1 (eq. 10.3 is the deep Taylor expansion), batch
    normalisation is treated in §10.3.2; Epsilon's default stabilizer is zennit's z + sign(z)·ε, not ε + z."""
    import importlib

    import lrpcore.rules

    canonize_module = importlib.import_module("lrpcore.canonize")   # (lrpcore.canonize is the function)
    gamma = lrpcore.rules.Gamma.__doc__
    assert "section 10.2.1" in gamma and "10.3)" not in gamma and "eq. 10.3" not in gamma
    assert "10.3.2" in canonize_module.__doc__ and "10.3.3" not in canonize_module.__doc__
    epsilon = lrpcore.rules.Epsilon.__doc__
    assert "sign(z_k)·ε" in epsilon and 'stabilizer="vanilla"' in epsilon
