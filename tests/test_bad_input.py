"""Bad input gets a clear error naming the problem, never a silent wrong answer or NaN."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import explain
from lrpcore.rules import Epsilon

from _networks import relu_network


@pytest.fixture
def model():
    return relu_network()


def test_wrong_rank_names_the_expected_shape(model):
    with pytest.raises(lrpcore.ShapeError, match=r"input must have shape \(N, 3, 8, 8\), got rank 3"):
        explain(model, np.zeros((3, 8, 8)))


def test_wrong_shape_names_both_shapes(model):
    with pytest.raises(lrpcore.ShapeError, match=r"\(N, 3, 8, 8\), got \(2, 3, 9, 8\)"):
        explain(model, np.zeros((2, 3, 9, 8)))


def test_shape_error_inside_the_network_names_the_layer():
    model = relu_network()
    model.metadata.input_shape = None
    with pytest.raises(lrpcore.ShapeError, match=r"layer 0 \(Conv2d\(3→4.*expects 3 input channels"):
        model.forward(np.zeros((1, 2, 8, 8)))


def test_integer_input_is_refused_with_its_dtype(model):
    with pytest.raises(lrpcore.DTypeError, match="input dtype uint8 is not a real floating-point type"):
        explain(model, np.zeros((1, 3, 8, 8), dtype=np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_the_input_is_refused(model, bad):
    x = np.zeros((2, 3, 8, 8))
    x[1, 0, 2, 3] = bad
    with pytest.raises(lrpcore.InputValueError, match="contains NaN or inf"):
        explain(model, x)


@pytest.mark.parametrize("target, message", [(5, r"target \[5, 5\] out of range for 5 classes"),
                                             ([0, -1], "out of range"),
                                             ([0, 1, 2], r"one int or 2 ints \(one per sample\)"),
                                             ("cat", "'cat' is a class name, but model '.*' has no class names"),
                                             ([0.5, 1.0], "target must hold integers")])
def test_bad_target_is_refused(model, target, message):
    with pytest.raises((lrpcore.InputValueError, lrpcore.ShapeError), match=message):
        explain(model, np.zeros((2, 3, 8, 8)), target=target)


def test_unknown_stabilizer_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown stabilizer 'vanila'; expected one of \['quadratic_mean'"):
        Epsilon(0.1, stabilizer="vanila")
    with pytest.raises(ValueError, match="unknown stabilizer"):
        explain(relu_network(), np.zeros((1, 3, 8, 8)), stabilizer="sign")


def test_composite_index_beyond_the_model_is_refused_by_explain(model):
    with pytest.raises(lrpcore.CompositeError, match="names layer index 40"):
        explain(model, np.zeros((1, 3, 8, 8)), composite=lrpcore.Composite(by_index={40: Epsilon(0.1)}))


def test_layer_constructors_check_parameter_shapes():
    from lrpcore.layers import Conv2d, Dense

    with pytest.raises(lrpcore.ShapeError, match=r"Dense bias must be \(3,\), got shape \(4,\)"):
        Dense(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(lrpcore.ShapeError, match=r"Conv2d weight must be \(out, in, kh, kw\)"):
        Conv2d(np.zeros((3, 2, 3)))
