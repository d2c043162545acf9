"""Pictures: heatmaps, perturbation curves, sweep contours, stability profiles, sequence logos.

Each topic is a submodule; the functions are re-exported here. matplotlib is imported
only when a plotting function is called with it.
"""
