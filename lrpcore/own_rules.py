"""Rules for non-linear layers that carry their own LRP rule (LSTM, SquaredDistance).

:class:`lrpcore.Composite` gives every layer that is not a ``LinearLayer`` the rule ``Pass`` (and refuses
another rule named by exact index), which is right for ReLU, Flatten and Dropout. Layers such as
:class:`lrpcore.lstm.LSTM` or :class:`lrpcore.neon.SquaredDistance` are not linear but have a rule written
for them (:class:`~lrpcore.lstm.SignalTakesAll`, :class:`~lrpcore.neon.DistanceShares`), which overrides
``Rule.relevance`` entirely. :class:`OwnRulesComposite` is a ``Composite`` that also hands such a rule to a
non-linear layer when it is named for the layer's exact class in ``by_type`` or for its exact index in
``by_index``; everything else resolves as in ``Composite``.

(Until ``Composite`` itself does this, use this class or :func:`own_rules` for models with these layers.)
"""
from __future__ import annotations

from typing import Any

import math

from .backend import get_namespace
from .composites import Composite, get_composite
from .layers import LinearLayer
from .rules import Pass, Rule

__all__ = ["OwnRulesComposite", "own_rules", "overrides_relevance", "own_rule_matrix"]


def overrides_relevance(rule: Rule) -> bool:
    """True for rules that compute ``relevance`` themselves (not through terms of a linear layer)."""
    return type(rule).relevance is not Rule.relevance and not isinstance(rule, Pass)


class OwnRulesComposite(Composite):
    """A :class:`~lrpcore.Composite` that also gives non-linear layers a rule written for them (module doc)."""

    def rules(self, model: Any) -> list[Rule]:
        count = len(model.layers)
        own = {}
        for index, layer in enumerate(model.layers):
            if isinstance(layer, LinearLayer):
                continue
            exact = [rule for key, rule in self.by_index.items() if isinstance(key, int) and key % count == index]
            rule = exact[0] if exact else self.by_type.get(type(layer))
            if rule is not None and overrides_relevance(rule):
                own[index] = rule
        if not own:
            return super().rules(model)
        # resolve the rest without the entries that name the non-linear layers by index
        rest = OwnRulesComposite.__new__(OwnRulesComposite)
        rest.__dict__.update(self.__dict__)
        rest.by_index = {key: rule for key, rule in self.by_index.items()
                         if not (isinstance(key, int) and key % count in own)}
        resolved = Composite.rules(rest, model)
        for index, rule in own.items():
            resolved[index] = rule
        return resolved


def own_rules(composite: Composite | str | None = None, by_type: dict[type, Rule] | None = None) -> OwnRulesComposite:
    """``composite`` (a Composite, a preset name or None for LRP-0) with ``by_type`` rules added for layers of
    those exact classes, linear or not; e.g. ``own_rules("epsilon_plus", {LSTM: SignalTakesAll()})``."""
    base = get_composite(composite) if composite is not None else Composite(name="zero")
    result = OwnRulesComposite.__new__(OwnRulesComposite)
    result.__dict__.update(base.__dict__)
    result.by_type = {**base.by_type, **(by_type or {})}
    result.name = base.name if not by_type else f"{base.name}+own rules"
    return result


def own_rule_matrix(layer: Any, a: Any, rule: Rule) -> Any:
    """The explicit matrix M (in_features × out_features) of a rule that is linear in the upper relevance
    for a fixed input (SignalTakesAll, DistanceShares, and every LRP rule): column k is the relevance the
    rule passes down for the unit relevance e_k, so R_lower = M · R_upper. ``a`` is one sample (batch axis 1).

    :func:`lrpcore.relevance_matrix` builds matrices of linear layers from their forward maps; this one
    serves the non-linear layers, whose rules are linear in R but whose maps are not in a.
    """
    xp = get_namespace(a)
    if a.shape[0] != 1:
        raise ValueError(f"own_rule_matrix explains one sample; got a batch of shape {tuple(a.shape)}")
    output_shape = tuple(layer.forward(a).shape[1:])
    count = math.prod(output_shape)
    units = xp.reshape(xp.eye(count, dtype=a.dtype), (count, *output_shape))
    repeated = xp.broadcast_to(a, (count, *a.shape[1:]))
    lower = rule.relevance(layer, xp.asarray(repeated, copy=True), units)
    return xp.matrix_transpose(xp.reshape(lower, (count, -1)))
