"""scikit-learn's bundled 8 x 8 handwritten digits, with a seeded train/test split.

The 1797 images ship inside scikit-learn, so they load offline; they are a
small real data set for quick end-to-end checks of models and explanations.
There is no ground-truth mask.
"""

from __future__ import annotations

import numpy as np

from .dataset import PER_SAMPLE_KEY, Dataset, check_seed

__all__ = ["digits", "SPLITS"]

#: Accepted values of the ``split`` argument.
SPLITS = ("all", "train", "test")

# Pixel values in the bundled data are integers 0..16.
_MAX_PIXEL_VALUE = 16.0


def _load_bundled_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "lrpcore.data.digits needs scikit-learn, which provides the bundled digits data; "
            "install it with `pip install lrpcore[eval]` or `pip install scikit-learn`"
        ) from error
    return load_digits()


def digits(split: str = "all", seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """Load the 8 x 8 handwritten digits as a :class:`Dataset`.

    Parameters
    ----------
    split:
        ``"all"`` (all 1797 images), ``"train"`` or ``"test"``.
    seed:
        Non-negative seed of the split: the test set is the first
        ``round(test_fraction * 1797)`` entries of
        ``np.random.default_rng(seed).permutation(1797)``, the training set
        the rest, so the two are disjoint and together cover all images.
        Unused for ``split="all"``.
    test_fraction:
        Fraction of images in the test set, strictly between 0 and 1.

    Returns
    -------
    Dataset
        ``x`` float32 ``(N, 1, 8, 8)`` scaled from 0..16 to [0, 1]; ``y``
        the digit (int64); ``masks`` and ``boxes`` ``None``; ``class_names``
        ``("0", ..., "9")``; ``value_range`` ``(0, 1)``; per-sample
        ``meta["per_sample"]["index"]`` gives each image's index in the
        bundled data (the subsets keep the bundled order).

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    seed = check_seed(seed)
    try:
        test_fraction = float(test_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}") from None
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")

    bundle = _load_bundled_digits()
    images = np.asarray(bundle.images, dtype=np.float32)[:, None, :, :] / np.float32(_MAX_PIXEL_VALUE)
    labels = np.asarray(bundle.target, dtype=np.int64)
    count = labels.shape[0]

    if split == "all":
        indices = np.arange(count)
    else:
        permutation = np.random.default_rng(seed).permutation(count)
        test_count = min(max(int(round(test_fraction * count)), 1), count - 1)
        chosen = permutation[:test_count] if split == "test" else permutation[test_count:]
        indices = np.sort(chosen)

    meta = {
        "generator": "digits",
        "source": "sklearn.datasets.load_digits",
        "split": split,
        "seed": seed,
        "test_fraction": test_fraction,
        PER_SAMPLE_KEY: {"index": indices},
    }
    return Dataset(
        x=images[indices],
        y=labels[indices],
        masks=None,
        boxes=None,
        class_names=tuple(str(digit) for digit in range(10)),
        value_range=(0.0, 1.0),
        meta=meta,
    )
