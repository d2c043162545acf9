"""Window extraction (im2col) and its adjoint (col2im), written with array-API slicing only.

A 2-D convolution or pooling layer looks at windows of its input. Gathering every
window into a "column" array turns a convolution into one matrix product (GEMM)
and a pooling layer into a reduction over one axis. The adjoint of that gathering
(col2im) scatters columns back by adding them into their windows; it is what the
transposed map of every windowed layer uses.

Only strided slicing and ``stack`` are used, so the same code runs on NumPy, CuPy
and array-api-strict. Columns have the layout (N, C, K, Ho, Wo) with K = kh·kw in
row-major kernel order, matching a PyTorch weight (O, C, kh, kw) reshaped to (O, C·K).
"""
from __future__ import annotations

from typing import Any

from .backend import get_namespace


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Length of a convolution/pooling output along one axis (floor mode, as in PyTorch)."""
    return (size + 2 * padding - kernel) // stride + 1


def pad2d(x: Any, padding: tuple[int, int], value: float = 0.0) -> Any:
    """Zero-pad (or ``value``-pad) the last two axes of ``x`` by ``padding`` = (ph, pw) on each side."""
    pad_h, pad_w = padding
    if pad_h == 0 and pad_w == 0:
        return x
    xp = get_namespace(x)
    *lead, height, width = x.shape
    padded = xp.zeros((*lead, height + 2 * pad_h, width + 2 * pad_w), dtype=x.dtype, device=x.device)
    if value != 0.0:
        padded = padded + value
    padded[..., pad_h:pad_h + height, pad_w:pad_w + width] = x
    return padded


def windows(padded: Any, kernel: tuple[int, int], stride: tuple[int, int]) -> list[Any]:
    """The kh·kw strided views of an (already padded) ``padded`` (N, C, H, W), each (N, C, Ho, Wo),
    in row-major kernel order: view k = i·kw + j holds the window entries at kernel position (i, j)."""
    kernel_h, kernel_w = kernel
    stride_h, stride_w = stride
    height, width = padded.shape[-2:]
    out_h = (height - kernel_h) // stride_h + 1
    out_w = (width - kernel_w) // stride_w + 1
    return [
        padded[:, :, i:i + stride_h * (out_h - 1) + 1:stride_h, j:j + stride_w * (out_w - 1) + 1:stride_w]
        for i in range(kernel_h) for j in range(kernel_w)
    ]


def unfold(x: Any, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           pad_value: float = 0.0) -> Any:
    """Gather all windows of ``x`` (N, C, H, W) into columns of shape (N, C, kh·kw, Ho, Wo)."""
    xp = get_namespace(x)
    return xp.stack(windows(pad2d(x, padding, pad_value), kernel, stride), axis=2)


def fold(columns: Any, input_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
         padding: tuple[int, int]) -> Any:
    """Adjoint of :func:`unfold`: add every column entry back into its window position.

    ``columns`` has shape (N, C, kh·kw, Ho, Wo); the result has ``input_shape`` (N, C, H, W).
    """
    kernel_h, kernel_w = kernel
    stride_h, stride_w = stride
    pad_h, pad_w = padding
    xp = get_namespace(columns)
    batch, channels, height, width = input_shape
    out_h, out_w = columns.shape[-2:]
    padded = xp.zeros((batch, channels, height + 2 * pad_h, width + 2 * pad_w),
                      dtype=columns.dtype, device=columns.device)
    for i in range(kernel_h):
        for j in range(kernel_w):
            rows = slice(i, i + stride_h * (out_h - 1) + 1, stride_h)
            cols = slice(j, j + stride_w * (out_w - 1) + 1, stride_w)
            padded[:, :, rows, cols] = padded[:, :, rows, cols] + columns[:, :, i * kernel_w + j, ...]
    if pad_h == 0 and pad_w == 0:
        return padded
    return padded[:, :, pad_h:pad_h + height, pad_w:pad_w + width]


def correlate(x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int], budget_bytes: int) -> Any:
    """Cross-correlation y = W ⋆ x (a convolution as PyTorch computes it) by im2col and one GEMM per chunk.

    ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); the result is (N, O, Ho, Wo), without bias.
    The input is padded once; samples are processed in chunks whose column buffer stays below
    ``budget_bytes`` (at least one sample per chunk), each chunk one matrix product
    (O × C·kh·kw) @ (C·kh·kw × Ho·Wo) written straight into the output.
    """
    xp = get_namespace(x, weight)
    out_channels, _, kernel_h, kernel_w = weight.shape
    matrix = xp.reshape(weight, (out_channels, -1))
    padded = pad2d(x, padding)
    batch = x.shape[0]
    out_h = (padded.shape[2] - kernel_h) // stride[0] + 1
    out_w = (padded.shape[3] - kernel_w) // stride[1] + 1
    per_sample = matrix.shape[1] * out_h * out_w * (xp.finfo(x.dtype).bits // 8)
    chunk = max(1, budget_bytes // max(1, per_sample))

    def product(part: Any) -> Any:
        columns = unfold(part, (kernel_h, kernel_w), stride, (0, 0))
        columns = xp.reshape(columns, (part.shape[0], matrix.shape[1], out_h * out_w))
        return xp.reshape(xp.matmul(matrix, columns), (part.shape[0], out_channels, out_h, out_w))

    if chunk >= batch:
        return product(padded)
    out = xp.empty((batch, out_channels, out_h, out_w), dtype=x.dtype, device=x.device)
    for start in range(0, batch, chunk):
        stop = min(start + chunk, batch)
        out[start:stop, ...] = product(padded[start:stop, ...])
    return out
