"""Procedural RGB images of simple shapes with pixel-exact ground truth.

Each image shows one object (circle, square, triangle, cross, ring or diamond)
at a random position, scale, colour and small rotation on a textured
background: a smooth two-colour gradient, low-frequency colour waves, stripes,
a few thin clutter strokes and pixel noise, all drawn at random per image.
The object colour is drawn independently of the class, so the class can only
be read from the object's *shape*; the ground-truth mask says exactly where
that shape is, which is what explanation methods are scored against.

With ``watermark=True`` a small class-specific glyph is stamped into a corner
(the "Clever Hans" setting): a model can then solve the task from the glyph
alone, and an evaluation can measure how much relevance lands on the glyph
(:func:`watermark_mask`) instead of on the object (``Dataset.masks``).

All drawing is vectorised over a coordinate grid with signed distance
functions (negative inside a shape), which also gives one-pixel anti-aliased
edges; no imaging library is needed.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .dataset import (
    PER_SAMPLE_KEY,
    Dataset,
    check_count,
    check_probability,
    check_seed,
    seeded_generator,
)

__all__ = ["shapes", "watermark_mask", "watermark_box", "SHAPE_NAMES", "WATERMARK_CORNERS"]

#: Every shape class :func:`shapes` can draw, in canonical order.
SHAPE_NAMES = ("circle", "square", "triangle", "cross", "ring", "diamond")

#: Corners the watermark can be placed in.
WATERMARK_CORNERS = ("bottom_right", "bottom_left", "top_right", "top_left")

#: Smallest supported image side; below it the shapes and the watermark
#: glyph become too coarse to tell apart.
MIN_SIZE = 32

# Class-specific 3x3 watermark glyphs ("1" = bright cell). Every glyph has
# five bright cells, so the glyph's mean brightness carries no class
# information and a model has to use its spatial pattern.
_WATERMARK_GLYPHS = {
    "circle": ("101", "010", "101"),
    "square": ("010", "111", "010"),
    "triangle": ("111", "010", "010"),
    "cross": ("100", "100", "111"),
    "ring": ("110", "010", "011"),
    "diamond": ("011", "010", "110"),
}

# Radius of the circle enclosing each shape, in units of the shape's nominal
# radius; used to keep objects inside the image and away from the watermark.
_EXTENT = 1.25

# Minimum Euclidean RGB distance between the object colour and the mean
# background colour under the object, so every object is visible.
_MIN_CONTRAST = 0.35


def _watermark_cell(size: int) -> int:
    """Side in pixels of one watermark glyph cell (2 px at 64 x 64)."""
    return max(1, round(size / 32))


def watermark_box(size: int = 64, corner: str = "bottom_right") -> tuple[int, int, int, int]:
    """Return the watermark region of a ``size`` x ``size`` image as ``(y0, x0, y1, x1)``.

    The region is a square of 5 x 5 cells (a 3 x 3 glyph inside a one-cell
    dark border) placed one cell away from the chosen corner; ends are
    half-open. It is the same for every image of a given size and corner, and
    objects and clutter never overlap it, whether or not a watermark is drawn.
    """
    size = _check_size(size)
    corner = _check_corner(corner)
    cell = _watermark_cell(size)
    side = 5 * cell
    top = cell if corner.startswith("top") else size - cell - side
    left = cell if corner.endswith("left") else size - cell - side
    return (top, left, top + side, left + side)


def watermark_mask(size: int = 64, corner: str = "bottom_right") -> np.ndarray:
    """Return a ``(size, size)`` boolean mask of the watermark region (see :func:`watermark_box`)."""
    top, left, bottom, right = watermark_box(size, corner)
    mask = np.zeros((size, size), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _watermark_patch(class_name: str, cell: int) -> np.ndarray:
    """Return the grey-level watermark patch (5*cell x 5*cell) for a class."""
    glyph = np.zeros((5, 5))
    glyph[1:4, 1:4] = [[float(bit) for bit in row] for row in _WATERMARK_GLYPHS[class_name]]
    return np.kron(glyph, np.ones((cell, cell)))


# ----------------------------------------------------------------------------
# Signed distance functions. Arguments u, v are pixel coordinates in the
# object's rotated frame (v points down), radius is the nominal radius in
# pixels. Polygons use the maximum of edge half-plane distances, which is
# exact inside and near the edges (all the anti-aliasing needs).


def _box_distance(u: np.ndarray, v: np.ndarray, half_width: float, half_height: float) -> np.ndarray:
    outside_u = np.abs(u) - half_width
    outside_v = np.abs(v) - half_height
    outside = np.hypot(np.maximum(outside_u, 0.0), np.maximum(outside_v, 0.0))
    return outside + np.minimum(np.maximum(outside_u, outside_v), 0.0)


def _circle(u, v, radius):
    return np.hypot(u, v) - radius


def _square(u, v, radius):
    half_side = 0.85 * radius
    return _box_distance(u, v, half_side, half_side)


def _triangle(u, v, radius):
    # Equilateral, pointing up, circumradius 1.1 * radius, centred on its centroid.
    apothem = 0.55 * radius
    edges = [
        v - apothem,  # bottom edge (v points down)
        (math.sqrt(3) * u - v) / 2 - apothem,  # upper-right edge
        (-math.sqrt(3) * u - v) / 2 - apothem,  # upper-left edge
    ]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2])


def _cross(u, v, radius):
    arm, thickness = 1.0 * radius, 0.3 * radius
    return np.minimum(_box_distance(u, v, arm, thickness), _box_distance(u, v, thickness, arm))


def _ring(u, v, radius):
    # Outer radius = radius, inner radius = radius / 2.
    return np.abs(np.hypot(u, v) - 0.75 * radius) - 0.25 * radius


def _diamond(u, v, radius):
    # Rhombus taller than wide, so it is not a rotated square.
    half_width, half_height = 0.75 * radius, 1.15 * radius
    edge_scale = half_width * half_height / math.hypot(half_width, half_height)
    return (np.abs(u) / half_width + np.abs(v) / half_height - 1.0) * edge_scale


_DISTANCE_FUNCTIONS = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "diamond": _diamond,
}


def _coverage(distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from a signed distance (pixel units)."""
    return np.clip(0.5 - distance, 0.0, 1.0)


