"""``PerturbationCurve``: the result of pixel flipping, with its areas (AUC, AOPC, thesis AUC).

Step 0 is the unperturbed input; step k ≥ 1 has ``counts[k]`` patches perturbed; with
``final_gray`` the last step is the all-gray image. ``fractions[k] = counts[k] / P`` is the
x-axis (the gray step counts as all P patches, fraction 1).

Which direction is better (Samek et al. 2017; Kohlbrenner et al. 2020):

- ``sort="morf"`` (most relevant first): a faithful heatmap removes the evidence first, so
  the score drops fast: **lower AUC is better**, higher AOPC is better.
- ``sort="lrf"`` (least relevant first): a faithful heatmap removes the irrelevant parts first,
  so the score stays high: **higher AUC is better**, lower AOPC is better.
- ``sort="random"``: the reference both are compared with (no direction).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import InputValueError

__all__ = ["PerturbationCurve", "trapezoid_area", "area_between_curves"]


def trapezoid_area(values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
    """Trapezoid rule along the last axis: Σ_k (x_{k+1} − x_k)(y_k + y_{k+1}) / 2 (unit spacing without ``positions``)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] < 2:
        return np.zeros(values.shape[:-1])
    widths = np.ones(values.shape[-1] - 1) if positions is None else np.diff(np.asarray(positions, dtype=np.float64))
    return ((values[..., 1:] + values[..., :-1]) * widths).sum(axis=-1) / 2


