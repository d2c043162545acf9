"""Progress bars for work that takes more than a second or two (tqdm), quiet where nobody watches.

A bar is drawn on standard error only when it is a terminal, and only once the work has run
for ``DELAY`` seconds, so quick runs and pipes (``lrpcore evaluate ... | tee log``, CI logs)
stay clean. The environment variable ``LRPCORE_PROGRESS`` overrides this: ``never`` (or ``0``)
turns bars off everywhere, ``always`` (or ``1``) draws them even into a pipe and at once.

    with progress_bar(total=len(items), desc="explaining", unit="image") as bar:
        for item in items:
            ...
            bar.update(1)

A disabled bar accepts the same calls and does nothing.
"""
from __future__ import annotations

import os
import sys
from typing import Any, TextIO

__all__ = ["progress_bar", "progress_enabled", "ENVIRONMENT_VARIABLE", "DELAY"]

#: Environment variable overriding when bars are drawn: "never"/"0", "always"/"1", "auto" (default).
ENVIRONMENT_VARIABLE = "LRPCORE_PROGRESS"
#: Seconds of work before a bar appears (auto mode).
DELAY = 1.0


def _mode() -> str:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower()
    if value in ("never", "0", "off", "false", "no"):
        return "never"
    if value in ("always", "1", "on", "true", "yes"):
        return "always"
    return "auto"


def progress_enabled(stream: TextIO | None = None, requested: bool | None = None) -> bool:
    """Whether a bar would be drawn on ``stream`` (default standard error).

    ``requested``: a caller's explicit choice (e.g. ``--no-progress`` gives False); None
    follows the environment variable, then whether ``stream`` is a terminal.
    """
    mode = _mode()
    if requested is False or mode == "never":
        return False
    if requested is True or mode == "always":
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or unusual streams
        return False


def progress_bar(total: float | None, desc: str, unit: str = "it", *, enabled: bool | None = None,
                 file: TextIO | None = None, **options: Any) -> Any:
    """A ``tqdm`` bar on standard error (or ``file``), disabled where :func:`progress_enabled` says so."""
    tqdm = tqdm_class()

    stream = sys.stderr if file is None else file
    show = progress_enabled(stream, enabled)
    delay = 0.0 if _mode() == "always" else DELAY
    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not show, delay=delay,
                dynamic_ncols=True, leave=False, **options)


def tqdm_class() -> Any:
    """tqdm's notebook widget where Jupyter can draw it (ipywidgets installed), else its text bar; tqdm.auto
    would warn in a notebook without ipywidgets and draw text anyway."""
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm
