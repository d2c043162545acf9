"""Pictures: heatmaps, perturbation curves, sweep contours, stability profiles, sequence logos.

Each topic is a submodule; the functions are re-exported here. matplotlib is imported
only when a plotting function is called with it.
"""
from .heatmap import heatmap, heatmap_grid, heatmap_scale, overlay, relevance_map, save_figure  # noqa: F401
from .stability import plot_heatmap_row, plot_layer_profiles, plot_stability_grid  # noqa: F401
from .perturbation import perturbation_curve, perturbation_steps  # noqa: F401
from .sweep import auc_distribution, best_heatmaps, sweep_contour  # noqa: F401
from .sequence import sequence_logo, sequence_logos  # noqa: F401
