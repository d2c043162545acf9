"""Composites: which rule each layer of a model gets, and the presets of the literature.

A :class:`Composite` resolves a rule for every layer of a :class:`~lrpcore.Sequential`.
The resolution order, from most to least specific, is:

1. ``by_index``: an exact integer index (negative counts from the end), then the
   first ``range``/``slice`` key (in insertion order) that contains the index
   (a span covers the element-wise layers in it with Pass, so ``{range(1, 17): Gamma()}``
   can be written as in the thesis' tables);
2. ``assign``: a preset's own mapping, computed from the model (e.g. "the first half
   of the conv stack");
3. ``first``: the first layer whose type is in ``first_types`` (default: the first
   Dense or Conv2d), as zennit's "first layer" maps do;
4. ``by_type``: the layer's exact class, then the first listed class it is an instance of;
5. layers that are not linear (ReLU, Flatten, Dropout, BatchNorm) get :class:`~lrpcore.rules.Pass`
   (naming one with an exact index and another rule is an error);
6. ``default`` (LRP-0 if not given).

Indices are positions in ``model.layers``. A key beyond the model is an error, not ignored.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .errors import CompositeError
from .layers import AvgPool2d, Conv2d, Dense, Layer, LinearLayer, MaxPool2d
from .layers1d import AvgPool1d, Conv1d, MaxPool1d
from .rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, Zero, ZBox, ZPlus

__all__ = [
    "Composite",
    "uniform",
    "tutorial",
    "decreasing_gamma",
    "cmp",
    "epsilon_gamma_box",
    "epsilon_plus",
    "epsilon_plus_flat",
    "epsilon_alpha2_beta1",
    "epsilon_alpha2_beta1_flat",
    "PRESETS",
    "get_composite",
]

IndexKey = int | range | slice


class Composite:
    """Assign LRP rules to layers by index, by a preset's model-dependent map, by position and by type."""

    def __init__(self, by_index: Mapping[IndexKey, Rule] | None = None,
                 by_type: Mapping[type, Rule] | None = None,
                 first: Rule | None = None,
                 default: Rule | None = None,
                 assign: Callable[[Any], dict[int, Rule]] | None = None,
                 first_types: Sequence[type] = (Dense, Conv2d, Conv1d),
                 name: str = "custom"):
        self.by_index = dict(by_index or {})
        self.by_type = dict(by_type or {})
        self.first = first
        self.default = default if default is not None else Zero()
        self.assign = assign
        self.first_types = tuple(first_types)
        self.name = name
        for key, rule in list(self.by_index.items()) + list(self.by_type.items()):
            if not isinstance(rule, Rule):
                raise CompositeError(f"composite {name!r}: {key!r} maps to {rule!r}, which is not an lrpcore rule")
            if not isinstance(key, (int, range, slice, type)):
                raise CompositeError(f"composite {name!r}: key {key!r} must be an int, range, slice or layer class")

    def __repr__(self) -> str:
        return f"Composite({self.name!r})"

    def _validate_indices(self, count: int) -> None:
        for key in self.by_index:
            if isinstance(key, int):
                if not -count <= key < count:
                    raise CompositeError(f"composite {self.name!r} names layer index {key}, but the model has "
                                         f"{count} layers (indices 0..{count - 1})")
            else:
                stop = key.stop if key.stop is not None else count
                start = key.start if key.start is not None else 0
                if start < -count or stop > count or start >= count:
                    raise CompositeError(f"composite {self.name!r} names layers {key}, beyond the model's "
                                         f"{count} layers (indices 0..{count - 1})")

    def _from_index(self, index: int, count: int) -> tuple[Rule | None, bool]:
        """(rule, named exactly): an integer key names one layer, a range/slice a span of layers."""
        for key, rule in self.by_index.items():
            if isinstance(key, int) and key % count == index:
                return rule, True
        for key, rule in self.by_index.items():
            if isinstance(key, range) and index in key:
                return rule, False
            if isinstance(key, slice) and index in range(count)[key]:
                return rule, False
        return None, False

    def _from_type(self, layer: Layer) -> Rule | None:
        if type(layer) in self.by_type:
            return self.by_type[type(layer)]
        for layer_type, rule in self.by_type.items():
            if isinstance(layer, layer_type):
                return rule
        return None

    def rules(self, model: Any) -> list[Rule]:
        """The rule of every layer of ``model``, resolved in the documented order and checked."""
        layers = list(model.layers)
        count = len(layers)
        self._validate_indices(count)
        assigned = self.assign(model) if self.assign is not None else {}
        first_index = next((i for i, layer in enumerate(layers) if isinstance(layer, self.first_types)), None)
        resolved = []
        for index, layer in enumerate(layers):
            rule, exact = self._from_index(index, count)
            if not isinstance(layer, LinearLayer):
                # spans (ranges, types, defaults) cover element-wise layers with Pass; naming one
                # exactly with another rule is a mistake worth an error
                if exact and not isinstance(rule, Pass):
                    raise CompositeError(f"composite {self.name!r} gives {rule.describe()} to layer {index} "
                                         f"({layer.describe()}), which is not linear; only Pass applies there")
                resolved.append(rule if exact else Pass())
                continue
            if rule is None:
                rule = assigned.get(index)
            if rule is None and self.first is not None and index == first_index:
                rule = self.first
            if rule is None:
                rule = self._from_type(layer)
            if rule is None:
                rule = self.default
            resolved.append(rule)
        return resolved

    def describe(self, model: Any) -> str:
        """A printable layer → rule table for ``model``."""
        rules = self.rules(model)
        rows = [("index", "layer", "rule", "stabilizer")]
        for index, (layer, rule) in enumerate(zip(model.layers, rules)):
            stabilizer = "" if isinstance(rule, Pass) else f"{rule.stabilizer_name} (ε={rule.epsilon:g})"
            rows.append((str(index), layer.describe(), rule.describe(), stabilizer))
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = [f"composite {self.name!r}"]
        for row_number, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
            if row_number == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)