@dataclasses.dataclass
class PerturbationCurve:
    """Scores of N images along S perturbation steps, with what produced them.

    ``scores`` (N, S): the target score (logit or probability) at each step; ``counts`` (S,):
    patches perturbed (0 at step 0); ``patch_count``: P; ``masks`` (N, S, H, W) bool: the pixels
    perturbed at each step; ``images``: (N, S, input shape...) model inputs when ``keep_images``;
    ``targets`` (N,); ``order`` (N, P): patch indices in flipping order; ``patch_scores`` (N, P):
    summed relevance per patch; ``gray_step``: whether the last step is the all-gray image;
    ``model_calls``: forward calls made; ``timings``: seconds in the model, in OpenCV's
    inpainting, and in total.
    """

    scores: np.ndarray
    counts: np.ndarray
    patch_count: int
    masks: np.ndarray
    targets: np.ndarray
    order: np.ndarray
    patch_scores: np.ndarray
    sort: str
    mode: str
    patch_size: tuple[int, int]
    schedule: str
    score: str = "logit"
    gray_step: bool = True
    reperturb: bool = True
    images: np.ndarray | None = None
    model_calls: int = 0
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    # --- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        """One line: images, steps, sort and mode, and the mean AUCs (the arrays are left out)."""
        summary = self.summary()
        normalised = summary["auc_normalised"]
        better = f", {self.better} is better" if self.better else ""
        return (f"PerturbationCurve({self.n_images} images × {self.n_steps} steps, sort {self.sort}, mode "
                f"{self.mode}, {self.patch_count} patches of {self.patch_size[0]}×{self.patch_size[1]}, "
                f"schedule {self.schedule}, score {self.score}; mean AUC {summary['auc']:.4g}"
                + (f", normalised {normalised:.4g}" if normalised is not None else "")
                + f"{better}; AOPC {summary['aopc']:.4g})")

    def _repr_html_(self) -> str:
        """Notebook view: the summary table and the mean curve as a small inline picture."""
        import base64
        import html
        import io

        summary = self.summary()
        rows = "".join(f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(_format(value))}</td></tr>"
                       for key, value in summary.items() if not key.startswith("seconds_"))
        from ..plot.perturbation import perturbation_curve

        figure = perturbation_curve({f"{self.sort} / {self.mode}": self},
                                    normalised=bool(self.valid.any()), figsize=(4.0, 2.8))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
        picture = base64.b64encode(buffer.getvalue()).decode("ascii")
        return (f"<div><b>PerturbationCurve</b> ({html.escape(self.sort)}, {html.escape(self.mode)})"
                f'<div style="display:flex;gap:12px;align-items:flex-start"><table>{rows}</table>'
                f'<img src="data:image/png;base64,{picture}" alt="mean perturbation curve"></div></div>')

    # --- shape ---------------------------------------------------------------------------------
    @property
    def n_images(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_steps(self) -> int:
        """S, including step 0 and the gray step."""
        return int(self.scores.shape[1])

    @property
    def fractions(self) -> np.ndarray:
        """(S,) fraction of patches perturbed at each step, the curve's x-axis."""
        return self.counts / float(self.patch_count)

    @property
    def better(self) -> str | None:
        """Which AUC is better for this sort: ``"lower"`` (MoRF), ``"higher"`` (LRF) or None (random)."""
        return {"morf": "lower", "lrf": "higher"}.get(self.sort)

    @property
    def overhead_seconds(self) -> float:
        """Seconds spent neither in the model nor in OpenCV: lrpcore's own work."""
        return self.timings.get("total", 0.0) - self.timings.get("model", 0.0) - self.timings.get("inpaint", 0.0)

    # --- normalisation ---------------------------------------------------------------------------
    @property
    def valid(self) -> np.ndarray:
        """(N,) True where the unperturbed score is positive, so the normalised curve is defined."""
        return self.scores[:, 0] > 0

    @property
    def normalised_scores(self) -> np.ndarray:
        """(N, S) scores divided by the unperturbed score, s_k / s_0 (1 at step 0).

        Defined only for s_0 > 0 (a logit can be negative): raises :class:`InputValueError`
        naming the images otherwise; use ``score="probability"`` or select ``curve.valid``.
        """
        if not np.all(self.valid):
            bad = np.flatnonzero(~self.valid)
            raise InputValueError(f"normalised scores need a positive unperturbed score; image(s) "
                                  f"{bad[:10].tolist()} have s_0 = {self.scores[bad[:10], 0].tolist()} ≤ 0 "
                                  "(use score='probability', or curve.subset(curve.valid))")
        return self.scores / self.scores[:, :1]

    def subset(self, selection: Any) -> "PerturbationCurve":
        """The curve of some images only (an index array, slice or boolean mask)."""
        def pick(array):
            return None if array is None else array[selection]
        return dataclasses.replace(self, scores=self.scores[selection], masks=self.masks[selection],
                                   targets=self.targets[selection], order=self.order[selection],
                                   patch_scores=self.patch_scores[selection], images=pick(self.images))

    # --- areas -------------------------------------------------------------------------------------
    def auc(self, normalised: bool = False) -> np.ndarray:
        """(N,) area under each image's curve over the fraction perturbed (trapezoid rule).

        Raw: ∫ s(f) df in score units. Normalised: ∫ s(f)/s_0 df, in [0, 1] while the
        score stays between 0 and s_0 (1 = the score never dropped, 0 = it vanished at once).
        Includes the gray step (at f = 1; zero width when the schedule already ends at 1).
        """
        values = self.normalised_scores if normalised else self.scores
        return trapezoid_area(values, self.fractions)

    def aopc(self, normalised: bool = False) -> np.ndarray:
        """(N,) area over the perturbation curve, Samek et al. 2017, eq. 12 (per image, before ⟨·⟩):

        AOPC = 1/(L+1) Σ_{k=0}^{L} (s_0 − s_k) over the L schedule steps (the gray step is not
        a perturbation step and is left out). Higher is better for MoRF.
        """
        values = self.normalised_scores if normalised else self.scores
        steps = values[:, :-1] if self.gray_step else values
        return (values[:, :1] - steps).mean(axis=1)

    def thesis_auc(self) -> float:
        """The thesis code's AUC: trapezoid rule over the *step index* (unit spacing) of the
        batch-mean raw score, over all stored steps (step 0, the schedule, the gray step).

        Not normalised and not comparable across schedules or patch counts; offered to
        reproduce the thesis' numbers. (The thesis code inpainted the full mask too, which
        OpenCV returns unchanged; lrpcore fills it with gray, see :mod:`lrpcore.evaluate.inpaint`.)
        """
        return float(trapezoid_area(self.scores.mean(axis=0)))

    def mean_scores(self, normalised: bool = False) -> np.ndarray:
        """(S,) batch-mean curve."""
        return (self.normalised_scores if normalised else self.scores).mean(axis=0)

    def summary(self) -> dict[str, Any]:
        """Means over the images: AUC (raw, normalised where defined), AOPC, thesis AUC, counts, timings."""
        valid = self.valid
        result = {
            "images": self.n_images, "steps": self.n_steps, "patches": int(self.patch_count),
            "sort": self.sort, "mode": self.mode, "schedule": self.schedule, "score": self.score,
            "better": self.better,
            "auc": float(self.auc().mean()),
            "auc_normalised": float(self.subset(valid).auc(normalised=True).mean()) if valid.any() else None,
            "normalised_images": int(valid.sum()),
            "aopc": float(self.aopc().mean()),
            "thesis_auc": self.thesis_auc(),
            "model_calls": int(self.model_calls),
        }
        result.update({f"seconds_{name}": float(value) for name, value in self.timings.items()})
        return result


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def area_between_curves(lrf: PerturbationCurve, morf: PerturbationCurve, normalised: bool = False) -> np.ndarray:
    """(N,) AUC(LRF) − AUC(MoRF) per image (ABPC, Schulz et al. 2020): large when the heatmap
    separates relevant from irrelevant regions. Both curves must share the steps."""
    if lrf.sort != "lrf" or morf.sort != "morf":
        raise ValueError(f"area_between_curves needs an 'lrf' and a 'morf' curve, got {lrf.sort!r} and {morf.sort!r}")
    if lrf.scores.shape != morf.scores.shape or not np.array_equal(lrf.counts, morf.counts):
        raise ValueError(f"the curves must have the same images and steps, got {lrf.scores.shape} "
                         f"and {morf.scores.shape}")
    return lrf.auc(normalised) - morf.auc(normalised)
