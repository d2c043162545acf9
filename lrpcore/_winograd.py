"""Winograd's minimal filtering F(2×2, 3×3): 3×3 stride-1 correlations with 2.25× fewer multiplications.

Lavin & Gray (2016), "Fast Algorithms for Convolutional Neural Networks", section 4: for a 4×4
input tile d and a 3×3 kernel g, the 2×2 output tile of the correlation y = g ⋆ d is

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,

    Bᵀ = [[1, 0, −1, 0],      G = [[1,  0,  0],      Aᵀ = [[1, 1,  1,  0],
          [0, 1,  1, 0],           [½,  ½,  ½],            [0, 1, −1, −1]].
          [0, −1, 1, 0],           [½, −½,  ½],
          [0, 1,  0, −1]],         [0,  0,  1]],

Summed over the input channels, the 16 element-wise products of one tile become 16 matrix
products M_k = U_k V_k (k = 4r + s), with U_k (O × C) the transformed kernels (G g Gᵀ)[r, s]
and V_k (C × tiles) the transformed input tiles (Bᵀ d B)[r, s]: 16 multiplications per 2×2
outputs instead of 36. The transforms are additions only, and every coefficient (0, ±½, ±1)
is exact in binary, so the result equals the direct sum up to rounding (float64: ~1e-16
relative; see tests/test_conv_fast.py).

How the transforms stay contiguous (NumPy's element-wise passes are several times slower on
strided views than on contiguous ones): the zero-padded input is split once into its four
phases (even/odd rows × even/odd columns), each stored as rows of ``tiles_w + 1`` entries.
Tile row i, tile column j reads phase (r mod 2, s mod 2) at row i + r//2, column j + s//2;
with the rows flattened, "one tile row down" is a shift by ``tiles_w + 1`` and "one tile
right" a shift by 1, so every term of Bᵀ d B is one contiguous slice of a phase. The extra
(``tiles_w + 1``-th) tile of each row is junk and is dropped at the end; it costs 1/(tiles_w + 1)
of the work.

The transposed map of a stride-1 3×3 correlation with padding p is the correlation with the
kernel flipped in both spatial axes and its channels swapped, with padding 2 − p. Flipping
g's rows is G g ↦ Σ G g with Σ the permutation swapping entries 0 and 3 (G's middle rows are
symmetric), so its transformed kernels are U_{σ(r)σ(s)}ᵀ: G ⊗ G with permuted rows applied to
the same weight, transposed (free in the matrix product); see :func:`correlate`.

Written with array-API calls only; on NumPy the element-wise passes write into preallocated
arrays (``out=``), which saves an allocation and a copy per pass.
"""
from __future__ import annotations

import sys
from typing import Any

from .backend import get_namespace

# G (4 × 3) of F(2×2, 3×3); row k = 4r + s of G ⊗ G (16 × 9) gives U_k = Σ_ij G[r, i] G[s, j] g[i, j]
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
_G_KRON = tuple(tuple(_G[r][i] * _G[s][j] for i in range(3) for j in range(3)) for r in range(4) for s in range(4))
# position (r, s) of the flipped kernel's transform is position (σ(r), σ(s)) of the kernel's: σ swaps 0 and 3
_SIGMA = (3, 1, 2, 0)
_G_KRON_FLIPPED = tuple(_G_KRON[4 * _SIGMA[r] + _SIGMA[s]] for r in range(4) for s in range(4))


