"""Make ``import zennit`` work where torchvision cannot be imported (CPU-only torch 2.13.0).

zennit 0.5.1 imports ``torchvision.models.resnet`` at import time; the only torchvision
build for torch 2.13.0 needs CUDA libraries and fails with "operator torchvision::nms does
not exist" (see /work/shared/README.md). When the real torchvision imports, nothing is
changed; otherwise the test-only package in ``_stubs/`` is put first on ``sys.path``.
"""
from __future__ import annotations

import pathlib
import sys

STUBS = pathlib.Path(__file__).resolve().parent / "_stubs"


def install() -> str:
    """Ensure ``torchvision.models.resnet`` imports; return "real" or "stand-in"."""
    try:
        import torchvision.models.resnet  # noqa: F401
        if not getattr(sys.modules["torchvision"], "IS_LRPCORE_STAND_IN", False):
            return "real"
        return "stand-in"
    except Exception:  # ImportError, or RuntimeError from a CUDA-only build
        for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
            del sys.modules[name]
    if str(STUBS) not in sys.path:
        sys.path.insert(0, str(STUBS))
    import torchvision.models.resnet  # noqa: F401,F811
    return "stand-in"
