"""Reading raw inputs for the commands: files checked before opening, images decoded at full depth, every
automatic rescaling announced, values checked against the model's raw value range.

- :func:`input_file`: the path of an input file, or an error saying it is missing, a directory, or not a
  regular file (a FIFO or device would block or never end);
- :func:`read_image`: a PNG/JPEG/... as floats in [0, 1] at its real depth — 8-bit images scaled by
  1/255, 16-bit ones by 1/65535 (Pillow's grey conversion would clip them to white) — as (C, H, W)
  with the model's channel count;
- :func:`as_raw_values`: float arrays pass unchanged; ``uint8`` and ``uint16`` arrays are scaled into
  the model's value range (announced); other integer types are refused;
- :func:`check_value_range`: raw values outside the model's value range are refused, naming the range
  (unscaled 0…255 data fed to a [0, 1] model gives meaningless heatmaps and AUCs), unless the
  command's ``--allow-out-of-range`` says otherwise.

Announcements are one line each on stderr, ``lrpcore: note: <file>: uint8 input scaled by 1/255 to the
model's value range [0, 1]``, so stdout stays the command's report.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError

__all__ = ["positive_int", "input_file", "announce", "read_image", "as_raw_values", "check_value_range", "check_not_empty"]

#: Grey from RGB: ITU-R 601-2 luma, the weights Pillow's "L" conversion uses.
LUMA = (0.299, 0.587, 0.114)


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (``--batch-size 0`` is a usage error naming the option)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def announce(message: str) -> None:
    """One line on stderr about something the command did on its own (a rescaling)."""
    print(f"lrpcore: note: {message}", file=sys.stderr)


def input_file(path: str | os.PathLike, what: str = "input file") -> Path:
    """``path`` as a Path after checking it is a regular file; errors say what it is instead."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    if stat.S_ISDIR(mode):
        raise InputValueError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if (stat.S_ISCHR(mode) or
                                                                               stat.S_ISBLK(mode)) else "not a file"
        raise InputValueError(f"{what} {path} is {kind}, not a regular file")
    return path


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk; None for other files."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _sixteen_bit_colour(path: Path) -> numpy.ndarray:
    """A 16-bit colour PNG as (H, W, 3) uint16 RGB (Pillow reads these at 8 bits; OpenCV keeps 16)."""
    try:
        import cv2
    except ImportError:
        raise InputValueError(f"{path}: a 16-bit colour PNG needs OpenCV to be read at full depth "
                              "(pip install opencv-python-headless), or save it with 8 bits per channel") from None
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != numpy.uint16 or pixels.ndim != 3:
        raise InputValueError(f"{path}: cannot read this 16-bit colour PNG")
    return pixels[..., 2::-1][..., :3]  # BGR(A) → RGB


def read_image(path: Path, channels: int) -> tuple[numpy.ndarray, int]:
    """(values in [0, 1] as (C, H, W) float32, bits per channel 8 or 16) of an image file.

    Colour images feed 3-channel models, grey images 1-channel ones; a colour image for a grey
    model is reduced by luma (ITU-R 601-2), a grey image for a colour model repeated per channel.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ShapeError(f"{path}: images can feed models with 1 or 3 input channels; the model takes {channels}")
    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] in (2, 6):  # 16-bit RGB / RGBA
        pixels, bits = _sixteen_bit_colour(path).astype(numpy.float64) / 65535.0, 16
    else:
        try:
            with Image.open(path) as image:
                image.load()
                mode = image.mode
                if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                    pixels = numpy.asarray(image, dtype=numpy.int64)
                    if pixels.min() < 0 or pixels.max() > 65535:
                        raise InputValueError(f"{path}: {mode} image with values outside 0..65535 "
                                              f"([{pixels.min()}, {pixels.max()}]); lrpcore reads 8- and 16-bit "
                                              "images")
                    pixels, bits = pixels.astype(numpy.float64) / 65535.0, 16
                elif mode == "F":
                    raise InputValueError(f"{path}: floating-point images are not read; save the values as .npy")
                else:  # 8 bits per channel: Pillow converts to the model's channel count (grey by luma)
                    converted = image.convert("RGB" if channels == 3 else "L")
                    pixels, bits = numpy.asarray(converted, dtype=numpy.float64) / 255.0, 8
        except UnidentifiedImageError:
            raise InputValueError(f"{path}: not an image file Pillow can read") from None
    if pixels.ndim == 3 and channels == 1:
        pixels = pixels @ numpy.asarray(LUMA)
    elif pixels.ndim == 2 and channels == 3:
        pixels = numpy.repeat(pixels[..., None], 3, axis=2)
    values = pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]
    return values.astype(numpy.float32), bits


def scale_note(source: str, what: str, divisor: int, value_range: tuple[float, float]) -> str:
    low, high = (float(bound) for bound in value_range)
    target = "" if (low, high) == (0.0, 1.0) else f" and mapped to the model's value range [{low:g}, {high:g}]"
    return f"{source}: {what} scaled by 1/{divisor}{target}"


def as_raw_values(values: numpy.ndarray, value_range: tuple[float, float], source: str,
                  dtype: Any = numpy.float32) -> numpy.ndarray:
    """Floats pass unchanged; uint8 (÷255) and uint16 (÷65535) are scaled into the value range, announced;
    other dtypes are refused."""
    low, high = (float(bound) for bound in value_range)
    for kind, divisor in ((numpy.uint8, 255), (numpy.uint16, 65535)):
        if values.dtype == kind:
            announce(scale_note(source, f"{numpy.dtype(kind).name} input", divisor, value_range))
            return (low + (high - low) * (values.astype(numpy.float64) / divisor)).astype(dtype)
    if values.dtype.kind != "f":
        raise InputValueError(f"{source}: inputs must be floating point (raw values in the model's value range "
                              f"[{low:g}, {high:g}]) or uint8/uint16 images, got dtype {values.dtype}")
    return values.astype(dtype, copy=False)


def check_not_empty(values: numpy.ndarray, source: str) -> None:
    if values.size == 0 or (values.ndim and values.shape[0] == 0):
        raise ShapeError(f"{source}: the input batch is empty (shape {values.shape})")


def check_value_range(values: numpy.ndarray, value_range: tuple[float, float] | None, source: str,
                      override: str | None = None) -> None:
    """Finite values within the model's raw value range (tolerance 1e-3 of its width; ``None``: finite only).

    Errors name the range and, where the command has one, the option ``override`` that accepts the
    values anyway.
    """
    if not numpy.isfinite(values).all():
        bad = int((~numpy.isfinite(values)).sum())
        raise InputValueError(f"{source}: input contains {bad} NaN or inf values")
    if value_range is None or values.size == 0:
        return
    low, high = (float(bound) for bound in value_range)
    tolerance = 1e-3 * (high - low)
    found_low, found_high = float(values.min()), float(values.max())
    if found_low < low - tolerance or found_high > high + tolerance:
        hint = (f"; pass {override} to use them anyway" if override else "")
        raise InputValueError(f"{source}: values span [{found_low:.4g}, {found_high:.4g}], outside the model's raw "
                              f"value range [{low:g}, {high:g}]; inputs must hold raw values in that range (uint8 "
                              "arrays are scaled by 1/255 automatically; pass --preprocessed if they are already "
                              f"normalised){hint}")
