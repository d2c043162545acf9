"""NEON, "neuralization–propagation": k-means and one-class SVMs rewritten as lrpcore networks, then LRP.

Montavon et al. 2019, section 10.4; Kauffmann, Esders, Ruff, Montavon, Samek, Müller, "From clustering
to cluster explanations via neural networks" (IEEE TNNLS 2022, arXiv:1906.07633); Kauffmann, Müller,
Montavon, "Towards explaining anomalies: a deep Taylor decomposition of one-class models" (Pattern
Recognition 2020, arXiv:1805.06230).

k-means (:func:`from_kmeans`). The evidence for cluster c against cluster k is
h_ck(x) = ‖x − μ_k‖² − ‖x − μ_c‖² = w_ckᵀ x + b_ck with w_ck = 2(μ_c − μ_k), b_ck = ‖μ_k‖² − ‖μ_c‖²:
a linear layer (:class:`~lrpcore.layers.Dense` with K·(K−1) outputs, rows ordered c = 0..K−1, k ≠ c
ascending). The membership score is the soft minimum over the competitors,

    f_c(x) = min^β_{k≠c} h_ck = −β⁻¹ log Σ_{k≠c} exp(−β h_ck),

(:class:`SoftMinPool`; β = ∞ is the hard minimum, the margin min_{k≠c} ‖x−μ_k‖² − ‖x−μ_c‖², positive
exactly for the points k-means assigns to c). β·f_c is the log-odds log(P_c / (1 − P_c)) of the soft
assignment P_c ∝ exp(−β‖x − μ_c‖²), which is how NEON reads the score.

Propagation: min-take-most at the pooling (:class:`MinTakesMost`, R_ck = p_ck · f_c with the soft-min
weights p_ck = exp(−β h_ck) / Σ_{k'≠c} exp(−β h_ck')), then each discriminant is decomposed at its
midpoint m_ck = (μ_c + μ_k)/2, which lies on its hinge (h_ck(m_ck) = 0):
R_i = Σ_k (x_i − m_cki) w_cki / h_ck · R_ck (:class:`Midpoint`, a deep-Taylor rule with a fixed root
point; :mod:`lrpcore.dtd`). Both steps conserve relevance.

One-class SVM (:func:`from_one_class_svm`, RBF kernel k(x, u) = exp(−γ‖x − u‖²)). The decision function
Σ_j α_j k(x, u_j) − ρ becomes the outlier score

    o(x) = −γ⁻¹ log Σ_j α_j exp(−γ‖x − u_j‖²) = min^γ_j { ‖x − u_j‖² − γ⁻¹ log α_j },

a distance layer (:class:`SquaredDistance`, h_j = ‖x − u_j‖² + offset_j with offset_j = −γ⁻¹ log α_j)
and a soft min-pooling of stiffness γ. So decision_function(x) = exp(−γ o(x)) − ρ: high o(x) = outlier.
Propagation: min-take-most to the support vectors, then R_i = Σ_j (x_i − u_ji)² / ‖x − u_j‖² · R_j
(:class:`DistanceShares`: each support vector's relevance split by the squared coordinate differences).
"""
from __future__ import annotations

import math
from typing import Any

from .backend import get_namespace
from .errors import InputValueError, ShapeError
from .layers import Dense, Layer, LinearLayer
from .model import ModelMetadata, Sequential
from .rules import Branch, BranchRecord, Rule, Term, safe_divide
from .stabilizers import Stabilizer

__all__ = ["SoftMinPool", "MinTakesMost", "Midpoint", "SquaredDistance", "DistanceShares", "from_kmeans",
           "from_one_class_svm", "kmeans_composite", "one_class_svm_composite", "kmeans_midpoints"]