def transform_weight(weight: Any, flipped: bool = False, run: Any | None = None) -> Any:
    """U (16, O, C): U_k = (G g Gᵀ)[r, s] for every kernel g = weight[o, c] (O, C, 3, 3), k = 4r + s.

    ``flipped``: the transform of each kernel flipped in both spatial axes, U_{σ(r)σ(s)} (module docstring).
    ``run`` (NumPy only): compute the two halves of the output channels as two tasks ``run(work, halves)``,
    so that the threads that run the blocks share this memory-bound product too.
    """
    xp = get_namespace(weight)
    out_channels, in_channels = weight.shape[0], weight.shape[1]
    kron = xp.asarray(_G_KRON_FLIPPED if flipped else _G_KRON, dtype=weight.dtype, device=weight.device)
    flat = xp.reshape(weight, (out_channels * in_channels, 9))
    fused = _numpy_module(weight)
    if run is None or fused is None or out_channels < 2:
        return xp.reshape(xp.matmul(kron, xp.matrix_transpose(flat)), (16, out_channels, in_channels))
    u = fused.empty((16, out_channels * in_channels), dtype=weight.dtype)
    half = (out_channels + 1) // 2 * in_channels

    def work(part: slice) -> None:
        fused.matmul(kron, xp.matrix_transpose(flat[part, :]), out=u[:, part])

    run(work, [slice(0, half), slice(half, out_channels * in_channels)])
    return xp.reshape(u, (16, out_channels, in_channels))


def output_shape(input_shape: tuple[int, ...], channels: int, padding: tuple[int, int]) -> tuple[int, int, int, int]:
    batch, _, height, width = input_shape
    return (batch, channels, height + 2 * padding[0] - 2, width + 2 * padding[1] - 2)


#: Tiles (GEMM columns) per block that :func:`lrpcore._conv` aims at: enough for the 16 matrix products to run
#: near the machine's GEMM rate, few enough that a block's work arrays stay in cache with 64 channels
#: (measured on VGG-16's layers; tools/BENCHMARKS.md).
BLOCK_TILES = 256


def block_bytes(in_channels: int, out_channels: int, tiles_w: int, itemsize: int) -> int:
    """Bytes of work arrays per tile row of one sample: phases (≈4C), row stage (8C), V (16C), M (16O),
    output row stage (8O) and Y (4O), each ``tiles_w + 1`` tiles wide."""
    return itemsize * (tiles_w + 1) * 28 * (in_channels + out_channels)


def correlate(x: Any, weight: Any, padding: tuple[int, int], blocks: list[tuple[slice, slice]],
              run: Any, transpose: bool = False) -> Any:
    """y = g ⋆ x, the stride-1 correlation with ``weight`` (O, C, 3, 3) and zero ``padding`` (ph, pw), by F(2, 3).

    ``transpose=False``: x (N, C, H, W) → y (N, O, H + 2ph − 2, W + 2pw − 2).
    ``transpose=True``: the adjoint of that map (needs ph, pw ≤ 2), applied to x (N, O, Ho, Wo) →
    (N, C, Ho + 2 − 2ph, Wo + 2 − 2pw): the correlation with the flipped, channel-swapped kernel,
    padding 2 − p, whose transformed kernels are U_{σ(r)σ(s)}ᵀ (module docstring).
    ``blocks``: (one sample, tile rows, output channels) slices covering the output, from
    :func:`lrpcore._conv._winograd_blocks`;
    ``run(work, blocks)`` runs them (possibly on threads; the blocks write disjoint outputs).
    """
    xp = get_namespace(x, weight)
    if transpose:
        matrices = xp.matrix_transpose(transform_weight(weight, flipped=True, run=run))
        padding = (2 - padding[0], 2 - padding[1])
    else:
        matrices = transform_weight(weight, run=run)
    shape = output_shape(tuple(x.shape), matrices.shape[1], padding)
    out = xp.empty(shape, dtype=x.dtype, device=x.device)
    fused = _numpy_module(x)

    def work(block: tuple[slice, slice]) -> None:
        _block(x, matrices, out, *block, padding, fused)

    run(work, blocks)
    return out


def tile_rows(output_height: int) -> int:
    return (output_height + 1) // 2


def tile_columns(output_width: int) -> int:
    return (output_width + 1) // 2


def _numpy_module(x: Any) -> Any | None:
    """NumPy itself when ``x`` is a NumPy ndarray (its ufuncs take ``out=``), else None (any other backend)."""
    if type(x).__module__ != "numpy":
        return None
    namespace = getattr(x, "__array_namespace__", None)       # NumPy ≥ 2; NumPy 1.x: the loaded module
    module = namespace() if namespace is not None else sys.modules.get("numpy")
    return module if getattr(module, "__name__", "") == "numpy" else None


