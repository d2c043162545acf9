"""lrpcore: Layer-wise Relevance Propagation as explicit array operations (NumPy, CuPy, any array API).

The main entry points:

- :class:`Graph`, :class:`Sequential` (its chain case) and :mod:`lrpcore.layers`: plain layer objects;
- :mod:`lrpcore.rules`, :mod:`lrpcore.stabilizers`, :mod:`lrpcore.composites`: what LRP does per layer;
- :func:`explain`: the backward pass, with a trace of every step;
- :func:`relevance_matrix`: the explicit matrix M with R_lower = M · R_upper;
- :func:`check_conservation` and :func:`detect_instability`: verification.
"""
import importlib as _importlib

from . import composites, data, layers, rules, stabilizers
from .composites import Composite
from .errors import (CompositeError, ConservationError, DTypeError, InputValueError, LRPError, ModelFormatError,
                     ShapeError)
from .canonize import canonize
from .explain import NonFiniteError, explain, gradient
from .explanation import Explanation, Trace, check_conservation
from .graph import Graph, GraphError, Node
from .instability import detect_instability
from .io import load, save
from .matrix import graph_relevance_matrix, relevance_matrix
from .metadata import ModelMetadata
from .model import Sequential

__version__ = "0.1.0"

#: Subpackages imported on first use (they pull in matplotlib, OpenCV or Dask only when needed).
_LAZY_MODULES = ("baselines", "dtd", "evaluate", "io", "lstm", "models", "neon", "pairwise", "plot", "pruning", "report", "stability",
                 "sweep", "taylor", "testing")


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)
    if name == "explain_pruned":
        return _importlib.import_module(".pruning", __name__).explain_pruned
    raise AttributeError(f"module 'lrpcore' has no attribute {name!r}")

__all__ = [
    "Composite",
    "CompositeError",
    "ConservationError",
    "DTypeError",
    "Explanation",
    "Graph",
    "GraphError",
    "InputValueError",
    "LRPError",
    "ModelFormatError",
    "ModelMetadata",
    "Node",
    "NonFiniteError",
    "Sequential",
    "ShapeError",
    "Trace",
    "canonize",
    "check_conservation",
    "composites",
    "data",
    "detect_instability",
    "explain",
    "gradient",
    "graph_relevance_matrix",
    "layers",
    "load",
    "relevance_matrix",
    "rules",
    "save",
    "stabilizers",
]
