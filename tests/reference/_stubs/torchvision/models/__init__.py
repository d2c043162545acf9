"""Stand-in for ``torchvision.models``: only the ``resnet`` submodule zennit imports."""
