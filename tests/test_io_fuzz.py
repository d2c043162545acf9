"""Fuzzing the model loader: damaged files give ModelFormatError (or FileNotFoundError), never anything else.

Hypothesis mutates one valid file per example: byte flips and truncation at random offsets, and
structural edits made with h5py (attributes deleted or given other values and types, datasets
reshaped, re-typed or removed, groups removed). Whatever happens, ``lrpcore.load`` must either
return a complete model or raise one of the documented exceptions; a model it returns must
run. About 100 examples in all, a few seconds.
"""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrpcore
from lrpcore import Sequential
from lrpcore.errors import ModelFormatError

from io_helpers import create_checksummed, every_layer_model, fixed_text

DOCUMENTED = (ModelFormatError, FileNotFoundError)
FUZZ_SETTINGS = settings(deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "valid.h5"
    lrpcore.save(every_layer_model(), path)
    return path


def _inventory(path) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(attribute (object, name) pairs, dataset paths, group paths) of the file."""
    attributes, datasets, groups = [], [], []
    with h5py.File(path, "r") as handle:
        attributes.extend(("/", name) for name in handle.attrs)
        def visit(name, item):
            attributes.extend((name, key) for key in item.attrs)
            (datasets if isinstance(item, h5py.Dataset) else groups).append(name)
        handle.visititems(visit)
    return attributes, datasets, groups


def _load_survives(path) -> None:
    """The property: a model that is complete and runs, or a documented exception."""
    try:
        model = lrpcore.load(path)
    except DOCUMENTED:
        return
    assert isinstance(model, Sequential)
    shape = model.metadata.input_shape or (3, 8, 8)
    output = model.forward(np.zeros((1, *shape), dtype=model.dtype or np.float32))
    assert np.all(np.isfinite(output))
    if model.metadata.class_names is not None:
        assert output.shape == (1, len(model.metadata.class_names))


texts = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8)
attribute_values = st.one_of(
    st.integers(-3, 70).map(np.int64), st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    texts.map(fixed_text), st.booleans().map(np.bool_),
    st.lists(st.integers(-2, 40), min_size=0, max_size=4).map(lambda v: np.asarray(v, dtype=np.int64)),
    st.lists(st.floats(-5, 5), min_size=1, max_size=4).map(lambda v: np.asarray(v, dtype=np.float32)),
    st.just(np.zeros((2, 2))),
)
metadata_values = {
    "input_shape": st.lists(st.integers(0, 12), min_size=0, max_size=4).map(lambda v: np.asarray(v, np.int64)),
    "class_names": st.lists(texts, min_size=0, max_size=5).map(fixed_text),
    "mean": st.lists(st.floats(-3, 3), min_size=0, max_size=4).map(np.asarray),
    "std": st.lists(st.floats(-1, 3), min_size=0, max_size=4).map(np.asarray),
    "value_range": st.lists(st.floats(-3, 3), min_size=0, max_size=3).map(np.asarray),
}
dataset_dtypes = st.sampled_from(["float16", "float32", "float64", "int32", "uint8", "complex64", "bool"])


@settings(FUZZ_SETTINGS, max_examples=35)
@given(data=st.data())
def test_flipped_bytes_and_truncation_give_only_documented_errors(valid_file, tmp_path, data):
    raw = bytearray(valid_file.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            offset = data.draw(st.integers(0, len(raw) - 1), label="offset")
            raw[offset] ^= data.draw(st.integers(1, 255), label="mask")
    path = tmp_path / "mutated.h5"
    path.write_bytes(bytes(raw))
    _load_survives(path)


@settings(FUZZ_SETTINGS, max_examples=65)
@given(data=st.data())
def test_structural_edits_give_only_documented_errors(valid_file, tmp_path, data):
    path = tmp_path / "edited.h5"
    shutil.copyfile(valid_file, path)
    attributes, datasets, groups = _inventory(path)
    edit = data.draw(st.sampled_from(["delete attribute", "alter attribute", "alter metadata", "reshape dataset",
                                      "retype dataset", "delete dataset", "delete group", "add entries"]))
    with h5py.File(path, "r+") as handle:
        if edit == "alter metadata":  # plausible values, so the consistency checks are reached
            name = data.draw(st.sampled_from(sorted(metadata_values)), label="field")
            handle["metadata"].attrs[name] = data.draw(metadata_values[name], label="value")
        elif edit in ("delete attribute", "alter attribute"):
            owner, name = data.draw(st.sampled_from(attributes), label="attribute")
            if edit == "delete attribute":
                del handle[owner].attrs[name]
            else:
                handle[owner].attrs[name] = data.draw(attribute_values, label="value")
        elif edit in ("reshape dataset", "retype dataset", "delete dataset"):
            target = data.draw(st.sampled_from(datasets), label="dataset")
            original = handle[target][()]
            del handle[target]
            if edit == "reshape dataset":
                shape = tuple(data.draw(st.lists(st.integers(0, 9), min_size=0, max_size=4), label="shape"))
                create_checksummed(handle, target, np.ones(shape, dtype=original.dtype))
            elif edit == "retype dataset":
                create_checksummed(handle, target, original.astype(data.draw(dataset_dtypes, label="dtype")))
        elif edit == "delete group":
            del handle[data.draw(st.sampled_from(groups), label="group")]
        else:
            owner = data.draw(st.sampled_from(groups + ["/"]), label="owner")
            handle[owner].attrs["extra"] = 1
            handle[owner].create_group("extra_group")
    _load_survives(path)
