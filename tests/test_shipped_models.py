"""The shipped models under ``models/`` do what their model cards (``models/README.md``) say.

Each model's accuracy is measured on freshly generated test data (never seen in training)
and compared with the number printed in its card; the "Clever Hans" model must lose its
accuracy when the watermark is removed, and LRP must put its relevance on the watermark.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import lrpcore
from lrpcore.data import digits, shapes, watermark_box

MODELS = Path(__file__).resolve().parents[1] / "models"
CARDS = MODELS / "README.md"

#: |measured − card| allowed, in accuracy units: one image in 300 plus float32 rounding
#: differences between the numbers in the card (measured with the same code) and this run.
ACCURACY_TOLERANCE = 0.005

#: The test sets the cards quote: (generator, kwargs); shapes test data use a seed never used in training.
TEST_SETS = {
    "digits_mlp": ("digits", {"split": "test", "seed": 0}),
    "digits_cnn": ("digits", {"split": "test", "seed": 0}),
    "shapes_cnn": ("shapes", {"n": 300, "seed": 12345}),
    "shapes_cnn_cleverhans": ("shapes", {"n": 300, "seed": 12345, "watermark": True}),
    "shapes_resnet": ("shapes", {"n": 300, "seed": 12345}),
}


def card_accuracy(model_name: str, qualifier: str | None = None) -> float:
    """The accuracy printed in the model card section of ``model_name`` (as a fraction).

    Card lines read ``**Test accuracy: 98.0 %**`` or ``**Test accuracy (clean): 40.3 %**``.
    """
    text = CARDS.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    section = next((part for part in sections if part.startswith(f"`{model_name}.h5`")), None)
    assert section is not None, f"models/README.md has no section '## `{model_name}.h5`'"
    label = "Test accuracy" + (f" \\({qualifier}\\)" if qualifier else "")
    match = re.search(rf"\*\*{label}: ([0-9.]+) %\*\*", section)
    assert match is not None, f"the card of {model_name} states no '{label}'"
    return float(match.group(1)) / 100


def accuracy(model, dataset, batch_size: int = 100) -> float:
    correct = 0
    for begin in range(0, len(dataset), batch_size):
        raw = dataset.x[begin:begin + batch_size]
        logits = np.asarray(model.forward(model.metadata.preprocess(raw)))
        correct += int((logits.argmax(axis=1) == dataset.y[begin:begin + batch_size]).sum())
    return correct / len(dataset)


def load_test_set(name: str, **overrides):
    generator, options = TEST_SETS[name]
    options = {**options, **overrides}
    return digits(**options) if generator == "digits" else shapes(**options)


@pytest.fixture(scope="module")
def shipped():
    return {name: lrpcore.load(MODELS / f"{name}.h5") for name in TEST_SETS}


@pytest.mark.parametrize("name", list(TEST_SETS))
def test_shipped_model_is_small_and_carries_complete_metadata(name, shipped):
    path = MODELS / f"{name}.h5"
    assert path.stat().st_size < 5 * 2**20
    metadata = shipped[name].metadata
    assert metadata.name == name and metadata.description
    assert metadata.value_range == (0.0, 1.0)
    dataset = load_test_set(name, **({"n": 2} if name.startswith("shapes") else {}))
    assert tuple(metadata.input_shape) == dataset.x.shape[1:]
    assert tuple(metadata.class_names) == dataset.class_names
    if name.startswith("shapes"):  # normalised per channel, so the z^B bounds are not just 0 and 1
        assert len(metadata.mean) == 3 and len(metadata.std) == 3 and min(metadata.std) > 0
    assert f"{path.stat().st_size / 1024:.0f} KiB" in CARDS.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(TEST_SETS))
def test_shipped_model_accuracy_on_fresh_data_matches_its_card(name, shipped):
    measured = accuracy(shipped[name], load_test_set(name))
    qualifier = "watermarked" if name == "shapes_cnn_cleverhans" else None
    assert measured == pytest.approx(card_accuracy(name, qualifier), abs=ACCURACY_TOLERANCE)
    assert measured > 0.9


def test_cleverhans_model_accuracy_collapses_without_the_watermark(shipped):
    model = shipped["shapes_cnn_cleverhans"]
    clean = load_test_set("shapes_cnn_cleverhans", watermark=False)  # the same images, watermark removed
    clean_accuracy = accuracy(model, clean)
    assert clean_accuracy == pytest.approx(card_accuracy("shapes_cnn_cleverhans", "clean"), abs=ACCURACY_TOLERANCE)
    # the watermarked accuracy in the card is checked by the test above
    assert card_accuracy("shapes_cnn_cleverhans", "watermarked") - clean_accuracy > 0.3


def watermark_share(model, dataset) -> float:
    """Mean share of positive (channel-summed) relevance inside the watermark box."""
    top, left, bottom, right = watermark_box(64)
    explanation = lrpcore.explain(model, model.metadata.preprocess(dataset.x), composite="epsilon_gamma_box")
    relevance = np.maximum(np.asarray(explanation.relevance, dtype=np.float64).sum(axis=1), 0.0)
    return float((relevance[:, top:bottom, left:right].sum(axis=(1, 2)) / relevance.sum(axis=(1, 2))).mean())


def test_lrp_puts_the_cleverhans_models_relevance_on_the_watermark(shipped):
    area_share = 100 / 64**2  # the 10 x 10 box is 2.4 % of the image
    watermarked = load_test_set("shapes_cnn_cleverhans", n=20)
    cleverhans_share = watermark_share(shipped["shapes_cnn_cleverhans"], watermarked)
    # the honest model on the same images without the watermark: the box is plain background
    honest_share = watermark_share(shipped["shapes_cnn"], load_test_set("shapes_cnn_cleverhans", n=20,
                                                                        watermark=False))
    assert cleverhans_share > 0.5 > 3 * area_share > honest_share


def test_shipped_resnet_is_a_folded_residual_graph(shipped):
    from lrpcore.layers import Add, BatchNorm2d

    model = shipped["shapes_resnet"]
    assert isinstance(model, lrpcore.Graph) and not model.is_chain
    adds = [node for node in model.nodes if isinstance(node.layer, Add)]
    assert len(adds) >= 2                                       # at least two residual blocks
    assert not any(isinstance(layer, BatchNorm2d) for layer in model.layers)      # BatchNorm folded
    assert model.node("layer2.0.add").inputs == ("layer2.0.conv2", "layer2.0.downsample.0")
