"""The LRP Toolbox's plain-text model files → :class:`~lrpcore.Sequential`, and the rules that reproduce its LRP.

The LRP Toolbox (Lapuschkin et al. 2016, github.com/sebastian-lapuschkin/lrp_toolbox) writes a
network as one layer after another (``python/model_io.py``, shared with its MATLAB version):

- ``Linear m n``, then a line of m·n weights (W of shape (m, n) = (inputs, outputs), C order) and a
  line of n biases; y = x·W + B. (Older files write W as m lines of n values; read too.)
- ``Convolution h w d n s0 s1``, then the h·w·d·n filter values (shape (h, w, d, n): height, width,
  input depth, filters) and n biases; no padding, stride (s0, s1), inputs (N, H, W, D).
- ``MaxPool h w s0 s1`` and ``SumPool h w s0 s1``: windows h×w with stride (s0, s1), no padding.
  The Toolbox's sum pooling outputs the window sum times 1/√(h·w) (its ``normalizer``, "to keep the
  output well conditioned"), the same factor in its gradient.
- ``Rect`` (ReLU), ``Tanh``, ``SoftMax``, ``Flatten`` (N, H, W, D) → (N, H·W·D), one word each.

The Toolbox is channels-last; lrpcore is channels-first. The conversion is exact:

- convolution filters (h, w, d, n) become (n, d, h, w); the model takes NCHW inputs, so Toolbox
  arrays (N, H, W, D) are passed as ``x.transpose(0, 3, 1, 2)``;
- ``Linear`` W (m, n) becomes the (n, m) weight of :class:`~lrpcore.layers.Dense`;
- the Toolbox's Flatten reads (H, W, D), lrpcore's (D, H, W): feature d·H·W + h·W + w of lrpcore
  is feature (h·W + w)·D + d of the Toolbox, so the next Linear layer's inputs are permuted;
- ``SumPool`` becomes :class:`~lrpcore.layers.SumPool2d` with ``scale`` = 1/√(h·w); ``Rect`` →
  ``ReLU``; a final ``SoftMax`` is dropped (LRP explains the logits; the Toolbox's demos start from
  the softmax output instead) and noted in the metadata.

Pickled ``.nn`` files are refused: unpickling runs whatever code the file names. Write them as text
with the Toolbox itself (``model_io.write(model, 'model.txt')``) where you trust the file.

Reproducing the Toolbox's LRP: :func:`toolbox_composite` gives, layer by layer, the lrpcore rules
whose numbers are the Toolbox's (``python/modules/*.py``):

================  ========================================  ===============================================
Toolbox variant   Linear, Convolution                       SumPool (window sum s, scale c = 1/√k)
================  ========================================  ===============================================
simple (default)  ``Epsilon(1e-16, "zennit")``              ``Epsilon(1e-12·c, "zennit")``
epsilon ε         ``Epsilon(ε, "zennit")``                  ``Epsilon(ε·c, "zennit")``
alphabeta α       ``AlphaBeta(α, α−1, "zennit", 1e-16)``    ``AlphaBeta(α, α−1, "zennit", 1e-16·c)``
flat              ``Flat("vanilla", 0)``                    ``Flat("vanilla", 0)``
ww (w²)           ``WSquare("vanilla", 0)``                 ``Flat("vanilla", 0)``
================  ========================================  ===============================================

- The Toolbox stabilises z + ε·sign(z) with sign(0) = +1 (``(Zs >= 0)*2 - 1``), which is lrpcore's
  ``"zennit"`` stabilizer exactly; its "simple" rule uses ε = 1e-16 (1e-12 at sum pooling).
- At sum pooling it divides by the *window sum* s plus ε, while the layer's z is c·s: an ε on the
  Toolbox's sum is c·ε on lrpcore's z, hence ε·c above.
- Max pooling: winner takes all, ties split equally, under simple, ε and αβ (``WSquare`` with
  ε = 0 on the max pool's weights, 1/ties on each maximum: w²/Σw² = 1/ties, also where the maximum
  is 0); uniform over the window under flat and w² (``Flat``).
- Its αβ has β = 1 − α (so β ≤ 0 in its convention); lrpcore's β is α − 1. Both add b⁺ / b⁻ to the
  denominators, the Toolbox 1e-16 in the direction of the sign (2e-16 on the negative side in its
  general case, Zsn = Y − Zsp − 1e-16; a difference of 1e-16 absolute). Its sum pooling's general αβ case
  (α ≠ 1) multiplies the negative share by R twice (``beta*Zn*(R/Zsn)`` inside a product with R),
  which is not LRP; lrpcore's entry is the formula as written for the other layers, and agrees
  with the Toolbox at α = 1.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy

from ..errors import ModelFormatError
from ..layers import Conv2d, Dense, Flatten, Layer, MaxPool2d, ReLU, SumPool2d, Tanh
from ..model import ModelMetadata, Sequential
from .layout import channels_first_order
from .validate import check_model

__all__ = ["load_toolbox", "toolbox_composite", "TOOLBOX_LAYERS", "TOOLBOX_VARIANTS", "is_toolbox_text"]

#: The layer names of the Toolbox's plain-text format.
TOOLBOX_LAYERS = ("Linear", "Convolution", "MaxPool", "SumPool", "Flatten", "Rect", "Tanh", "SoftMax")
#: The LRP variants :func:`toolbox_composite` reproduces (the Toolbox's ``lrp_var`` names).
TOOLBOX_VARIANTS = ("simple", "epsilon", "alphabeta", "flat", "ww")
_PICKLED_SUFFIXES = (".nn", ".pickle", ".pickled", ".pkl")


def is_toolbox_text(path: str | os.PathLike) -> bool:
    """True when the file starts with a line naming a Toolbox layer (``Linear 784 10``, ``Rect``...)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return False
    try:
        first = head.decode("ascii").lstrip().split(None, 1)[0]
    except (UnicodeDecodeError, IndexError):
        return False
    return first in TOOLBOX_LAYERS


