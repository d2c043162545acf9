"""Targets by class name: ``"circle"`` for a model whose ``metadata.class_names`` has it.

Everywhere a target class is asked for (``lrpcore.explain(..., target=...)``, the command
line's ``--target``), a model with class names accepts the name as well as the index.
:func:`resolve_target_names` turns names into indices and leaves every other target form
(None, ``"pred"``, ints, arrays) as it is; a name the model does not have is an error that
lists the names it does have.
"""
from __future__ import annotations

from typing import Any, Sequence

from .errors import InputValueError

__all__ = ["resolve_target_names", "parse_target"]


def _index(name: str, class_names: Sequence[str], model_name: str | None) -> int:
    if name in class_names:
        return list(class_names).index(name)
    of_model = f" of model {model_name!r}" if model_name else ""
    if not class_names:
        model = f"model {model_name!r}" if model_name else "the model"
        raise InputValueError(f"target {name!r} is a class name, but {model} has no class names; "
                              "give a class index")
    shown = ", ".join(class_names[:20]) + (f", ... ({len(class_names)} in all)" if len(class_names) > 20 else "")
    raise InputValueError(f"target {name!r} is not a class{of_model}; classes: {shown}")


def resolve_target_names(target: Any, class_names: Sequence[str] | None, model_name: str | None = None) -> Any:
    """``target`` with class names replaced by their indices in ``class_names``.

    A string other than ``"pred"`` is a class name (one class for every sample); a list or
    tuple may mix names and ints (one per sample). Anything else is returned unchanged.
    """
    names = tuple(class_names or ())
    if isinstance(target, str):
        return target if target == "pred" else _index(target, names, model_name)
    if isinstance(target, (list, tuple)) and any(isinstance(item, str) for item in target):
        return [_index(item, names, model_name) if isinstance(item, str) else item for item in target]
    return target


def parse_target(text: str, class_names: Sequence[str] | None, model_name: str | None = None,
                 keywords: Sequence[str] = ("pred",)) -> Any:
    """A command-line ``--target`` value: a keyword (``pred``, ...) as it is, an integer as an int, else a
    class name as its index (the error lists the keywords and the model's classes)."""
    if text in keywords:
        return text
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        value = int(stripped)
        count = len(class_names or ())
        if value < 0 or (count and value >= count):
            raise InputValueError(f"--target {value} is not a class index of the model"
                                  + (f" (0..{count - 1})" if count else ""))
        return value
    try:
        return _index(stripped, tuple(class_names or ()), model_name)
    except InputValueError as error:
        allowed = ", ".join(repr(keyword) for keyword in keywords)
        raise InputValueError(f"--target {text!r} is neither {allowed}, a class index nor a class name: "
                              f"{error}") from None
