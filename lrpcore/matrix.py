"""Explicit redistribution matrices: R_lower = M · R_upper for one layer and one sample.

For a rule with branches b (scale σ_b, output mask m_b) and terms i (input a_i,
weights W_i as an (out × in) matrix, bias β_i), the relevance a layer passes down is

    R_lower = Σ_b σ_b Σ_{i∈b} diag(a_i) W_iᵀ diag(m_b ⊘ z_b) R_upper,   z_b = stab(Σ_{i∈b} W_i a_i + β_i)

so M = Σ_b σ_b Σ_i diag(a_i) W_iᵀ diag(m_b ⊘ z_b), an (in_features × out_features) matrix.
Here W_i is built from the layer's *forward* map applied to the unit vectors, and z_b
from W_i as a matrix product: nothing of the fast path's transposed map is reused, so
comparing ``M @ R`` with the fast path checks the transposed maps too.

Column k of M says how output k's relevance is split over the inputs: for a
conservative rule (no bias, ε = 0) each column of an active output sums to 1; the
deficit 1 − Σ_j M_jk is the share absorbed by bias and stabilizer.
"""
from __future__ import annotations

import math
from typing import Any

from .backend import get_namespace
from .layers import Layer, LinearLayer
from .rules import Pass, Rule, branch_denominator, safe_divide

__all__ = ["relevance_matrix", "forward_matrix", "graph_relevance_matrix", "rule_matrix"]

#: How many unit vectors are pushed through a layer at once when building a matrix.
BASIS_CHUNK = 512
#: Layers with more inputs than this get a progress bar (on a terminal) while their matrix is built.
PROGRESS_FEATURES = 4096


def forward_matrix(layer: LinearLayer, weight: Any, input_shape: tuple[int, ...], sparse: bool = False,
                   bar: Any = None) -> Any:
    """The (out_features × in_features) matrix of ``x ↦ layer.linear_forward(x, weight)`` (no bias).

    ``input_shape`` is one sample's shape without the batch axis. ``weight`` may carry a batch
    axis of size 1 (max pooling's selection weights); it then applies to every unit vector.
    """
    xp = get_namespace(weight)
    in_features = math.prod(input_shape)
    blocks = []
    for start in range(0, in_features, BASIS_CHUNK):
        stop = min(in_features, start + BASIS_CHUNK)
        basis = xp.eye(stop - start, in_features, k=start, dtype=weight.dtype, device=weight.device)
        images = layer.linear_forward(xp.reshape(basis, (stop - start, *input_shape)), weight, None)
        block = xp.matrix_transpose(xp.reshape(images, (stop - start, -1)))   # (out, chunk)
        blocks.append(_to_sparse(block) if sparse else block)
        if bar is not None:
            bar.update(1)
    if sparse:
        import scipy.sparse

        return scipy.sparse.hstack(blocks).tocsr()
    return blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=1)


def _to_sparse(block: Any) -> Any:
    from .backend import to_numpy
    import scipy.sparse

    return scipy.sparse.csc_matrix(to_numpy(block))


