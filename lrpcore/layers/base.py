"""The layer interface every LRP rule is written against: ``Layer``, ``LinearLayer`` and weighted layers.

Conventions follow PyTorch: batches first, images NCHW, a dense weight is (out, in),
a convolution weight is (out, in, kh, kw). No autograd is used anywhere; every map
an LRP rule needs is written as array operations:

- ``forward(x)``: the layer as the network computes it.
- ``linear_forward(x, weight, bias)``: for layers that are linear in their input
  (``Dense``, the convolutions, average pooling and the locally linear max pooling), the
  same map with substituted parameters. LRP rules call it with ρ(w), ρ(b)
  (the "ρ-modified forward" of Montavon et al. 2019, eq. 10.2).
- ``linear_transpose(s, weight, input_shape)``: the adjoint of that map without bias,
  c = f_ρᵀ(s), the third of the four LRP steps.
- ``gradient(x, grad_output)``: the vector-Jacobian product used for gradient×input.

A layer of a graph may take several inputs (``Add``, ``Concat``): ``combine`` turns the list
of input arrays into the one array ``a`` the layer (and its rule) sees, and ``split`` cuts a
relevance of ``a``'s shape back into one array per input. Single-input layers leave both alone.
"""
from __future__ import annotations

import numbers
from typing import Any, Literal, Sequence

from ..backend import get_namespace, to_backend
from ..errors import ShapeError

__all__ = ["Layer", "LinearLayer", "MaxPoolMode"]

MaxPoolMode = Literal["winner", "winner_first", "sum"]


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """``value`` as a pair of non-negative integers; 2.7 or True is an error, not truncated."""
    items = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {value!r}") from None
    if (len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or int(v) != v or v < 0
                                for v in items)):
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {value!r}")
    return (int(items[0]), int(items[1]))