def uniform(rule: Rule) -> Composite:
    """The same ``rule`` on every linear layer (Pass elsewhere)."""
    return Composite(default=rule, name=f"uniform({rule.describe()})")


# --- position in the feature stack --------------------------------------------------------------
def _feature_groups(model: Any, group_count: int) -> tuple[int | None, list[list[int]], list[int]]:
    """Split a model into (first feature layer, groups of the remaining feature layers, top layers).

    Feature layers are the Conv2d (and Conv1d) layers, or for a network without convolutions every
    Dense layer but the last. The remaining feature layers are cut into ``group_count``
    consecutive groups as evenly as possible (earlier groups take the extra layer), the
    split the thesis' Tables 2.3–2.4 make on VGG-16's 12 convolutions after the first.
    Pooling layers belong to the group of the feature layer before them; every layer
    after the last feature layer is a top layer.
    """
    layers = list(model.layers)
    features = [i for i, layer in enumerate(layers) if isinstance(layer, (Conv2d, Conv1d))]
    if not features:
        dense = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]
        features = dense[:-1] if len(dense) > 1 else dense
    if not features:
        return None, [[] for _ in range(group_count)], []
    first, rest = features[0], features[1:]
    base, extra = divmod(len(rest), group_count)
    groups: list[list[int]] = []
    start = 0
    for group_index in range(group_count):
        size = base + (1 if group_index < extra else 0)
        groups.append(rest[start:start + size])
        start += size
    # pooling layers belong to the group of the feature layer before them (up to the first dense layer)
    owner = {index: g for g, members in enumerate(groups) for index in members}
    head = next((i for i in range(features[-1] + 1, len(layers)) if isinstance(layers[i], Dense)), len(layers))
    current = 0
    for index in range(first + 1, head):
        if index in owner:
            current = owner[index]
        elif isinstance(layers[index], (AvgPool2d, MaxPool2d, AvgPool1d, MaxPool1d)):
            groups[current].append(index)
    top = [i for i, layer in enumerate(layers)
           if i > features[-1] and isinstance(layer, LinearLayer)
           and not any(i in members for members in groups)]
    return first, groups, top


def _bounds(model: Any, low: Any, high: Any) -> tuple[Any, Any]:
    if low is not None and high is not None:
        return low, high
    meta_low, meta_high = model.metadata.input_bounds()
    return (meta_low if low is None else low), (meta_high if high is None else high)