def relevance_matrix(layer: Layer, a: Any, rule: Rule, stabilizer: Any = None, sparse: bool = False,
                     progress: bool | None = None) -> Any:
    """The explicit LRP matrix M (in_features × out_features) of ``rule`` on ``layer`` at input ``a``.

    ``a`` is one sample, with or without a leading batch axis of 1. ``stabilizer`` overrides the
    rule's stabilizer (a name or callable). ``sparse=True`` returns a SciPy CSR matrix (NumPy
    inputs), which keeps convolution matrices of larger images in memory.
    R_lower = (M @ R_upper.ravel()).reshape(a.shape) reproduces the fast path. ``progress``: a progress
    bar while the matrix is built; None (default) draws one on a terminal for layers with more than
    ``PROGRESS_FEATURES`` inputs, True / False force it (:mod:`lrpcore._progress`).
    """
    xp = get_namespace(a)
    if a.ndim == 0:
        raise ValueError("relevance_matrix needs one sample's activations, got a scalar")
    batched = a.ndim == getattr(layer, "input_rank", a.ndim)
    if batched and a.shape[0] != 1:
        raise ValueError(f"relevance_matrix explains one sample; got a batch of shape {tuple(a.shape)}")
    sample = a if batched else xp.expand_dims(a, axis=0)
    input_shape = tuple(sample.shape[1:])
    in_features = math.prod(input_shape)
    if stabilizer is not None:
        import copy
        from .stabilizers import get_stabilizer

        rule = copy.copy(rule)
        rule.stabilizer = get_stabilizer(stabilizer)
    if isinstance(rule, Pass):
        output = layer.forward(sample)
        if math.prod(output.shape) != in_features:
            raise ValueError(f"Pass through {layer.describe()} changes the size; no matrix exists")
        return xp.eye(in_features, dtype=a.dtype, device=a.device)
    if not isinstance(layer, LinearLayer):
        raise TypeError(f"relevance_matrix needs a linear layer (Dense, Conv2d, pooling), got {layer.describe()}")
    from ._progress import progress_bar

    total = None
    branches = rule.layer_branches(layer, sample)
    blocks = 2 * sum(len(branch.terms) for branch in branches) * math.ceil(in_features / BASIS_CHUNK)
    show = False if progress is None and in_features <= PROGRESS_FEATURES else progress
    with progress_bar(blocks, f"building M of {layer.describe()}", unit="block", enabled=show) as bar:
        total = _relevance_matrix(layer, sample, rule, branches, input_shape, sparse, bar)
    return total.tocsr() if sparse else total


def _relevance_matrix(layer: LinearLayer, sample: Any, rule: Rule, branches: list[Any], input_shape: tuple[int, ...],
                      sparse: bool, bar: Any) -> Any:
    """M = Σ_b σ_b Σ_i diag(a_i) W_iᵀ diag(m_b ⊘ z_b) from the branches (see the module docstring)."""
    xp = get_namespace(sample)
    total = None
    for branch in branches:
        denominator = _matrix_denominator(layer, branch, input_shape, sparse, bar)
        z = rule.stabilize(xp.reshape(denominator, (1, -1)))
        column_scale = safe_divide(xp.ones_like(z), z) * branch.scale
        if branch.mask is not None:
            column_scale = column_scale * xp.astype(xp.reshape(branch.mask, (1, -1)), column_scale.dtype)
        for term in branch.terms:
            weights = forward_matrix(layer, term.weight, input_shape, sparse, bar)      # (out, in)
            row_scale = xp.reshape(xp.broadcast_to(term.input, sample.shape), (-1,))
            if sparse:
                import scipy.sparse
                from .backend import to_numpy

                piece = (scipy.sparse.diags(to_numpy(row_scale)) @ weights.T
                         @ scipy.sparse.diags(to_numpy(column_scale)[0]))
            else:
                piece = xp.reshape(row_scale, (-1, 1)) * xp.matrix_transpose(weights) * column_scale
            total = piece if total is None else total + piece
    return total


def _matrix_denominator(layer: LinearLayer, branch: Any, input_shape: tuple[int, ...], sparse: bool,
                        bar: Any = None) -> Any:
    """z_b = Σ_i W_i a_i + β_i computed with the explicit matrices (no transposed maps)."""
    xp = get_namespace(branch.terms[0].input)
    total = None
    for term in branch.terms:
        weights = forward_matrix(layer, term.weight, input_shape, sparse, bar)
        flat_input = xp.reshape(xp.broadcast_to(term.input, (1, *input_shape)), (-1,))
        if sparse:
            from .backend import to_numpy

            product = xp.asarray(weights @ to_numpy(flat_input))
        else:
            product = xp.matmul(weights, flat_input)
        if term.bias is not None:
            zeros = xp.zeros((1, *input_shape), dtype=flat_input.dtype, device=flat_input.device)
            product = product + xp.reshape(layer.linear_forward(zeros, term.weight, term.bias), (-1,))
        total = product if total is None else total + product
    return total


def graph_relevance_matrix(model: Any, x: Any, composite: Any = None, target: Any = None) -> Any:
    """The explicit matrix T (input features × classes) of a whole network at one sample: R_input = T · R_top.

    Every node's own matrix M_p (:func:`relevance_matrix`, or the identity for Pass) is fixed once the
    forward pass is known, so the map from the relevance at the output to the relevance at the input is
    linear, and T is the sum over all paths through the graph of the products of the node matrices:
    going down from the top, T_i = Σ_{nodes p reading activation i} (block of M_p for input i) · T_{p+1},
    with T_top = I. ``R_top`` is ``onehot ⊙ f(x)`` for ``explain``'s default start, so
    ``(T @ R_top).reshape(x.shape)`` equals ``explain(model, x, target, composite).relevance`` — computed
    without any of the fast path's transposed maps. Dense matrices: for small networks.
    """
    from .composites import get_composite, uniform
    from .rules import Zero

    xp = get_namespace(x)
    x = model.prepare_input(x)
    if x.shape[0] != 1:
        raise ValueError(f"graph_relevance_matrix explains one sample; got a batch of shape {tuple(x.shape)}")
    composite = get_composite(composite) if composite is not None else uniform(Zero())
    rules = composite.rules(model)
    activations = model.forward(x, record=True)
    classes = activations[-1].shape[1]
    transfer: list[Any] = [None] * len(activations)
    transfer[-1] = xp.eye(classes, dtype=x.dtype, device=x.device)
    for position in range(len(model) - 1, -1, -1):
        layer = model.layers[position]
        a = model.node_input(position, activations)
        matrix = relevance_matrix(layer, a, rules[position])          # (combined input × output)
        # cut the rows into one block per input: the columns of Mᵀ, shaped like the combined input
        shapes = [tuple(activations[index].shape) for index in model.input_positions[position]]
        columns = xp.reshape(xp.matrix_transpose(matrix), (matrix.shape[1], *a.shape[1:]))
        blocks = layer.split(columns, [(matrix.shape[1], *shape[1:]) for shape in shapes])
        for index, block in zip(model.input_positions[position], blocks):
            part = xp.matmul(xp.matrix_transpose(xp.reshape(block, (matrix.shape[1], -1))), transfer[position + 1])
            transfer[index] = part if transfer[index] is None else transfer[index] + part
        transfer[position + 1] = None
    return transfer[0]


def rule_matrix(layer: Layer, a: Any, rule: Rule) -> Any:
    """The explicit matrix M (in_features × out_features) of any rule, by probing it with unit relevances.

    Every LRP rule is linear in the relevance from above once the input ``a`` is fixed, including the
    rules of layers that are not linear in their input (the LSTM's signal-take-all, NEON's distance
    rule), for which :func:`relevance_matrix` has no forward map to expand: column k is the relevance
    the rule passes down for the unit relevance e_k, so R_lower = M · R_upper. ``a`` is one sample with
    its batch axis of 1. For linear layers this equals :func:`relevance_matrix` (which, unlike this,
    never calls the rule's own fast path).
    """
    xp = get_namespace(a)
    if a.shape[0] != 1:
        raise ValueError(f"rule_matrix explains one sample; got a batch of shape {tuple(a.shape)}")
    output_shape = tuple(layer.forward(a).shape[1:])
    count = math.prod(output_shape)
    units = xp.reshape(xp.eye(count, dtype=a.dtype), (count, *output_shape))
    repeated = xp.asarray(xp.broadcast_to(a, (count, *a.shape[1:])), copy=True)
    lower = rule.relevance(layer, repeated, units)
    return xp.matrix_transpose(xp.reshape(lower, (count, -1)))
