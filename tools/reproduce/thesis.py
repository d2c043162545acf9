"""Thesis "In-Depth Hyperparameter Selection for LRP": γ × ε sweeps of two composites scored by pixel flipping.

    python tools/reproduce/thesis.py                      # 16 shapes images, the thesis' 16-value axes
    python tools/reproduce/thesis.py --images 8 --values small
    python tools/reproduce/thesis.py --out thesis.md      # also write the Markdown (never replaces a file)

The thesis sweeps the hyperparameters of two composites on VGG-16 over {0} ∪ logspace(−4, 0, 15):
the LRP-Tutorial composite (γ of the lower convolutions × ε of the upper ones; Table 2.4) and the
Decreasing-γ composite (the two middle γ groups; Table 2.3), and scores every configuration by the
area under the pixel-flipping curve for three patch orders: most relevant first (MoRF, lower is
better), least relevant first (LRF, higher is better) and random (the reference). The thesis code's
protocol is used: relevance reduced to one channel by luminance weights, 8×8 patches, 1, 3, 5, ...
patches per step, the accumulated mask re-inpainted (OpenCV Telea) every step, a final gray step.

Printed: for each composite and sort the mean AUC over the images on the grid; the MoRF and LRF
optima; the spread of the random-sort contour (the thesis' sanity check: it is flat, because a random
order ignores the heatmap); and the comparison of the two composites at their optima.

This machine: ``models/shapes_cnn.h5`` (4 convolutions, 64×64 shapes) instead of VGG-16 on ImageNet,
so the composites' layer groups are cut from 3 convolutions after the first (see
``lrpcore.composites._feature_groups``). The Decreasing-γ indices follow
``lrpcore.composites.decreasing_gamma`` as it is when this runs (issue 14 item 1 moves them to
Table 2.3's; rerun after that change).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from lrpcore.sweep import grid  # noqa: E402
from lrpcore.sweep.presets import THESIS_VALUES, decreasing_gamma, tutorial  # noqa: E402

SMALL_VALUES = (0.0, 1e-2, 0.1, 1.0)
#: The thesis code's pixel-flipping protocol (see /work/shared/README.md and lrpcore.evaluate).
PROTOCOL = dict(sorts=("morf", "lrf", "random"), mode="inpaint", patch_size=8, schedule="quadratic",
                channel_reduce="luminance", final_gray=True, reperturb=True, score="logit")


def run(images: int = 16, values: Sequence[float] = THESIS_VALUES, seed: int = _common.EVALUATION_SEED,
        evaluation: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Sweep both composites; returns per composite the grid axes, mean AUCs per sort, optima and spreads."""
    model = _common.load("shapes")
    data, inputs = _common.shapes_data(model, images, seed=seed, correct_only=False)
    settings = dict(PROTOCOL, **(evaluation or {}))
    results: dict[str, Any] = {"images": len(inputs), "values": tuple(float(v) for v in values), "composites": {}}
    for preset in (tutorial(values), decreasing_gamma(values)):
        start = time.perf_counter()
        sweep = grid(model, inputs, data.y, composite=preset, evaluation=settings, progress=progress)
        means = {sort: sweep.mean_auc(sort) for sort in settings["sorts"]}
        entry = {"params": list(preset.params), "means": means, "best_morf": sweep.best("morf"),
                 "best_lrf": sweep.best("lrf"), "seconds": time.perf_counter() - start, "sweep": sweep}
        if "random" in means:
            entry["random_spread"] = float(np.nanmax(means["random"]) - np.nanmin(means["random"]))
            entry["random_mean"] = float(np.nanmean(means["random"]))
        default = preset.default
        axes = [preset.params[name] for name in preset.params]
        position = tuple(int(np.argmin(np.abs(np.asarray(axis) - default[name])))
                         for axis, name in zip(axes, preset.params))
        entry["default"] = {name: axes[i][position[i]] for i, name in enumerate(preset.params)}
        entry["literature"] = dict(default)
        entry["default_auc"] = {sort: float(means[sort][position]) for sort in means}
        results["composites"][preset.name] = entry
    return results


def report(results: dict[str, Any]) -> str:
    values = results["values"]
    labels = [f"{value:.2g}" for value in values]
    lines = [f"## Thesis sweeps on models/shapes_cnn.h5 ({results['images']} images, luminance, 8×8 patches, "
             "Telea re-inpainting, quadratic schedule, final gray)", ""]
    for name, entry in results["composites"].items():
        rows_name, columns_name = entry["params"]
        lines.append(f"### {name}: mean AUC (rows {rows_name}, columns {columns_name})")
        for sort, better in (("morf", "lower is better"), ("lrf", "higher is better"), ("random", "reference")):
            if sort not in entry["means"]:
                continue
            grid_means = entry["means"][sort]
            lines += ["", f"{sort.upper()} ({better})", ""]
            lines.append(_common.markdown_table([f"{rows_name} \\ {columns_name}"] + labels,
                                                [[labels[i]] + [float(v) for v in grid_means[i]]
                                                 for i in range(len(values))]))
        best_morf, best_lrf = entry["best_morf"], entry["best_lrf"]
        lines += ["", f"- MoRF optimum: {_config(best_morf, entry['params'])}, AUC {best_morf['auc']:.3f}",
                  f"- LRF optimum: {_config(best_lrf, entry['params'])}, AUC {best_lrf['auc']:.3f}",
                  f"- grid point nearest the literature default {entry['literature']}: {entry['default']}: "
                  f"MoRF {entry['default_auc']['morf']:.3f}, LRF {entry['default_auc']['lrf']:.3f}"]
        if "random_spread" in entry:
            lines.append(f"- random-sort contour: mean {entry['random_mean']:.3f}, spread (max − min) "
                         f"{entry['random_spread']:.2e} (flat)")
        lines += [f"- {entry['seconds']:.0f} s", ""]
    names = list(results["composites"])
    if len(names) == 2:
        first, second = (results["composites"][name] for name in names)
        lines += ["### Comparison at the optima", "",
                  _common.markdown_table(["composite", "best MoRF AUC", "best LRF AUC", "LRF − MoRF"],
                                         [[name, entry["best_morf"]["auc"], entry["best_lrf"]["auc"],
                                           entry["best_lrf"]["auc"] - entry["best_morf"]["auc"]]
                                          for name, entry in results["composites"].items()]), ""]
    return "\n".join(lines)


def _config(best: dict[str, Any], params: Sequence[str]) -> str:
    return ", ".join(f"{name} = {best[name]:.3g}" for name in params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="shapes images (default 16)")
    parser.add_argument("--values", choices=("thesis", "small"), default="thesis",
                        help="axis values: the thesis' 16 (default) or 4 (0, 0.01, 0.1, 1)")
    parser.add_argument("--mode", choices=("inpaint", "constant", "random"), default="inpaint",
                        help="perturbation (default inpaint, as the thesis code)")
    parser.add_argument("--out", help="also write the Markdown here (refuses to replace a file)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    values = THESIS_VALUES if args.values == "thesis" else SMALL_VALUES
    results = run(args.images, values, evaluation={"mode": args.mode}, progress=True)
    text = report(results)
    print(text)
    if args.out:
        _common.write_new(args.out, text, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
