"""Shared by the reproduction scripts: the shipped models, evaluation data, tables and safe output files."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Seed of every evaluation data set here; the trainers use seeds 0–2 (tools/train_*.py).
EVALUATION_SEED = 2024
MODELS = {"shapes": ROOT / "models" / "shapes_cnn.h5", "motif": ROOT / "models" / "motif_cnn.h5"}


def load(name: str) -> Any:
    """A shipped model by short name ("shapes", "motif"); a clear error if the file is missing."""
    import lrpcore

    path = MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(ROOT)} is missing; train it with tools/train_"
                                f"{'shapes' if name == 'shapes' else 'motifs'}.py")
    return lrpcore.load(path)


def shapes_data(model: Any, count: int, seed: int = EVALUATION_SEED, scale_range: tuple[float, float] | None = None,
                correct_only: bool = True) -> Any:
    """Fresh ``lrpcore.data.shapes`` images at the model's size; with ``correct_only`` the correctly
    classified ones. Returns (dataset subset, model inputs float32)."""
    from lrpcore.data import shapes

    options = {} if scale_range is None else {"scale_range": scale_range}
    data = shapes(count, size=model.metadata.input_shape[-1], seed=seed, **options)
    inputs = np.asarray(model.metadata.preprocess(data.x), dtype=np.float32)
    if correct_only:
        keep = np.asarray(model.forward(inputs)).argmax(axis=1) == data.y
        data, inputs = data[np.flatnonzero(keep)], inputs[keep]
    return data, inputs


def motif_data(model: Any, count: int, seed: int = EVALUATION_SEED) -> Any:
    """Fresh ``lrpcore.data.motifs`` sequences of the two motif classes (the background class has no ground
    truth), correctly classified ones only. Returns (dataset subset, model inputs)."""
    from lrpcore.data import motifs

    data = motifs(count, seed=seed)
    data = data[np.flatnonzero(data.y > 0)]
    inputs = np.asarray(model.metadata.preprocess(data.x), dtype=np.float32)
    keep = np.asarray(model.forward(inputs)).argmax(axis=1) == data.y
    return data[np.flatnonzero(keep)], inputs[keep]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_new(path: str | Path, text: str | None = None, figure: Any = None, overwrite: bool = False) -> None:
    """Write ``text`` (or save ``figure``) to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        if figure is not None:
            figure.savefig(temporary, dpi=120, bbox_inches="tight")
        else:
            Path(temporary).write_text(text or "", encoding="utf-8")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
