"""The thesis' two sweep designs as ready-made (composite factory, parameter grid) pairs.

The thesis searches LRP hyperparameters on a 16-value axis: 0 and 15 log-spaced values
in [1e-4, 1], ``{0} ∪ logspace(-4, 0, 15)``, scored by pixel-flipping AUC:

- ``decreasing_gamma``: the Decreasing-γ composite (Eberle et al. 2022; thesis Table 2.3)
  with the two *middle* γ groups swept (``gamma_1``, ``gamma_2``); the first group keeps
  γ = 0.5 and the last γ = 0 (LRP-0), as in the composite's defaults.
- ``tutorial``: the LRP-Tutorial composite (Montavon et al. 2019; thesis Table 2.4) with its
  γ (lower convolutions) × ε (upper convolutions, ε·RMS(z)) swept; the literature default is
  γ = ε = 0.25.

Factories are small picklable classes, so they travel to worker processes and Dask workers.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .. import composites
from ..composites import Composite

__all__ = ["THESIS_VALUES", "SweepPreset", "DecreasingGammaFactory", "TutorialFactory", "decreasing_gamma",
           "tutorial", "get_preset", "PRESETS"]

#: {0} ∪ 15 log-spaced values in [1e-4, 1]: the thesis' axis for every swept γ and ε.
THESIS_VALUES: tuple[float, ...] = (0.0,) + tuple(float(value) for value in np.logspace(-4, 0, 15))


@dataclasses.dataclass(frozen=True)
class DecreasingGammaFactory:
    """``factory(gamma_1=, gamma_2=)`` → ``decreasing_gamma(gammas=(first, gamma_1, gamma_2, last))``."""

    first: float = 0.5
    last: float = 0.0
    name: str = "decreasing_gamma"

    def __call__(self, gamma_1: float, gamma_2: float) -> Composite:
        return composites.decreasing_gamma(gammas=(self.first, float(gamma_1), float(gamma_2), self.last))


@dataclasses.dataclass(frozen=True)
class TutorialFactory:
    """``factory(gamma=, epsilon=)`` → ``tutorial(gamma=gamma, epsilon=epsilon)``."""

    name: str = "tutorial"

    def __call__(self, gamma: float, epsilon: float) -> Composite:
        return composites.tutorial(gamma=float(gamma), epsilon=float(epsilon))


@dataclasses.dataclass(frozen=True)
class SweepPreset:
    """A composite factory with the grid it is swept over (``params``: name → values)."""

    name: str
    composite: Callable[..., Composite]
    params: dict[str, tuple[float, ...]]
    default: dict[str, float]

    def describe(self) -> str:
        axes = " × ".join(f"{name} ({len(values)})" for name, values in self.params.items())
        return f"{self.name}: {axes}; literature default {self.default}"


def decreasing_gamma(values: Any = THESIS_VALUES, first: float = 0.5, last: float = 0.0) -> SweepPreset:
    """Decreasing-γ with the two middle γ groups swept over ``values``."""
    values = tuple(float(value) for value in values)
    return SweepPreset("decreasing_gamma", DecreasingGammaFactory(first, last),
                       {"gamma_1": values, "gamma_2": values}, {"gamma_1": 0.25, "gamma_2": 0.1})


def tutorial(values: Any = THESIS_VALUES) -> SweepPreset:
    """LRP-Tutorial with γ × ε swept over ``values``."""
    values = tuple(float(value) for value in values)
    return SweepPreset("tutorial", TutorialFactory(), {"gamma": values, "epsilon": values},
                       {"gamma": 0.25, "epsilon": 0.25})


PRESETS: dict[str, Callable[..., SweepPreset]] = {"decreasing_gamma": decreasing_gamma, "tutorial": tutorial}


def get_preset(name: str, values: Any = None) -> SweepPreset:
    """A preset by name, optionally on other axis ``values``."""
    if name not in PRESETS:
        raise ValueError(f"unknown sweep preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]() if values is None else PRESETS[name](values)
