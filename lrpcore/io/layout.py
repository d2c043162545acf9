"""Channels-last files, channels-first lrpcore: how a flattened image's features are reordered on loading.

Keras (``channels_last``) and the LRP Toolbox store images as (H, W, C) and flatten them in that order;
lrpcore's layers are (C, H, W). A dense layer reading a flattened image (or writing one that a reshape
turns into an image) therefore needs its weights reordered by :func:`channels_first_order`.
"""
from __future__ import annotations

import numpy

__all__ = ["channels_first_order"]


def channels_first_order(height: int, width: int, channels: int) -> numpy.ndarray:
    """``order`` with lrpcore feature i (the (C, H, W) flattening) = channels-last feature ``order[i]``."""
    channels_last_index = numpy.arange(height * width * channels).reshape(height, width, channels)
    return numpy.transpose(channels_last_index, (2, 0, 1)).ravel()
