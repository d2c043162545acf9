"""Composites: which rule each node of a model gets, and the presets of the literature.

A :class:`Composite` resolves a rule for every node of a :class:`~lrpcore.Graph` (a
:class:`~lrpcore.Sequential` is the chain case; a node's *position* is its index in the
topological order, which for a chain is the layer index). For a node whose layer is linear in its
input (Dense, convolutions, pooling, ``Add``) the order, from most to least specific, is:

1. ``by_name``: the node's exact name, then the first glob pattern that matches it (``"layer1.*"``);
2. ``by_index``: an exact integer position (negative counts from the end), then the first
   ``range``/``slice`` key (in insertion order) that contains it (a span covers the element-wise
   nodes in it with Pass, so ``{range(1, 17): Gamma()}`` can be written as in the thesis' tables);
3. ``assign``: a preset's own mapping, computed from the model (e.g. "the first half of the conv stack");
4. ``first``: the first node whose layer type is in ``first_types`` (default: the first Dense or
   convolution), as zennit's "first layer" maps do;
5. ``by_type``: the layer's exact class, then the first listed class it is an instance of;
   then the layer's own :meth:`~lrpcore.layers.Layer.default_rule`, if it has one (NEON's soft minimum);
6. ``structural``: layers without learned weights that mix values, by type: max pooling →
   :class:`~lrpcore.rules.WinnerTakesAll`, average pooling and ``Add`` → LRP-ε with ε = 1e-6 and zennit's
   stabilizer (zennit's ``Norm``), unless the composite says otherwise (:data:`STRUCTURAL_RULES`);
7. ``default`` (LRP-0 if not given).

A node whose layer is not linear (ReLU and the other activations, Flatten, Reshape, ZeroPad, Dropout,
an unfolded BatchNorm, ``Concat``) gets :class:`~lrpcore.rules.Pass`, unless a rule that applies to it
(``rule.applies_to(layer)``) is named for it by name, exact position or type, or the layer has a rule of
its own (:meth:`~lrpcore.layers.Layer.default_rule`: an LSTM's signal-take-all, NEON's distance rule);
naming it exactly with a rule that does not apply is an error.

Pooling and ``Add`` under ``uniform(rule)`` and the presets: they get the structural rules, never the
weighted layers' rule. A max pool's relevance goes to the window's winner (what zennit's gradient and the
LRP Toolbox do), so relevance that reaches a window whose maximum is 0 is not lost; the αβ rule on a
layer without negative contributions (a pool after a ReLU) would multiply relevance by α, and LRP-0 would
drop what reaches a zero window. The two thesis composites (``tutorial``, ``decreasing_gamma``) give pools
their group's rule on the sum of the window, as the thesis' code does (see their docstrings).

A key beyond the model is an error, not ignored.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Mapping, Sequence

from .errors import CompositeError
from .layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, Add, AvgPool1d,
                     AvgPool2d, Conv1d, Conv2d, Dense, Layer, LinearLayer, MaxPool1d, MaxPool2d, SumPool2d)
from .rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WinnerTakesAll, WSquare, Zero, ZBox, ZPlus

__all__ = [
    "Composite",
    "STRUCTURAL_RULES",
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


def structural_rules(max_ties: str = "split") -> dict[type, Rule]:
    """Pooling and ``Add``: winner-take-all at max pools (``max_ties``: "split" or "first"), LRP-ε with
    ε = 1e-6 and zennit's stabilizer (zennit's ``Norm``) at average pools and additions."""
    norm = Epsilon(1e-6, stabilizer="zennit")
    winner = WinnerTakesAll(max_ties)
    return {**dict.fromkeys(MAX_POOLS, winner), **dict.fromkeys(AVERAGE_POOLS, norm), Add: norm}


#: Pooling layers that select a window's maximum, and those that average or sum it.
MAX_POOLS = (MaxPool2d, MaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool1d)
AVERAGE_POOLS = (AvgPool2d, AvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool1d, SumPool2d)


#: The structural rules every composite uses unless told otherwise (see the module docstring).
STRUCTURAL_RULES: dict[type, Rule] = structural_rules()


class Composite:
    """Assign LRP rules to nodes by name, by position, by a preset's model-dependent map and by type."""

    def __init__(self, by_index: Mapping[IndexKey, Rule] | None = None,
                 by_type: Mapping[type, Rule] | None = None,
                 first: Rule | None = None,
                 default: Rule | None = None,
                 assign: Callable[[Any], dict[int, Rule]] | None = None,
                 first_types: Sequence[type] = (Dense, Conv2d, Conv1d),
                 name: str = "custom",
                 by_name: Mapping[str, Rule] | None = None,
                 structural: Mapping[type, Rule] | None = None):
        self.by_index = dict(by_index or {})
        self.by_type = dict(by_type or {})
        self.by_name = dict(by_name or {})
        self.structural = dict(STRUCTURAL_RULES if structural is None else structural)
        self.first = first
        self.default = default if default is not None else Zero()
        self.assign = assign
        self.first_types = tuple(first_types)
        self.name = name
        keyed = (list(self.by_index.items()) + list(self.by_type.items()) + list(self.by_name.items())
                 + list(self.structural.items()))
        for key, rule in keyed:
            if not isinstance(rule, Rule):
                raise CompositeError(f"composite {name!r}: {key!r} maps to {rule!r}, which is not an lrpcore rule")
        for key in self.by_index:
            if not isinstance(key, (int, range, slice)) or isinstance(key, bool):
                raise CompositeError(f"composite {name!r}: by_index key {key!r} must be an int, range or slice")
        for key in list(self.by_type) + list(self.structural):
            if not isinstance(key, type):
                raise CompositeError(f"composite {name!r}: type key {key!r} must be a layer class")
        for key in self.by_name:
            if not isinstance(key, str):
                raise CompositeError(f"composite {name!r}: by_name key {key!r} must be a node name or pattern")

    def __repr__(self) -> str:
        return f"Composite({self.name!r})"

    def _validate(self, model: Any) -> None:
        count = len(model.layers)
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
        names = [node.name for node in model.nodes] if hasattr(model, "nodes") else []
        for key in self.by_name:
            if key not in names and not fnmatch.filter(names, key):
                raise CompositeError(f"composite {self.name!r} names node {key!r}, which matches no node of the "
                                     f"model (nodes: {names[:8]}{'...' if len(names) > 8 else ''})")

    def _from_name(self, name: str | None) -> tuple[Rule | None, bool]:
        """(rule, named exactly): the exact name first, then the first matching pattern."""
        if name is None:
            return None, False
        if name in self.by_name:
            return self.by_name[name], True
        for pattern, rule in self.by_name.items():
            if fnmatch.fnmatchcase(name, pattern):
                return rule, False
        return None, False

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

    @staticmethod
    def _by_class(mapping: Mapping[type, Rule], layer: Layer) -> Rule | None:
        if type(layer) in mapping:
            return mapping[type(layer)]
        for layer_type, rule in mapping.items():
            if isinstance(layer, layer_type):
                return rule
        return None

    def _from_type(self, layer: Layer) -> Rule | None:
        return self._by_class(self.by_type, layer)

    def rules(self, model: Any) -> list[Rule]:
        """The rule of every node of ``model`` (in position order), resolved in the documented order."""
        layers = list(model.layers)
        count = len(layers)
        self._validate(model)
        names = [node.name for node in model.nodes] if hasattr(model, "nodes") else [None] * count
        assigned = self.assign(model) if self.assign is not None else {}
        first_index = next((i for i, layer in enumerate(layers) if isinstance(layer, self.first_types)), None)
        resolved = []
        for index, (layer, name) in enumerate(zip(layers, names)):
            rule, exact = self._from_name(name)
            if rule is None:
                rule, exact = self._from_index(index, count)
            if not isinstance(layer, LinearLayer):
                resolved.append(self._nonlinear_rule(index, layer, rule, exact))
                continue
            if rule is None:
                rule = assigned.get(index)
            if rule is None and self.first is not None and index == first_index:
                rule = self.first
            if rule is None:
                rule = self._from_type(layer)
            if rule is None:
                rule = layer.default_rule()
            if rule is None:
                rule = self._by_class(self.structural, layer)
            if rule is None:
                rule = self.default
            if not rule.applies_to(layer):
                raise CompositeError(f"composite {self.name!r} gives {rule.describe()} to layer {index} "
                                     f"({layer.describe()}), which it does not apply to")
            resolved.append(rule)
        return resolved

    def _nonlinear_rule(self, index: int, layer: Layer, rule: Rule | None, exact: bool) -> Rule:
        """Pass, unless a rule that applies to this layer is named for it exactly or by type."""
        if exact and rule is not None:
            if not rule.applies_to(layer):
                raise CompositeError(f"composite {self.name!r} gives {rule.describe()} to layer {index} "
                                     f"({layer.describe()}), which is not linear; only Pass applies there")
            return rule
        typed = self._from_type(layer)
        if typed is not None and typed.applies_to(layer):
            return typed
        own = layer.default_rule()
        return own if own is not None else Pass()

    def describe(self, model: Any) -> str:
        """A printable node → rule table for ``model``."""
        rules = self.rules(model)
        named = not getattr(model, "is_chain", True)
        rows = [("index", "name", "layer", "rule", "stabilizer")]
        for index, (node, rule) in enumerate(zip(model.nodes, rules)):
            stabilizer = "" if isinstance(rule, Pass) else f"{rule.stabilizer_name} (ε={rule.epsilon:g})"
            rows.append((str(index), node.name, node.layer.describe(), rule.describe(), stabilizer))
        keep = [0, 1, 2, 3, 4] if named else [0, 2, 3, 4]
        rows = [tuple(row[k] for k in keep) for row in rows]
        widths = [max(len(row[column]) for row in rows) for column in range(len(keep))]
        lines = [f"composite {self.name!r}"]
        for row_number, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
            if row_number == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)


