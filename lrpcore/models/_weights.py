"""Checking a state dict against the parameter shapes an architecture expects (shared by VGG and ResNet)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy

from ..errors import ModelFormatError

__all__ = ["matched_arrays", "cast_arrays"]


def matched_arrays(arrays: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], what: str) -> dict[str, Any]:
    """The entries of ``arrays`` named in ``expected``, after checking that none is missing or unexpected
    (``num_batches_tracked`` is ignored), that every shape is the expected one and every dtype floating
    point; errors name the entries and ``what`` (e.g. "vgg16 at input size 224")."""
    present = {name for name in arrays if not name.endswith("num_batches_tracked")}
    missing = [name for name in expected if name not in present]
    unexpected = sorted(present - set(expected))
    if missing or unexpected:
        raise ModelFormatError(f"state dict does not match {what}: "
                               f"missing {missing[:5]}{f'... ({len(missing)} in all)' if len(missing) > 5 else ''}, "
                               f"unexpected {unexpected[:5]}"
                               f"{f'... ({len(unexpected)} in all)' if len(unexpected) > 5 else ''}")
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != shape:
            raise ModelFormatError(f"state dict entry {name!r} has shape {tuple(arrays[name].shape)}, "
                                   f"{what} needs {shape}")
        if not numpy.issubdtype(numpy.asarray(arrays[name]).dtype, numpy.floating):
            raise ModelFormatError(f"state dict entry {name!r} has dtype {arrays[name].dtype}, not floating point")
    return {name: arrays[name] for name in expected}


def cast_arrays(arrays: Mapping[str, Any], dtype: str | None) -> dict[str, Any]:
    """The arrays as NumPy arrays of ``dtype`` ("float32" or "float64"; None keeps each array's own)."""
    if dtype is None:
        return dict(arrays)
    target = numpy.dtype(dtype)
    if target not in (numpy.float32, numpy.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return {name: numpy.asarray(value, dtype=target) for name, value in arrays.items()}