def _grouped(name: str, low: Any, high: Any, group_rules: Callable[[], list[Rule]], top_rule: Callable[[], Rule],
             stabilizer: str, maxpool: str) -> Composite:
    def assign(model: Any) -> dict[int, Rule]:
        first, groups, top = _feature_groups(model, len(group_rules()))
        mapping: dict[int, Rule] = {}
        if first is not None:
            box_low, box_high = _bounds(model, low, high)
            mapping[first] = ZBox(box_low, box_high, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool)
        for members, rule in zip(groups, group_rules()):
            for index in members:
                mapping[index] = rule
        for index in top:
            mapping[index] = top_rule()
        return mapping

    return Composite(assign=assign, default=top_rule(), name=name)


def tutorial(low: Any = None, high: Any = None, gamma: float = 0.25, epsilon: float = 0.25,
             stabilizer: str = "vanilla", epsilon_stabilizer: str = "quadratic_mean",
             maxpool: str = "sum") -> Composite:
    """LRP-Tutorial composite (Montavon et al. 2019; thesis Table 2.4).

    On the torchvision VGG-16 layer list: z^B on layer 0, LRP-γ (γ=0.25) on layers 1–16,
    LRP-ε with ε = 0.25·RMS(z) (``quadratic_mean``) on 17–30, LRP-0 from 31 on; every
    other denominator gets + 1e-9 (``vanilla`` with ε=1e-9). On other networks the same
    split is made by position in the conv stack: first conv z^B, the next half of the
    convolutions γ, the second half ε, dense layers LRP-0 (see ``_feature_groups``).
    The tutorial replaced max pooling by average pooling; lrpcore keeps the model's
    max-pooling forward and redistributes in proportion (``maxpool="sum"``).
    ``low``/``high`` default to the model's input bounds (value range through preprocessing).
    """
    return _grouped(
        "tutorial", low, high,
        group_rules=lambda: [Gamma(gamma, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool),
                             Epsilon(epsilon, stabilizer=epsilon_stabilizer, maxpool=maxpool)],
        top_rule=lambda: Epsilon(1e-9, stabilizer=stabilizer, maxpool=maxpool),
        stabilizer=stabilizer, maxpool=maxpool)


def decreasing_gamma(low: Any = None, high: Any = None, gammas: Sequence[float] = (0.5, 0.25, 0.1, 0.0),
                     stabilizer: str = "vanilla", maxpool: str = "sum") -> Composite:
    """Decreasing-γ composite (Eberle et al. 2022; thesis Table 2.3).

    On VGG-16: z^B on layer 0, then γ = 0.5 on layers 1–9, 0.25 on 10–16, 0.1 on 17–23 and
    0 on 24–30 (γ = 0 is LRP-0), LRP-0 on the dense layers; denominators + 1e-9. On
    other networks the convolutions after the first are cut into ``len(gammas)``
    consecutive groups as evenly as possible.
    """
    gammas = tuple(float(g) for g in gammas)
    return _grouped(
        "decreasing_gamma", low, high,
        group_rules=lambda: [Gamma(g, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool) for g in gammas],
        top_rule=lambda: Epsilon(1e-9, stabilizer=stabilizer, maxpool=maxpool),
        stabilizer=stabilizer, maxpool=maxpool)