def uniform(rule: Rule, structural: Mapping[type, Rule] | None = None) -> Composite:
    """The same ``rule`` on every weighted layer (Dense, convolutions); Pass on element-wise layers.

    Pooling layers and ``Add`` carry no weights, and a rule built around weights (γ, αβ, z⁺, z^B) means
    nothing there or worse (αβ multiplies relevance by α where a window has no negative contribution), so
    by default they get:

    - LRP-0 / LRP-ε (the rule itself) at average pools and ``Add`` when ``rule`` is :class:`~lrpcore.rules.Zero`
      or :class:`~lrpcore.rules.Epsilon`, so ``uniform(Zero())`` is LRP-0 everywhere (gradient×input on ReLU
      networks); Flat at pools when ``rule`` is Flat or w² (uniform spreading, as the LRP Toolbox does);
      otherwise the structural rules (:data:`STRUCTURAL_RULES`: LRP-ε with ε = 1e-6 there);
    - :class:`~lrpcore.rules.WinnerTakesAll` at max pools (the same as LRP-0 wherever a window's maximum is
      not 0, and relevance reaching a zero window is not lost).

    Pass ``structural`` to choose otherwise, e.g. ``structural={}`` for ``rule`` everywhere.
    """
    if structural is None:
        structural = dict(STRUCTURAL_RULES)
        if isinstance(rule, Epsilon):          # Zero is an Epsilon with ε = 0
            structural.update({**dict.fromkeys(AVERAGE_POOLS, rule), Add: rule})
        elif isinstance(rule, (Flat, WSquare)):
            flat = Flat(stabilizer=rule.stabilizer_name if isinstance(rule.stabilizer_name, str) else "zennit")
            structural.update(dict.fromkeys(MAX_POOLS + AVERAGE_POOLS, flat))
    return Composite(default=rule, structural=structural, name=f"uniform({rule.describe()})")


