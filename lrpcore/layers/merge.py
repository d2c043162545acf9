"""The nodes that join branches of a graph: ``Add`` (residual connections), ``Concat`` and ``Identity``.

A node of a :class:`lrpcore.Graph` with several inputs computes on one *combined* array
(:meth:`~lrpcore.layers.Layer.combine`) and hands relevance back to its inputs with
:meth:`~lrpcore.layers.Layer.split`:

- ``Add`` stacks its n inputs on a new axis 1, (N, n, ...), and sums over it. On the stacked
  array it is a linear layer with the weight (1, ..., 1) and no bias, so every LRP rule applies
  to it unchanged. LRP-ε/LRP-0 there is R_i = z_i ⊘ stabilize(Σ_i z_i) ⊙ R: each input's share
  of the sum (Montavon et al. 2019, eq. 10.2 with the inputs as the z_jk). zennit's ResNet
  canonizer builds the same node (a stack and a ``Sum`` module) and gives it the ``Norm`` rule,
  which is this ε rule with ε = 1e-6 and zennit's stabilizer.
- ``Concat(axis)`` joins its inputs along ``axis`` (counted with the batch axis, as
  ``torch.cat(dim=axis)``); it does not mix values, so relevance is passed (``Pass``) and cut back
  into the inputs' slices exactly.
- ``Identity`` passes its one input on.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..backend import get_namespace
from ..errors import ShapeError
from .base import Layer, LinearLayer, MaxPoolMode

__all__ = ["Add", "Concat", "Identity"]


class Add(LinearLayer):
    """Element-wise sum of n ≥ 2 inputs of one shape, computed on their stack (N, n, ...) as Σ_i w_i x_i, w = 1."""

    arity = None

    def __call__(self, *inputs: Any) -> Any:
        return self.forward(inputs[0] if len(inputs) == 1 else self.combine(inputs))

    def combine(self, inputs: Sequence[Any]) -> Any:
        if len(inputs) < 2:
            raise ShapeError(f"Add needs at least two inputs, got {len(inputs)}")
        shapes = {tuple(array.shape) for array in inputs}
        if len(shapes) != 1:
            raise ShapeError(f"Add needs inputs of one shape, got {[tuple(array.shape) for array in inputs]}")
        xp = get_namespace(*inputs)
        return xp.stack(list(inputs), axis=1)

    def combined_shape(self, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
        """One sample's combined shape (n, ...) for the inputs' per-sample ``shapes``."""
        if len(shapes) < 2 or len({tuple(shape) for shape in shapes}) != 1:
            raise ShapeError(f"Add needs at least two inputs of one shape, got {list(shapes)}")
        return (len(shapes), *shapes[0])

    def split(self, relevance: Any, input_shapes: Sequence[tuple[int, ...]]) -> list[Any]:
        return [relevance[:, index, ...] for index in range(relevance.shape[1])]

    def describe(self) -> str:
        return "Add()"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape[1:])

    def _check(self, x: Any) -> None:
        if x.ndim < 2 or x.shape[1] < 2:
            raise ShapeError(f"Add computes on its inputs stacked as (N, n ≥ 2, ...), got shape {tuple(x.shape)}")

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        xp = get_namespace(x)
        return xp.ones((x.shape[1],), dtype=x.dtype, device=x.device)

    def _broadcast(self, weight: Any, ndim: int) -> Any:
        xp = get_namespace(weight)
        return xp.reshape(weight, (1, weight.shape[0]) + (1,) * (ndim - 2))

    def forward_inputs(self, inputs: Sequence[Any]) -> Any:
        """Σ_i x_i straight from the inputs (no stacked copy), as the graph's forward pass computes it."""
        self.combined_shape([tuple(array.shape[1:]) for array in inputs])
        total = inputs[0] + inputs[1]
        for other in inputs[2:]:
            total = total + other
        return total

    def is_own_forward(self, weight: Any, bias: Any | None) -> bool:
        xp = get_namespace(weight)
        return bias is None and bool(xp.all(weight == 1))

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ_i w_i x_i over the stacked inputs, term by term (no (N, n, ...) product is built)."""
        self._check(x)
        total = x[:, 0, ...] * weight[0]
        for index in range(1, x.shape[1]):
            total = total + x[:, index, ...] * weight[index]
        return total if bias is None else total + bias

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        xp = get_namespace(s, weight)
        return xp.expand_dims(s, axis=1) * self._broadcast(weight, s.ndim + 1)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(grad_output)
        return xp.broadcast_to(xp.expand_dims(grad_output, axis=1), tuple(x.shape))


class Concat(Layer):
    """Join n ≥ 2 inputs along ``axis`` (with the batch axis, ``axis=1`` is channels); relevance is cut back."""

    arity = None

    def __init__(self, axis: int = 1):
        if isinstance(axis, bool) or int(axis) != axis or axis < 1:
            raise ValueError(f"Concat axis must be an integer ≥ 1 (axis 0 is the batch), got {axis!r}")
        self.axis = int(axis)

    def __call__(self, *inputs: Any) -> Any:
        return self.forward(inputs[0] if len(inputs) == 1 else self.combine(inputs))

    def hyperparameters(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def describe(self) -> str:
        return f"Concat(axis={self.axis})"

    def combine(self, inputs: Sequence[Any]) -> Any:
        if len(inputs) < 2:
            raise ShapeError(f"Concat needs at least two inputs, got {len(inputs)}")
        self.combined_shape([tuple(array.shape[1:]) for array in inputs])
        xp = get_namespace(*inputs)
        return xp.concat(list(inputs), axis=self.axis)

    def combined_shape(self, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
        axis = self.axis - 1
        first = tuple(shapes[0])
        if len(shapes) < 2 or any(len(shape) != len(first) or axis >= len(first) for shape in shapes):
            raise ShapeError(f"{self.describe()} needs at least two inputs of one rank above {self.axis}, "
                             f"got per-sample shapes {list(shapes)}")
        for shape in shapes:
            if tuple(shape[:axis]) + tuple(shape[axis + 1:]) != first[:axis] + first[axis + 1:]:
                raise ShapeError(f"{self.describe()}: inputs differ outside axis {self.axis}: {list(shapes)}")
        return first[:axis] + (sum(shape[axis] for shape in shapes),) + first[axis + 1:]

    def split(self, relevance: Any, input_shapes: Sequence[tuple[int, ...]]) -> list[Any]:
        parts, start = [], 0
        for shape in input_shapes:
            size = shape[self.axis]
            index = (slice(None),) * self.axis + (slice(start, start + size),)
            parts.append(relevance[index])
            start += size
        return parts

    def forward(self, x: Any) -> Any:
        return x

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return grad_output


class Identity(Layer):
    """The identity: a named place in a graph (torch's ``nn.Identity``); relevance passes unchanged."""

    def forward(self, x: Any) -> Any:
        return x

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return grad_output

    def describe(self) -> str:
        return "Identity()"
