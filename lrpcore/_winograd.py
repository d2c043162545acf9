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
symmetric), so its transformed kernels are U_{σ(r)σ(s)}ᵀ: the same U, read at permuted
positions and transposed (free in the matrix product); see :func:`correlate`.

Written with array-API calls only; on NumPy the element-wise passes write into preallocated
arrays (``out=``), which saves an allocation and a copy per pass.
"""
from __future__ import annotations

from typing import Any

from .backend import get_namespace

# G (4 × 3) of F(2×2, 3×3); row r of G ⊗ G (16 × 9) gives U_k = Σ_ij G[r, i] G[s, j] g[i, j], k = 4r + s
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
_G_KRON = tuple(tuple(_G[r][i] * _G[s][j] for i in range(3) for j in range(3)) for r in range(4) for s in range(4))
# position k = 4r + s of the flipped kernel's transform is position σ(r), σ(s) of the kernel's: σ swaps 0 and 3
_SIGMA = (3, 1, 2, 0)
_FLIPPED = tuple(4 * _SIGMA[r] + _SIGMA[s] for r in range(4) for s in range(4))
_IDENTITY = tuple(range(16))


def transform_weight(weight: Any) -> Any:
    """U (16, O, C): U_k = (G g Gᵀ)[r, s] for every kernel g = weight[o, c] (O, C, 3, 3), k = 4r + s."""
    xp = get_namespace(weight)
    out_channels, in_channels = weight.shape[0], weight.shape[1]
    kron = xp.asarray(_G_KRON, dtype=weight.dtype, device=weight.device)
    flat = xp.reshape(weight, (out_channels * in_channels, 9))
    return xp.reshape(xp.matmul(kron, xp.matrix_transpose(flat)), (16, out_channels, in_channels))


def output_shape(input_shape: tuple[int, ...], channels: int, padding: tuple[int, int]) -> tuple[int, int, int, int]:
    batch, _, height, width = input_shape
    return (batch, channels, height + 2 * padding[0] - 2, width + 2 * padding[1] - 2)


def block_bytes(in_channels: int, out_channels: int, tiles_w: int, itemsize: int) -> int:
    """Bytes of work arrays per tile row of one sample: phases (≈4C), row stage (8C), V (16C), M (16O),
    output row stage (8O) and Y (4O), each ``tiles_w + 1`` tiles wide."""
    return itemsize * (tiles_w + 1) * 28 * (in_channels + out_channels)


def correlate(x: Any, weight: Any, padding: tuple[int, int], blocks: list[tuple[slice, slice]],
              run: Any, transpose: bool = False, transformed: Any | None = None) -> Any:
    """y = g ⋆ x, the stride-1 correlation with ``weight`` (O, C, 3, 3) and zero ``padding`` (ph, pw), by F(2×2, 3×3).

    ``transpose=False``: x (N, C, H, W) → y (N, O, H + 2ph − 2, W + 2pw − 2).
    ``transpose=True``: the adjoint of that map (needs ph, pw ≤ 2), applied to x (N, O, Ho, Wo) →
    (N, C, Ho + 2 − 2ph, Wo + 2 − 2pw): the correlation with the flipped, channel-swapped kernel,
    padding 2 − p, computed from the same transformed kernels (module docstring).
    ``blocks``: (one sample, tile rows) pairs covering the output, from :func:`lrpcore._conv._row_blocks`;
    ``run(work, blocks)`` runs them (possibly on threads; the blocks write disjoint outputs).
    ``transformed``: :func:`transform_weight` of ``weight`` if the caller has it.
    """
    xp = get_namespace(x, weight)
    u = transform_weight(weight) if transformed is None else transformed
    if transpose:
        matrices, slots = xp.matrix_transpose(u), _FLIPPED
        padding = (2 - padding[0], 2 - padding[1])
        channels = weight.shape[1]
    else:
        matrices, slots = u, _IDENTITY
        channels = weight.shape[0]
    shape = output_shape(tuple(x.shape), channels, padding)
    out = xp.empty(shape, dtype=x.dtype, device=x.device)
    fused = _numpy_module(x)

    def work(block: tuple[slice, slice]) -> None:
        _block(x, matrices, slots, out, block[0], block[1], padding, fused)

    run(work, blocks)
    return out


def tile_rows(output_height: int) -> int:
    return (output_height + 1) // 2


def tile_columns(output_width: int) -> int:
    return (output_width + 1) // 2


def _numpy_module(x: Any) -> Any | None:
    """NumPy itself when ``x`` is a NumPy array (its ufuncs take ``out=``), else None."""
    namespace = getattr(x, "__array_namespace__", None)
    if namespace is None or type(x).__module__ != "numpy":
        return None
    module = namespace()
    return module if getattr(module, "__name__", "") == "numpy" else None


def _phase_range(start: int, count: int, size: int) -> tuple[int, int]:
    """Indices i in [0, count) with 0 ≤ start + 2i < size (the phase entries that lie inside the input)."""
    low = max(0, (1 - start) // 2) if start < 0 else 0
    high = min(count, (size - start + 1) // 2)
    return low, max(low, high)


def _block(x: Any, matrices: Any, slots: tuple[int, ...], out: Any, samples: slice, rows: slice,
           padding: tuple[int, int], fused: Any | None) -> None:
    """Tile rows ``rows`` of the samples ``samples``: phases, input transform, 16 GEMMs, output transform."""
    xp = get_namespace(x)
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    count = samples.stop - samples.start
    first, tiles = rows.start, rows.stop - rows.start
    tiles_w = tile_columns(out_w)
    wide = tiles_w + 1                        # tiles per row, the last one junk
    length = tiles * wide                     # tiles of the block, flattened
    longer = length + 1                       # the row stage also feeds the column shift by one
    pad_h, pad_w = padding

    # phases: phase[py, px, c, n, i, j] = padded[n, c, 2(first + i) + py, 2j + px]; the last row is slack for
    # the flattened shifts (its entries are read only by junk tiles)
    phase = xp.zeros((2, 2, channels, count, tiles + 2, wide), dtype=x.dtype, device=x.device)
    for py in range(2):
        top = 2 * first + py - pad_h
        i0, i1 = _phase_range(top, tiles + 1, height)
        for px in range(2):
            left = px - pad_w
            j0, j1 = _phase_range(left, wide, width)
            if i1 > i0 and j1 > j0:
                source = x[samples, :, top + 2 * i0:top + 2 * i1 - 1:2, left + 2 * j0:left + 2 * j1 - 1:2]
                phase[py, px, :, :, i0:i1, j0:j1] = xp.permute_dims(source, (1, 0, 2, 3))
    flat = xp.reshape(phase, (2, 2, channels, count, (tiles + 2) * wide))

    # input transform, rows (Bᵀ d): t_r for r = 0..3, per column phase px, over `longer` tiles
    rowed = xp.empty((4, 2, channels, count, longer), dtype=x.dtype, device=x.device)
    for px in range(2):
        d0, d2 = flat[0, px, :, :, :longer], flat[0, px, :, :, wide:wide + longer]
        d1, d3 = flat[1, px, :, :, :longer], flat[1, px, :, :, wide:wide + longer]
        _combine(rowed, (0, px), d0, d2, -1, fused)
        _combine(rowed, (1, px), d1, d2, +1, fused)
        _combine(rowed, (2, px), d2, d1, -1, fused)
        _combine(rowed, (3, px), d1, d3, -1, fused)
    # columns (… B): V_{4r+s}
    v = xp.empty((16, channels, count, length), dtype=x.dtype, device=x.device)
    for r in range(4):
        e0, e2 = rowed[r, 0, :, :, :length], rowed[r, 0, :, :, 1:]
        e1, e3 = rowed[r, 1, :, :, :length], rowed[r, 1, :, :, 1:]
        _combine(v, (slots[4 * r],), e0, e2, -1, fused)
        _combine(v, (slots[4 * r + 1],), e1, e2, +1, fused)
        _combine(v, (slots[4 * r + 2],), e2, e1, -1, fused)
        _combine(v, (slots[4 * r + 3],), e1, e3, -1, fused)
    del rowed, phase, flat

    columns = count * length
    v = xp.reshape(v, (16, channels, columns))
    if fused is not None:
        m = fused.empty((16, out_channels, columns), dtype=x.dtype)
        fused.matmul(matrices, v, out=m)
    else:
        m = xp.matmul(matrices, v)
    del v
    m = xp.reshape(m, (16, out_channels, count, length))

    # output transform, rows (Aᵀ M): q[dy, s]
    q = xp.empty((2, 4, out_channels, count, length), dtype=x.dtype, device=x.device)
    for s in range(4):
        m0, m1, m2, m3 = (m[slots[4 * r + s], ...] for r in range(4))
        _combine3(q, (0, s), m0, m1, m2, +1, fused)
        _combine3(q, (1, s), m1, m2, m3, -1, fused)
    del m
    # columns (… A): Y[dy, dx]
    y = xp.empty((2, 2, out_channels, count, length), dtype=x.dtype, device=x.device)
    for dy in range(2):
        _combine3(y, (dy, 0), q[dy, 0, ...], q[dy, 1, ...], q[dy, 2, ...], +1, fused)
        _combine3(y, (dy, 1), q[dy, 1, ...], q[dy, 2, ...], q[dy, 3, ...], -1, fused)
    del q
    y = xp.reshape(y, (2, 2, out_channels, count, tiles, wide))
    for dy in range(2):
        top = 2 * first + dy
        kept_rows = min(tiles, (out_h - top + 1) // 2)
        for dx in range(2):
            kept_cols = (out_w - dx + 1) // 2
            if kept_rows > 0 and kept_cols > 0:
                out[samples, :, top:top + 2 * kept_rows - 1:2, dx:dx + 2 * kept_cols - 1:2] = xp.permute_dims(
                    y[dy, dx, :, :, :kept_rows, :kept_cols], (1, 0, 2, 3))


def _combine(target: Any, index: tuple[int, ...], a: Any, b: Any, sign: int, fused: Any | None) -> None:
    """target[index] = a + sign·b."""
    index = (*index, ...)
    if fused is not None:
        (fused.add if sign > 0 else fused.subtract)(a, b, out=target[index])
    else:
        target[index] = a + b if sign > 0 else a - b


def _combine3(target: Any, index: tuple[int, ...], a: Any, b: Any, c: Any, sign: int, fused: Any | None) -> None:
    """target[index] = a + b + c (sign +1) or a − b − c (sign −1): the two rows of Aᵀ."""
    index = (*index, ...)
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
