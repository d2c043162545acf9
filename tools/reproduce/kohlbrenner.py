"""Kohlbrenner et al. 2020 ("Towards best practice in explaining neural network decisions with LRP"), Table 1,
Fig. 3 and the object-versus-context check of Fig. 2, on shapes images with bounding boxes.

    python tools/reproduce/kohlbrenner.py                    # 400 images drawn, the correctly classified kept
    python tools/reproduce/kohlbrenner.py --images 100 --flat-layers 1 2
    python tools/reproduce/kohlbrenner.py --plot fig3.png    # μ against box size (never replaces a file)

For each method — the four CMP variants (α1, α2, each with and without LRP_♭ on the first n layers),
uniform αβ (α1β0, α2β1), LRP_z, LRP_CAM, guided backprop and the uniform attribution — the
heatmaps of the true class are scored by the share of positive relevance inside the object's box:
μ_w (size-corrected), μ_{≤0.25} and μ_{≤0.5} (boxes covering at most a quarter / half of the image)
and μ (all boxes), as in the paper's Table 1; and μ per relative box size (the paper's Fig. 3,
100 equal intervals, printed here in 0.05-wide groups). The Fig. 2 check fills the box, or
everything outside it, with the training mean and reports the target probability.

This machine: ``models/shapes_cnn.h5`` (a 4-convolution VGG-style CNN, 64×64 synthetic images,
one object per image) instead of VGG-16 on Pascal VOC 2007 (several objects, boxes up to the whole
image). Objects are drawn with radii 0.05–0.3 of the image (``scale_range``), so boxes cover about
1–35 % of the image: μ_{≤0.5} equals μ here and the box-size curve ends near 0.35.
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

from lrpcore.baselines import attribute  # noqa: E402
from lrpcore.evaluate import localization  # noqa: E402

SCALE_RANGE = (0.05, 0.3)


def methods_for(model: Any, flat_layers: Sequence[int]) -> dict[str, Any]:
    """The table's rows: the CMP variants for every n in ``flat_layers``, then the other methods once."""
    methods: dict[str, Any] = {}
    for n in flat_layers:
        for name, method in localization.comparison_methods(model, flat_layers=n).items():
            methods.setdefault(name, method)
    order = [name for name in methods if name.startswith("CMP")]
    return {name: methods[name] for name in order + [name for name in methods if name not in order]}


def run(images: int = 400, flat_layers: Sequence[int] = (1,), seed: int = _common.EVALUATION_SEED,
        batch: int = 64) -> dict[str, Any]:
    model = _common.load("shapes")
    data, inputs = _common.shapes_data(model, images, seed=seed, scale_range=SCALE_RANGE)
    rows: dict[str, Any] = {}
    for name, method in methods_for(model, flat_layers).items():
        start = time.perf_counter()
        relevance = np.concatenate([np.asarray(attribute(model, inputs[i:i + batch], data.y[i:i + batch],
                                                         method).relevance, dtype=np.float64)
                                    for i in range(0, len(inputs), batch)])
        scores = localization.localization_scores(relevance, data.boxes)
        scores["seconds"] = time.perf_counter() - start
        rows[name] = scores
    occlusion = localization.object_context_occlusion(model, data.x, data.boxes, target=data.y)
    return {"drawn": images, "images": len(inputs), "rows": rows, "occlusion": occlusion,
            "sizes": localization.box_sizes(data.boxes, inputs.shape[-2:])}


def ranking(results: dict[str, Any], column: str = "mu") -> list[str]:
    """Method names from best to worst by ``column`` (higher is better)."""
    rows = results["rows"]
    return sorted(rows, key=lambda name: -rows[name][column])


def report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    sizes = results["sizes"]
    lines = [f"## Kohlbrenner et al. 2020 on models/shapes_cnn.h5 ({results['images']} correctly classified of "
             f"{results['drawn']} drawn; boxes cover {sizes.min():.1%}–{sizes.max():.1%} of the image)", "",
             "### Table 1: share of positive relevance in the box (higher is better)", "",
             _common.markdown_table(
                 ["method", "μ_w", f"μ≤0.25 (n={rows[next(iter(rows))]['n_le_0.25']})",
                  f"μ≤0.5 (n={rows[next(iter(rows))]['n_le_0.5']})", "μ", "rank by μ", "s"],
                 [[name, row["mu_w"], row["mu_le_0.25"], row["mu_le_0.5"], row["mu"],
                   ranking(results).index(name) + 1, f"{row['seconds']:.1f}"] for name, row in rows.items()]),
             "", "### Fig. 3: μ against the relative box size (mean per 0.05-wide group of the 100 intervals)", ""]
    groups = np.arange(0.0, max(0.05, float(np.ceil(sizes.max() / 0.05) * 0.05)) + 1e-9, 0.05)
    header = ["method"] + [f"{low:.2f}–{low + 0.05:.2f}" for low in groups[:-1]]
    table = []
    for name, row in rows.items():
        cells = [name]
        for low in groups[:-1]:
            inside = (row["sizes"] > low) & (row["sizes"] <= low + 0.05)
            cells.append(float(row["per_image_mu"][inside].mean()) if inside.any() else float("nan"))
        table.append(cells)
    counts = ["images"] + [int(((sizes > low) & (sizes <= low + 0.05)).sum()) for low in groups[:-1]]
    lines += [_common.markdown_table(header, table + [counts]), ""]
    summary = results["occlusion"].summary()
    lines += ["### Fig. 2: object versus context (target probability; box or outside filled with the training mean)",
              "", _common.markdown_table(["original", "object removed", "context removed",
                                          "share where removing the object hurts more"],
                                         [[summary["original"], summary["object_removed"],
                                           summary["context_removed"], summary["object_matters_more"]]]), ""]
    return "\n".join(lines)


def plot(results: dict[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, len(results["rows"])))
    for colour, (name, row) in zip(colours, results["rows"].items()):
        centres, means = row["by_size"].filled()
        axis.plot(centres, means, marker=".", label=name, color=colour,
                  linestyle="--" if name in ("uniform", "guided backprop", "LRP_z", "LRP_CAM") else "-")
    axis.set_xlabel("relative bounding-box size (100 intervals of [0, 1])")
    axis.set_ylabel("μ (share of positive relevance in the box)")
    axis.set_xlim(0, min(1.0, float(results["sizes"].max()) + 0.02))
    axis.legend(fontsize=8)
    axis.set_title("Kohlbrenner et al. 2020, Fig. 3 on shapes_cnn")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images drawn (default 400)")
    parser.add_argument("--flat-layers", type=int, nargs="+", default=[1],
                        help="n of the CMP + ♭ variants (LRP_♭ on the first n weighted layers; default 1)")
    parser.add_argument("--out", help="also write the Markdown here (refuses to replace a file)")
    parser.add_argument("--plot", help="write Fig. 3 (μ against box size) as PNG here")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.images, args.flat_layers)
    text = report(results)
    print(text)
    if args.out:
        _common.write_new(args.out, text, overwrite=args.overwrite)
    if args.plot:
        _common.write_new(args.plot, figure=plot(results), overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