def _phase_range(start: int, count: int, size: int) -> tuple[int, int]:
    """Indices i in [0, count) with 0 ≤ start + 2i < size (the phase entries that lie inside the input)."""
    low = max(0, (1 - start) // 2) if start < 0 else 0
    high = min(count, (size - start + 1) // 2)
    return low, max(low, high)


def _block(x: Any, matrices: Any, out: Any, samples: slice, rows: slice, outputs: slice, padding: tuple[int, int],
           fused: Any | None) -> None:
    """Tile rows ``rows`` of output channels ``outputs`` of the samples ``samples``, in four stages.

    Each stage is a few element-wise passes over all phases or positions at once (NumPy calls cost
    microseconds each, and a VGG-16 layer has dozens of blocks)."""
    wide = tile_columns(out.shape[3]) + 1     # tiles per row, the last one junk
    phases = _phases(x, samples, rows.start, rows.stop - rows.start, wide, padding)
    v = _input_transform(phases, rows.stop - rows.start, wide, fused)
    del phases
    m = _products(matrices[:, outputs, :], v, fused)
    del v
    _output_transform(m, out, samples, outputs, rows.start, rows.stop - rows.start, wide, fused)


def _phases(x: Any, samples: slice, first: int, tiles: int, wide: int, padding: tuple[int, int]) -> Any:
    """phase[py, px, c, n, i·wide + j] = padded[n, c, 2(first + i) + py, 2j + px] for i < tiles + 2, flattened.

    The last row is slack for the flattened shifts (read only by junk tiles). Only the border the
    input does not cover is zeroed."""
    xp = get_namespace(x)
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    count = samples.stop - samples.start
    phase = xp.empty((2, 2, channels, count, tiles + 2, wide), dtype=x.dtype, device=x.device)
    for py in range(2):
        top = 2 * first + py - padding[0]
        i0, i1 = _phase_range(top, tiles + 2, height)
        for px in range(2):
            left = px - padding[1]
            j0, j1 = _phase_range(left, wide, width)
            if i1 > i0 and j1 > j0:
                source = x[samples, :, top + 2 * i0:top + 2 * i1 - 1:2, left + 2 * j0:left + 2 * j1 - 1:2]
                phase[py, px, :, :, i0:i1, j0:j1] = xp.permute_dims(source, (1, 0, 2, 3))
            else:
                i0 = i1 = 0
            for zero in ((slice(0, i0), slice(None)), (slice(i1, None), slice(None)),
                         (slice(i0, i1), slice(0, j0)), (slice(i0, i1), slice(j1, None))):
                if _nonempty(zero[0], tiles + 2) and _nonempty(zero[1], wide):
                    phase[py, px, :, :, zero[0], zero[1]] = 0.0
    return xp.reshape(phase, (2, 2, channels, count, (tiles + 2) * wide))


def _input_transform(flat: Any, tiles: int, wide: int, fused: Any | None) -> Any:
    """V (16, C, n·tiles·wide), V_{4r+s} = (Bᵀ d B)[r, s] for every tile d, from the flattened phases."""
    xp = get_namespace(flat)
    channels, count = flat.shape[2], flat.shape[3]
    length = tiles * wide                     # tiles of the block, flattened
    longer = length + 1                       # the row stage also feeds the column shift by one
    # rows (Bᵀ d), both column phases at once: rowed[r, px] = t_r over `longer` tiles
    rowed = xp.empty((4, 2, channels, count, longer), dtype=flat.dtype, device=flat.device)
    d0, d2 = flat[0, :, :, :, :longer], flat[0, :, :, :, wide:wide + longer]
    d1, d3 = flat[1, :, :, :, :longer], flat[1, :, :, :, wide:wide + longer]
    _combine(rowed, 0, d0, d2, -1, fused)
    _combine(rowed, 1, d1, d2, +1, fused)
    _combine(rowed, 2, d2, d1, -1, fused)
    _combine(rowed, 3, d1, d3, -1, fused)
    # columns (… B), all four rows r at once: v[r, s] = V_{4r+s}
    v = xp.empty((4, 4, channels, count, length), dtype=flat.dtype, device=flat.device)
    e0, e2 = rowed[:, 0, :, :, :length], rowed[:, 0, :, :, 1:]
    e1, e3 = rowed[:, 1, :, :, :length], rowed[:, 1, :, :, 1:]
    _combine(v, (slice(None), 0), e0, e2, -1, fused)
    _combine(v, (slice(None), 1), e1, e2, +1, fused)
    _combine(v, (slice(None), 2), e2, e1, -1, fused)
    _combine(v, (slice(None), 3), e1, e3, -1, fused)
    return xp.reshape(v, (16, channels, count * length))


def _products(matrices: Any, v: Any, fused: Any | None) -> Any:
    """M_k = U_k V_k for the 16 positions k: the only multiplications of the algorithm."""
    if fused is not None:
        m = fused.empty((16, matrices.shape[1], v.shape[2]), dtype=v.dtype)
        fused.matmul(matrices, v, out=m)
        return m
    return get_namespace(v).matmul(matrices, v)


def _output_transform(m: Any, out: Any, samples: slice, outputs: slice, first: int, tiles: int, wide: int,
                      fused: Any | None) -> None:
    """Y = Aᵀ M A for every tile, written into ``out[samples, outputs]`` at tile rows first … first + tiles."""
    xp = get_namespace(m)
    out_channels, out_h, out_w = m.shape[1], out.shape[2], out.shape[3]
    count = samples.stop - samples.start
    length = tiles * wide
    m = xp.reshape(m, (4, 4, out_channels, count, length))
    # rows (Aᵀ M), all four columns s at once: q[dy, s]
    q = xp.empty((2, 4, out_channels, count, length), dtype=m.dtype, device=m.device)
    _combine3(q, 0, m[0, ...], m[1, ...], m[2, ...], +1, fused)
    _combine3(q, 1, m[1, ...], m[2, ...], m[3, ...], -1, fused)
    # columns (… A), both output rows dy at once: y[dy, dx]
    y = xp.empty((2, 2, out_channels, count, length), dtype=m.dtype, device=m.device)
    _combine3(y, (slice(None), 0), q[:, 0, ...], q[:, 1, ...], q[:, 2, ...], +1, fused)
    _combine3(y, (slice(None), 1), q[:, 1, ...], q[:, 2, ...], q[:, 3, ...], -1, fused)
    del q
    y = xp.reshape(y, (2, 2, out_channels, count, tiles, wide))
    for dy in range(2):
        top = 2 * first + dy
        kept_rows = min(tiles, (out_h - top + 1) // 2)
        for dx in range(2):
            kept_cols = (out_w - dx + 1) // 2
            if kept_rows > 0 and kept_cols > 0:
                out[samples, outputs, top:top + 2 * kept_rows - 1:2, dx:dx + 2 * kept_cols - 1:2] = xp.permute_dims(
                    y[dy, dx, :, :, :kept_rows, :kept_cols], (1, 0, 2, 3))


def _nonempty(part: slice, size: int) -> bool:
    start, stop, _ = part.indices(size)
    return stop > start


def _combine(target: Any, index: Any, a: Any, b: Any, sign: int, fused: Any | None) -> None:
    """target[index] = a + sign·b."""
    index = (*index, ...) if isinstance(index, tuple) else (index, ...)
    if fused is not None:
        (fused.add if sign > 0 else fused.subtract)(a, b, out=target[index])
    else:
        target[index] = a + b if sign > 0 else a - b


def _combine3(target: Any, index: Any, a: Any, b: Any, c: Any, sign: int, fused: Any | None) -> None:
    """target[index] = a + b + c (sign +1) or a − b − c (sign −1): the two rows of Aᵀ."""
    index = (*index, ...) if isinstance(index, tuple) else (index, ...)
    if fused is not None:
        slot = target[index]
        if sign > 0:
            fused.add(a, b, out=slot)
            fused.add(slot, c, out=slot)
        else:
            fused.subtract(a, b, out=slot)
            fused.subtract(slot, c, out=slot)
    else:
        target[index] = a + b + c if sign > 0 else a - b - c