# --- position in the feature stack --------------------------------------------------------------
def _feature_positions(layers: list[Any]) -> list[int]:
    """Positions of the feature layers: the Conv2d and Conv1d layers, or for a network without
    convolutions every Dense layer but the last (the classifier)."""
    features = [i for i, layer in enumerate(layers) if isinstance(layer, (Conv2d, Conv1d))]
    if not features:
        dense = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]
        features = dense[:-1] if len(dense) > 1 else dense
    return features


def _feature_groups(model: Any, group_count: int) -> tuple[int | None, list[list[int]], list[int]]:
    """Split a model into (first feature layer, groups of the remaining feature layers, top layers).

    Feature layers as :func:`_feature_positions` finds them. The remaining feature layers are cut into
    ``group_count`` consecutive groups as evenly as possible (earlier groups take the extra layer), the
    split the thesis' Tables 2.3–2.4 make on VGG-16's 12 convolutions after the first.
    Pooling layers belong to the group of the feature layer before them; every layer
    after the last feature layer is a top layer.
    """
    layers = list(model.layers)
    features = _feature_positions(layers)
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
        elif isinstance(layers[index], MAX_POOLS + AVERAGE_POOLS):
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
    def assign(model: Any) -> dict[int, Rule]:
        first, groups, top = _feature_groups(model, 2)
        mapping: dict[int, Rule] = {}
        if first is None:
            return mapping
        box_low, box_high = _bounds(model, low, high)
        mapping[first] = ZBox(box_low, box_high, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool)
        group_rules = [Gamma(gamma, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool),
                       Epsilon(epsilon, stabilizer=epsilon_stabilizer, maxpool=maxpool)]
        for members, rule in zip(groups, group_rules):
            for index in members:
                mapping[index] = rule
        for index in top:
            mapping[index] = Epsilon(1e-9, stabilizer=stabilizer, maxpool=maxpool)
        return mapping

    return Composite(assign=assign, default=Epsilon(1e-9, stabilizer=stabilizer, maxpool=maxpool), name="tutorial")