class SoftMinPool(LinearLayer):
    """Soft minimum over groups of ``size`` consecutive inputs: (N, G·size) → (N, G),

        y_g = −β⁻¹ log Σ_m exp(−β x_{g,m}),      β = ``beta`` > 0; ``beta=math.inf``: y_g = min_m x_{g,m}.

    For LRP it is handled like max pooling: locally linear with input-dependent weights, here the
    soft-min weights p_{g,m} = exp(−β x_{g,m}) / Σ_m' exp(−β x_{g,m'}) = ∂y_g/∂x_{g,m} (for β = ∞ the
    minimum's position; ties share equally). ``relevance_weight(x)`` returns p (N, G, size),
    ``linear_forward(x, p)`` = Σ_m p_{g,m} x_{g,m} and ``linear_transpose(s, p)`` = p_{g,m} s_g. Note that
    ``forward`` is the soft minimum, which lies below Σ_m p x by the entropy of p over β.
    """

    input_rank = 2

    def default_rule(self) -> "MinTakesMost":
        """NEON's rule for this layer, what every composite gives it unless told otherwise."""
        return MinTakesMost()

    def __init__(self, size: int, beta: float = math.inf):
        if int(size) != size or size < 1:
            raise ValueError(f"SoftMinPool size must be a positive int, got {size!r}")
        if not beta > 0:
            raise ValueError(f"SoftMinPool needs a stiffness β > 0 (math.inf for the hard minimum), got {beta!r}")
        self.size = int(size)
        self.beta = float(beta)

    def hyperparameters(self) -> dict[str, Any]:
        return {"size": self.size, "beta": self.beta}

    def describe(self) -> str:
        return f"SoftMinPool(size={self.size}, β={self.beta:g})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0] // self.size,)

    def relevance_bias(self) -> Any | None:
        return None

    def _groups(self, x: Any) -> Any:
        if x.ndim != 2 or x.shape[1] % self.size:
            raise ShapeError(f"{self.describe()} expects (N, G·{self.size}) inputs, got shape {tuple(x.shape)}")
        xp = get_namespace(x)
        return xp.reshape(x, (x.shape[0], x.shape[1] // self.size, self.size))

    def relevance_weight(self, x: Any, maxpool: Any = "winner") -> Any:
        xp = get_namespace(x)
        groups = self._groups(x)
        smallest = xp.min(groups, axis=2, keepdims=True)
        if math.isinf(self.beta):
            weight = xp.astype(groups == smallest, x.dtype)
        else:
            weight = xp.exp(-self.beta * (groups - smallest))
        return weight / xp.sum(weight, axis=2, keepdims=True)

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        groups = self._groups(x)
        smallest = xp.min(groups, axis=2)
        if math.isinf(self.beta):
            return smallest
        spread = xp.sum(xp.exp(-self.beta * (groups - smallest[:, :, None])), axis=2)
        return smallest - xp.log(spread) / self.beta

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        xp = get_namespace(x, weight)
        out = xp.sum(self._groups(x) * weight, axis=2)
        return out if bias is None else out + bias

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        xp = get_namespace(s, weight)
        spread = weight * s[:, :, None]
        return xp.reshape(spread, (spread.shape[0], -1))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return self.linear_transpose(grad_output, self.relevance_weight(x), tuple(x.shape))


class MinTakesMost(Rule):
    """Min-take-most at a :class:`SoftMinPool`: R_{g,m} = p_{g,m} · R_g (Kauffmann et al.; chapter 10.4).

    Written as one term with input 1 and weight p: the denominator Σ_m p_{g,m} = 1, so the rule conserves
    exactly, and :func:`lrpcore.relevance_matrix` gives the matrix diag-free Pᵀ. With β = ∞ all relevance
    goes to the minimum ("min-take-all").
    """

    name = "MinTakesMost"

    def __init__(self):
        super().__init__(stabilizer="vanilla", epsilon=0.0)

    def describe(self) -> str:
        return "MinTakesMost"

    def branches(self, layer, a, weight, bias):
        if not isinstance(layer, SoftMinPool):
            raise TypeError(f"MinTakesMost applies to SoftMinPool layers, not {layer.describe()}")
        xp = get_namespace(a)
        return [Branch([Term(xp.ones_like(a), weight)])]


class Midpoint(Rule):
    """Deep Taylor rule with a fixed root point per output neuron (NEON's midpoint rule for k-means):

        R_j = Σ_k (a_j − m_kj) w_kj / Σ_j (a_j − m_kj) w_kj · R_k,

    ``points`` m (K, J): one root per output of a :class:`~lrpcore.layers.Dense` layer; for k-means the
    midpoints m_ck = (μ_c + μ_k)/2, on the hinge of h_ck (the denominator is then h_ck itself). As terms:
    (a, W) and (1, −m ⊙ W), so the explicit matrix and the trace come from the generic rule machinery.
    The default stabilizer adds ε = 1e-9·sign(z) (zero denominators only at a tie between clusters).
    """

    name = "Midpoint"

    def __init__(self, points: Any, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-9):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon)
        self.points = points

    def describe(self) -> str:
        return "Midpoint"

    def branches(self, layer, a, weight, bias):
        if not isinstance(layer, Dense):
            raise TypeError(f"Midpoint applies to Dense layers, not {layer.describe()}")
        if tuple(self.points.shape) != tuple(weight.shape):
            raise ShapeError(f"Midpoint needs one root point per output, shape {tuple(weight.shape)}, "
                             f"got {tuple(self.points.shape)}")
        xp = get_namespace(a)
        points = xp.astype(xp.asarray(self.points), a.dtype)
        return [Branch([Term(a, weight), Term(xp.ones_like(a), -(points * weight))])]


class SquaredDistance(Layer):
    """h_j = ‖x − u_j‖² + offset_j for the rows u_j of ``centers`` (S, D): (N, D) → (N, S). Not linear."""

    input_rank = 2

    def default_rule(self) -> "DistanceShares":
        """NEON's rule for this layer, what every composite gives it unless told otherwise."""
        return DistanceShares()

    def __init__(self, centers: Any, offset: Any | None = None):
        if centers.ndim != 2:
            raise ShapeError(f"SquaredDistance centers must be (S, D), got shape {tuple(centers.shape)}")
        xp = get_namespace(centers)
        offset = xp.zeros((centers.shape[0],), dtype=centers.dtype) if offset is None else offset
        if tuple(offset.shape) != (centers.shape[0],):
            raise ShapeError(f"SquaredDistance offset must be ({centers.shape[0]},), got {tuple(offset.shape)}")
        self.centers, self.offset = centers, offset

    def parameters(self) -> dict[str, Any]:
        return {"centers": self.centers, "offset": self.offset}

    def hyperparameters(self) -> dict[str, Any]:
        return {"count": int(self.centers.shape[0]), "features": int(self.centers.shape[1])}

    def describe(self) -> str:
        return f"SquaredDistance({self.centers.shape[1]}→{self.centers.shape[0]})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(self.centers.shape[0]),)

    def differences(self, x: Any) -> Any:
        """x_i − u_ji as (N, S, D)."""
        if x.ndim != 2 or x.shape[1] != self.centers.shape[1]:
            raise ShapeError(f"{self.describe()} expects (N, {self.centers.shape[1]}), got shape {tuple(x.shape)}")
        return x[:, None, :] - self.centers[None, :, :]

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        difference = self.differences(x)
        return xp.sum(difference * difference, axis=2) + self.offset

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        return xp.sum(2.0 * self.differences(x) * grad_output[:, :, None], axis=1)


class DistanceShares(Rule):
    """R_i = Σ_j (x_i − u_ji)² / ‖x − u_j‖² · R_j at a :class:`SquaredDistance` layer (Kauffmann et al. 2020):
    each centre's relevance split in proportion to the squared coordinate differences. Conservative
    (the offsets' share is redistributed with the rest); a point exactly on a centre passes nothing for it.
    """

    name = "DistanceShares"

    def __init__(self):
        super().__init__(stabilizer="vanilla", epsilon=0.0)

    def describe(self) -> str:
        return "DistanceShares"

    def branches(self, layer, a, weight, bias):  # pragma: no cover - relevance() is overridden
        raise TypeError("DistanceShares has no terms; it overrides relevance()")

    def relevance(self, layer: Layer, a: Any, relevance: Any, record: list[BranchRecord] | None = None,
                  output: Any | None = None, counts_only: bool = False) -> Any:
        if not isinstance(layer, SquaredDistance):
            raise TypeError(f"DistanceShares applies to SquaredDistance layers, not {layer.describe()}")
        xp = get_namespace(a)
        squares = layer.differences(a) ** 2                                   # (N, S, D)
        z = xp.sum(squares, axis=2)                                           # ‖x − u_j‖²
        s = safe_divide(relevance, z)
        result = xp.sum(squares * s[:, :, None], axis=1)
        if record is not None:
            from .backend import to_numpy

            carries = relevance != 0
            zero = to_numpy(xp.count_nonzero(xp.logical_and(z == 0, carries), axis=1))
            record.append(BranchRecord(z=None if counts_only else z, s=None if counts_only else s,
                                       c=None if counts_only else xp.sum(squares * s[:, :, None], axis=1),
                                       zero_denominators=zero, near_zero_denominators=zero,
                                       smallest_denominator=float(xp.min(z)) if not counts_only else float("nan")))
        return result


# --- neuralizing fitted scikit-learn models ---------------------------------------------------------
def _fitted(model: Any, attribute: str, kind: str) -> Any:
    if not hasattr(model, attribute):
        raise InputValueError(f"{kind} is not fitted (no {attribute}); call fit first")
    return getattr(model, attribute)


def _span(points: Any) -> tuple[float, float]:
    """The metadata's value range: the fitted model does not know its data's range, so the range its
    centres (or support vectors) span is recorded (a wider one where they are all equal)."""
    low, high = float(points.min()), float(points.max())
    return (low, high) if high > low else (low - 1.0, high + 1.0)


def kmeans_midpoints(centers: Any) -> Any:
    """The midpoints m_ck = (μ_c + μ_k)/2 in the row order of :func:`from_kmeans`'s Dense layer, (K(K−1), D)."""
    import numpy

    centers = numpy.asarray(centers, dtype=numpy.float64)
    k = centers.shape[0]
    return numpy.stack([(centers[c] + centers[other]) / 2 for c in range(k) for other in range(k) if other != c])


def from_kmeans(kmeans: Any, beta: float = math.inf, dtype: str = "float64") -> Sequential:
    """A fitted ``sklearn.cluster.KMeans`` (or anything with ``cluster_centers_``) as an lrpcore network.

    Output (N, K): f_c(x) = min^β_{k≠c} (‖x − μ_k‖² − ‖x − μ_c‖²) for every cluster c (module docstring);
    ``explain(model, x, composite=kmeans_composite(model))`` explains the predicted cluster.
    """
    import numpy

    centers = numpy.asarray(_fitted(kmeans, "cluster_centers_", "KMeans"), dtype=numpy.float64)
    k, d = centers.shape
    if k < 2:
        raise InputValueError(f"NEON needs at least two clusters, the model has {k}")
    rows, biases = [], []
    for c in range(k):
        for other in range(k):
            if other != c:
                rows.append(2.0 * (centers[c] - centers[other]))
                biases.append(centers[other] @ centers[other] - centers[c] @ centers[c])
    weight = numpy.asarray(rows, dtype=dtype)
    bias = numpy.asarray(biases, dtype=dtype)
    metadata = ModelMetadata(input_shape=(d,), value_range=_span(centers),
                             class_names=tuple(f"cluster {c}" for c in range(k)), name="kmeans_neon",
                             description=f"NEON k-means: {k} clusters, β = {beta:g} (lrpcore.neon.from_kmeans)")
    return Sequential([Dense(weight, bias), SoftMinPool(k - 1, beta)], metadata)


def kmeans_composite(kmeans: Any) -> Any:
    """The NEON composite for :func:`from_kmeans` (``kmeans``: the fitted model or its centres (K, D)):
    Midpoint rule with the midpoints m_ck on the discriminants, MinTakesMost on the pooling.

    The midpoints need the centres themselves: w_ck and b_ck fix the hinge but not where on it the
    midpoint lies."""
    import numpy

    from .composites import Composite

    centers = getattr(kmeans, "cluster_centers_", kmeans)
    centers = numpy.asarray(centers, dtype=numpy.float64)
    if centers.ndim != 2:
        raise ShapeError(f"kmeans_composite needs a fitted KMeans or centres (K, D), got shape {centers.shape}")
    return Composite(by_type={SoftMinPool: MinTakesMost(), Dense: Midpoint(kmeans_midpoints(centers))},
                     name="neon_kmeans")


def from_one_class_svm(svm: Any, dtype: str = "float64") -> Sequential:
    """A fitted ``sklearn.svm.OneClassSVM`` with RBF kernel as an lrpcore network with output (N, 1) = o(x).

    o(x) = −γ⁻¹ log Σ_j α_j exp(−γ‖x − u_j‖²); the model's decision_function is exp(−γ o(x)) − ρ.
    """
    import numpy

    if getattr(svm, "kernel", None) != "rbf":
        raise InputValueError(f"NEON's one-class model needs an RBF kernel, got kernel={getattr(svm, 'kernel', None)!r}")
    vectors = numpy.asarray(_fitted(svm, "support_vectors_", "OneClassSVM"), dtype=numpy.float64)
    alpha = numpy.asarray(svm.dual_coef_, dtype=numpy.float64).reshape(-1)
    gamma = float(getattr(svm, "_gamma", svm.gamma))
    if not (gamma > 0 and numpy.all(alpha > 0)):
        raise InputValueError(f"expected γ > 0 and positive dual coefficients, got γ={gamma}, min α={alpha.min()}")
    offset = -numpy.log(alpha) / gamma
    metadata = ModelMetadata(input_shape=(vectors.shape[1],), value_range=_span(vectors),
                             class_names=("outlierness",), name="ocsvm_neon",
                             description=(f"NEON one-class SVM: {len(alpha)} support vectors, γ = {gamma:g}, "
                                          f"ρ = {-float(svm.intercept_[0]):g} (lrpcore.neon.from_one_class_svm)"))
    return Sequential([SquaredDistance(numpy.asarray(vectors, dtype=dtype), numpy.asarray(offset, dtype=dtype)),
                       SoftMinPool(len(alpha), gamma)], metadata)


def one_class_svm_composite() -> Any:
    """DistanceShares on the distance layer, MinTakesMost on the pooling (the NEON one-class composite)."""
    from .composites import Composite

    return Composite(by_type={SquaredDistance: DistanceShares(), SoftMinPool: MinTakesMost()}, name="neon_ocsvm")


def _register() -> None:
    from .io.registry import register_layer

    for layer_class in (SoftMinPool, SquaredDistance):
        register_layer(layer_class)


_register()
