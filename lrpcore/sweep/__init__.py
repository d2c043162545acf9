"""Hyperparameter sweeps: score LRP composites over a parameter grid by pixel-flipping AUC.

- :func:`grid`: the sweep (one forward pass per image block, batched explanations, shared
  pixel-flipping inputs), stored and resumable under ``out/``, serial, in a process pool or on Dask;
- :class:`SweepResult`: the tidy table with :meth:`~SweepResult.mean_auc` and :meth:`~SweepResult.best`;
- presets :func:`decreasing_gamma` and :func:`tutorial` on the thesis' axis :data:`THESIS_VALUES`;
- :func:`flip_many`: pixel flipping of many heatmaps of the same images at once;
- ``grid(..., baselines=[...])``: attribution baselines scored beside the grid on the same images and
  flipping (:mod:`lrpcore.sweep.baselines`).
"""
from .flipping import FlipResult, FlipSettings, flip_many
from .grid import grid
from .presets import PRESETS, THESIS_VALUES, SweepPreset, decreasing_gamma, get_preset, tutorial
from .result import SweepResult
from .store import SweepStore

__all__ = ["FlipResult", "FlipSettings", "PRESETS", "SweepPreset", "SweepResult", "SweepStore", "THESIS_VALUES",
           "decreasing_gamma", "flip_many", "get_preset", "grid", "tutorial"]
