"""Tests of the relevance sequence logo (lrpcore.plot.sequence)."""
from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.patches import PathPatch  # noqa: E402

from lrpcore.errors import ShapeError  # noqa: E402
from lrpcore.plot import sequence_logo, sequence_logos  # noqa: E402
from lrpcore.plot.sequence import BASE_COLORS  # noqa: E402


def _onehot(text: str) -> np.ndarray:
    array = np.zeros((4, len(text)))
    array[["ACGT".index(base) for base in text], np.arange(len(text))] = 1.0
    return array


def _letters(ax):
    return [patch for patch in ax.patches if isinstance(patch, PathPatch)]


def test_logo_draws_each_letter_with_its_relevance_as_height_positive_up_negative_down():
    sequence = _onehot("ACGTA")
    relevance = sequence * np.array([0.5, -0.25, 0.0, 1.0, -2.0])[None, :]
    ax = sequence_logo(relevance, sequence)
    letters = _letters(ax)
    assert len(letters) == 4                                     # the zero-relevance G is not drawn
    boxes = sorted((patch.get_path().get_extents().x0, patch.get_path().get_extents()) for patch in letters)
    expected = {0: (0.0, 0.5), 1: (-0.25, 0.0), 3: (0.0, 1.0), 4: (-2.0, 0.0)}
    for x0, box in boxes:
        position = int(np.floor(x0))
        low, high = expected[position]
        assert box.y0 == pytest.approx(low, abs=1e-9) and box.y1 == pytest.approx(high, abs=1e-9)
        assert position <= box.x0 and box.x1 <= position + 1
    colours = {int(np.floor(p.get_path().get_extents().x0)): matplotlib.colors.to_hex(p.get_facecolor())
               for p in letters}
    assert colours[0] == BASE_COLORS["A"].lower() and colours[3] == BASE_COLORS["T"].lower()
    low, high = ax.get_ylim()
    assert low < -2.0 and high > 1.0
    matplotlib.pyplot.close("all")


def test_logo_stacks_several_bases_of_one_position_and_shades_the_ground_truth():
    sequence = _onehot("AAAA")
    relevance = np.zeros((4, 4))
    relevance[:, 1] = [0.2, 0.3, -0.1, 0.0]                     # two bases up, one down at position 1
    mask = np.array([False, True, True, False])
    ax = sequence_logo(relevance, sequence, mask=mask)
    boxes = sorted((p.get_path().get_extents().y0, p.get_path().get_extents().y1) for p in _letters(ax))
    np.testing.assert_allclose(boxes, [(-0.1, 0.0), (0.0, 0.2), (0.2, 0.5)], atol=1e-9)   # smallest next to the axis
    shaded = [patch for patch in ax.patches if not isinstance(patch, PathPatch)]
    assert len(shaded) == 1
    assert shaded[0].get_x() == pytest.approx(1.0) and shaded[0].get_width() == pytest.approx(2.0)
    matplotlib.pyplot.close("all")


def test_logo_window_and_relevance_per_position_of_the_present_base(tmp_path):
    text = "ACGTACGTAC"
    sequence = _onehot(text)
    per_position = np.linspace(-1, 1, len(text))
    ax = sequence_logo(per_position, sequence[None], start=2, stop=7, title="window")
    assert ax.get_xlim() == (2.0, 7.0)
    assert len(_letters(ax)) == 5
    figure = sequence_logos(np.stack([sequence * per_position] * 2), np.stack([sequence] * 2),
                            masks=np.zeros((2, len(text)), bool), titles=["a", "b"])
    path = tmp_path / "logos.png"
    figure.savefig(path)
    assert path.stat().st_size > 1000
    matplotlib.pyplot.close("all")


def test_logo_rejects_mismatched_shapes_and_nan():
    sequence = _onehot("ACGT")
    with pytest.raises(ShapeError, match="does not match"):
        sequence_logo(np.zeros((4, 5)), sequence)
    with pytest.raises(ShapeError, match="length"):
        sequence_logo(np.zeros(3), sequence)
    with pytest.raises(ShapeError, match=r"\(4, L\)"):
        sequence_logo(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ShapeError, match="mask"):
        sequence_logo(sequence, sequence, mask=np.zeros(5, bool))
    with pytest.raises(ValueError, match="NaN"):
        sequence_logo(sequence * np.nan, sequence)
    with pytest.raises(ValueError, match="start"):
        sequence_logo(sequence, sequence, start=3, stop=3)
    matplotlib.pyplot.close("all")