#: The thesis' Decreasing-γ groups as shares of the convolutions after the first: on VGG-16's 12 they are
#: 4, 3, 3 and 2 convolutions, the spans 1–10, 11–17, 18–24 and 25–38 of Table 2.3 and its code.
DECREASING_GAMMA_SHARES = (4, 3, 3, 2)


def _decreasing_gamma_spans(model: Any, group_count: int) -> tuple[int | None, list[range]]:
    """(first convolution, one span of positions per γ group).

    The convolutions after the first are cut into groups in the thesis' shares (4:3:3:2, or evenly for
    another number of groups). A group's span runs from just after the previous group's last convolution
    to its own last convolution, so the pools and ReLUs between two groups belong to the later one; the
    last span runs to the end of the network, dense layers included (γ = 0 there in the thesis' code).
    """
    layers = list(model.layers)
    convolutions = _feature_positions(layers)
    if not convolutions:
        return None, []
    first, rest = convolutions[0], convolutions[1:]
    shares = DECREASING_GAMMA_SHARES if group_count == len(DECREASING_GAMMA_SHARES) else (1,) * group_count
    total = sum(shares)
    ends = [round(len(rest) * sum(shares[:g + 1]) / total) for g in range(group_count)]
    spans, start = [], first + 1
    for group, end in enumerate(ends):
        stop = len(layers) if group == group_count - 1 else (rest[end - 1] + 1 if end > 0 else first + 1)
        spans.append(range(start, max(start, stop)))
        start = max(start, stop)
    return first, spans


