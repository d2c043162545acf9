"""Shared fixtures: backends the rule suite runs on, and small networks."""
from __future__ import annotations

import numpy as np
import pytest


def _cupy_reason() -> str | None:
    try:
        import cupy
    except Exception as error:  # ImportError, or a CUDA library that fails to load
        return f"cupy not importable ({type(error).__name__}: {error})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "cupy imports but no CUDA GPU is present"
    except Exception as error:
        return f"cupy imports but no usable CUDA GPU ({type(error).__name__}: {error})"
    return None


BACKENDS = [
    "numpy",
    "array_api_strict",
    pytest.param("cupy", marks=[pytest.mark.cupy,
                                pytest.mark.skipif(_cupy_reason() is not None, reason=str(_cupy_reason()))]),
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Name of an array backend the engine must run on."""
    if request.param == "array_api_strict":
        pytest.importorskip("array_api_strict")
    return request.param


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on the torch backend (the files the Keras loader is tested on are written by it), or a skip."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras as module
    except Exception as error:  # ImportError, or a backend that fails to initialise
        reason = f"keras is not importable ({type(error).__name__}: {error}); pip install keras==3.15.1"
        print(reason)
        pytest.skip(reason)
    return module
