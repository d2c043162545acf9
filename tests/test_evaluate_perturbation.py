"""Pixel flipping / region perturbation (``lrpcore.evaluate.pixel_flipping``)."""
import math

import numpy as np
import pytest

import lrpcore
from lrpcore.errors import DTypeError, InputValueError, ShapeError
from lrpcore.evaluate import pixel_flipping

from evaluate_helpers import CountingModel, linear_model, tiny_cnn

# f(x) = w · x on a 1-channel 2×2 image; with 1×1 patches LRP-0 relevance is w ⊙ x.
WEIGHT = np.array([[[[1.0, -1.0], [2.0, 0.5]]], [[[0.0, 1.0], [0.0, 0.0]]]])
IMAGE = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])          # relevance for class 0: [[1, -2], [6, 2]], f = 7


def _hand_curve(**options):
    model = linear_model(WEIGHT, value_range=(0.0, 10.0))
    relevance = lrpcore.explain(model, IMAGE, target=0).relevance
    defaults = dict(mode="constant", constant=0.0, patch_size=1, schedule=[1, 2, 3, 4], final_gray=False)
    defaults.update(options)
    return pixel_flipping(model, IMAGE, relevance, target=0, **defaults)


def test_morf_curve_of_a_linear_model_equals_the_hand_computed_scores():
    curve = _hand_curve(sort="morf")
    # patches by relevance: 6 (index 2), 2 (index 3), 1 (index 0), -2 (index 1)
    np.testing.assert_array_equal(curve.order, [[2, 3, 0, 1]])
    np.testing.assert_allclose(curve.scores, [[7.0, 1.0, -1.0, -2.0, 0.0]])
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.auc(), [0.25 * (4 + 0 - 1.5 - 1)])
    np.testing.assert_allclose(curve.auc(normalised=True), [0.375 / 7])
    np.testing.assert_allclose(curve.aopc(), [(0 + 6 + 8 + 9 + 7) / 5])
    assert curve.thesis_auc() == pytest.approx(1.5)
    assert curve.better == "lower"


def test_lrf_curve_flips_the_least_relevant_patch_first():
    curve = _hand_curve(sort="lrf")
    np.testing.assert_array_equal(curve.order, [[1, 0, 3, 2]])
    np.testing.assert_allclose(curve.scores, [[7.0, 9.0, 8.0, 6.0, 0.0]])
    assert curve.better == "higher"


def test_gray_step_is_the_value_range_midpoint_in_raw_space():
    curve = _hand_curve(final_gray=True, keep_images=True)
    np.testing.assert_allclose(curve.images[0, -1], np.full((1, 2, 2), 5.0))
    # f(gray) = 5 · (1 − 1 + 2 + 0.5)
    assert curve.scores[0, -1] == pytest.approx(12.5)
    assert curve.masks[0, -1].all() and curve.counts[-1] == curve.patch_count


