"""A step-through HTML report of one backward pass: walk LRP layer by layer in a browser.

``lrpcore report`` (and :func:`build_report` in Python) explains one sample with
``record=True`` and writes one self-contained HTML file: the input, the prediction and the
heatmap; then every layer from the top down with the relevance arriving there, Σ R in and out
and the absorbed share, the rule and stabilizer, denominator statistics with zero and
near-zero denominators flagged, one neuron's a, z, s and c, on small layers the column of
M_l that distributes its relevance, and a conservation waterfall across the layers. Images
are embedded, the script is inline and small; the file needs no server and no network.

    html = lrpcore.report.build_report(model, x, raw=sample, composite="epsilon_gamma_box")
    lrpcore.report.write_report(html, "report.html")
"""
from __future__ import annotations

import os
from typing import Any

from .collect import COLUMN_LIMIT, LayerView, MapView, ReportData, collect
from .page import render

__all__ = ["build_report", "write_report", "collect", "render", "ReportData", "LayerView", "MapView"]


def build_report(model: Any, x: Any, raw: Any = None, *, composite: Any = "epsilon_gamma_box", target: Any = None,
                 stabilizer: str | None = None, origin: str = "", input_note: str = "",
                 column_limit: int = COLUMN_LIMIT) -> str:
    """The report page (HTML text) for one sample ``x`` (model input, with or without a batch axis of 1).

    ``raw``: the same sample in raw values (for the picture; default ``model.metadata.deprocess(x)``).
    ``composite``, ``target`` (an index, a class name or None for the prediction) and ``stabilizer``
    as in :func:`lrpcore.explain`. ``column_limit``: the largest M_l (entries) whose column is shown.
    """
    import numpy

    from ..backend import to_numpy
    from ..class_names import resolve_target_names
    from ..explain import explain

    shape = tuple(model.metadata.input_shape or ())
    array = x if (shape and getattr(x, "ndim", 0) == len(shape) + 1) else x[None]
    if array.shape[0] != 1:
        raise ValueError(f"the report explains one sample; got a batch of {array.shape[0]} (pick one, e.g. x[:1])")
    target = resolve_target_names(target, model.metadata.class_names, model.metadata.name)
    explanation = explain(model, array, target=target, composite=composite, stabilizer=stabilizer, record=True)
    if raw is None:
        raw = numpy.asarray(to_numpy(model.metadata.deprocess(numpy.asarray(to_numpy(array), dtype=numpy.float64))))
    raw = numpy.asarray(to_numpy(raw))
    raw = raw[0] if raw.ndim == len(shape) + 1 and shape else raw
    name = composite if isinstance(composite, str) else getattr(composite, "name", type(composite).__name__)
    if stabilizer:
        name = f"{name}, stabilizer {stabilizer}"
    data = collect(explanation, raw, model.metadata.value_range, origin=origin, input_note=input_note,
                   composite=str(name), column_limit=column_limit)
    return render(data)


def write_report(page: str, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write the page to ``path``: a new file (never replacing one unless ``overwrite``), written to a
    temporary name in the same folder and renamed, so no half-written report is left behind."""
    import tempfile

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)        # as an ordinary new file (mkstemp makes it private)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if the name was taken meanwhile: never replaces
            except FileExistsError:
                raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it") from None
            except OSError:               # a file system without hard links
                if os.path.exists(path):
                    raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it") from None
                os.replace(temporary, path)
            if os.path.exists(temporary):
                os.unlink(temporary)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
