"""Tests of the synthetic and bundled data sets in ``lrpcore.data``."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from lrpcore.data import Dataset, digits, motifs, sequences_to_strings, shapes, watermark_box, watermark_mask
from lrpcore.data.motifs import DEFAULT_MOTIFS
from lrpcore.data.shapes import SHAPE_NAMES, _watermark_patch


def _reverse_complement(sequence: str) -> str:
    return sequence[::-1].translate(str.maketrans("ACGT", "TGCA"))


def _assert_datasets_equal(first: Dataset, second: Dataset) -> None:
    assert first.x.tobytes() == second.x.tobytes()
    np.testing.assert_array_equal(first.y, second.y)
    if first.masks is None:
        assert second.masks is None
    else:
        np.testing.assert_array_equal(first.masks, second.masks)
    if first.boxes is None:
        assert second.boxes is None
    else:
        np.testing.assert_array_equal(first.boxes, second.boxes)


# ----------------------------------------------------------------------------
# Dataset


def test_dataset_slicing_keeps_samples_and_per_sample_meta_aligned():
    dataset = shapes(8, size=32, seed=1)
    part = dataset[2:5]
    assert isinstance(part, Dataset) and len(part) == 3
    np.testing.assert_array_equal(part.x, dataset.x[2:5])
    np.testing.assert_array_equal(part.y, dataset.y[2:5])
    np.testing.assert_array_equal(part.masks, dataset.masks[2:5])
    np.testing.assert_array_equal(part.boxes, dataset.boxes[2:5])
    np.testing.assert_array_equal(part.meta["per_sample"]["radius"], dataset.meta["per_sample"]["radius"][2:5])
    assert part.class_names == dataset.class_names and part.meta["seed"] == 1

    chosen = dataset[[6, 0]]
    np.testing.assert_array_equal(chosen.y, dataset.y[[6, 0]])
    np.testing.assert_array_equal(chosen.meta["per_sample"]["centre"], dataset.meta["per_sample"]["centre"][[6, 0]])
    _assert_datasets_equal(dataset[-1], dataset[7:8])
    _assert_datasets_equal(dataset[dataset.y == dataset.y[0]], dataset[np.flatnonzero(dataset.y == dataset.y[0])])
    with pytest.raises(IndexError):
        dataset[8]


def test_dataset_coerces_dtypes_and_rejects_misaligned_arrays():
    dataset = Dataset(x=np.zeros((3, 2)), y=[0, 1, 1], class_names=("a", "b"))
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.int64 and len(dataset) == 3
    with pytest.raises(ValueError, match="y must have shape"):
        Dataset(x=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match="masks"):
        Dataset(x=np.zeros((3, 2)), y=np.zeros(3), masks=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="boxes"):
        Dataset(x=np.zeros((3, 2)), y=np.zeros(3), boxes=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="class_names"):
        Dataset(x=np.zeros((3, 2)), y=[0, 1, 2], class_names=("a", "b"))
    with pytest.raises(ValueError, match="per_sample"):
        Dataset(x=np.zeros((3, 2)), y=np.zeros(3), meta={"per_sample": {"index": np.arange(2)}})


# ----------------------------------------------------------------------------
# shapes


def test_shapes_images_are_float32_nchw_in_unit_range():
    dataset = shapes(6, size=48, seed=0)
    assert dataset.x.shape == (6, 3, 48, 48) and dataset.x.dtype == np.float32
    assert dataset.masks.shape == (6, 48, 48) and dataset.masks.dtype == bool
    assert dataset.boxes.shape == (6, 4)
    assert dataset.x.min() >= 0.0 and dataset.x.max() <= 1.0
    assert dataset.value_range == (0.0, 1.0)
    assert dataset.class_names == SHAPE_NAMES


def test_shapes_is_deterministic_for_a_seed():
    first = shapes(6, size=32, seed=5, watermark=True, watermark_prob=0.5)
    second = shapes(6, size=32, seed=5, watermark=True, watermark_prob=0.5)
    _assert_datasets_equal(first, second)
    other_seed = shapes(6, size=32, seed=6, watermark=True, watermark_prob=0.5)
    assert not np.array_equal(first.x, other_seed.x)


def test_shapes_image_does_not_depend_on_batch_size():
    small = shapes(4, size=32, seed=3, watermark=True, watermark_prob=0.5)
    large = shapes(11, size=32, seed=3, watermark=True, watermark_prob=0.5)
    _assert_datasets_equal(small, large[:4])
    np.testing.assert_array_equal(
        small.meta["per_sample"]["watermark_present"], large.meta["per_sample"]["watermark_present"][:4]
    )


def test_shapes_masks_cover_the_object_and_not_the_watermark():
    dataset = shapes(40, size=64, seed=2, watermark=True, noise=0.0)
    region = watermark_mask(64)
    info = dataset.meta["per_sample"]
    for image, mask, colour in zip(dataset.x, dataset.masks, info["object_colour"]):
        assert mask.sum() > 20
        assert not (mask & region).any()
        # Without noise, the masked pixels have the object's (lightly shaded) colour.
        np.testing.assert_allclose(image[:, mask].mean(axis=1), np.clip(colour, 0, 1), atol=0.08)
    # The watermark is really in the images, and masks ignore it.
    assert info["watermark_present"].all()
    assert (np.abs(dataset.x[:, :, region] - shapes(40, size=64, seed=2, noise=0.0).x[:, :, region]) > 0.1).any()


def test_shapes_masks_have_the_geometry_of_their_class():
    dataset = shapes(60, size=64, seed=4)
    info = dataset.meta["per_sample"]
    for label, mask, (centre_y, centre_x), radius in zip(dataset.y, dataset.masks, info["centre"], info["radius"]):
        name = dataset.class_names[label]
        centre_inside = mask[int(centre_y), int(centre_x)]
        assert centre_inside == (name != "ring"), name
        if name == "circle":
            assert abs(mask.sum() / (math.pi * radius**2) - 1.0) < 0.06
            rows, columns = np.nonzero(mask)
            assert abs(rows.mean() + 0.5 - centre_y) < 0.5 and abs(columns.mean() + 0.5 - centre_x) < 0.5
        if name == "ring":
            assert abs(mask.sum() / (math.pi * 0.75 * radius**2) - 1.0) < 0.1
    assert set(dataset.y.tolist()) == set(range(len(SHAPE_NAMES)))


def test_shapes_boxes_are_tight_around_the_masks():
    dataset = shapes(20, size=40, seed=7)
    for mask, (top, left, bottom, right) in zip(dataset.masks, dataset.boxes):
        assert 0 <= top < bottom <= 40 and 0 <= left < right <= 40
        assert mask[top:bottom, left:right].sum() == mask.sum()
        assert mask[top].any() and mask[bottom - 1].any()
        assert mask[:, left].any() and mask[:, right - 1].any()


def test_shapes_watermark_changes_only_the_watermark_region():
    plain = shapes(12, size=32, seed=9)
    marked = shapes(12, size=32, seed=9, watermark=True)
    region = marked.meta["watermark_mask"]
    np.testing.assert_array_equal(region, watermark_mask(32))
    np.testing.assert_array_equal(plain.x[:, :, ~region], marked.x[:, :, ~region])
    assert (plain.x[:, :, region] != marked.x[:, :, region]).any(axis=(1, 2)).all()
    np.testing.assert_array_equal(plain.masks, marked.masks)
    np.testing.assert_array_equal(plain.y, marked.y)


def test_shapes_watermark_glyph_identifies_the_class():
    dataset = shapes(60, size=64, seed=11, watermark=True)
    top, left, bottom, right = dataset.meta["watermark_box"]
    assert (top, left, bottom, right) == watermark_box(64)
    glyphs = dataset.x[:, :, top:bottom, left:right]
    for label in range(len(SHAPE_NAMES)):
        # At full strength the region is exactly the class glyph, the same in every channel.
        expected = _watermark_patch(SHAPE_NAMES[label], cell=2)
        class_glyphs = glyphs[dataset.y == label]
        np.testing.assert_array_equal(class_glyphs, np.broadcast_to(expected, class_glyphs.shape))
    patches = [_watermark_patch(name, cell=2) for name in SHAPE_NAMES]
    for first in range(len(patches)):
        for second in range(first + 1, len(patches)):
            assert not np.array_equal(patches[first], patches[second])
    # Glyph brightness carries no class information: only the pattern does.
    assert len({patch.sum() for patch in patches}) == 1


def test_shapes_watermark_strength_blends_the_glyph_into_the_image():
    plain = shapes(5, size=32, seed=1)
    half = shapes(5, size=32, seed=1, watermark=True, watermark_strength=0.5)
    top, left, bottom, right = watermark_box(32)
    for index, label in enumerate(plain.y):
        patch = _watermark_patch(SHAPE_NAMES[label], cell=1)
        expected = 0.5 * plain.x[index, :, top:bottom, left:right] + 0.5 * patch
        np.testing.assert_allclose(half.x[index, :, top:bottom, left:right], expected, atol=1e-6)


def test_shapes_watermark_prob_sets_the_fraction_of_marked_images():
    plain = shapes(150, size=32, seed=2, clutter=0)
    marked = shapes(150, size=32, seed=2, clutter=0, watermark=True, watermark_prob=0.3)
    present = marked.meta["per_sample"]["watermark_present"]
    assert 0.2 < present.mean() < 0.4
    region = watermark_mask(32)
    changed = (plain.x[:, :, region] != marked.x[:, :, region]).any(axis=(1, 2))
    np.testing.assert_array_equal(changed, present)
    assert not shapes(20, size=32, watermark=True, watermark_prob=0.0).meta["per_sample"]["watermark_present"].any()


def test_shapes_object_colour_does_not_depend_on_the_class():
    dataset = shapes(300, size=32, seed=0, clutter=0)
    colours = dataset.meta["per_sample"]["object_colour"]
    overall = colours.mean(axis=0)
    for label in range(len(SHAPE_NAMES)):
        assert np.abs(colours[dataset.y == label].mean(axis=0) - overall).max() < 0.12


def test_shapes_uses_only_the_requested_classes():
    dataset = shapes(30, size=32, seed=0, classes=("ring", "cross"))
    assert dataset.class_names == ("ring", "cross")
    assert set(dataset.y.tolist()) == {0, 1}
    centre_inside = [mask[int(y), int(x)] for mask, (y, x) in zip(dataset.masks, dataset.meta["per_sample"]["centre"])]
    np.testing.assert_array_equal(centre_inside, dataset.y == 1)  # rings have a hole, crosses do not


@pytest.mark.parametrize(
    "arguments, argument_name",
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"size": 16}, "size"),
        ({"seed": -1}, "seed"),
        ({"classes": ("circle", "hexagon")}, "classes"),
        ({"classes": ()}, "classes"),
        ({"classes": "circle"}, "classes"),
        ({"classes": ("circle", "circle")}, "classes"),
        ({"watermark_prob": 1.5}, "watermark_prob"),
        ({"watermark_strength": -0.1}, "watermark_strength"),
        ({"watermark_corner": "middle"}, "watermark_corner"),
        ({"noise": -0.01}, "noise"),
        ({"clutter": -1}, "clutter"),
        ({"scale_range": (0.3, 0.1)}, "scale_range"),
        ({"max_rotation": 90}, "max_rotation"),
    ],
)
def test_shapes_rejects_bad_arguments(arguments, argument_name):
    call = {"n": 2, "size": 32, **arguments}
    with pytest.raises(ValueError, match=argument_name):
        shapes(**call)


# ----------------------------------------------------------------------------
# motifs


def test_motif_sequences_are_one_hot():
    dataset = motifs(20, length=100, seed=0)
    assert dataset.x.shape == (20, 4, 100) and dataset.x.dtype == np.float32
    assert set(np.unique(dataset.x).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(dataset.x.sum(axis=1), 1.0)
    assert dataset.masks.shape == (20, 100) and dataset.value_range == (0.0, 1.0)


def test_motif_masks_mark_planted_motifs():
    dataset = motifs(60, length=80, seed=1, motif_noise=0.0, copies=(1, 3))
    assert dataset.class_names == ("background", "motif_a", "motif_b")
    assert dataset.meta["consensus"] == DEFAULT_MOTIFS[:2]
    sequences = sequences_to_strings(dataset.x)
    starts = dataset.meta["per_sample"]["motif_starts"]
    for label, sequence, mask, sample_starts in zip(dataset.y, sequences, dataset.masks, starts):
        planted = sample_starts[sample_starts >= 0]
        if label == 0:
            assert not mask.any() and planted.size == 0
            continue
        motif = DEFAULT_MOTIFS[label - 1]
        # Every copy is the exact consensus (no noise), copies do not overlap,
        # and the mask is exactly the union of the copies.
        assert 1 <= planted.size <= 3
        assert mask.sum() == planted.size * len(motif)
        expected_mask = np.zeros_like(mask)
        for start in planted:
            assert sequence[start : start + len(motif)] == motif
            expected_mask[start : start + len(motif)] = True
        np.testing.assert_array_equal(mask, expected_mask)
    assert set(dataset.y.tolist()) == {0, 1, 2}


def test_motif_both_strands_plants_reverse_complements():
    dataset = motifs(40, length=60, seed=2, motif_noise=0.0, both_strands=True)
    sequences = sequences_to_strings(dataset.x)
    info = dataset.meta["per_sample"]
    reverse_seen = forward_seen = False
    samples = zip(dataset.y, sequences, info["motif_starts"], info["motif_reverse"])
    for label, sequence, sample_starts, reverse in samples:
        if label == 0:
            continue
        motif = DEFAULT_MOTIFS[label - 1]
        for start, is_reverse in zip(sample_starts[sample_starts >= 0], reverse):
            expected = _reverse_complement(motif) if is_reverse else motif
            assert sequence[start : start + len(motif)] == expected
            reverse_seen |= bool(is_reverse)
            forward_seen |= not is_reverse
    assert reverse_seen and forward_seen


def test_motif_is_deterministic_for_a_seed():
    _assert_datasets_equal(motifs(10, seed=4, length=50), motifs(10, seed=4, length=50))
    assert not np.array_equal(motifs(10, seed=4, length=50).x, motifs(10, seed=5, length=50).x)


def test_motif_sequence_does_not_depend_on_batch_size():
    _assert_datasets_equal(motifs(5, seed=8, length=50), motifs(13, seed=8, length=50)[:5])


def test_motif_noise_mutates_the_expected_fraction_of_motif_bases():
    dataset = motifs(300, length=40, seed=3, motif_noise=0.2, copies=(1, 1))
    sequences = sequences_to_strings(dataset.x)
    mismatches = total = 0
    for label, sequence, sample_starts in zip(dataset.y, sequences, dataset.meta["per_sample"]["motif_starts"]):
        if label == 0:
            continue
        motif = DEFAULT_MOTIFS[label - 1]
        start = sample_starts[0]
        mismatches += sum(a != b for a, b in zip(sequence[start : start + len(motif)], motif))
        total += len(motif)
    assert 0.16 < mismatches / total < 0.24


def test_motif_gc_content_biases_the_background():
    dataset = motifs(50, length=200, seed=0, gc_content=0.8)
    background = ~dataset.masks
    gc_fraction = (dataset.x[:, 1][background].sum() + dataset.x[:, 2][background].sum()) / background.sum()
    assert abs(gc_fraction - 0.8) < 0.02


def test_motifs_accepts_custom_pwms_and_no_background_class():
    pwm = np.zeros((4, 5))
    pwm[[0, 1, 2, 3, 0], np.arange(5)] = 1.0  # always "ACGTA"
    dataset = motifs(20, length=30, seed=0, motifs=["TTTTTTTT", pwm], background_class=False)
    assert dataset.class_names == ("motif_a", "motif_b")
    assert dataset.meta["consensus"] == ("TTTTTTTT", "ACGTA")
    sequences = sequences_to_strings(dataset.x)
    for label, sequence, sample_starts in zip(dataset.y, sequences, dataset.meta["per_sample"]["motif_starts"]):
        assert sample_starts[0] >= 0  # every sequence carries a motif
        if label == 1:
            assert sequence[sample_starts[0] : sample_starts[0] + 5] == "ACGTA"


@pytest.mark.parametrize(
    "arguments, argument_name",
    [
        ({"n": 0}, "n"),
        ({"length": 15}, "length"),
        ({"seed": -3}, "seed"),
        ({"motifs": ["ACGN"]}, "motifs"),
        ({"motifs": []}, "motifs"),
        ({"motifs": [np.ones((3, 4))]}, "motifs"),
        ({"motifs": ["ACGTAC"], "n_classes": 3}, "n_classes"),
        ({"n_classes": 9}, "n_classes"),
        ({"copies": (2, 1)}, "copies"),
        ({"motif_noise": 1.0}, "motif_noise"),
        ({"gc_content": 0.0}, "gc_content"),
    ],
)
def test_motifs_rejects_bad_arguments(arguments, argument_name):
    call = {"n": 2, "length": 30, **arguments}
    with pytest.raises(ValueError, match=argument_name):
        motifs(**call)


# ----------------------------------------------------------------------------
# digits


def test_digits_split_is_disjoint_and_covers_all():
    pytest.importorskip("sklearn")
    everything = digits("all")
    train = digits("train", seed=3)
    test = digits("test", seed=3)
    train_indices = train.meta["per_sample"]["index"]
    test_indices = test.meta["per_sample"]["index"]
    assert len(everything) == 1797
    assert not set(train_indices.tolist()) & set(test_indices.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([train_indices, test_indices])), np.arange(1797))
    assert len(test) == round(0.25 * 1797)
    np.testing.assert_array_equal(test.x, everything.x[test_indices])
    np.testing.assert_array_equal(train.y, everything.y[train_indices])


def test_digits_split_depends_only_on_the_seed():
    pytest.importorskip("sklearn")
    first = digits("test", seed=1)
    np.testing.assert_array_equal(first.meta["per_sample"]["index"], digits("test", seed=1).meta["per_sample"]["index"])
    assert not np.array_equal(first.meta["per_sample"]["index"], digits("test", seed=2).meta["per_sample"]["index"])
    assert len(digits("test", seed=1, test_fraction=0.5)) == round(0.5 * 1797)


def test_digits_are_nchw_float32_scaled_to_unit_range():
    pytest.importorskip("sklearn")
    dataset = digits()
    assert dataset.x.shape == (1797, 1, 8, 8) and dataset.x.dtype == np.float32
    assert dataset.x.min() == 0.0 and dataset.x.max() == 1.0
    assert dataset.masks is None and dataset.boxes is None
    assert dataset.class_names == tuple("0123456789") and dataset.value_range == (0.0, 1.0)
    assert set(dataset.y.tolist()) == set(range(10))


@pytest.mark.parametrize(
    "arguments, argument_name",
    [({"split": "validation"}, "split"), ({"test_fraction": 1.0}, "test_fraction"), ({"seed": -1}, "seed")],
)
def test_digits_rejects_bad_arguments(arguments, argument_name):
    with pytest.raises(ValueError, match=argument_name):
        digits(**arguments)


def test_digits_names_the_install_extra_when_scikit_learn_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"lrpcore\[eval\]"):
        digits()