def decreasing_gamma(low: Any = None, high: Any = None, gammas: Sequence[float] = (0.5, 0.25, 0.1, 0.0),
                     stabilizer: str = "vanilla", maxpool: str = "sum") -> Composite:
    """Decreasing-γ composite (thesis "In-Depth Hyperparameter Selection for LRP", Table 2.3).

    On torchvision's VGG-16: z^B on layer 0, γ = 0.5 on layers 1–10, 0.25 on 11–17, 0.1 on 18–24 and
    γ = 0 (LRP-0) from 25 on, the dense layers included, as the thesis' experiment code assigns them;
    every denominator + 1e-9 (``vanilla`` with ε = 1e-9). On other networks the convolutions after the
    first are cut in the same shares (see ``_decreasing_gamma_spans``). Pools inside a span get that
    span's γ on the window sum (``maxpool="sum"``), as the thesis' code (the LRP tutorial's) treats
    pooling as average pooling.
    """
    gammas = tuple(float(g) for g in gammas)
    if not gammas:
        raise ValueError("decreasing_gamma needs at least one γ")

    def assign(model: Any) -> dict[int, Rule]:
        first, spans = _decreasing_gamma_spans(model, len(gammas))
        mapping: dict[int, Rule] = {}
        if first is None:
            return mapping
        box_low, box_high = _bounds(model, low, high)
        mapping[first] = ZBox(box_low, box_high, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool)
        for span, gamma in zip(spans, gammas):
            rule = Gamma(gamma, stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool)
            for index in span:
                if isinstance(model.layers[index], LinearLayer) and not isinstance(model.layers[index], Add):
                    mapping[index] = rule
        return mapping

    return Composite(assign=assign, default=Gamma(gammas[-1], stabilizer=stabilizer, epsilon=1e-9, maxpool=maxpool),
                     name="decreasing_gamma")


# --- zennit's composites, and CMP ------------------------------------------------------------------
def _zennit_structural() -> dict[type, Rule]:
    """zennit's treatment of pools and sums: AvgPool and its ResNet canonizer's ``Sum`` get the
    parameter-free ε rule ``Norm`` (ε = 1e-6); max pooling is left to the gradient, i.e. all relevance
    to the first maximum of each window, even where that maximum is 0."""
    return structural_rules("first")


def cmp(alpha: int = 1, flat_input: bool = False, epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """LRP-CMP (Kohlbrenner et al. 2020): LRP-ε on dense layers, LRP-αβ (α=1,β=0 or α=2,β=1) on
    convolutions, and LRP-flat on the input layer when ``flat_input``."""
    if alpha not in (1, 2):
        raise ValueError(f"cmp takes alpha=1 (α1β0) or alpha=2 (α2β1), got {alpha}")
    conv_rule = AlphaBeta(alpha, alpha - 1, stabilizer=stabilizer)
    return Composite(by_type={Conv2d: conv_rule, Conv1d: conv_rule, Dense: Epsilon(epsilon, stabilizer=stabilizer)},
                     first=Flat(stabilizer=stabilizer) if flat_input else None, structural=_zennit_structural(),
                     name=f"cmp(α{alpha}β{alpha - 1}{', flat' if flat_input else ''})")


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
                              Dense: Epsilon(epsilon, stabilizer=stabilizer)},
                     assign=first_conv_bounds, structural=_zennit_structural(), name="epsilon_gamma_box")


def epsilon_plus(epsilon: float = 1e-6, stabilizer: str = "zennit") -> Composite:
    """zennit's EpsilonPlus: z⁺ on convolutions, ε on dense layers."""
    return Composite(by_type={Conv2d: ZPlus(stabilizer=stabilizer), Conv1d: ZPlus(stabilizer=stabilizer),
                              Dense: Epsilon(epsilon, stabilizer=stabilizer)},
                     structural=_zennit_structural(), name="epsilon_plus")


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
                              Dense: Epsilon(epsilon, stabilizer=stabilizer)},
                     structural=_zennit_structural(), name="epsilon_alpha2_beta1")


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
