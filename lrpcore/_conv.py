"""Window extraction (im2col) and its adjoint (col2im), written with array-API slicing only.

A 2-D convolution or pooling layer looks at windows of its input. Gathering every
window into a "column" array turns a convolution into one matrix product (GEMM)
and a pooling layer into a reduction over one axis. The adjoint of that gathering
(col2im) scatters columns back by adding them into their windows; it is what the
transposed map of every windowed layer uses.

Only strided slicing and ``stack`` are used, so the same code runs on NumPy, CuPy
and array-api-strict. Columns have the layout (N, C, K, Ho, Wo) with K = kh·kw in
row-major kernel order, matching a PyTorch weight (O, C, kh, kw) reshaped to (O, C·K).

Two algorithms compute every convolution here, selected by :func:`use_algorithm`:

- ``"im2col"``, the reference: the explicit window columns and one GEMM per block
  (:func:`correlate_im2col`), col2im for the transposed map (:func:`correlate_transpose_col2im`);
- ``"auto"`` (the default), the fastest exact algorithm for the shape: Winograd's F(2×2, 3×3)
  (:mod:`lrpcore._winograd`) for 3×3 stride-1 convolutions with enough channels, a plain
  matrix product for 1×1 stride-1 ones, the reference otherwise. The results equal the
  reference up to rounding (tests/test_conv_fast.py pins float64 to 1e-12, float32 to 1e-5).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from . import _parallel, _winograd
from .backend import get_namespace

#: The algorithms :func:`use_algorithm` accepts.
ALGORITHMS = ("auto", "im2col")
_algorithm = "auto"
#: Winograd F(2×2, 3×3) is used where both channel counts reach this. Below it the 16 products have
#: too few rows or columns to run near the machine's GEMM rate (VGG-16's 3-channel input layer).
WINOGRAD_MIN_CHANNELS = 16
#: … and where one sample has at least this many output pixels: on smaller maps (VGG-16's 14×14 layers,
#: 49 tiles) the 16 products are too narrow and the weight transform costs more than it saves (measured,
#: tools/BENCHMARKS.md).
WINOGRAD_MIN_PIXELS = 400


def algorithm() -> str:
    """The algorithm convolutions use now: ``"auto"`` (fastest exact) or ``"im2col"`` (the reference)."""
    return _algorithm


@contextlib.contextmanager
def use_algorithm(name: str) -> Iterator[None]:
    """Run the block with convolutions computed by ``name`` (one of :data:`ALGORITHMS`), process-wide.

    ``with use_algorithm("im2col"): ...`` gives the reference im2col path everywhere, to compare
    the fast path against or to read the explicit form; the previous setting is restored after.
    """
    global _algorithm
    if name not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {name!r}; expected one of {ALGORITHMS}")
    previous, _algorithm = _algorithm, name
    try:
        yield
    finally:
        _algorithm = previous


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


def _scatter_add(padded: Any, samples: slice, columns: Any, row_offset: int, kernel: tuple[int, int],
                 stride: tuple[int, int], channels: slice = slice(None)) -> None:
    """Add ``columns`` (n, C, kh·kw, r, Wo), the windows of output rows starting at padded row
    ``row_offset``, into ``padded[samples, channels]`` at their window positions."""
    kernel_h, kernel_w = kernel
    stride_h, stride_w = stride
    rows_out, out_w = columns.shape[-2:]
    for i in range(kernel_h):
        for j in range(kernel_w):
            rows = slice(row_offset + i, row_offset + i + stride_h * (rows_out - 1) + 1, stride_h)
            cols = slice(j, j + stride_w * (out_w - 1) + 1, stride_w)
            padded[samples, channels, rows, cols] = (padded[samples, channels, rows, cols]
                                                     + columns[:, :, i * kernel_w + j, ...])


def fold_windows(part: Any, input_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dtype: Any, device: Any = None) -> Any:
    """Like :func:`fold`, with the columns given one window position at a time: ``part(k)`` is the
    (N, C, Ho, Wo) array for kernel position k = i·kw + j, so no (N, C, kh·kw, Ho, Wo) array is built."""
    xp = get_namespace(part(0))
    kernel_h, kernel_w = kernel
    stride_h, stride_w = stride
    batch, channels, height, width = input_shape
    padded = xp.zeros((batch, channels, height + 2 * padding[0], width + 2 * padding[1]), dtype=dtype,
                      device=device)
    disjoint = stride_h >= kernel_h and stride_w >= kernel_w     # every entry gets one window entry at most
    for i in range(kernel_h):
        for j in range(kernel_w):
            values = part(i * kernel_w + j)
            out_h, out_w = values.shape[-2:]
            rows = slice(i, i + stride_h * (out_h - 1) + 1, stride_h)
            cols = slice(j, j + stride_w * (out_w - 1) + 1, stride_w)
            padded[:, :, rows, cols] = values if disjoint else padded[:, :, rows, cols] + values
    return _crop(padded, padding)


def _crop(padded: Any, padding: tuple[int, int]) -> Any:
    pad_h, pad_w = padding
    if pad_h == 0 and pad_w == 0:
        return padded
    return padded[:, :, pad_h:padded.shape[2] - pad_h, pad_w:padded.shape[3] - pad_w]


def fold(columns: Any, input_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
         padding: tuple[int, int]) -> Any:
    """Adjoint of :func:`unfold`: add every column entry back into its window position.

    ``columns`` has shape (N, C, kh·kw, Ho, Wo); the result has ``input_shape`` (N, C, H, W).
    """
    xp = get_namespace(columns)
    batch, channels, height, width = input_shape
    padded = xp.zeros((batch, channels, height + 2 * padding[0], width + 2 * padding[1]),
                      dtype=columns.dtype, device=columns.device)
    _scatter_add(padded, slice(0, batch), columns, 0, kernel, stride)
    return _crop(padded, padding)


def _blocks(batch: int, rows: int, row_bytes: int, budget_bytes: int) -> list[tuple[slice, slice]]:
    """(sample, output rows) blocks covering a batch: each sample cut into row blocks of at most
    ``budget_bytes`` of columns and at most half its rows (so that two threads can share even one
    sample). The layout depends on the shapes and the budget only, never on the thread count."""
    per = max(1, min(budget_bytes // max(1, row_bytes), (rows + 1) // 2))
    return [(slice(sample, sample + 1), slice(start, min(rows, start + per)))
            for sample in range(batch) for start in range(0, rows, per)]


def _run(work: Any, items: list[Any], xp: Any) -> None:
    """``work(item)`` for every item: on the threads of :func:`lrpcore._parallel.conv_runner` if it gives
    any (the items write disjoint parts of one result), else one after the other."""
    runner = _parallel.conv_runner(xp)
    if runner is not None and len(items) > 1:
        runner.map(work, items)
    else:
        for item in items:
            work(item)


def _runner(xp: Any) -> Any:
    return lambda work, items: _run(work, items, xp)


def _floating(x: Any) -> bool:
    return get_namespace(x).isdtype(x.dtype, "real floating")


def winograd_applies(weight: Any, stride: tuple[int, int], padding: tuple[int, int]) -> bool:
    """Whether ``"auto"`` computes this convolution (and its transposed map) by F(2×2, 3×3): 3×3 kernel,
    stride 1, padding ≤ 2 (so that the transposed map's padding 2 − p is one too), both channel counts
    ≥ :data:`WINOGRAD_MIN_CHANNELS`, real floating point."""
    return (_algorithm == "auto" and tuple(weight.shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and max(padding) <= 2 and min(weight.shape[0], weight.shape[1]) >= WINOGRAD_MIN_CHANNELS
            and _floating(weight))


def _winograd_blocks(batch: int, out_h: int, out_w: int, in_channels: int, out_channels: int, itemsize: int,
                     budget_bytes: int) -> list[tuple[slice, slice, slice]]:
    """(sample, tile rows, output channels) blocks for :func:`lrpcore._winograd.correlate`.

    Each sample is cut into about equal runs of tile rows of about :data:`lrpcore._winograd.BLOCK_TILES`
    tiles (fewer where ``budget_bytes`` says so). A sample that fits in one such block is cut into two
    halves of its output channels instead, so that two threads can share even one sample without the
    matrix products losing their columns. The layout depends on the shapes and the budget only, never
    on the batch or the thread count (a sample's numbers are the same whether it is explained alone,
    in a batch, or in a share of one).
    """
    wide = _winograd.tile_columns(out_w) + 1
    rows = _winograd.tile_rows(out_h)
    row_bytes = _winograd.block_bytes(in_channels, out_channels, wide - 1, itemsize)
    per = max(1, min(-(-_winograd.BLOCK_TILES // wide), budget_bytes // max(1, row_bytes)))
    if per >= rows and out_channels >= 2:
        half = (out_channels + 1) // 2
        parts = [(slice(0, rows), slice(0, half)), (slice(0, rows), slice(half, out_channels))]
    else:
        count = -(-rows // per)
        bounds = [rows * index // count for index in range(count + 1)]
        parts = [(slice(start, stop), slice(0, out_channels)) for start, stop in zip(bounds[:-1], bounds[1:])]
    return [(slice(sample, sample + 1), rows_part, channels)
            for sample in range(batch) for rows_part, channels in parts]


def correlate(x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int], budget_bytes: int) -> Any:
    """Cross-correlation y = W ⋆ x (a convolution as PyTorch computes it), without bias.

    ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); the result is (N, O, Ho, Wo). By the algorithm
    :func:`use_algorithm` selects: Winograd (:func:`winograd_applies`), a plain matrix product for
    a 1×1 stride-1 kernel without padding, or :func:`correlate_im2col`, the reference.
    """
    if winograd_applies(weight, stride, padding) and _floating(x):
        xp = get_namespace(x, weight)
        batch, _, height, width = x.shape
        out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
        if out_h >= 1 and out_w >= 1 and out_h * out_w >= WINOGRAD_MIN_PIXELS:
            blocks = _winograd_blocks(batch, out_h, out_w, weight.shape[1], weight.shape[0],
                                      xp.finfo(x.dtype).bits // 8, budget_bytes)
            return _winograd.correlate(x, weight, tuple(padding), blocks, _runner(xp))
    if (_algorithm == "auto" and tuple(weight.shape[2:]) == (1, 1) and tuple(stride) == (1, 1)
            and tuple(padding) == (0, 0)):
        return _pointwise(x, weight)
    return correlate_im2col(x, weight, stride, padding, budget_bytes)


def _pointwise(x: Any, weight: Any) -> Any:
    """A 1×1 stride-1 convolution: one matrix product (O × C) @ (C × H·W) per sample, no columns to copy."""
    xp = get_namespace(x, weight)
    batch, channels, height, width = x.shape
    matrix = weight[:, :, 0, 0]
    out = xp.matmul(matrix, xp.reshape(x, (batch, channels, height * width)))
    return xp.reshape(out, (batch, weight.shape[0], height, width))


def transpose(s: Any, weight: Any, input_shape: tuple[int, ...], stride: tuple[int, int], padding: tuple[int, int],
              budget_bytes: int) -> Any:
    """c = Wᵀ s, the adjoint of :func:`correlate` for ``input_shape``, by the algorithm :func:`use_algorithm` selects.

    ``"auto"`` uses Winograd where :func:`winograd_applies`. Otherwise (and always for ``"im2col"``)
    one of two exact ways, chosen by shape because their costs differ (measured on VGG-16, see
    tools/BENCHMARKS.md): GEMMs (C·kh·kw × O) @ (O × Ho·Wo) whose columns col2im adds back into
    their windows, or, with stride 1, a correlation of s padded by k − 1 − p with the kernel
    flipped in both spatial axes and its channels swapped (the transposed-convolution identity).
    The first writes a C·kh·kw-row column matrix from only O inputs, which is slow where the
    layer does not widen (C ≥ O); there the correlation is used.
    """
    xp = get_namespace(s, weight)
    (kernel_h, kernel_w), (pad_h, pad_w) = tuple(weight.shape[2:]), tuple(padding)
    if winograd_applies(weight, stride, padding) and _floating(s):
        batch, _, out_h, out_w = s.shape
        if ((out_h + 2 - 2 * pad_h, out_w + 2 - 2 * pad_w) == tuple(input_shape[2:])
                and input_shape[2] * input_shape[3] >= WINOGRAD_MIN_PIXELS):
            blocks = _winograd_blocks(batch, input_shape[2], input_shape[3], weight.shape[0], weight.shape[1],
                                      xp.finfo(s.dtype).bits // 8, budget_bytes)
            return _winograd.correlate(s, weight, tuple(padding), blocks, _runner(xp), transpose=True)
    if (_algorithm == "auto" and (kernel_h, kernel_w) == (1, 1) and tuple(stride) == (1, 1)
            and (pad_h, pad_w) == (0, 0)):
        return _pointwise(s, xp.permute_dims(weight, (1, 0, 2, 3)))
    if tuple(stride) == (1, 1) and pad_h < kernel_h and pad_w < kernel_w and weight.shape[1] >= weight.shape[0]:
        flipped = xp.flip(xp.permute_dims(weight, (1, 0, 2, 3)), axis=(2, 3))
        return correlate_im2col(s, flipped, (1, 1), (kernel_h - 1 - pad_h, kernel_w - 1 - pad_w), budget_bytes)
    return correlate_transpose_col2im(s, weight, input_shape, stride, padding, budget_bytes)


def correlate_im2col(x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int],
                     budget_bytes: int) -> Any:
    """Cross-correlation y = W ⋆ x (a convolution as PyTorch computes it) by im2col and a GEMM per block.

    ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); the result is (N, O, Ho, Wo), without bias.
    The input is padded once; the output is computed in row blocks of each sample (see
    :func:`_blocks`), each one matrix product (O × C·kh·kw) @ (C·kh·kw × rows·Wo) written straight
    into the output; blocks run on the threads of :func:`lrpcore._parallel.block_runner` if any.
    """
    xp = get_namespace(x, weight)
    out_channels, _, kernel_h, kernel_w = weight.shape
    matrix = xp.reshape(weight, (out_channels, -1))
    padded = pad2d(x, padding)
    batch = x.shape[0]
    out_h = (padded.shape[2] - kernel_h) // stride[0] + 1
    out_w = (padded.shape[3] - kernel_w) // stride[1] + 1
    row_bytes = matrix.shape[1] * out_w * (xp.finfo(x.dtype).bits // 8)
    out = xp.empty((batch, out_channels, out_h, out_w), dtype=x.dtype, device=x.device)

    def block(where: tuple[slice, slice]) -> None:
        samples, rows = where
        count = rows.stop - rows.start
        part = padded[samples, :, rows.start * stride[0]:(rows.stop - 1) * stride[0] + kernel_h, :]
        columns = unfold(part, (kernel_h, kernel_w), stride, (0, 0))
        columns = xp.reshape(columns, (part.shape[0], matrix.shape[1], count * out_w))
        out[samples, :, rows, :] = xp.reshape(xp.matmul(matrix, columns), (part.shape[0], out_channels, count,
                                                                           out_w))

    _run(block, _blocks(batch, out_h, row_bytes, budget_bytes), xp)
    return out


def correlate_transpose(s: Any, weight: Any, input_shape: tuple[int, ...], stride: tuple[int, int],
                        padding: tuple[int, int], budget_bytes: int) -> Any:
    """The adjoint of :func:`correlate`: c = Wᵀ s with ``s`` (N, O, Ho, Wo) and the result ``input_shape``;
    where :func:`winograd_applies`, as :func:`transpose` computes it, else by :func:`correlate_transpose_col2im`."""
    if winograd_applies(weight, stride, padding):
        return transpose(s, weight, input_shape, stride, padding, budget_bytes)
    return correlate_transpose_col2im(s, weight, input_shape, stride, padding, budget_bytes)


def correlate_transpose_col2im(s: Any, weight: Any, input_shape: tuple[int, ...], stride: tuple[int, int],
                               padding: tuple[int, int], budget_bytes: int) -> Any:
    """The adjoint of :func:`correlate_im2col`: c = Wᵀ s with ``s`` (N, O, Ho, Wo) and the result ``input_shape``.

    Per row block (see :func:`_blocks`): one GEMM (C·kh·kw × O) @ (O × rows·Wo) gives the window
    columns, which col2im adds back into their input positions. The input channels are cut into
    two groups, disjoint in the result, which the threads of
    :func:`lrpcore._parallel.block_runner` (if any) fill at the same time.
    """
    xp = get_namespace(s, weight)
    out_channels, in_channels, kernel_h, kernel_w = weight.shape
    kernel_area = kernel_h * kernel_w
    matrix_t = xp.matrix_transpose(xp.reshape(weight, (out_channels, -1)))
    batch, _, out_h, out_w = s.shape
    _, _, height, width = input_shape
    padded = xp.zeros((batch, in_channels, height + 2 * padding[0], width + 2 * padding[1]),
                      dtype=s.dtype, device=s.device)
    half = (in_channels + 1) // 2
    groups = [slice(0, half), slice(half, in_channels)] if in_channels > 1 else [slice(0, in_channels)]
    row_bytes = half * kernel_area * out_w * (xp.finfo(s.dtype).bits // 8)
    blocks = _blocks(batch, out_h, row_bytes, budget_bytes)

    def group(channels: slice) -> None:
        rows_of_matrix = matrix_t[channels.start * kernel_area:channels.stop * kernel_area, ...]
        count_channels = channels.stop - channels.start
        for samples, rows in blocks:
            part = s[samples, :, rows, :]
            count = rows.stop - rows.start
            columns = xp.matmul(rows_of_matrix, xp.reshape(part, (part.shape[0], out_channels, count * out_w)))
            columns = xp.reshape(columns, (part.shape[0], count_channels, kernel_area, count, out_w))
            _scatter_add(padded, samples, columns, rows.start * stride[0], (kernel_h, kernel_w), stride, channels)

    _run(group, groups, xp)
    return _crop(padded, padding)
