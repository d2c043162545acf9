"""Data sets for explanation experiments.

* :func:`shapes` - procedural RGB images of shapes on textured backgrounds,
  with pixel-exact object masks, boxes and an optional class-specific
  watermark ("Clever Hans" shortcut);
* :func:`motifs` - one-hot DNA sequences whose class is set by planted
  motifs, with position-exact masks;
* :func:`digits` - scikit-learn's bundled 8 x 8 handwritten digits with a
  seeded train/test split (needs scikit-learn).

All return a :class:`Dataset`; all randomness comes from explicit seeds, one
generator per sample, so sample ``i`` does not depend on how many are made.
"""

from .dataset import Dataset
from .digits import digits
from .motifs import motifs, sequences_to_strings
from .shapes import SHAPE_NAMES, shapes, watermark_box, watermark_mask

__all__ = [
    "Dataset",
    "shapes",
    "digits",
    "motifs",
    "watermark_mask",
    "watermark_box",
    "sequences_to_strings",
    "SHAPE_NAMES",
]
