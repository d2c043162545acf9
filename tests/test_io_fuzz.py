"""Fuzzing the model loader: damaged files give ModelFormatError (or FileNotFoundError), never anything else.

Hypothesis mutates one valid file per example: byte flips and truncation at random offsets, and
structural edits made with h5py (attributes deleted or given other values and types, datasets
reshaped, re-typed or removed, groups removed). Whatever happens, ``lrpcore.load`` must either
return a complete model or raise one of the documented exceptions; a model it returns must
run. About 100 examples in all, a few seconds.

Graph files (format version 2) get the same treatment plus edits of the graph itself: a node
reading a later node (a cycle), a name that does not exist (a missing input), a node nobody
reads (dangling), two nodes of one name, and random rewrites of the names, inputs and counts.
A malformed graph must give ModelFormatError naming the file, never a hang: every load runs
under an alarm, so a loader that loops fails the test instead of blocking the suite.
"""
from __future__ import annotations

import contextlib
import shutil
import signal

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrpcore
from lrpcore import Graph
from lrpcore.errors import ModelFormatError

from io_helpers import (create_checksummed, every_layer_model, every_node_graph, fixed_text,
                        read_graph_attributes, write_graph_attributes)

DOCUMENTED = (ModelFormatError, FileNotFoundError)
FUZZ_SETTINGS = settings(deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


#: Seconds one load may take before the test calls it a hang (a load takes milliseconds).
HANG_SECONDS = 30


@pytest.fixture(scope="module", params=["chain", "graph"])
def valid_file(tmp_path_factory, request):
    path = tmp_path_factory.mktemp("fuzz") / f"valid_{request.param}.h5"
    lrpcore.save(every_layer_model() if request.param == "chain" else every_node_graph(), path)
    return path


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "valid_graph.h5"
    lrpcore.save(every_node_graph(), path)
    return path


@contextlib.contextmanager
def _no_hang(seconds: int = HANG_SECONDS):
    """Fail instead of blocking when the body runs longer than ``seconds`` (where SIGALRM exists)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hang(signum, frame):
        raise AssertionError(f"lrpcore.load did not finish within {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


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


def _load_survives(path, names_file: bool = False) -> None:
    """The property: a model that is complete and runs, or a documented exception (naming the file,
    where ``names_file``), within ``HANG_SECONDS``."""
    try:
        with _no_hang():
            model = lrpcore.load(path)
    except DOCUMENTED as error:
        assert not names_file or str(path) in str(error)
        return
    assert isinstance(model, Graph)
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


# --- graph attributes (format version 2) -----------------------------------------------------------
GRAPH_DAMAGE = ("cycle", "missing input", "dangling node", "duplicate name")


def _damage(names: list[str], inputs: list[list[str]], damage: str, data) -> None:
    """Make the graph malformed in the way ``damage`` says, at places hypothesis draws."""
    count = len(names)
    if damage == "cycle":               # node i reads node j that depends on i (or itself): a real cycle
        i = data.draw(st.integers(0, count - 1), label="reader")
        depends_on_i = [i]              # the nodes are stored in topological order: i's dependants follow it
        for later in range(i + 1, count):
            if any(names[earlier] in inputs[later] for earlier in depends_on_i):
                depends_on_i.append(later)
        j = data.draw(st.sampled_from(depends_on_i), label="read")
        k = data.draw(st.integers(0, len(inputs[i]) - 1), label="slot")
        inputs[i][k] = names[j]
    elif damage == "missing input":
        i = data.draw(st.integers(0, count - 1), label="reader")
        k = data.draw(st.integers(0, len(inputs[i]) - 1), label="slot")
        inputs[i][k] = data.draw(texts.filter(lambda name: name not in names and name != "input"), label="name")
    elif damage == "dangling node":     # node i's output is read by nobody, and it is not the last node
        i = data.draw(st.integers(0, count - 2), label="unread")
        for item in inputs:
            for k, name in enumerate(item):
                if name == names[i]:
                    item[k] = names[i - 1] if i > 0 else "input"
    else:
        i, j = data.draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=2, unique=True), label="pair")
        names[i] = names[j]


@settings(FUZZ_SETTINGS, max_examples=30)
@given(data=st.data())
def test_malformed_graphs_are_refused_with_model_format_error(graph_file, tmp_path, data):
    path = tmp_path / "graph.h5"
    shutil.copyfile(graph_file, path)
    names, inputs = read_graph_attributes(path)
    damage = data.draw(st.sampled_from(GRAPH_DAMAGE), label="damage")
    _damage(names, inputs, damage, data)
    write_graph_attributes(path, names, inputs)
    with pytest.raises(ModelFormatError) as error, _no_hang():
        lrpcore.load(path)
    assert str(path) in str(error.value) and ": graph: " in str(error.value)


@settings(FUZZ_SETTINGS, max_examples=30)
@given(data=st.data())
def test_random_graph_attributes_give_only_documented_errors(graph_file, tmp_path, data):
    path = tmp_path / "graph.h5"
    shutil.copyfile(graph_file, path)
    names, inputs = read_graph_attributes(path)
    pool = st.sampled_from(names + ["input"]) | texts
    count = len(names)
    new_names = data.draw(st.lists(pool, min_size=count - 1, max_size=count + 1), label="names")
    new_inputs = [data.draw(st.lists(pool, min_size=0, max_size=3), label="inputs") for _ in new_names]
    counts = None
    if data.draw(st.booleans(), label="random counts"):
        counts = data.draw(st.lists(st.integers(-2, 4), min_size=len(new_names), max_size=len(new_names)),
                           label="counts")
    write_graph_attributes(path, new_names, new_inputs, counts)
    _load_survives(path, names_file=True)