def test_constant_mode_replaces_exactly_the_flipped_patches():
    model = tiny_cnn()
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, 16, 16)).astype(np.float32)
    relevance = lrpcore.explain(model, x).relevance
    curve = pixel_flipping(model, x, relevance, mode="constant", constant=(0.1, 0.2, 0.3), patch_size=4,
                           keep_images=True, final_gray=False)
    fill = np.array([0.1, 0.2, 0.3], dtype=np.float32).reshape(3, 1, 1)
    for image in range(2):
        np.testing.assert_array_equal(curve.images[image, 0], x[image])
        for step in range(1, curve.n_steps):
            mask = curve.masks[image, step]
            expected = np.where(mask[None], fill, x[image])
            np.testing.assert_array_equal(curve.images[image, step], expected)
            flipped = set(curve.order[image, :curve.counts[step]].tolist())
            patch_of_pixel = (np.arange(16)[:, None] // 4) * 4 + np.arange(16)[None, :] // 4
            np.testing.assert_array_equal(mask, np.isin(patch_of_pixel, list(flipped)))


@pytest.mark.parametrize("batch_size", [1, 7, 30, 64])
def test_model_calls_are_the_ceiling_of_images_times_steps_over_batch_size(batch_size):
    counting = CountingModel(tiny_cnn())
    x = np.random.default_rng(2).random((5, 3, 16, 16)).astype(np.float32)
    relevance = np.random.default_rng(3).normal(size=x.shape)
    curve = pixel_flipping(counting, x, relevance, mode="constant", patch_size=4, batch_size=batch_size)
    total = 5 * curve.n_steps                                  # quadratic on 16 patches: 0, 1, 4, 9, 16, gray
    assert curve.n_steps == 6
    assert counting.calls == curve.model_calls == math.ceil(total / batch_size)
    assert all(size == min(batch_size, total) for size in counting.batch_sizes[:-1])
    assert sum(counting.batch_sizes) == total


def test_batch_size_does_not_change_the_scores():
    model = tiny_cnn()
    x = np.random.default_rng(4).random((3, 3, 16, 16)).astype(np.float32)
    relevance = lrpcore.explain(model, x).relevance
    one = pixel_flipping(model, x, relevance, mode="random", patch_size=4, batch_size=1, seed=5)
    many = pixel_flipping(model, x, relevance, mode="random", patch_size=4, batch_size=100, seed=5)
    np.testing.assert_allclose(one.scores, many.scores, rtol=1e-5, atol=1e-6)


def test_each_image_has_its_own_random_stream_that_the_other_images_do_not_change():
    model = tiny_cnn()
    rng = np.random.default_rng(4)
    x = np.repeat(rng.random((1, 3, 16, 16)).astype(np.float32), 2, axis=0)   # the same image twice
    relevance = np.repeat(rng.normal(size=(1, 3, 16, 16)), 2, axis=0)
    options = dict(mode="random", sort="morf", patch_size=4, seed=11, keep_images=True)
    twins = pixel_flipping(model, x, relevance, **options)
    np.testing.assert_array_equal(twins.order[0], twins.order[1])              # same patches flipped...
    assert not np.array_equal(twins.images[0, 1:], twins.images[1, 1:])       # ...with different random values
    shuffled = pixel_flipping(model, x, relevance, **dict(options, sort="random"))
    assert not np.array_equal(shuffled.order[0], shuffled.order[1])
    changed = x.copy()
    changed[0] = rng.random((3, 16, 16))
    other = pixel_flipping(model, changed, relevance, **options)
    np.testing.assert_array_equal(other.order[1], twins.order[1])
    np.testing.assert_array_equal(other.images[1], twins.images[1])


def test_random_mode_is_the_thesis_gray_one_value_a_per_patch_in_every_channel():
    """Thesis: a flipped pixel RGB(i, j, k) becomes RGB(a, a, a), one uniform a per patch."""
    model = linear_model(np.ones((1, 3, 8, 8)), value_range=(-1.0, 2.0))
    x = np.zeros((1, 3, 8, 8))
    curve = pixel_flipping(model, x, np.ones((1, 3, 8, 8)), mode="random", patch_size=4, schedule=[2, 4],
                           keep_images=True, seed=0, final_gray=False)
    images, grays = curve.images[0], []
    for step in (1, 2):
        for top in (0, 4):
            for left in (0, 4):
                patch = images[step, :, top:top + 4, left:left + 4]
                if curve.masks[0, step, top, left]:
                    assert np.all(patch == patch[0, 0, 0])            # one value: all pixels, all channels
                    assert -1.0 <= patch[0, 0, 0] < 2.0
                    grays.append(patch[0, 0, 0])
                else:
                    assert np.all(patch == 0.0)
    assert len(grays) == 2 + 4 and len(np.unique(grays)) == len(grays)   # a fresh a per patch and step


def test_random_channels_mode_draws_one_value_per_patch_and_channel_within_the_value_range():
    model = linear_model(np.ones((1, 3, 8, 8)), value_range=(-1.0, 2.0))
    x = np.zeros((1, 3, 8, 8))
    curve = pixel_flipping(model, x, np.ones((1, 3, 8, 8)), mode="random_channels", patch_size=4, schedule=[2, 4],
                           keep_images=True, seed=0, final_gray=False)
    images = curve.images[0]
    for step in (1, 2):
        for top in (0, 4):
            for left in (0, 4):
                patch = images[step, :, top:top + 4, left:left + 4]
                if curve.masks[0, step, top, left]:
                    assert np.all(patch == patch[:, :1, :1])          # constant over the patch, per channel
                    assert np.all((patch >= -1.0) & (patch <= 2.0))
                    assert len(np.unique(patch[:, 0, 0])) == 3       # a colour, not one grey value
                else:
                    assert np.all(patch == 0.0)


def test_reperturb_draws_fresh_values_and_without_it_flipped_patches_keep_theirs():
    model = linear_model(np.ones((1, 1, 8, 8)))
    x = np.zeros((1, 1, 8, 8))
    relevance = np.arange(64, dtype=float).reshape(1, 1, 8, 8)
    options = dict(mode="random", patch_size=4, schedule=[1, 2, 4], keep_images=True, final_gray=False)
    fresh = pixel_flipping(model, x, relevance, reperturb=True, **options).images[0]
    kept = pixel_flipping(model, x, relevance, reperturb=False, **options).images[0]
    first = curve_mask = fresh[1] != 0
    assert curve_mask.sum() == 16
    np.testing.assert_array_equal(kept[2][first], kept[1][first])     # the first patch keeps its value
    assert not np.array_equal(fresh[2][first], fresh[1][first])       # it is redrawn with reperturb


def test_without_reperturb_inpainting_fills_only_the_new_patches_of_the_previous_image():
    from lrpcore.evaluate import inpaint_telea

    model = linear_model(np.ones((1, 3, 16, 16)))
    rng = np.random.default_rng(9)
    x = rng.random((1, 3, 16, 16))
    curve = pixel_flipping(model, x, rng.normal(size=x.shape), mode="inpaint", patch_size=4, schedule=[2, 5, 9],
                           reperturb=False, keep_images=True, final_gray=False)
    images, masks = curve.images[0], curve.masks[0]
    for step in range(1, curve.n_steps):
        expected = inpaint_telea(images[step - 1], masks[step] & ~masks[step - 1], (0.0, 1.0))
        np.testing.assert_allclose(images[step], expected, rtol=1e-12)
    again = pixel_flipping(model, x, rng.normal(size=x.shape), mode="inpaint", patch_size=4, schedule=[2, 5, 9],
                           reperturb=True, keep_images=True, final_gray=False)
    np.testing.assert_allclose(again.images[0, 2], inpaint_telea(x[0], again.masks[0, 2], (0.0, 1.0)), rtol=1e-12)


def test_inpainting_goes_through_deprocess_and_keeps_unmasked_pixels_exact():
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    model = linear_model(np.ones((2, 3, 16, 16)) / 100, value_range=(0.0, 1.0), mean=mean, std=std)
    rng = np.random.default_rng(6)
    raw = rng.random((2, 3, 16, 16))
    x = model.metadata.preprocess(raw)
    relevance = rng.normal(size=x.shape)
    curve = pixel_flipping(model, x, relevance, mode="inpaint", patch_size=4, keep_images=True, final_gray=False)
    restored = model.metadata.deprocess(curve.images.reshape(-1, 3, 16, 16)).reshape(curve.images.shape)
    assert restored.min() >= -1e-9 and restored.max() <= 1 + 1e-9          # inpainted in raw [0, 1]
    for image in range(2):
        for step in range(1, curve.n_steps):
            keep = ~curve.masks[image, step]
            np.testing.assert_allclose(curve.images[image, step][:, keep], x[image][:, keep], rtol=1e-12)
            if 0 < curve.masks[image, step].sum() < 256:
                changed = restored[image, step][:, ~keep]
                np.testing.assert_allclose(changed * 255, np.rint(changed * 255), atol=1e-6)  # 8-bit levels


def test_inpainting_a_flat_image_restores_its_colour():
    model = linear_model(np.ones((1, 3, 16, 16)))
    x = np.empty((1, 3, 16, 16))
    x[0] = np.array([0.2, 0.6, 0.8]).reshape(3, 1, 1)
    relevance = np.random.default_rng(0).normal(size=x.shape)
    curve = pixel_flipping(model, x, relevance, mode="inpaint", patch_size=4, schedule=[3, 9], keep_images=True,
                           final_gray=False)
    # Telea's weighted average is not exact in 8 bits: within a few grey levels of the colour
    np.testing.assert_allclose(curve.images[0, 1:], np.broadcast_to(x[0], (2, 3, 16, 16)), atol=3 / 255)


def test_flipping_every_patch_with_inpainting_gives_the_gray_image_not_the_input():
    model = linear_model(np.ones((1, 3, 8, 8)))
    x = np.random.default_rng(0).random((1, 3, 8, 8))
    curve = pixel_flipping(model, x, x, mode="inpaint", patch_size=4, keep_images=True)
    assert curve.counts[-2] == curve.patch_count
    np.testing.assert_allclose(curve.images[0, -2], 0.5)


def test_random_heatmap_curves_match_the_random_sort_and_a_faithful_heatmap_does_not():
    model = tiny_cnn(seed=1)
    rng = np.random.default_rng(7)
    x = rng.random((48, 3, 16, 16)).astype(np.float32)
    noise = rng.normal(size=x.shape)
    options = dict(mode="constant", patch_size=4, schedule="linear", steps=8, batch_size=256, score="probability")
    reference = pixel_flipping(model, x, noise, sort="random", seed=1, **options).auc()
    spread = reference.std() / np.sqrt(len(reference))
    for sort in ("morf", "lrf"):
        random_heatmap = pixel_flipping(model, x, noise, sort=sort, **options).auc()
        assert abs(random_heatmap.mean() - reference.mean()) < 3 * spread
    relevance = lrpcore.explain(model, x).relevance
    morf = pixel_flipping(model, x, relevance, sort="morf", **options).auc().mean()
    lrf = pixel_flipping(model, x, relevance, sort="lrf", **options).auc().mean()
    assert morf < reference.mean() - 3 * spread and lrf > reference.mean() + 3 * spread


def test_sequences_are_perturbed_in_windows():
    weight = np.ones((1, 4, 12))
    model = linear_model(weight)
    x = np.random.default_rng(0).random((2, 4, 12))
    relevance = np.zeros((2, 4, 12))
    relevance[:, :, 4:8] = 1.0
    curve = pixel_flipping(model, x, relevance, mode="constant", constant=0.0, patch_size=4, schedule=[1],
                           final_gray=False)
    np.testing.assert_array_equal(curve.order[:, 0], [1, 1])
    np.testing.assert_allclose(curve.scores[:, 1], x[:, :, [0, 1, 2, 3, 8, 9, 10, 11]].sum(axis=(1, 2)))


def test_probability_scores_are_softmax_of_the_target():
    curve = _hand_curve(score="probability")
    logits = np.array([7.0, 2.0])  # class 1 logit is x[0, 1] = 2
    assert curve.scores[0, 0] == pytest.approx(np.exp(7) / np.exp(logits).sum())


def test_target_pred_uses_the_unperturbed_prediction():
    model = linear_model(WEIGHT, value_range=(0.0, 10.0))
    curve = pixel_flipping(model, IMAGE, np.ones((1, 1, 2, 2)), mode="constant", patch_size=1)
    assert curve.targets.tolist() == [0]
    other = pixel_flipping(model, IMAGE, np.ones((1, 1, 2, 2)), target=1, mode="constant", patch_size=1)
    assert other.scores[0, 0] == pytest.approx(2.0)


def test_normalised_scores_refuse_a_non_positive_start_and_name_the_image():
    curve = _hand_curve(sort="morf")
    curve.scores[0, 0] = -1.0
    with pytest.raises(InputValueError, match=r"image\(s\) \[0\]"):
        curve.normalised_scores
    assert curve.summary()["auc_normalised"] is None


@pytest.mark.parametrize("change, error, message", [
    (dict(relevance=np.zeros((1, 1, 3, 3))), ShapeError, "relevance must match"),
    (dict(target=5), InputValueError, "out of range"),
    (dict(target=[0, 1]), ShapeError, "one int or 1 ints"),
    (dict(mode="blur"), ValueError, "mode must be"),
    (dict(sort="best"), ValueError, "sort must be"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(value_range=(1.0, 1.0)), ValueError, "value_range"),
    (dict(constant=(1.0, 2.0)), ShapeError, "constant"),
])
def test_bad_arguments_raise_clear_errors(change, error, message):
    model = linear_model(WEIGHT, value_range=(0.0, 10.0))
    arguments = dict(model=model, x=IMAGE, relevance=np.ones((1, 1, 2, 2)), target=0, mode="constant", patch_size=1)
    arguments.update(change)
    with pytest.raises(error, match=message):
        pixel_flipping(**arguments)


def test_inputs_with_nan_or_integers_are_refused():
    model = linear_model(WEIGHT)
    bad = IMAGE.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputValueError, match="NaN"):
        pixel_flipping(model, bad, np.ones((1, 1, 2, 2)), mode="constant", patch_size=1)
    with pytest.raises(DTypeError):
        pixel_flipping(model, IMAGE.astype(np.int64), np.ones((1, 1, 2, 2)), mode="constant", patch_size=1)