# ----------------------------------------------------------------------------
# Argument checks


def _check_size(size) -> int:
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")
    return int(size)


def _check_corner(corner) -> str:
    if corner not in WATERMARK_CORNERS:
        raise ValueError(f"watermark_corner must be one of {WATERMARK_CORNERS}, got {corner!r}")
    return corner


def _check_classes(classes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        raise ValueError(f"classes must be a sequence of class names, got the string {classes!r}")
    names = tuple(classes)
    if not names:
        raise ValueError("classes must name at least one shape, got an empty sequence")
    for name in names:
        if name not in SHAPE_NAMES:
            raise ValueError(f"classes contains unknown shape {name!r}; known shapes: {SHAPE_NAMES}")
    if len(set(names)) != len(names):
        raise ValueError(f"classes must not repeat a shape, got {names!r}")
    return names


def _check_non_negative(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}") from None
    if not number >= 0.0 or math.isinf(number):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return number


def _check_scale_range(scale_range) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"scale_range must be a pair (low, high), got {scale_range!r}") from None
    if not 0.05 <= low <= high <= 0.3:
        raise ValueError(
            f"scale_range must satisfy 0.05 <= low <= high <= 0.3 (object radius as a "
            f"fraction of the image size), got {scale_range!r}"
        )
    return low, high


# ----------------------------------------------------------------------------
# Drawing


def _distance_to_box(centre_y: float, centre_x: float, box: tuple[float, float, float, float]) -> float:
    top, left, bottom, right = box
    nearest_y = min(max(centre_y, top), bottom)
    nearest_x = min(max(centre_x, left), right)
    return math.hypot(centre_y - nearest_y, centre_x - nearest_x)


def _window(centre_y: float, centre_x: float, reach: float, size: int) -> tuple[slice, slice]:
    """Return the (rows, columns) slices of the square of half-side ``reach`` around a point."""
    top = max(0, int(math.floor(centre_y - reach)))
    left = max(0, int(math.floor(centre_x - reach)))
    bottom = min(size, int(math.ceil(centre_y + reach)) + 1)
    right = min(size, int(math.ceil(centre_x + reach)) + 1)
    return slice(top, bottom), slice(left, right)


