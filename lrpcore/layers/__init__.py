"""Plain layer objects with explicit forward, substituted-parameter forward and transposed maps.

One module per kind of layer; everything is re-exported here, so ``from lrpcore.layers import Conv2d``
works for every layer:

- :mod:`~lrpcore.layers.base`: the interface (``Layer``, ``LinearLayer``) rules are written against;
- :mod:`~lrpcore.layers.dense`: ``Dense``;
- :mod:`~lrpcore.layers.conv`: ``Conv2d``, ``Conv1d`` (with ``groups``: grouped and depthwise);
- :mod:`~lrpcore.layers.pooling`: ``AvgPool2d``, ``MaxPool2d``, ``SumPool2d``, ``AvgPool1d``, ``MaxPool1d``
  (``ceil_mode``, ``count_include_pad``);
- :mod:`~lrpcore.layers.adaptive`: ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``, ``AdaptiveAvgPool1d``,
  ``AdaptiveMaxPool1d`` (any output size; global pooling is output size 1);
- :mod:`~lrpcore.layers.elementwise`: ``ReLU``, ``Dropout``, ``Flatten``;
- :mod:`~lrpcore.layers.activations`: ``Tanh``, ``Sigmoid``, ``LeakyReLU``, ``ELU``, ``GELU``, ``SiLU``, ``ReLU6``;
- :mod:`~lrpcore.layers.shape`: ``Reshape`` (torch's ``Unflatten``), ``ZeroPad2d``, ``ZeroPad1d``;
- :mod:`~lrpcore.layers.normalization`: ``BatchNorm1d``, ``BatchNorm2d``, ``BatchNormLinear``;
- :mod:`~lrpcore.layers.lrn`: ``LocalResponseNorm`` (linearised as Binder et al. 2016);
- :mod:`~lrpcore.layers.merge`: ``Add``, ``Concat``, ``Identity``, the nodes of graphs.
"""
from .base import Layer, LinearLayer, MaxPoolMode
from .activations import ELU, GELU, LeakyReLU, ReLU6, Sigmoid, SiLU, Tanh
from .adaptive import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d
from .conv import Conv1d, Conv2d
from .dense import Dense
from .elementwise import Dropout, Flatten, ReLU
from .lrn import LocalResponseNorm
from .merge import Add, Concat, Identity
from .normalization import BatchNorm1d, BatchNorm2d, BatchNormLinear, _BatchNorm
from .pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, SumPool2d
from .shape import Reshape, ZeroPad1d, ZeroPad2d

__all__ = [
    "Layer",
    "LinearLayer",
    "Dense",
    "Conv2d",
    "Conv1d",
    "AvgPool2d",
    "MaxPool2d",
    "SumPool2d",
    "AvgPool1d",
    "MaxPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
    "ReLU",
    "Flatten",
    "Dropout",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "ReLU6",
    "Reshape",
    "ZeroPad2d",
    "ZeroPad1d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormLinear",
    "LocalResponseNorm",
    "Add",
    "Concat",
    "Identity",
]
