"""Plain layer objects with explicit forward, substituted-parameter forward and transposed maps.

One module per kind of layer; everything is re-exported here, so ``from lrpcore.layers import Conv2d``
works for every layer:

- :mod:`~lrpcore.layers.base`: the interface (``Layer``, ``LinearLayer``) rules are written against;
- :mod:`~lrpcore.layers.dense`: ``Dense``;
- :mod:`~lrpcore.layers.conv`: ``Conv2d``, ``Conv1d``;
- :mod:`~lrpcore.layers.pooling`: ``AvgPool2d``, ``MaxPool2d``, ``AvgPool1d``, ``MaxPool1d``;
- :mod:`~lrpcore.layers.elementwise`: ``ReLU``, ``Dropout``, ``Flatten``;
- :mod:`~lrpcore.layers.normalization`: ``BatchNorm1d``, ``BatchNorm2d``;
- :mod:`~lrpcore.layers.merge`: ``Add``, ``Concat``, ``Identity``, the nodes of graphs.
"""
from .base import Layer, LinearLayer, MaxPoolMode
from .conv import Conv1d, Conv2d
from .dense import Dense
from .elementwise import Dropout, Flatten, ReLU
from .merge import Add, Concat, Identity
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm
from .pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d

__all__ = [
    "Layer",
    "LinearLayer",
    "Dense",
    "Conv2d",
    "Conv1d",
    "AvgPool2d",
    "MaxPool2d",
    "AvgPool1d",
    "MaxPool1d",
    "ReLU",
    "Flatten",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "Add",
    "Concat",
    "Identity",
]
