"""``Sequential``: a chain of layers, the simplest :class:`~lrpcore.Graph`."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .canonize import canonize
from .graph import INPUT, Graph, Node
from .layers import Layer
from .metadata import ModelMetadata

__all__ = ["ModelMetadata", "Sequential", "Graph", "canonize"]


class Sequential(Graph):
    """A chain of layers: ``layers[0]`` sees the input, ``layers[-1]`` produces the scores.

    The chain case of :class:`~lrpcore.Graph`: node p is named ``str(p)`` and reads node p − 1.
    Layer indices (positions in ``layers``) are what composites refer to, so keep
    non-parametric layers (ReLU, Dropout, Flatten) in the list as the source network has them.
    """

    def __init__(self, layers: Sequence[Layer], metadata: ModelMetadata | None = None):
        layers = list(layers)
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {index} is {type(layer).__name__}, not an lrpcore.layers.Layer")
            if layer.arity != 1:
                raise TypeError(f"layer {index} ({layer.describe()}) joins several inputs; build a Graph")
        if not layers:
            raise ValueError("a Sequential needs at least one layer")
        nodes = [Node(str(index), layer, (str(index - 1) if index else INPUT,)) for index, layer in enumerate(layers)]
        super().__init__(nodes, metadata)

    def __getitem__(self, index: int | slice | str) -> Any:
        if isinstance(index, slice):
            return Sequential(self.layers[index], dataclasses.replace(self.metadata))
        return super().__getitem__(index)

    def __repr__(self) -> str:
        return f"Sequential({len(self)} layers, name={self.metadata.name!r})"

    def where(self, position: int) -> str:
        return f"layer {position} ({self.layers[position].describe()})"

    def with_layers(self, layers: Sequence[Layer]) -> "Sequential":
        return Sequential(list(layers), dataclasses.replace(self.metadata))

    def rebuilt(self, nodes: Sequence[Node]) -> Graph:
        """A Sequential of the nodes' layers where they still form a chain, else a Graph."""
        graph = Graph(nodes, dataclasses.replace(self.metadata), self.input_name)
        return Sequential(graph.layers, graph.metadata) if graph.is_chain else graph

