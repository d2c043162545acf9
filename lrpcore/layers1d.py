"""The 1-D sequence layers, kept importable from their first home; they live in :mod:`lrpcore.layers`."""
from .layers import AvgPool1d, Conv1d, MaxPool1d

__all__ = ["Conv1d", "AvgPool1d", "MaxPool1d"]
