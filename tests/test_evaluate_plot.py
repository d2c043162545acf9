"""Pictures of pixel flipping (``lrpcore.plot.perturbation_curve`` / ``perturbation_steps``)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lrpcore.evaluate import pixel_flipping  # noqa: E402
from lrpcore.plot import perturbation_curve, perturbation_steps  # noqa: E402

from evaluate_helpers import tiny_cnn  # noqa: E402


@pytest.fixture(scope="module")
def curves():
    model = tiny_cnn()
    rng = np.random.default_rng(0)
    x = rng.random((3, 3, 16, 16)).astype(np.float32)
    relevance = rng.normal(size=x.shape)
    result = {sort: pixel_flipping(model, x, relevance, sort=sort, mode="constant", patch_size=4,
                                   keep_images=True, score="probability") for sort in ("morf", "lrf")}
    return model, relevance, result


def test_curve_plot_has_one_line_per_curve_with_its_auc_in_the_legend(curves, tmp_path):
    _, _, result = curves
    figure = perturbation_curve(result, path=str(tmp_path / "curve.png"))
    axis = figure.axes[0]
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert len(axis.lines) == 2
    for label, (sort, curve) in zip(labels, result.items()):
        assert label.startswith(sort) and f"AUC {curve.auc(normalised=True).mean():.3f}" in label
    np.testing.assert_allclose(axis.lines[0].get_ydata(), result["morf"].mean_scores(normalised=True))
    assert (tmp_path / "curve.png").stat().st_size > 0
    plt.close(figure)


def test_steps_plot_shows_input_heatmap_and_the_chosen_steps(curves, tmp_path):
    model, relevance, result = curves
    figure = perturbation_steps(result["morf"], image=1, steps=[1, 3], relevance=relevance[1],
                                metadata=model.metadata, path=str(tmp_path / "steps.png"))
    titles = [axis.get_title() for axis in figure.axes]
    assert len(titles) == 4 and titles[0].startswith("input") and titles[1].startswith("heatmap")
    assert titles[2].startswith("step 1: 1 patch (6%)") and titles[3].startswith("step 3")
    plt.close(figure)


def test_steps_plot_needs_the_kept_images():
    model = tiny_cnn()
    x = np.zeros((1, 3, 16, 16), dtype=np.float32)
    curve = pixel_flipping(model, x, np.ones_like(x), mode="constant", patch_size=4)
    with pytest.raises(ValueError, match="keep_images=True"):
        perturbation_steps(curve)
