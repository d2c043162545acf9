"""Grouped and depthwise convolution, as thin layers around the ungrouped machinery.

A convolution with ``groups`` = g splits its C input channels and O output channels into g
consecutive blocks; output block b sees only input block b (torch's ``groups``). With a weight
(O, C/g, kh, kw):

    y[n, o] = b[o] + Σ_{c < C/g} Σ_{i,j} w[o, c, i, j] · x[n, g(o)·C/g + c, i + stride·h − pad, ...],

g(o) = o // (O/g). Two ways compute it, with the same numbers:

- **general groups** (:func:`grouped_forward`/:func:`grouped_transpose`): one ungrouped
  :class:`~lrpcore.layers.Conv2d` per block, so every speed path of the ungrouped layer is used as is;
- **depthwise** (g = C, each input channel has its own m = O/C filters): the kh·kw strided window views
  of the padded input (:func:`lrpcore._conv.windows`), each multiplied by one kernel entry per
  channel and summed, as pooling does; the transposed map adds the kernel-weighted outputs back
  into their windows (:func:`lrpcore._conv.fold_windows`). No column array and no per-channel loop.
"""
from __future__ import annotations

from typing import Any

from .. import _conv
from ..backend import get_namespace


def is_depthwise(weight: Any, groups: int) -> bool:
    """True when every group has one input channel (weight (C·m, 1, kh, kw) with groups = C)."""
    return groups > 1 and weight.shape[1] == 1


def depthwise_forward(x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int]) -> Any:
    """y[n, c·m + t] = Σ_{i,j} w[c·m + t, 0, i, j] · x_pad[n, c, stride·h + i, stride·w + j] (no bias)."""
    xp = get_namespace(x, weight)
    batch, channels = x.shape[0], x.shape[1]
    multiplier = weight.shape[0] // channels
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    per_offset = xp.reshape(weight, (1, channels, multiplier, kernel[0] * kernel[1]))
    total = None
    for index, view in enumerate(_conv.windows(_conv.pad2d(x, padding), kernel, stride)):
        term = xp.expand_dims(view, axis=2) * xp.reshape(per_offset[..., index], (1, channels, multiplier, 1, 1))
        total = term if total is None else total + term
    return xp.reshape(total, (batch, channels * multiplier, total.shape[-2], total.shape[-1]))


def depthwise_transpose(s: Any, weight: Any, input_shape: tuple[int, ...], stride: tuple[int, int],
                        padding: tuple[int, int]) -> Any:
    """c = Wᵀ s for the depthwise map: each output's s times its kernel entry, added back into its window."""
    xp = get_namespace(s, weight)
    batch, channels = int(input_shape[0]), int(input_shape[1])
    multiplier = weight.shape[0] // channels
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    per_offset = xp.reshape(weight, (1, channels, multiplier, kernel[0] * kernel[1]))
    grouped = xp.reshape(s, (batch, channels, multiplier, s.shape[-2], s.shape[-1]))

    def part(index: int) -> Any:
        weighted = grouped * xp.reshape(per_offset[..., index], (1, channels, multiplier, 1, 1))
        return weighted[:, :, 0, ...] if multiplier == 1 else xp.sum(weighted, axis=2)

    return _conv.fold_windows(part, tuple(input_shape), kernel, stride, padding, s.dtype, s.device)


def _blocks(weight: Any, groups: int) -> tuple[int, int]:
    """(input channels, output channels) of one group."""
    return int(weight.shape[1]), int(weight.shape[0]) // groups


def grouped_forward(make_layer: Any, x: Any, weight: Any, groups: int) -> Any:
    """Concatenation over blocks b of ``make_layer(w_b).linear_forward(x_b, w_b)`` (no bias).

    ``make_layer(weight_block)`` builds the ungrouped layer (same stride and padding) for one block.
    """
    xp = get_namespace(x, weight)
    per_in, per_out = _blocks(weight, groups)
    outputs = []
    for block in range(groups):
        block_weight = weight[block * per_out:(block + 1) * per_out, ...]
        block_input = x[:, block * per_in:(block + 1) * per_in, ...]
        outputs.append(make_layer(block_weight).linear_forward(block_input, block_weight, None))
    return xp.concat(outputs, axis=1)


def grouped_transpose(make_layer: Any, s: Any, weight: Any, input_shape: tuple[int, ...], groups: int) -> Any:
    """Concatenation over blocks b of the ungrouped transposed maps ``W_bᵀ s_b``."""
    xp = get_namespace(s, weight)
    per_in, per_out = _blocks(weight, groups)
    block_shape = (input_shape[0], per_in, *input_shape[2:])
    parts = []
    for block in range(groups):
        block_weight = weight[block * per_out:(block + 1) * per_out, ...]
        block_s = s[:, block * per_out:(block + 1) * per_out, ...]
        parts.append(make_layer(block_weight).linear_transpose(block_s, block_weight, block_shape))
    return xp.concat(parts, axis=1)