class Layer:
    """Base class: a layer maps a batch of inputs to a batch of outputs."""

    #: True for layers that implement ``linear_forward`` / ``linear_transpose``.
    is_linear: bool = False
    #: True for layers with learned parameters (weights); composites use it for "first layer".
    has_weights: bool = False

    #: How many inputs the layer takes in a graph (None: any number ≥ 2, as ``Add`` and ``Concat``).
    arity: int | None = 1

    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def default_rule(self) -> Any:
        """The rule a composite gives this layer when nothing names it (before the structural rules and the
        composite's default), or None to leave it to the composite. Layers with a rule of their own (an LSTM's
        signal-take-all, NEON's distance layer) return it, so every preset explains them."""
        return None

    def combine(self, inputs: Sequence[Any]) -> Any:
        """The one array a layer of a graph computes on, from its list of inputs (the input itself here)."""
        if len(inputs) != 1:
            raise ShapeError(f"{self.describe()} takes one input, got {len(inputs)}")
        return inputs[0]

    def forward_inputs(self, inputs: Sequence[Any]) -> Any:
        """The layer's output from its list of inputs: ``forward(combine(inputs))``, which a layer joining
        several inputs may compute without building the combined array (``Add``)."""
        return self.forward(self.combine(inputs))

    def combined_shape(self, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
        """One sample's shape of the combined input, for the inputs' per-sample ``shapes``."""
        if len(shapes) != 1:
            raise ShapeError(f"{self.describe()} takes one input, got {len(shapes)}")
        return tuple(shapes[0])

    def split(self, relevance: Any, input_shapes: Sequence[tuple[int, ...]]) -> list[Any]:
        """Relevance of the combined input cut into one array per input (``[relevance]`` here)."""
        return [relevance]

    def gradient(self, x: Any, grad_output: Any) -> Any:
        """Vector-Jacobian product: d(⟨grad_output, f(x)⟩)/dx."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output for one sample's ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def parameters(self) -> dict[str, Any]:
        """Named arrays this layer holds (weights, biases, running statistics)."""
        return {}

    def hyperparameters(self) -> dict[str, Any]:
        """Named non-array settings (kernel size, stride...) that reconstruct the layer with ``parameters``."""
        return {}

    def _replace_parameters(self, converted: dict[str, Any]) -> "Layer":
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(converted)
        return clone

    def to(self, backend: Any) -> "Layer":
        """A copy of the layer with its arrays on ``backend`` ("numpy", "cupy" or a namespace)."""
        return self._replace_parameters({name: to_backend(value, backend)
                                         for name, value in self.parameters().items()})

    def astype(self, dtype: Any) -> "Layer":
        """A copy of the layer with its arrays cast to ``dtype`` (e.g. "float64")."""
        converted = {}
        for name, value in self.parameters().items():
            xp = get_namespace(value)
            target = getattr(xp, dtype) if isinstance(dtype, str) else dtype
            converted[name] = xp.astype(value, target)
        return self._replace_parameters(converted)

    @property
    def dtype(self) -> Any:
        params = self.parameters()
        return next(iter(params.values())).dtype if params else None

    def describe(self) -> str:
        """One line with the layer type and its hyperparameters, e.g. ``Conv2d(3→64, k=3, s=1, p=1)``."""
        settings = ", ".join(f"{key}={value}" for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    def __repr__(self) -> str:
        return self.describe()

    def _check_rank(self, x: Any, ranks: tuple[int, ...], what: str) -> None:
        if x.ndim not in ranks:
            raise ShapeError(f"{self.describe()} expects {what}, got an array of shape {tuple(x.shape)}")


class LinearLayer(Layer):
    """A layer that is linear in its input up to a bias: f(x) = W x + b.

    Subclasses implement the substituted forward and the transposed map; LRP rules
    are written once against these two methods.
    """

    is_linear = True
    #: True for layers that select inputs (max pooling): their weights are 0/1 selections of a window's
    #: maximum, so relevance can be routed to the winners (:class:`~lrpcore.rules.WinnerTakesAll`).
    selects: bool = False

    def forward(self, x: Any) -> Any:
        return self.linear_forward(x, self.relevance_weight(x), self.relevance_bias())

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        """The weight array W the LRP rules modify (ρ(W)); for max pooling it depends on ``x``."""
        return self.weight  # type: ignore[attr-defined]

    def relevance_bias(self) -> Any | None:
        """The bias b the rules modify, or None for bias-free layers (pooling)."""
        return getattr(self, "bias", None)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        raise NotImplementedError

    def is_own_forward(self, weight: Any, bias: Any | None) -> bool:
        """Whether ``linear_forward(a, weight, bias)`` is exactly this layer's ``forward(a)``, so that a rule may
        take the recorded output as its denominator instead of recomputing it (the layer's own weight and
        bias, both given)."""
        own = getattr(self, "weight", None)
        return own is not None and weight is own and bias is not None and bias is self.relevance_bias()

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return self.linear_transpose(grad_output, self.relevance_weight(x, "winner_first"), tuple(x.shape))


class _WeightedLayer(LinearLayer):
    """A linear layer with a learned ``weight`` (out, in, ...) and ``bias`` (out,): Dense and the convolutions."""

    has_weights = True
    #: The weight's axes, as error messages name them, e.g. "(out, in)".
    weight_layout = ""

    def _set_weight_and_bias(self, weight: Any, bias: Any | None) -> None:
        """Check the shapes (a missing bias becomes zeros) and keep both arrays."""
        name = type(self).__name__
        if weight.ndim != self.weight_layout.count(",") + 1:
            raise ShapeError(f"{name} weight must be {self.weight_layout}, got shape {tuple(weight.shape)}")
        xp = get_namespace(weight)
        if bias is None:
            bias = xp.zeros((weight.shape[0],), dtype=weight.dtype, device=weight.device)
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"{name} bias must be ({weight.shape[0]},), got shape {tuple(bias.shape)}")
        self.weight = weight
        self.bias = bias

    def parameters(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias}