def _colour(values: np.ndarray) -> np.ndarray:
    """Reshape an RGB triple to broadcast over (3, H, W) float32 images."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def _draw_background(rng: np.random.Generator, axis_coordinates: np.ndarray, size: int) -> np.ndarray:
    """Return a random textured RGB background, float32 (3, size, size).

    The background mixes five grey-level fields with random RGB weights: a
    constant, a linear gradient along a random direction, two low-frequency
    waves (up to 2 cycles per image along each axis) and stripes with a random
    period (3 to 12 px) and orientation. Each field is a function of a linear
    combination of y and x, built from the 1-D pixel coordinates by an outer
    sum, and the colour mixing is one matrix product.
    """
    fields = np.empty((5, size, size), dtype=np.float32)
    weights = np.empty((3, 5))
    coordinates = axis_coordinates - np.float32(size / 2)

    def field_from(slope_y: float, slope_x: float, offset: float) -> np.ndarray:
        along_y = coordinates * np.float32(slope_y)
        along_x = coordinates * np.float32(slope_x) + np.float32(offset)
        return along_y[:, None] + along_x[None, :]

    # Constant colour plus a smooth gradient towards a second colour.
    start_colour = rng.uniform(0.1, 0.9, size=3)
    end_colour = rng.uniform(0.1, 0.9, size=3)
    angle = rng.uniform(0.0, 2 * math.pi)
    fields[0] = 1.0
    fields[1] = field_from(math.sin(angle) / size, math.cos(angle) / size, 0.5)
    weights[:, 0] = start_colour
    weights[:, 1] = end_colour - start_colour

    # Two low-frequency colour waves.
    for field_index in (2, 3):
        frequency_y, frequency_x = rng.uniform(-2.0, 2.0, size=2) * (2 * math.pi / size)
        phase = rng.uniform(0.0, 2 * math.pi)
        np.cos(field_from(frequency_y, frequency_x, phase), out=fields[field_index])
        weights[:, field_index] = rng.uniform(-0.12, 0.12, size=3)

    # Stripes.
    period = rng.uniform(3.0, 12.0)
    angle = rng.uniform(0.0, math.pi)
    phase = rng.uniform(0.0, 2 * math.pi)
    wavenumber = 2 * math.pi / period
    np.sin(field_from(math.sin(angle) * wavenumber, math.cos(angle) * wavenumber, phase), out=fields[4])
    weights[:, 4] = rng.uniform(0.0, 0.12) * rng.uniform(-1.0, 1.0, size=3)

    return (weights.astype(np.float32) @ fields.reshape(5, -1)).reshape(3, size, size)


def _draw_stroke(rng: np.random.Generator, image: np.ndarray, grid_y, grid_x, size, keep_out, object_circle) -> None:
    """Draw one thin clutter stroke in place, clear of the object and the watermark region."""
    stroke_length = rng.uniform(0.06, 0.16) * size
    half_thickness = rng.uniform(0.4, 0.9) * max(1.0, size / 64)
    stroke_angle = rng.uniform(0.0, math.pi)
    stroke_colour = rng.uniform(0.0, 1.0, size=3)
    reach = stroke_length / 2 + half_thickness + 1.0
    object_y, object_x, object_extent = object_circle
    for _ in range(20):
        centre_y, centre_x = rng.uniform(reach, size - reach, size=2)
        clear_of_object = math.hypot(centre_y - object_y, centre_x - object_x) > object_extent + reach + 1.0
        if clear_of_object and _distance_to_box(centre_y, centre_x, keep_out) > reach:
            break
    else:
        return  # no free spot: skip this stroke
    rows, columns = _window(centre_y, centre_x, reach, size)
    offset_y = grid_y[rows, columns] - centre_y
    offset_x = grid_x[rows, columns] - centre_x
    half_y = math.sin(stroke_angle) * stroke_length / 2
    half_x = math.cos(stroke_angle) * stroke_length / 2
    # Distance to the segment from centre - half to centre + half.
    along = np.clip((offset_x * half_x + offset_y * half_y) * (1 / (half_x**2 + half_y**2)), -1.0, 1.0)
    distance = np.hypot(offset_x - along * half_x, offset_y - along * half_y) - half_thickness
    region = image[:, rows, columns]
    region += _coverage(distance) * (_colour(stroke_colour) - region)


def _draw_image(
    rng: np.random.Generator,
    class_name: str,
    grid_y: np.ndarray,
    grid_x: np.ndarray,
    size: int,
    keep_out: tuple[float, float, float, float],
    scale_range: tuple[float, float],
    max_rotation: float,
    clutter: int,
    noise: float,
):
    """Draw one image; return (image float32 (3,S,S), mask (S,S), object parameters)."""
    image = _draw_background(rng, grid_y[:, 0], size)

    radius = rng.uniform(*scale_range) * size
    rotation = rng.uniform(-max_rotation, max_rotation)
    extent = _EXTENT * radius + 1.0
    low, high = extent + 1.0, size - extent - 1.0
    for _ in range(100):
        centre_y, centre_x = rng.uniform(low, high, size=2)
        if _distance_to_box(centre_y, centre_x, keep_out) > extent:
            break
    else:  # pragma: no cover - unreachable for the allowed sizes and scales
        raise RuntimeError("could not place the object away from the watermark region")

    for _ in range(clutter):
        _draw_stroke(rng, image, grid_y, grid_x, size, keep_out, (centre_y, centre_x, extent))

    # The object only touches the window around its enclosing circle.
    rows, columns = _window(centre_y, centre_x, extent, size)
    offset_y = grid_y[rows, columns] - centre_y
    offset_x = grid_x[rows, columns] - centre_x
    theta = math.radians(rotation)
    u = offset_x * math.cos(theta) + offset_y * math.sin(theta)
    v = offset_y * math.cos(theta) - offset_x * math.sin(theta)
    distance = _DISTANCE_FUNCTIONS[class_name](u, v, radius)
    mask = np.zeros((size, size), dtype=bool)
    mask[rows, columns] = distance <= 0.0

    # Object colour: random (independent of the class) but visible against
    # the background it covers.
    region = image[:, rows, columns]
    background_under_object = region[:, distance <= 0.0].mean(axis=1)
    for _ in range(50):
        object_colour = rng.uniform(0.0, 1.0, size=3)
        if np.linalg.norm(object_colour - background_under_object) >= _MIN_CONTRAST:
            break
    else:  # pragma: no cover - practically unreachable
        object_colour = np.where(background_under_object > 0.5, 0.0, 1.0)
    # Mild linear shading across the object so it is not a flat colour.
    shade_angle = rng.uniform(0.0, 2 * math.pi)
    shade_strength = rng.uniform(0.0, 0.25) / (2 * radius)
    shading = offset_x * (math.cos(shade_angle) * shade_strength) + offset_y * (math.sin(shade_angle) * shade_strength)
    shading += 1.0
    region += _coverage(distance) * (_colour(object_colour) * shading - region)

    if noise > 0.0:
        # Uniform zero-mean noise with standard deviation `noise` (much faster
        # to draw than Gaussian noise and just as good a texture).
        uniform = rng.random(size=image.shape, dtype=np.float32)
        image += (uniform - 0.5) * np.float32(noise * math.sqrt(12.0))
    np.clip(image, 0.0, 1.0, out=image)
    parameters = (centre_y, centre_x, radius, rotation, object_colour)
    return image, mask, parameters


def shapes(
    n: int,
    size: int = 64,
    seed: int = 0,
    classes: Iterable[str] = SHAPE_NAMES,
    watermark: bool = False,
    watermark_strength: float = 1.0,
    watermark_prob: float = 1.0,
    watermark_corner: str = "bottom_right",
    noise: float = 0.03,
    clutter: int = 3,
    scale_range: tuple[float, float] = (0.14, 0.26),
    max_rotation: float = 15.0,
) -> Dataset:
    """Generate ``n`` RGB images of shapes on textured backgrounds, with ground truth.

    Parameters
    ----------
    n:
        Number of images (>= 1).
    size:
        Image side in pixels (>= 32); images are ``(n, 3, size, size)``.
    seed:
        Non-negative seed. Image ``i`` is drawn from its own generator
        (``SeedSequence(seed, spawn_key=(i, 0))``), so the same arguments
        give bit-identical arrays and ``shapes(10, seed=s)`` equals the first
        ten images of ``shapes(100, seed=s)``.
    classes:
        Shape names to use, in label order; any subset of :data:`SHAPE_NAMES`.
        Each image's label is drawn uniformly from them.
    watermark:
        Stamp a class-specific 3 x 3 glyph (white cells on black, in a 5 x 5
        cell square, one cell is ``size // 32`` px) into ``watermark_corner``,
        creating a shortcut that a "Clever Hans" model can learn. The glyph
        of a class is the same whatever subset of ``classes`` is used.
    watermark_strength:
        Opacity of the watermark in [0, 1] (1 replaces the pixels).
    watermark_prob:
        Probability in [0, 1] that an image gets its watermark; which images
        do is drawn from a separate per-image stream and recorded in
        ``meta["per_sample"]["watermark_present"]``.
    watermark_corner:
        One of :data:`WATERMARK_CORNERS`.
    noise:
        Standard deviation of the Gaussian pixel noise (>= 0).
    clutter:
        Number of thin random strokes drawn on the background (>= 0).
    scale_range:
        Range of the object's nominal radius as a fraction of ``size``.
    max_rotation:
        Objects are rotated uniformly in ``[-max_rotation, max_rotation]``
        degrees (in [0, 45]); too much rotation would make a square look like
        a diamond.

    Returns
    -------
    Dataset
        ``x`` float32 ``(n, 3, size, size)`` in [0, 1]; ``y`` labels into
        ``class_names == tuple(classes)``; ``masks`` bool ``(n, size, size)``,
        ``True`` on the object only (never on the watermark or clutter);
        ``boxes`` the object's bounding boxes ``(y0, x0, y1, x1)``, half-open;
        ``meta`` the options plus ``watermark_box`` and ``watermark_mask``
        (the region an evaluation should measure "Clever Hans" relevance on)
        and per-sample ``centre``, ``radius``, ``rotation``, ``object_colour``
        and ``watermark_present``.

    Notes
    -----
    Objects and clutter always stay clear of the watermark region, even when
    ``watermark=False``, so the images with and without watermark are
    identical outside that region: a data set made with ``watermark=False``
    is the exact counterfactual of one made with ``watermark=True``.
    """
    n = check_count("n", n)
    size = _check_size(size)
    seed = check_seed(seed)
    class_names = _check_classes(classes)
    watermark_strength = check_probability("watermark_strength", watermark_strength)
    watermark_prob = check_probability("watermark_prob", watermark_prob)
    watermark_corner = _check_corner(watermark_corner)
    noise = _check_non_negative("noise", noise)
    clutter = check_count("clutter", clutter, minimum=0)
    scale_range = _check_scale_range(scale_range)
    max_rotation = _check_non_negative("max_rotation", max_rotation)
    if max_rotation > 45.0:
        raise ValueError(f"max_rotation must be in [0, 45] degrees, got {max_rotation!r}")

    box = watermark_box(size, watermark_corner)
    cell = _watermark_cell(size)
    # Keep objects and clutter one cell plus one pixel away from the watermark.
    margin = cell + 1.0
    keep_out = (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)
    patches = {name: _watermark_patch(name, cell).astype(np.float32) for name in class_names}

    # Pixel-centre coordinates.
    pixel_centres = np.arange(size, dtype=np.float32) + np.float32(0.5)
    grid_y, grid_x = np.meshgrid(pixel_centres, pixel_centres, indexing="ij")

    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    centres = np.empty((n, 2))
    radii = np.empty(n)
    rotations = np.empty(n)
    object_colours = np.empty((n, 3))
    watermark_present = np.zeros(n, dtype=bool)

    top, left, bottom, right = box
    for index in range(n):
        rng = seeded_generator(seed, index, stream=0)
        label = int(rng.integers(len(class_names)))
        image, mask, (centre_y, centre_x, radius, rotation, colour) = _draw_image(
            rng,
            class_names[label],
            grid_y,
            grid_x,
            size,
            keep_out,
            scale_range,
            max_rotation,
            clutter,
            noise,
        )
        if watermark:
            # Separate stream: whether and how the watermark is drawn never
            # changes the rest of the image.
            watermark_rng = seeded_generator(seed, index, stream=1)
            if watermark_rng.random() < watermark_prob:
                watermark_present[index] = True
                region = image[:, top:bottom, left:right]
                region += watermark_strength * (patches[class_names[label]] - region)
        images[index] = image
        masks[index] = mask
        labels[index] = label
        centres[index] = (centre_y, centre_x)
        radii[index] = radius
        rotations[index] = rotation
        object_colours[index] = colour

    rows = masks.any(axis=2)
    columns = masks.any(axis=1)
    boxes = np.stack(
        [
            rows.argmax(axis=1),
            columns.argmax(axis=1),
            size - rows[:, ::-1].argmax(axis=1),
            size - columns[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    )

    meta = {
        "generator": "shapes",
        "seed": seed,
        "size": size,
        "classes": class_names,
        "watermark": bool(watermark),
        "watermark_strength": watermark_strength,
        "watermark_prob": watermark_prob,
        "watermark_corner": watermark_corner,
        "watermark_box": box,
        "watermark_mask": watermark_mask(size, watermark_corner),
        "watermark_glyphs": {name: _WATERMARK_GLYPHS[name] for name in class_names},
        "noise": noise,
        "clutter": clutter,
        "scale_range": scale_range,
        "max_rotation": max_rotation,
        PER_SAMPLE_KEY: {
            "centre": centres,
            "radius": radii,
            "rotation": rotations,
            "object_colour": object_colours,
            "watermark_present": watermark_present,
        },
    }
    return Dataset(
        x=images,
        y=labels,
        masks=masks,
        boxes=boxes,
        class_names=class_names,
        value_range=(0.0, 1.0),
        meta=meta,
    )
