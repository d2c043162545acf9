"""Evaluating explanations: pixel flipping / region perturbation, localisation, sparsity, robustness.

- :func:`pixel_flipping` → :class:`PerturbationCurve` (AUC, normalised AUC, AOPC, thesis AUC);
- localisation on ground truth: :func:`relevance_mass_accuracy`, :func:`relevance_rank_accuracy`,
  :func:`inside_total_ratio` (μ), :func:`weighted_inside_total_ratio` (μ_w), and Kohlbrenner et al.'s
  protocol in :mod:`.localization` (μ by box size, μ_{≤0.25}, μ_{≤0.5}, LRP_CAM and the CMP variants,
  the object-versus-context occlusion check);
- sparsity and complexity: :func:`gini`, :func:`entropy`;
- robustness: :func:`local_lipschitz`.

Metrics on heatmaps run on the host (NumPy); heatmaps from CuPy are copied over.
"""
from .curve import PerturbationCurve, area_between_curves, trapezoid_area
from .inpaint import inpaint_telea
from .localization import box_sizes, localization_scores, mu_by_box_size, object_context_occlusion
from .metrics import (boxes_to_masks, entropy, gini, inside_total_ratio, relevance_mass_accuracy,
                      relevance_rank_accuracy, weighted_inside_total_ratio)
from .patches import LUMINANCE_WEIGHTS, PatchGrid, patch_order, reduce_channels
from .perturbation import pixel_flipping
from .robustness import local_lipschitz
from .schedules import schedule_counts

__all__ = [
    "LUMINANCE_WEIGHTS",
    "PatchGrid",
    "PerturbationCurve",
    "area_between_curves",
    "box_sizes",
    "boxes_to_masks",
    "entropy",
    "gini",
    "inpaint_telea",
    "inside_total_ratio",
    "local_lipschitz",
    "localization_scores",
    "mu_by_box_size",
    "object_context_occlusion",
    "patch_order",
    "pixel_flipping",
    "reduce_channels",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "schedule_counts",
    "trapezoid_area",
    "weighted_inside_total_ratio",
]
