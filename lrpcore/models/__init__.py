"""Model architectures built directly as lrpcore models (no deep-learning framework needed).

* :func:`vgg16` (and :func:`vgg` for VGG-11/13/19 and the BatchNorm variants): torchvision's
  layer list as a :class:`lrpcore.Sequential`;
* :func:`resnet18`, :func:`resnet34`, :func:`resnet50`: torchvision's ResNets as a
  :class:`lrpcore.Graph` with torchvision's module names;

each with torchvision-style random init from a seed, or weights from an lrpcore HDF5 file or a
torch state dict. :func:`state_dict_to_model` rebuilds any of them from a state dict by name.
"""
from .resnet import ResNetSpec, resnet, resnet18, resnet34, resnet50
from .state_dict import ARCHITECTURES as STATE_DICT_ARCHITECTURES
from .state_dict import state_dict_to_model
from .vgg import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, vgg, vgg16

__all__ = ["ARCHITECTURES", "IMAGENET_MEAN", "IMAGENET_STD", "STATE_DICT_ARCHITECTURES", "ResNetSpec", "resnet",
           "resnet18", "resnet34", "resnet50", "state_dict_to_model", "vgg", "vgg16"]
