"""Stand-in for ``torchvision.models.resnet``: the two block classes zennit's ResNet canonizer names.

They are placeholders for ``isinstance`` checks; building one is an error, so a test that
needs real ResNet blocks fails loudly instead of running on a fake.
"""
import torch


class _StandInBlock(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} is lrpcore's test-only torchvision stand-in; "
                           "install a working torchvision to build ResNet blocks")


class BasicBlock(_StandInBlock):
    expansion = 1


class Bottleneck(_StandInBlock):
    expansion = 4
