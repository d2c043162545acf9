"""The :class:`Dataset` container shared by all data generators and loaders.

A dataset is a handful of aligned NumPy arrays (inputs, labels, optional
ground-truth masks and boxes) plus the information an explanation evaluation
needs to interpret them: the class names, the range of raw input values (for
reference inputs and bounded LRP rules) and free-form metadata recording how
the data was made (seed, options), so that results can be reproduced.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

__all__ = ["Dataset", "PER_SAMPLE_KEY", "seeded_generator"]

#: Key in :attr:`Dataset.meta` holding a dict of per-sample arrays (first axis
#: of length N). They are indexed together with ``x`` and ``y`` when a dataset
#: is sliced; everything else in ``meta`` is copied unchanged.
PER_SAMPLE_KEY = "per_sample"


def seeded_generator(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """Return the random generator for sample ``index`` of a dataset made with ``seed``.

    Each sample gets its own generator derived from ``SeedSequence(seed)`` with
    spawn key ``(index, stream)``, the same keys ``SeedSequence.spawn`` would
    produce. Sample ``index`` therefore does not depend on how many samples are
    generated, and independent ``stream`` numbers give independent random
    streams for optional features (a watermark, say) without disturbing the
    main one.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(index, stream))
    return np.random.default_rng(sequence)


def check_seed(seed: Any) -> int:
    """Validate a user-facing ``seed`` argument and return it as a Python int."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """Validate an integer argument ``name`` that must be at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_probability(name: str, value: Any) -> float:
    """Validate a float argument ``name`` that must lie in [0, 1]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return number


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Inputs, labels and ground truth for explanation experiments.

    Attributes
    ----------
    x:
        Inputs, float32, first axis = samples (images are NCHW, sequences are
        N x channels x length).
    y:
        Integer class labels (int64), shape ``(N,)``, indexing ``class_names``.
    masks:
        Boolean ground truth of where the class evidence lies (``True`` = the
        pixel/position belongs to the object or motif), first axis N, or
        ``None`` when the data has no ground truth.
    boxes:
        Integer bounding boxes ``(N, 4)`` as ``(y0, x0, y1, x1)`` with
        half-open ends (``image[y0:y1, x0:x1]`` is the box), or ``None``.
    class_names:
        Human-readable name of each class.
    value_range:
        ``(low, high)`` bounds of the raw input values, e.g. for the
        z^B rule or for choosing a reference input.
    meta:
        How the data was made (generator name, seed, options). The optional
        entry ``meta["per_sample"]`` is a dict of arrays with first axis N that
        are sliced along with the samples.

    ``len(dataset)`` is the number of samples. Indexing with a slice, an
    integer array or a boolean mask returns a new :class:`Dataset` with the
    selected samples; an integer ``i`` returns the length-1 dataset
    ``dataset[i:i+1]`` (so batch dimensions are kept).
    """

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    value_range: tuple[float, float] = (0.0, 1.0)
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        inputs = np.asarray(self.x, dtype=np.float32)
        labels = np.asarray(self.y, dtype=np.int64)
        if inputs.ndim < 1:
            raise ValueError(f"x must have a sample axis, got shape {inputs.shape}")
        count = inputs.shape[0]
        if labels.shape != (count,):
            raise ValueError(
                f"y must have shape ({count},) to match x of shape {inputs.shape}, "
                f"got {labels.shape}"
            )
        masks = None
        if self.masks is not None:
            masks = np.asarray(self.masks, dtype=bool)
            if masks.ndim < 1 or masks.shape[0] != count:
                raise ValueError(
                    f"masks must have {count} samples on the first axis, got shape {masks.shape}"
                )
        boxes = None
        if self.boxes is not None:
            boxes = np.asarray(self.boxes, dtype=np.int64)
            if boxes.shape != (count, 4):
                raise ValueError(f"boxes must have shape ({count}, 4), got {boxes.shape}")
        class_names = tuple(str(name) for name in self.class_names)
        if class_names and count and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(
                f"labels must lie in [0, {len(class_names)}) to index class_names, "
                f"got range [{labels.min()}, {labels.max()}]"
            )
        low, high = (float(bound) for bound in self.value_range)
        if not low <= high:
            raise ValueError(f"value_range must be (low, high) with low <= high, got {self.value_range!r}")
        meta = dict(self.meta)
        per_sample = meta.get(PER_SAMPLE_KEY)
        if per_sample is not None:
            per_sample = {key: np.asarray(value) for key, value in per_sample.items()}
            for key, value in per_sample.items():
                if value.ndim < 1 or value.shape[0] != count:
                    raise ValueError(
                        f"meta['{PER_SAMPLE_KEY}']['{key}'] must have {count} samples on the "
                        f"first axis, got shape {value.shape}"
                    )
            meta[PER_SAMPLE_KEY] = per_sample
        for name, value in (
            ("x", inputs),
            ("y", labels),
            ("masks", masks),
            ("boxes", boxes),
            ("class_names", class_names),
            ("value_range", (low, high)),
            ("meta", meta),
        ):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: Any) -> "Dataset":
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            count = len(self)
            position = int(index) + count if index < 0 else int(index)
            if not 0 <= position < count:
                raise IndexError(f"index {index} is out of range for a dataset of {count} samples")
            index = slice(position, position + 1)
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype != bool and not np.issubdtype(index.dtype, np.integer):
                raise TypeError(
                    "Dataset indices must be an int, a slice, an integer array or a "
                    f"boolean mask, got {index.dtype} array"
                )
        meta = dict(self.meta)
        if PER_SAMPLE_KEY in meta:
            meta[PER_SAMPLE_KEY] = {key: value[index] for key, value in meta[PER_SAMPLE_KEY].items()}
        return Dataset(
            x=self.x[index],
            y=self.y[index],
            masks=None if self.masks is None else self.masks[index],
            boxes=None if self.boxes is None else self.boxes[index],
            class_names=self.class_names,
            value_range=self.value_range,
            meta=meta,
        )

    @property
    def n_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)

    def __repr__(self) -> str:
        masks = "None" if self.masks is None else f"bool{self.masks.shape}"
        boxes = "None" if self.boxes is None else f"int{self.boxes.shape}"
        generator = self.meta.get("generator", "?")
        return (
            f"Dataset(generator={generator!r}, n={len(self)}, x=float32{self.x.shape}, "
            f"masks={masks}, boxes={boxes}, class_names={self.class_names}, "
            f"value_range={self.value_range})"
        )
