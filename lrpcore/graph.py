"""``Graph``: a network as a directed acyclic graph of named nodes, each a layer applied to named inputs.

A node reads the graph input (named ``"input"``) or the outputs of other nodes, and the one node
that no other node reads is the network's output. Nodes are kept in a topological order (every
node after the nodes it reads), the order in which :meth:`Graph.forward` evaluates them and the
reverse of the order in which LRP visits them. That order is also what composites mean by a
node's *position*, so a chain of layers (:class:`lrpcore.Sequential`) keeps the indices it had.

Activations are numbered like the layers' inputs of a chain: activation 0 is the graph input and
activation p + 1 is the output of the node at position p. ``forward(x, record=True)`` returns that
list, ``input_positions[p]`` says which activations node p reads, and ``consumers[i]`` which nodes
read activation i. An activation read by several nodes (a *fan-out*, e.g. the skip connection of a
residual block) receives the sum of the relevances those nodes send back.

Nodes with several inputs (``Add``, ``Concat``) compute on one combined array
(:meth:`~lrpcore.layers.Layer.combine`), so the rules see every node as a layer with one input.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
from typing import Any, Callable, Iterator, Sequence

from .backend import get_namespace, is_floating, to_backend
from .errors import DTypeError, InputValueError, LRPError, ShapeError
from .layers import Layer
from .metadata import ModelMetadata

__all__ = ["INPUT", "Node", "Graph", "GraphError"]

#: The name nodes use for the graph's input.
INPUT = "input"


class GraphError(LRPError, ValueError):
    """A graph is malformed: a duplicate name, a missing or dangling input, a cycle, a wrong number of inputs."""


@dataclasses.dataclass(frozen=True)
class Node:
    """A named layer applied to the activations named in ``inputs`` (``"input"`` is the graph input)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"a node name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.layer, Layer):
            raise GraphError(f"node {self.name!r}: {type(self.layer).__name__} is not an lrpcore.layers.Layer")
        inputs = (self.inputs,) if isinstance(self.inputs, str) else tuple(self.inputs)
        if not inputs or not all(isinstance(name, str) for name in inputs):
            raise GraphError(f"node {self.name!r} needs its inputs as a non-empty list of names, got {self.inputs!r}")
        object.__setattr__(self, "inputs", inputs)


def _as_node(item: Node | Sequence[Any]) -> Node:
    if isinstance(item, Node):
        return item
    try:
        name, layer, inputs = item
    except (TypeError, ValueError):
        raise GraphError(f"a graph node is a Node or a (name, layer, inputs) triple, got {item!r}") from None
    return Node(name, layer, inputs)


def _topological(nodes: list[Node], input_name: str) -> list[Node]:
    """The nodes in a topological order that keeps the given order wherever the edges allow (Kahn's
    algorithm, always taking the earliest given node that is ready). Errors name the bad node."""
    given = {}
    for index, node in enumerate(nodes):
        if node.name == input_name:
            raise GraphError(f"node {index} is named {input_name!r}, the name of the graph input")
        if node.name in given:
            raise GraphError(f"two nodes are named {node.name!r} (positions {given[node.name]} and {index})")
        given[node.name] = index
    waiting = []
    for index, node in enumerate(nodes):
        arity = node.layer.arity
        if arity is None and len(node.inputs) < 2:
            raise GraphError(f"node {node.name!r} ({node.layer.describe()}) needs at least two inputs, "
                             f"got {list(node.inputs)}")
        if arity is not None and len(node.inputs) != arity:
            raise GraphError(f"node {node.name!r} ({node.layer.describe()}) takes {arity} input(s), "
                             f"got {list(node.inputs)}")
        for name in node.inputs:
            if name != input_name and name not in given:
                raise GraphError(f"node {node.name!r} reads {name!r}, which is neither the graph input "
                                 f"({input_name!r}) nor a node")
        waiting.append({name for name in node.inputs if name != input_name})
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in set(node.inputs) - {input_name}:
            readers.setdefault(name, []).append(index)
    ready = [index for index, needs in enumerate(waiting) if not needs]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(nodes[index])
        for reader in readers.get(nodes[index].name, []):
            waiting[reader].discard(nodes[index].name)
            if not waiting[reader]:
                heapq.heappush(ready, reader)
    if len(order) != len(nodes):
        stuck = sorted(node.name for index, node in enumerate(nodes) if waiting[index])
        raise GraphError(f"the graph has a cycle through the nodes {stuck}")
    return order


