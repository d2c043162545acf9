"""How lrpcore's figures are made and shown.

The one rule of :mod:`lrpcore.plot`: a plotting function builds its figure with
:class:`matplotlib.figure.Figure`, never through ``pyplot``, and returns it (functions that
draw one panel into an ``ax=`` you pass return that Axes instead). Nothing is shown as a side
effect, no pyplot state changes, and scripts and the command line need no display and leak no
figures.

In Jupyter a returned Figure is drawn once, as a PNG, when it is the value of a cell or passed
to ``display()``. Jupyter's inline backend registers that PNG display for figures only once
``matplotlib.pyplot`` has been imported; a notebook that uses only :mod:`lrpcore.plot` would
print ``<Figure size 660x270 with 3 Axes>`` instead. So :func:`new_figure` registers the same
display (IPython's own ``print_figure``) when it runs inside IPython and none is registered
yet, and also for the Axes that single-panel functions return when they made the figure
themselves (``lrpcore.plot.heatmap(R)`` as the last line of a cell shows the heatmap). Axes
of your own figures keep IPython's usual behaviour.
"""
from __future__ import annotations

import sys
from typing import Any

__all__ = ["new_figure", "enable_notebook_display"]

#: Attribute that marks figures made by lrpcore.plot (their Axes display as the whole figure).
_MARK = "_lrpcore_figure"


def new_figure(figsize: tuple[float, float], layout: str | None = "constrained", **options: Any) -> Any:
    """A :class:`matplotlib.figure.Figure` (not managed by pyplot) that displays itself in notebooks."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout=layout, **options)
    setattr(figure, _MARK, True)
    enable_notebook_display()
    return figure


def _shell() -> Any:
    """The running IPython shell, or None (IPython is not imported here unless the caller already did)."""
    module = sys.modules.get("IPython")
    if module is None:
        return None
    try:
        return module.get_ipython()
    except Exception:  # an IPython too old or half torn down: no notebook display
        return None


def _inline_options(shell: Any) -> dict[str, Any]:
    """Jupyter's configured ``InlineBackend.print_figure_kwargs`` (e.g. bbox_inches, dpi), so lrpcore's
    figures look like every other figure of the notebook; {} without matplotlib-inline."""
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:
        return {}
    return dict(InlineBackend.instance(parent=shell).print_figure_kwargs)


def _axes_png(axes: Any) -> Any:
    """PNG of the figure an lrpcore single-panel function made; None (plain repr) for other Axes."""
    figure = getattr(axes, "figure", None)
    if not getattr(figure, _MARK, False):
        return None
    from IPython.core.pylabtools import print_figure

    return print_figure(figure, fmt="png", base64=True, **_inline_options(_shell()))


def enable_notebook_display() -> bool:
    """Register PNG display of figures (where none is registered) and of lrpcore's Axes in IPython.

    Returns True when running inside IPython. Safe to call any number of times; a display the
    user or the inline backend configured (SVG, retina, ...) is left alone.
    """
    shell = _shell()
    if shell is None:
        return False
    from functools import partial

    from IPython.core.pylabtools import print_figure
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    figure_shown = any(_has_printer(formatters[kind], Figure) for kind in
                       ("image/png", "image/svg+xml", "image/jpeg", "application/pdf") if kind in formatters)
    if not figure_shown:
        formatters["image/png"].for_type(Figure, partial(print_figure, fmt="png", base64=True,
                                                         **_inline_options(shell)))
    if not _has_printer(formatters["image/png"], Axes):
        formatters["image/png"].for_type(Axes, _axes_png)
    return True


def _has_printer(formatter: Any, kind: type) -> bool:
    try:
        formatter.lookup_by_type(kind)
    except KeyError:
        return False
    return True