def test_timings_split_model_inpainting_and_total():
    model = tiny_cnn()
    x = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    curve = pixel_flipping(model, x, np.random.default_rng(1).normal(size=x.shape), patch_size=4)
    timings = curve.timings
    assert timings["model"] > 0 and timings["inpaint"] > 0
    assert timings["model"] + timings["inpaint"] <= timings["total"]
    assert curve.overhead_seconds == pytest.approx(timings["total"] - timings["model"] - timings["inpaint"])


def test_inpainting_sequences_keeps_the_unflipped_positions():
    model = linear_model(np.ones((1, 4, 40)))
    x = np.random.default_rng(0).random((2, 4, 40))
    curve = pixel_flipping(model, x, x, mode="inpaint", patch_size=5, keep_images=True, final_gray=False)
    for step in range(1, curve.n_steps):
        keep = ~curve.masks[0, step, 0]
        np.testing.assert_array_equal(curve.images[0, step][:, keep], x[0][:, keep])
        assert not np.array_equal(curve.images[0, step], x[0])


def test_pixel_flipping_gives_the_same_curve_on_every_backend(backend):
    model = tiny_cnn()
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 16, 16)).astype(np.float32)
    relevance = rng.normal(size=x.shape).astype(np.float32)
    reference = pixel_flipping(model, x, relevance, patch_size=4)
    moved = model.to(backend)
    xp = moved.namespace()
    curve = pixel_flipping(moved, lrpcore.backend.to_backend(x, xp), lrpcore.backend.to_backend(relevance, xp),
                           patch_size=4)
    np.testing.assert_allclose(curve.scores, reference.scores, rtol=1e-6)
