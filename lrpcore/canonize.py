"""Canonization: rewrite a network into an equivalent one whose layers the LRP rules are made for.

Montavon et al. 2019 (section 10.3.2) fold batch normalisation into the neighbouring linear layer:
an inference-time BatchNorm is the affine map y = scale·x + shift per channel, so a BatchNorm after
a convolution or dense layer gives W' = scale·W, b' = scale·b + shift (``BatchNorm.fold_into``), and a BatchNorm before a
dense layer gives W' = W·diag(scale), b' = b + W·shift. The folded network computes the same
function (1e-10 relative in float64) and the rules then see one linear layer instead of two.

In a graph a BatchNorm is folded where that is legal: into the linear node it reads when that node's
output goes to the BatchNorm alone (conv → BN inside a residual branch), or else into the one dense
node that reads it. A BatchNorm that cannot be folded (it follows an addition, or its input also
goes elsewhere) stays, with a warning: LRP then passes relevance through it unchanged, as zennit does
(see :class:`~lrpcore.layers.BatchNorm2d` for the alternative of a per-channel linear rule).
"""
from __future__ import annotations

import warnings
from typing import Any

from .backend import get_namespace
from .errors import ShapeError
from .graph import Graph, Node
from .layers import Conv1d, Conv2d, Dense, Layer, _BatchNorm

__all__ = ["canonize", "UnfoldedBatchNormWarning"]

#: Layers a following BatchNorm folds into: their output channels are the weight's first axis.
_FOLDS_AFTER = (Dense, Conv2d, Conv1d)


class UnfoldedBatchNormWarning(UserWarning):
    """A BatchNorm could not be folded into a linear layer; LRP passes relevance through it."""


def _fold_before(norm: _BatchNorm, dense: Dense) -> Dense:
    """Fold W (scale·x + shift) + b into one dense layer: W' = W·diag(scale), b' = b + W·shift."""
    xp = get_namespace(dense.weight)
    scale, shift = norm.scale_shift()
    if dense.in_features != norm.num_features:
        raise ShapeError(f"cannot fold {norm.describe()} into {dense.describe()}: feature counts differ")
    weight = dense.weight * xp.reshape(scale, (1, -1))
    return dense._replace_parameters({"weight": weight, "bias": dense.bias + xp.matmul(dense.weight, shift)})


def canonize(model: Graph) -> Graph:
    """Return a copy of ``model`` with every BatchNorm that can be folded folded into its linear neighbour.

    A :class:`~lrpcore.Sequential` stays a Sequential (layer indices after a folded BatchNorm shift
    down by one); a graph keeps its node names (a folded node keeps the linear node's name).
    BatchNorms that cannot be folded stay and raise an :class:`UnfoldedBatchNormWarning`.
    """
    nodes: dict[str, Node] = {node.name: node for node in model.nodes}
    order = [node.name for node in model.nodes]
    input_name = model.input_name

    def readers(name: str) -> list[str]:
        return [other for other in order if name in nodes[other].inputs]

    def rename(old: str, new: str) -> None:
        for other in order:
            node = nodes[other]
            if old in node.inputs:
                nodes[other] = Node(node.name, node.layer, tuple(new if name == old else name
                                                                  for name in node.inputs))

    unfolded = []
    for name in list(order):
        node = nodes[name]
        if not isinstance(node.layer, _BatchNorm):
            continue
        source = node.inputs[0]
        after = nodes.get(source) if source != input_name else None
        if after is not None and isinstance(after.layer, _FOLDS_AFTER) and readers(source) == [name]:
            nodes[source] = Node(source, node.layer.fold_into(after.layer), after.inputs)
            order.remove(name)
            del nodes[name]
            rename(name, source)
            continue
        following = readers(name)
        if (len(following) == 1 and isinstance(nodes[following[0]].layer, Dense)
                and nodes[following[0]].layer.in_features == node.layer.num_features):
            dense = nodes[following[0]]
            nodes[dense.name] = Node(dense.name, _fold_before(node.layer, dense.layer), (source,))
            order.remove(name)
            del nodes[name]
            continue
        unfolded.append(f"{model.where(model.position(name))}")
    if unfolded:
        warnings.warn(f"cannot fold {', '.join(unfolded)} into a linear layer (it neither follows a Dense/Conv "
                      "layer whose output goes to it alone nor precedes a single Dense layer); LRP passes "
                      "relevance through it unchanged, as zennit does", UnfoldedBatchNormWarning, stacklevel=2)
    return model.rebuilt([nodes[name] for name in order])
