"""Rebuild a torchvision architecture from a PyTorch state dict: ``state_dict_to_model(sd, "resnet50")``.

The table of architectures lives here, in :mod:`lrpcore.models`, which reads state dicts with
:func:`lrpcore.io.torch.load_state_dict`; :mod:`lrpcore.io` does not import :mod:`lrpcore.models`
(no import circle).
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ModelFormatError
from ..graph import Graph
from .resnet import ARCHITECTURES as _RESNETS
from .resnet import resnet_from_state_dict
from .vgg import ARCHITECTURES as _VGGS
from .vgg import vgg_from_state_dict

__all__ = ["ARCHITECTURES", "state_dict_to_model"]


def _vgg(arrays: Any, arch: str, input_size: int | None, dtype: str | None) -> Graph:
    return vgg_from_state_dict(arrays, arch, input_size=input_size, dtype=dtype)


def _resnet(arrays: Any, arch: str, input_size: int | None, dtype: str | None) -> Graph:
    return resnet_from_state_dict(arrays, arch, input_size=224 if input_size is None else input_size, dtype=dtype)


#: Architecture name (torchvision's) → builder from NumPy arrays.
ARCHITECTURES: dict[str, Callable[[Any, str, int | None, str | None], Graph]] = {
    **{name: _vgg for name in _VGGS},
    **{name: _resnet for name in _RESNETS},
}


def state_dict_to_model(state_dict: Any, arch: str = "vgg16", input_size: int | None = None,
                        dtype: str | None = "float32") -> Graph:
    """Build architecture ``arch`` (a key of :data:`ARCHITECTURES`) from a torch state dict.

    ``state_dict``: a mapping name → tensor/array, or the path of a ``torch.save``d state dict
    (read with ``weights_only=True``; a ``module.`` prefix is removed). Keys follow torchvision.
    VGG (``"vgg16"``, ``"vgg16_bn"``, ...): a :class:`~lrpcore.Sequential`; the input size is read
    from the first classifier layer (512·s·s inputs ↔ input_size 32·s) unless given. ResNet
    (``"resnet18"``, ``"resnet34"``, ``"resnet50"``): an :class:`~lrpcore.Graph` with BatchNorm
    nodes (fold them with :func:`lrpcore.canonize`); ``input_size`` defaults to 224. The number of
    classes is read from the last layer. Missing, unexpected or mis-shaped entries raise
    :class:`~lrpcore.errors.ModelFormatError` naming them.
    """
    from ..io.torch import load_state_dict

    if arch not in ARCHITECTURES:
        raise ModelFormatError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](load_state_dict(state_dict), arch, input_size, dtype)