def cmp(alpha: int = 1, flat_input: bool = False, epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """LRP-CMP (Kohlbrenner et al. 2020): LRP-ε on dense layers, LRP-αβ (α=1,β=0 or α=2,β=1) on
    convolutions, and LRP-flat on the input layer when ``flat_input``."""
    if alpha not in (1, 2):
        raise ValueError(f"cmp takes alpha=1 (α1β0) or alpha=2 (α2β1), got {alpha}")
    conv_rule = AlphaBeta(alpha, alpha - 1, stabilizer=stabilizer)
    return Composite(by_type={Conv2d: conv_rule, Conv1d: conv_rule, Dense: Epsilon(epsilon, stabilizer=stabilizer),
                              **_zennit_pooling(stabilizer)},
                     first=Flat(stabilizer=stabilizer) if flat_input else None,
                     name=f"cmp(α{alpha}β{alpha - 1}{', flat' if flat_input else ''})")


# --- zennit's composites, layer for layer --------------------------------------------------------
def _zennit_pooling(stabilizer: str) -> dict[type, Rule]:
    # zennit: AvgPool gets the parameter-free ε rule (Norm); max pooling is left to the
    # gradient, i.e. all relevance to the first maximum (LRP-0 on the winner's weight).
    pool_rules = {AvgPool2d: Epsilon(1e-6, stabilizer="zennit"),
                  MaxPool2d: Zero(stabilizer="vanilla", maxpool="winner_first")}
    return {**pool_rules, AvgPool1d: pool_rules[AvgPool2d], MaxPool1d: pool_rules[MaxPool2d]}


def epsilon_gamma_box(low: Any = None, high: Any = None, epsilon: float = 1e-6, gamma: float = 0.25,
                      stabilizer: str = "zennit", symmetric_gamma: bool = True) -> Composite:
    """zennit's EpsilonGammaBox: z^B on the first Conv2d, γ on other convolutions, ε on dense layers.

    ``symmetric_gamma=True`` uses zennit's sign-of-z form of γ (see :class:`~lrpcore.rules.Gamma`).
    """
    def first_conv_bounds(model: Any) -> dict[int, Rule]:
        index = next((i for i, layer in enumerate(model.layers) if isinstance(layer, (Conv2d, Conv1d))), None)
        if index is None:
            return {}
        box_low, box_high = _bounds(model, low, high)
        return {index: ZBox(box_low, box_high, stabilizer=stabilizer, epsilon=1e-6)}

    conv_rule = Gamma(gamma, stabilizer=stabilizer, symmetric=symmetric_gamma)
    return Composite(by_type={Conv2d: conv_rule, Conv1d: conv_rule,
                              Dense: Epsilon(epsilon, stabilizer=stabilizer), **_zennit_pooling(stabilizer)},
                     assign=first_conv_bounds, name="epsilon_gamma_box")


def epsilon_plus(epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """zennit's EpsilonPlus: z⁺ on convolutions, ε on dense layers."""
    return Composite(by_type={Conv2d: ZPlus(stabilizer=stabilizer), Conv1d: ZPlus(stabilizer=stabilizer),
                              Dense: Epsilon(epsilon, stabilizer=stabilizer),
                              **_zennit_pooling(stabilizer)}, name="epsilon_plus")


def epsilon_plus_flat(epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """zennit's EpsilonPlusFlat: flat on the first Dense/Conv2d, z⁺ on convolutions, ε on dense layers."""
    composite = epsilon_plus(epsilon, stabilizer)
    composite.first = Flat(stabilizer=stabilizer)
    composite.name = "epsilon_plus_flat"
    return composite


def epsilon_alpha2_beta1(epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """zennit's EpsilonAlpha2Beta1: α2β1 on convolutions, ε on dense layers."""
    conv_rule = AlphaBeta(2, 1, stabilizer=stabilizer)
    return Composite(by_type={Conv2d: conv_rule, Conv1d: conv_rule,
                              Dense: Epsilon(epsilon, stabilizer=stabilizer), **_zennit_pooling(stabilizer)},
                     name="epsilon_alpha2_beta1")


def epsilon_alpha2_beta1_flat(epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """zennit's EpsilonAlpha2Beta1Flat: flat on the first Dense/Conv2d, α2β1 on convolutions, ε on dense."""
    composite = epsilon_alpha2_beta1(epsilon, stabilizer)
    composite.first = Flat(stabilizer=stabilizer)
    composite.name = "epsilon_alpha2_beta1_flat"
    return composite


#: Preset factories by name, as the command line and sweeps refer to them.
PRESETS: dict[str, Callable[..., Composite]] = {
    "tutorial": tutorial,
    "decreasing_gamma": decreasing_gamma,
    "cmp": cmp,
    "epsilon_gamma_box": epsilon_gamma_box,
    "epsilon_plus": epsilon_plus,
    "epsilon_plus_flat": epsilon_plus_flat,
    "epsilon_alpha2_beta1": epsilon_alpha2_beta1,
    "epsilon_alpha2_beta1_flat": epsilon_alpha2_beta1_flat,
    "zero": lambda: uniform(Zero()),
    "epsilon": lambda epsilon=0.25, stabilizer="zennit": uniform(Epsilon(epsilon, stabilizer=stabilizer)),
}


def get_composite(name: str | Composite, **kwargs: Any) -> Composite:
    """A composite from a preset ``name`` (see ``PRESETS``) with keyword arguments, or ``name`` itself."""
    if isinstance(name, Composite):
        return name
    try:
        factory = PRESETS[name]
    except KeyError:
        raise CompositeError(f"unknown composite {name!r}; presets are {sorted(PRESETS)}") from None
    return factory(**kwargs)
