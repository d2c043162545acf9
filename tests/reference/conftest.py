"""Reference suite set-up: the torchvision stand-in zennit needs, and the difference table at the end.

Everything here needs PyTorch; without it the test modules skip with the reason printed
(``pytest -ra``). With PyTorch present, zennit must be installed too:
``pip install torch==2.13.0 && pip install --no-deps zennit==0.5.1 && pip install click``.
"""
from __future__ import annotations

import importlib.util
import sys

if importlib.util.find_spec("torch") is not None:
    import _torchvision_stand_in

    TORCHVISION = _torchvision_stand_in.install()
else:
    TORCHVISION = "absent (torch missing)"


def pytest_terminal_summary(terminalreporter):
    harness = sys.modules.get("_reference_harness")
    if harness is None or not harness.RESULTS:
        return
    terminalreporter.section("lrpcore vs zennit 0.5.1 / torch autograd: largest relative difference (float64)")
    for line in harness.format_table():
        terminalreporter.write_line(line)