class _Reader:
    """Parses the lines of one file, tracking the per-sample shape in the Toolbox's (H, W, D) layout."""

    def __init__(self, path: str, lines: list[str], input_shape: tuple[int, ...] | None, dtype: Any):
        self.path = path
        self.lines = lines
        self.shape = input_shape
        self.dtype = dtype
        self.layers: list[Layer] = []
        self.notes: list[str] = []
        self.permutation: numpy.ndarray | None = None      # lrpcore feature i = Toolbox feature permutation[i]
        self.position = 0

    def fail(self, line: int, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: line {line + 1}: {message}")

    def numbers(self, line: int, count: int, what: str) -> numpy.ndarray:
        if line >= len(self.lines) or not self.lines[line].strip():
            raise self.fail(line, f"{what}: expected a line of {count} numbers, found "
                                  + ("the end of the file" if line >= len(self.lines) else "an empty line"))
        try:
            values = numpy.array([float(token) for token in self.lines[line].split()], dtype=numpy.float64)
        except ValueError as error:
            raise self.fail(line, f"{what}: not a number ({error})") from None
        if values.size != count:
            raise self.fail(line, f"{what}: expected {count} numbers, found {values.size}")
        if not numpy.all(numpy.isfinite(values)):
            raise self.fail(line, f"{what}: contains NaN or inf")
        return values.astype(self.dtype)

    def header(self, line: int, name: str, count: int) -> list[int]:
        tokens = self.lines[line].split()
        if len(tokens) != count + 1:
            raise self.fail(line, f"{name} needs {count} integers after its name, found {tokens[1:]}")
        try:
            values = [int(token) for token in tokens[1:]]
        except ValueError:
            raise self.fail(line, f"{name}: {tokens[1:]} are not all integers") from None
        if any(value < 1 for value in values):
            raise self.fail(line, f"{name}: sizes and strides must be ≥ 1, found {values}")
        return values

    def image(self, line: int, name: str) -> tuple[int, int, int]:
        if self.shape is None:
            raise self.fail(line, f"{name} needs the input image size; pass input_shape=(H, W, D) (Toolbox "
                                  "layout), e.g. --input-shape 28 28 1")
        if len(self.shape) != 3:
            raise self.fail(line, f"{name} expects an image (H, W, D), but receives shape {self.shape}")
        return self.shape  # type: ignore[return-value]

    # --- layers ------------------------------------------------------------------------------------
    def linear(self, line: int) -> int:
        inputs, outputs = self.header(line, "Linear", 2)
        if self.shape is None and not self.layers:
            self.shape = (inputs,)
        if self.shape is not None and self.shape != (inputs,):
            raise self.fail(line, f"Linear {inputs} {outputs} receives per-sample shape {self.shape}; it needs "
                                  f"({inputs},)" + (" (add Flatten)" if len(self.shape) == 3 else ""))
        tokens = len(self.lines[line + 1].split()) if line + 1 < len(self.lines) else 0
        if tokens == outputs and inputs > 1:        # the older format: one line per row of W
            rows = [self.numbers(line + 1 + row, outputs, f"row {row} of W") for row in range(inputs)]
            weight, after = numpy.stack(rows), line + 1 + inputs
        else:
            weight, after = self.numbers(line + 1, inputs * outputs, "W").reshape(inputs, outputs), line + 2
        bias = self.numbers(after, outputs, "B")
        weight = weight.T
        if self.permutation is not None:
            weight = weight[:, self.permutation]
            self.permutation = None
        self.layers.append(Dense(numpy.ascontiguousarray(weight), bias))
        self.shape = (outputs,)
        return after + 1

    def convolution(self, line: int) -> int:
        height, width, depth, filters, stride_h, stride_w = self.header(line, "Convolution", 6)
        in_h, in_w, in_d = self.image(line, "Convolution")
        if in_d != depth:
            raise self.fail(line, f"Convolution filters have depth {depth}, but the input has {in_d} channels")
        values = self.numbers(line + 1, height * width * depth * filters, "W").reshape(height, width, depth, filters)
        bias = self.numbers(line + 2, filters, "B")
        layer = Conv2d(numpy.ascontiguousarray(values.transpose(3, 2, 0, 1)), bias, stride=(stride_h, stride_w))
        self._append_windowed(line, layer, (in_d, in_h, in_w), filters)
        return line + 3

    def pooling(self, line: int, kind: str) -> int:
        height, width, stride_h, stride_w = self.header(line, kind, 4)
        in_h, in_w, in_d = self.image(line, kind)
        if kind == "MaxPool":
            layer: Layer = MaxPool2d((height, width), (stride_h, stride_w))
        else:
            layer = SumPool2d((height, width), (stride_h, stride_w), scale=1.0 / math.sqrt(height * width))
        self._append_windowed(line, layer, (in_d, in_h, in_w), in_d)
        return line + 1

    def _append_windowed(self, line: int, layer: Layer, shape: tuple[int, int, int], channels: int) -> None:
        _, out_h, out_w = layer.output_shape(shape)
        if out_h < 1 or out_w < 1:
            raise self.fail(line, f"{layer.describe()} does not fit the input (H, W, D) = "
                                  f"{(shape[1], shape[2], shape[0])}")
        self.layers.append(layer)
        self.shape = (out_h, out_w, channels)

    def flatten(self, line: int) -> int:
        if self.shape is None:
            raise self.fail(line, "Flatten needs the input shape; pass input_shape=(H, W, D)")
        if len(self.shape) == 3:
            height, width, depth = self.shape
            if depth > 1 and height * width > 1:
                self.permutation = channels_first_order(height, width, depth)
        self.layers.append(Flatten())
        self.shape = (math.prod(self.shape),)
        return line + 1

    def read(self) -> list[Layer]:
        line = 0
        while line < len(self.lines) and self.lines[line].strip():
            name = self.lines[line].split()[0]
            if name == "Linear":
                line = self.linear(line)
            elif name == "Convolution":
                line = self.convolution(line)
            elif name in ("MaxPool", "SumPool"):
                line = self.pooling(line, name)
            elif name == "Flatten":
                line = self.flatten(line)
            elif name in ("Rect", "Tanh"):
                self.layers.append(ReLU() if name == "Rect" else Tanh())
                line += 1
            elif name == "SoftMax":
                if any(text.strip() for text in self.lines[line + 1:]):
                    raise self.fail(line, "SoftMax is only supported as the last layer (it is dropped: LRP "
                                          "explains the logits)")
                self.notes.append(f"dropped the final SoftMax (line {line + 1}): lrpcore explains the logits")
                line += 1
            else:
                raise self.fail(line, f"layer type {name!r} is not part of the Toolbox's text format "
                                      f"({', '.join(TOOLBOX_LAYERS)})")
        trailing = [number for number in range(line, len(self.lines)) if self.lines[number].strip()]
        if trailing:
            raise self.fail(trailing[0], "text after an empty line; the Toolbox stops reading at the first empty "
                                         "line, so this file would load differently there")
        if self.permutation is not None:
            raise self.fail(line, "the flattened features reach the output without a Linear layer; their order "
                                  "would differ from the Toolbox's (H, W, D)")
        if not self.layers:
            raise ModelFormatError(f"{self.path}: no layers found")
        return self.layers


def load_toolbox(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None,
                 metadata: dict[str, Any] | None = None, dtype: str = "float64") -> Sequential:
    """Read an LRP Toolbox plain-text model (see the module docstring) into an lrpcore model.

    ``input_shape``: one sample's shape in the Toolbox's layout, (H, W, D) for convolutional models
    (needed there: the file does not say) or (F,) for MLPs (read from the first Linear layer if not
    given). The model takes NCHW inputs: pass Toolbox arrays as ``x.transpose(0, 3, 1, 2)``.
    ``metadata``: ModelMetadata fields to set (value_range, mean, std, class_names, name,
    description). ``dtype``: "float64" (default; the Toolbox computes in float64) or "float32".
    Pickled ``.nn`` files are refused (unpickling runs code). Errors name the file and line.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "LRP Toolbox model file not found", path)
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a directory, not a model file")
    with open(path, "rb") as handle:
        content = handle.read()
    if path.lower().endswith(_PICKLED_SUFFIXES) or content[:1] == b"\x80":
        raise ModelFormatError(f"{path}: a pickled LRP Toolbox model is not loaded: unpickling runs whatever code "
                               "the file names. Where you trust the file, write it as text with the Toolbox "
                               "(model_io.write(model, 'model.txt')) and load that")
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError as error:
        raise ModelFormatError(f"{path}: not an LRP Toolbox text model (not ASCII text at byte "
                               f"{error.start})") from None
    shape = tuple(int(size) for size in input_shape) if input_shape is not None else None
    if shape is not None and (len(shape) not in (1, 3) or min(shape) < 1):
        raise ValueError(f"input_shape must be (F,) or (H, W, D) with positive sizes, got {input_shape!r}")
    reader = _Reader(path, text.replace("\r\n", "\n").split("\n"), shape, numpy.dtype(dtype))
    layers = reader.read()
    if shape is None and isinstance(layers[0], Dense):
        shape = (layers[0].in_features,)
    model_shape = None if shape is None else ((shape[2], shape[0], shape[1]) if len(shape) == 3 else shape)
    fields = dict(metadata or {})
    fields.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    notes = [f"converted from LRP Toolbox text model {os.path.basename(path)}"
             + ("; inputs are NCHW (transpose Toolbox (N, H, W, D) arrays with x.transpose(0, 3, 1, 2))"
                if model_shape is not None and len(model_shape) == 3 else "")] + reader.notes
    fields.setdefault("description", "; ".join(notes))
    model = Sequential(layers, ModelMetadata(input_shape=model_shape, **fields))
    check_model(model, path)
    return model


def toolbox_composite(model: Sequential, variant: str = "simple", param: float | None = None) -> Any:
    """The :class:`~lrpcore.Composite` whose relevances are the LRP Toolbox's ``lrp(R, variant, param)``.

    ``variant``: one of :data:`TOOLBOX_VARIANTS` (the Toolbox's ``lrp_var``: "simple", "epsilon",
    "alphabeta", "flat", "ww"); ``param``: ε for "epsilon", α for "alphabeta" (β = α − 1 in lrpcore's
    convention). The rules per layer type are in the module docstring's table. Start from the logits
    (``explain``'s default) where the Toolbox's demos start from the softmax output.
    """
    from ..composites import Composite
    from ..rules import AlphaBeta, Epsilon, Flat, WSquare

    if variant not in TOOLBOX_VARIANTS:
        raise ValueError(f"unknown Toolbox LRP variant {variant!r}; expected one of {TOOLBOX_VARIANTS}")
    if variant in ("epsilon", "alphabeta") and param is None:
        raise ValueError(f"the Toolbox's {variant!r} variant needs param ({'ε' if variant == 'epsilon' else 'α'})")

    def linear_rule(scale: float, pool: bool = False) -> Any:
        """The rule of a Linear/Convolution layer (scale 1) or of a SumPool (its ε on the window sum → ε·scale)."""
        if variant == "simple":
            return Epsilon((1e-12 if pool else 1e-16) * scale, stabilizer="zennit")
        if variant == "epsilon":
            return Epsilon(float(param) * scale, stabilizer="zennit")
        if variant == "alphabeta":
            return AlphaBeta(float(param), float(param) - 1.0, stabilizer="zennit", epsilon=1e-16 * scale)
        return Flat(stabilizer="vanilla", epsilon=0.0)

    weighted = {"ww": WSquare(stabilizer="vanilla", epsilon=0.0)}.get(variant)
    by_index: dict[int, Any] = {}
    for index, layer in enumerate(model.layers):
        if isinstance(layer, (Dense, Conv2d)):
            by_index[index] = weighted if weighted is not None else linear_rule(1.0)
        elif isinstance(layer, SumPool2d):
            by_index[index] = (Flat(stabilizer="vanilla", epsilon=0.0) if variant == "ww"
                               else linear_rule(layer.scale, pool=True))
        elif isinstance(layer, MaxPool2d):
            by_index[index] = (Flat(stabilizer="vanilla", epsilon=0.0) if variant in ("flat", "ww")
                               else WSquare(stabilizer="vanilla", epsilon=0.0, maxpool="winner"))
        elif layer.is_linear:
            raise ValueError(f"layer {index} ({layer.describe()}) is not a layer of the Toolbox's format")
    return Composite(by_index=by_index, name=f"toolbox({variant}{'' if param is None else f', {param:g}'})")

