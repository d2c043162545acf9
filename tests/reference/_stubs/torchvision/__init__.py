"""Test-only stand-in for torchvision (see tests/reference/_torchvision_stand_in.py).

zennit 0.5.1 imports ``torchvision.models.resnet`` for its ResNet canonizer. The only
torchvision wheel matching torch 2.13.0 cannot be imported on CPU-only machines, so the
reference tests put this package on ``sys.path`` when the real one fails to import.
It defines only ``torchvision.models.resnet`` (``BasicBlock``, ``Bottleneck``, ``ResNet``),
working modules with torchvision's architecture, so zennit's canonizer recognises the blocks
of the ResNets the reference tests build.
"""
IS_LRPCORE_STAND_IN = True