class Graph:
    """A feed-forward network as a directed acyclic graph of :class:`Node` s.

    ``nodes``: :class:`Node` objects or ``(name, layer, inputs)`` triples, in any order that a
    topological sort can keep (a graph given in evaluation order keeps it). ``metadata``: the
    input shape, value range, preprocessing and class names. The output is the one node that no
    other node reads; every node must lead to it (a node whose output nobody uses is an error, as
    relevance could never reach it).
    """

    def __init__(self, nodes: Sequence[Node | Sequence[Any]], metadata: ModelMetadata | None = None,
                 input_name: str = INPUT):
        parsed = [_as_node(item) for item in nodes]
        if not parsed:
            raise GraphError("a graph needs at least one node")
        self.input_name = input_name
        self.nodes: list[Node] = _topological(parsed, input_name)
        self.metadata = metadata if metadata is not None else ModelMetadata()
        self._link()

    def _link(self) -> None:
        """Positions: ``input_positions[p]`` (activations node p reads), ``consumers[i]`` (nodes reading i)."""
        position = {node.name: index for index, node in enumerate(self.nodes)}
        self._position = position
        self.layers: list[Layer] = [node.layer for node in self.nodes]
        self.input_positions: list[tuple[int, ...]] = [
            tuple(0 if name == self.input_name else position[name] + 1 for name in node.inputs)
            for node in self.nodes]
        self.consumers: list[list[int]] = [[] for _ in range(len(self.nodes) + 1)]
        for index, inputs in enumerate(self.input_positions):
            for activation in dict.fromkeys(inputs):
                self.consumers[activation].append(index)
        unused = [self.nodes[index - 1].name for index in range(1, len(self.nodes))
                  if not self.consumers[index]]
        if unused:
            raise GraphError(f"nodes {unused} are not read by any node and are not the output (the output is the "
                             f"last node, {self.nodes[-1].name!r}); relevance could never reach them")
        if not self.consumers[0]:
            raise GraphError(f"no node reads the graph input {self.input_name!r}")

    # --- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> Any:
        """The layer at a position, or of the node with that name."""
        if isinstance(key, str):
            return self.node(key).layer
        if isinstance(key, slice):
            raise TypeError("slicing gives a Sequential; a Graph cannot be sliced")
        return self.layers[key]

    def node(self, key: int | str) -> Node:
        """The :class:`Node` at a position or with a name."""
        if isinstance(key, str):
            try:
                return self.nodes[self._position[key]]
            except KeyError:
                raise KeyError(f"the graph has no node {key!r}; nodes are {self.names}") from None
        return self.nodes[key]

    def position(self, name: str) -> int:
        """The position of node ``name`` in the topological order."""
        self.node(name)
        return self._position[name]

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    @property
    def is_chain(self) -> bool:
        """True when every node reads exactly the node before it (the graph is a Sequential)."""
        return all(inputs == (index,) for index, inputs in enumerate(self.input_positions))

    def where(self, position: int) -> str:
        """How messages name the node at ``position``."""
        node = self.nodes[position]
        return f"node {node.name!r} ({node.layer.describe()})"

    def __repr__(self) -> str:
        return f"Graph({len(self)} nodes, name={self.metadata.name!r})"

    # --- arrays ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    def namespace(self) -> Any:
        """The array namespace the model's weights live in."""
        for layer in self.layers:
            params = layer.parameters()
            if params:
                return get_namespace(next(iter(params.values())))
        import array_api_compat.numpy as namespace
        return namespace

    def with_layers(self, layers: Sequence[Layer]) -> "Graph":
        """The same graph with each node's layer replaced by ``layers[position]`` (metadata copied)."""
        return Graph([Node(node.name, layer, node.inputs) for node, layer in zip(self.nodes, layers)],
                     dataclasses.replace(self.metadata), self.input_name)

    def with_metadata(self, **changes: Any) -> "Graph":
        """The same model (layers shared) with metadata fields replaced, e.g. ``with_metadata(name="net")``."""
        model = self.with_layers(self.layers)
        model.metadata = dataclasses.replace(self.metadata, **changes)
        return model

    def rebuilt(self, nodes: Sequence[Node]) -> "Graph":
        """A model of the same kind from new ``nodes`` (model surgery such as :func:`lrpcore.canonize`)."""
        return Graph(nodes, dataclasses.replace(self.metadata), self.input_name)

    def to(self, backend: Any) -> "Graph":
        """A copy of the model with all arrays on ``backend`` ("numpy", "cupy", or a namespace)."""
        return self.with_layers([layer.to(backend) for layer in self.layers])

    def astype(self, dtype: Any) -> "Graph":
        """A copy of the model with all arrays cast to ``dtype`` ("float32", "float64", ...)."""
        return self.with_layers([layer.astype(dtype) for layer in self.layers])

    def prepare_input(self, x: Any) -> Any:
        """Validate ``x`` and cast it to the model's dtype and backend; errors name what is wrong."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise DTypeError(f"input must be an array, got {type(x).__name__}")
        try:
            floating = is_floating(x)
        except TypeError:
            floating = False
        if not floating:
            raise DTypeError(f"input dtype {x.dtype} is not a real floating-point type; "
                             "convert images to float (e.g. divide uint8 by 255) first")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ShapeError(f"input batch is empty (shape {tuple(x.shape)}); pass at least one sample")
        expected = self.metadata.input_shape
        if expected is not None:
            if x.ndim != len(expected) + 1:
                raise ShapeError(f"input must have shape (N, {', '.join(map(str, expected))}), "
                                 f"got rank {x.ndim} array of shape {tuple(x.shape)}")
            if tuple(x.shape[1:]) != tuple(expected):
                raise ShapeError(f"input must have shape (N, {', '.join(map(str, expected))}), "
                                 f"got {tuple(x.shape)}")
        xp = self.namespace()
        if get_namespace(x) is not xp and getattr(get_namespace(x), "__name__", "") != getattr(xp, "__name__", ""):
            x = to_backend(x, xp)
        if self.dtype is not None and x.dtype != self.dtype:
            x = xp.astype(x, self.dtype)
        if not bool(xp.all(xp.isfinite(x))):
            raise InputValueError(f"input of shape {tuple(x.shape)} contains NaN or inf values")
        return x

    # --- computing -------------------------------------------------------------------------------
    def node_input(self, position: int, activations: Sequence[Any]) -> Any:
        """The combined array node ``position`` computes on, from the list of activations."""
        inputs = [activations[index] for index in self.input_positions[position]]
        return inputs[0] if len(inputs) == 1 and self.layers[position].arity == 1 else \
            self.layers[position].combine(inputs)

    def forward(self, x: Any, record: bool = False,
                run: Callable[[int, Layer, Any], Any] | None = None) -> Any:
        """Evaluate the nodes in topological order.

        With ``record=True`` return the list of activations [x, a_1, ..., a_n] (a_{p+1}: output of
        the node at position p); otherwise the output only, freeing each activation once its last
        reader is done. ``run(position, layer, a)``, if given, computes a node's output instead of
        ``layer.forward(a)`` (the engine uses it to spread layers over threads).
        """
        activations: list[Any] = [x] + [None] * len(self.nodes)
        remaining = [len(readers) for readers in self.consumers]
        for position, layer in enumerate(self.layers):
            try:
                if layer.arity != 1:      # a join: computed from its inputs, without the combined copy
                    inputs = [activations[index] for index in self.input_positions[position]]
                    activations[position + 1] = layer.forward_inputs(inputs)
                else:
                    a = self.node_input(position, activations)
                    activations[position + 1] = layer.forward(a) if run is None else run(position, layer, a)
            except LRPError as error:
                raise type(error)(f"{self.where(position)}: {error}") from None
            if not record:
                for index in dict.fromkeys(self.input_positions[position]):
                    remaining[index] -= 1
                    if remaining[index] == 0:
                        activations[index] = None
        return activations if record else activations[-1]

    __call__ = forward

    def backward(self, activations: Sequence[Any], grad_output: Any,
                 vjp: Callable[[Layer, Any, Any], Any] | None = None) -> Any:
        """The vector-Jacobian product through the whole graph: d⟨grad_output, f(x)⟩/dx.

        ``activations``: from ``forward(x, record=True)``. ``vjp(layer, a, g)``, if given, replaces
        ``layer.gradient(a, g)`` (guided backprop and deconvnet change the ReLU's); return None from
        it to use the layer's own gradient. Gradients reaching a fan-out are added.
        """
        grads: list[Any] = [None] * len(activations)
        grads[-1] = grad_output
        for position in range(len(self.nodes) - 1, -1, -1):
            layer = self.layers[position]
            a = self.node_input(position, activations)
            upper = grads[position + 1]
            lower = vjp(layer, a, upper) if vjp is not None else None
            if lower is None:
                lower = layer.gradient(a, upper)
            shapes = [tuple(activations[index].shape) for index in self.input_positions[position]]
            for index, part in zip(self.input_positions[position], layer.split(lower, shapes)):
                grads[index] = part if grads[index] is None else grads[index] + part
            grads[position + 1] = None
        return grads[0]

    def output_shapes(self, input_shape: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """Per-sample output shape of every node for ``input_shape`` (default: the metadata's)."""
        shape = tuple(input_shape or self.metadata.input_shape or ())
        if not shape:
            raise ValueError("output_shapes needs an input_shape (the model metadata has none)")
        shapes: list[tuple[int, ...]] = [shape]
        for position, layer in enumerate(self.layers):
            inputs = [shapes[index] for index in self.input_positions[position]]
            shapes.append(tuple(layer.output_shape(layer.combined_shape(inputs))))
        return shapes[1:]

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A readable table: position, name, layer, inputs (graphs only), output shape, parameter count."""
        shape = input_shape or self.metadata.input_shape
        shapes = self.output_shapes(shape) if shape else [None] * len(self)
        chain = self.is_chain
        header = ("index", "name", "layer", "inputs", "output shape", "parameters")
        columns = [0, 2, 4, 5] if chain else [0, 1, 2, 3, 4, 5]
        rows = [tuple(header[c] for c in columns)]
        total = 0
        for index, (node, out_shape) in enumerate(zip(self.nodes, shapes)):
            count = sum(math.prod(value.shape) for value in node.layer.parameters().values())
            total += count
            cells = (str(index), node.name, node.layer.describe(), ", ".join(node.inputs),
                     "?" if out_shape is None else str(tuple(out_shape)), f"{count:,}")
            rows.append(tuple(cells[c] for c in columns))
        widths = [max(len(row[column]) for row in rows) for column in range(len(columns))]
        lines = [f"{self.metadata.name}: input {tuple(shape) if shape else '?'}, dtype {self.dtype}"]
        for row_index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(width) if column < len(columns) - 1 else cell.rjust(width)
                                   for column, (cell, width) in enumerate(zip(row, widths))))
            if row_index == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.append(f"total parameters: {total:,}")
        return "\n".join(lines)
