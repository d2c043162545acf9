"""Where relevance starts: the class explained for each sample and the relevance at the output.

- :func:`resolve_targets`: the target class per sample from an index, a class name or the prediction;
- :func:`onehot`: the one-hot selection R = onehot ⊙ f(x) that starts LRP at the target logit;
- :func:`logprob_ratio_start`: the start for the log-probability ratio η_c (section 10.3.1).
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

from .backend import to_numpy
from .class_names import resolve_target_names
from .errors import InputValueError, ShapeError
from .layers import Dense

__all__ = ["Target", "resolve_targets", "onehot", "logprob_ratio_start"]

Target = None | int | str | Sequence[int] | Sequence[str] | Any | Literal["pred"]


def resolve_targets(target: Target, logits: Any, class_names: Sequence[str] | None = None,
                    model_name: str | None = None) -> Any:
    """``target`` as an integer array with one class per sample; errors name the bad value.

    ``target``: None or ``"pred"`` (the predicted class), a class index, a class name from
    ``class_names`` (:mod:`lrpcore.class_names`), or one of those per sample.
    """
    import numpy

    batch, classes = logits.shape[0], logits.shape[1]
    if target is None or (isinstance(target, str) and target == "pred"):
        return numpy.argmax(to_numpy(logits), axis=1).astype(numpy.int64)
    if getattr(target, "dtype", None) is not None and numpy.asarray(target).dtype.kind in "US":
        target = [str(item) for item in numpy.asarray(target).ravel()]
    target = resolve_target_names(target, class_names, model_name)
    values = numpy.asarray(to_numpy(target) if hasattr(target, "shape") else target)
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and numpy.all(numpy.mod(values, 1) == 0):
            values = values.astype(numpy.int64)
        else:
            raise InputValueError(f"target must hold integers, got dtype {values.dtype}")
    values = numpy.broadcast_to(values.astype(numpy.int64), (batch,)) if values.ndim == 0 else values
    if values.shape != (batch,):
        raise ShapeError(f"target must be one int or {batch} ints (one per sample), got shape {values.shape}")
    if values.min() < 0 or values.max() >= classes:
        raise InputValueError(f"target {values.tolist()} out of range for {classes} classes (0..{classes - 1})")
    return values.astype(numpy.int64)


def logprob_ratio_start(layer: Dense, a: Any, targets: Any, xp: Any) -> tuple[Any, Any]:
    """Relevance at the input of the top Dense layer for η_c = log(p_c / (1 − p_c)).

    Montavon et al. 2019, section 10.3.1: η_c = −log Σ_{c'≠c} exp(−(z_c − z_c')) is a soft
    minimum over the logit differences z_cc' = z_c − z_c' = Σ_k a_k (w_kc − w_kc') + (b_c − b_c').
    Each difference is redistributed like a neuron of weights w_c − w_c', and the soft
    minimum's weights exp(−z_cc') / Σ_c'' exp(−z_cc'') ("min-take-most") mix them:
    R_k = Σ_{c'≠c} a_k (w_kc − w_kc') · exp(−z_cc') / Σ_{c''≠c} exp(−z_cc'').
    The bias differences are absorbed, as the bias is in the ε rule.
    Returns (relevance at the layer input, η per sample).
    """
    weight = layer.weight
    selection = xp.asarray(onehot(targets, weight.shape[0]), dtype=a.dtype)
    w_target = xp.matmul(selection, weight)                         # (N, in): w_c for each sample
    logits = layer.forward(a)
    z_target = xp.sum(selection * logits, axis=1, keepdims=True)
    differences = z_target - logits                              # z_cc' (N, C); 0 at c' = c
    others = 1.0 - selection
    # soft-min weights over c' ≠ c, computed stably (shift by the smallest difference)
    shifted = xp.where(others > 0, differences, xp.full_like(differences, float("inf")))
    minimum = xp.min(shifted, axis=1, keepdims=True)
    weights = xp.where(others > 0, xp.exp(-(differences - minimum)), xp.zeros_like(differences))
    weights = weights / xp.sum(weights, axis=1, keepdims=True)
    eta = minimum[:, 0] - xp.log(xp.sum(xp.where(others > 0, xp.exp(-(differences - minimum)),
                                                 xp.zeros_like(differences)), axis=1))
    # R_k = a_k Σ_c' weights_c' (w_kc − w_kc') = a_k (w_kc − Σ_c' weights_c' w_kc')
    mixed = w_target - xp.matmul(weights, weight)
    return a * mixed, eta


def onehot(targets: Any, classes: int) -> Any:
    """A (N, classes) NumPy one-hot array of the integer ``targets``."""
    import numpy

    onehot = numpy.zeros((len(targets), classes))
    onehot[numpy.arange(len(targets)), targets] = 1.0
    return onehot
