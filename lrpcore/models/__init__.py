"""Model architectures built directly as :class:`lrpcore.Sequential` (no deep-learning framework needed).

* :func:`vgg16` (and :func:`vgg` for VGG-11/13/19 and the BatchNorm variants): torchvision's
  layer list, torchvision-style random init from a seed, or weights from an lrpcore HDF5
  file or a torch state dict.
"""
from .vgg import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, vgg, vgg16

__all__ = ["ARCHITECTURES", "IMAGENET_MEAN", "IMAGENET_STD", "vgg", "vgg16"]
