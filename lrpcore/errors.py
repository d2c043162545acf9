"""Exceptions raised by lrpcore. Each message names the file, layer, shape or dtype at fault."""
from __future__ import annotations

__all__ = [
    "LRPError",
    "ShapeError",
    "DTypeError",
    "InputValueError",
    "ConservationError",
    "CompositeError",
    "ModelFormatError",
]


class LRPError(Exception):
    """Base class of every error lrpcore raises on purpose."""


class ShapeError(LRPError, ValueError):
    """An array has the wrong rank or shape for the layer or model it is given to."""


class DTypeError(LRPError, TypeError):
    """An array has a dtype the engine cannot use (integer input, mixed precisions...)."""


class InputValueError(LRPError, ValueError):
    """An input holds values the engine refuses (NaN, inf, a target out of range)."""


class ConservationError(LRPError):
    """Relevance is not conserved at some layer within the requested tolerance."""


class CompositeError(LRPError, ValueError):
    """A composite cannot be applied to a model (index beyond the model, rule for the wrong layer...)."""


class ModelFormatError(LRPError, ValueError):
    """A model file is missing, truncated, or does not follow the documented format."""
