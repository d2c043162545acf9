"""Benchmark of ``lrpcore.evaluate.pixel_flipping``: where the time goes, and against Quantus.

For the shapes model (``models/shapes_cnn.h5``; the same architecture with random weights when
the file is absent) and VGG-16 (``lrpcore.models.vgg16``, torchvision-style random weights),
on a handful of images with the thesis setting (quadratic schedule, 8×8 patches, Telea
inpainting, final gray step), it measures in one run:

1. lrpcore pixel flipping with inpainting on the lrpcore model: total time split into model
   forward passes, OpenCV inpainting and lrpcore's own overhead (target: overhead ≤ 10 %);
2. the same with a constant baseline, on the lrpcore model and on its torch twin
   (``lrpcore.io.torch.to_torch``) called as a plain function;
3. Quantus 0.6 ``RegionPerturbation`` on the torch twin with a constant baseline and
   ``regions_evaluation = steps − 1``, i.e. the same number of model evaluations per image
   (1 unperturbed + steps − 1 perturbed) and the same batch size (all images per call).

The ratio Quantus / lrpcore of (3) to (2, torch twin) compares the perturbation machinery on
equal footing (same model, same evaluations, same batches). Quantus flips one patch per step,
lrpcore follows the quadratic schedule: the pixel work differs, the model work does not. When
the model dominates (VGG-16) the total ratio is ≈ 1 and mostly shows run-to-run noise of the
forward passes, so the *non-model* time (total minus the time inside the torch model's forward,
measured by wrapping it) is reported for both as well.

Usage::

    python tools/bench_pf.py                      # both models, prints a Markdown table
    python tools/bench_pf.py --models shapes --images 16 --repeats 3

Quantus is optional (``pip install --no-deps quantus==0.6.0 pandas scikit-image cachetools imageio
tifffile lazy-loader``); NumPy ≥ 2.4 lacks ``np.trapz``, which is aliased to ``np.trapezoid``
here, and zennit (imported by quantus) gets the tests' torchvision stand-in when needed.
"""
from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time
from typing import Any, Callable

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lrpcore  # noqa: E402
from lrpcore.data import shapes  # noqa: E402
from lrpcore.evaluate import pixel_flipping  # noqa: E402


def _import_quantus() -> Any:
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # Quantus 0.6 calls the name NumPy 2.4 removed
    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    try:
        import _torchvision_stand_in

        _torchvision_stand_in.install()
        import quantus
    except ImportError as error:
        print(f"quantus not available ({error}); its column is left empty", file=sys.stderr)
        return None
    return quantus


def _shapes_model() -> lrpcore.Sequential:
    shipped = ROOT / "models" / "shapes_cnn.h5"
    if shipped.exists():
        return lrpcore.load(str(shipped))
    sys.path.insert(0, str(ROOT / "tests"))
    from test_quantus_crosscheck import _shapes_architecture

    print("models/shapes_cnn.h5 not found: using the same architecture with random weights", file=sys.stderr)
    return _shapes_architecture()


def _best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(seconds, result) of the fastest of ``repeats`` runs (the least disturbed by other load)."""
    best_seconds, best_result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
        if seconds < best_seconds:
            best_seconds, best_result = seconds, result
    return best_seconds, best_result


def bench(name: str, model: lrpcore.Sequential, count: int, repeats: int, quantus: Any, composite: str) -> dict:
    import torch

    from lrpcore.io.torch import to_torch

    size = model.metadata.input_shape[-1]
    data = shapes(count, size=size, seed=0)
    x = model.metadata.preprocess(data.x).astype(np.float32)
    start = time.perf_counter()
    relevance = np.asarray(lrpcore.explain(model, x, composite=composite).relevance)
    explain_seconds = time.perf_counter() - start
    twin = to_torch(model, copy=False)

    def torch_model(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return twin(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    torch_model.metadata = model.metadata
    common = dict(patch_size=8, schedule="quadratic", batch_size=count, final_gray=True)
    constant = model.metadata.mean or 0.0      # raw value whose model input is 0, Quantus' baseline below
    inpaint_seconds, inpaint_curve = _best(lambda: pixel_flipping(model, x, relevance, mode="inpaint", **common),
                                           repeats)
    constant_seconds, constant_curve = _best(
        lambda: pixel_flipping(model, x, relevance, mode="constant", constant=constant, **common), repeats)
    twin_seconds, twin_curve = _best(
        lambda: pixel_flipping(torch_model, x, relevance, mode="constant", constant=constant, **common), repeats)
    steps = twin_curve.n_steps
    row = {
        "model": name, "images": count, "size": size, "steps": steps, "evaluations": count * steps,
        "explain_s": explain_seconds,
        "inpaint_total_s": inpaint_seconds, "inpaint_model_s": inpaint_curve.timings["model"],
        "inpaint_opencv_s": inpaint_curve.timings["inpaint"], "inpaint_overhead_s": inpaint_curve.overhead_seconds,
        "constant_total_s": constant_seconds, "constant_overhead_s": constant_curve.overhead_seconds,
        "twin_total_s": twin_seconds, "twin_model_s": twin_curve.timings["model"],
        "twin_overhead_s": twin_curve.overhead_seconds, "model_calls": twin_curve.model_calls,
    }
    row["inpaint_overhead_share"] = row["inpaint_overhead_s"] / inpaint_curve.timings["total"]
    if quantus is not None:
        metric = quantus.RegionPerturbation(patch_size=8, order="morf", regions_evaluation=steps - 1,
                                            perturb_baseline=0.0, abs=False, normalise=False, disable_warnings=True)
        calls: list[float] = []
        original_forward = twin.forward

        def counted(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return original_forward(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - begin)

        twin.forward = counted
        labels = twin_curve.targets
        quantus_seconds, _ = _best(lambda: metric(model=twin, x_batch=x, y_batch=labels, a_batch=relevance,
                                                  channel_first=True, softmax=False, device="cpu",
                                                  batch_size=count), repeats)
        twin.forward = original_forward
        per_run = len(calls) // repeats
        row["quantus_s"] = quantus_seconds
        row["quantus_calls"] = per_run
        # model time of the fastest run is not known separately: use the fastest run's share estimate
        row["quantus_model_s"] = min(sum(calls[start:start + per_run]) for start in range(0, len(calls), per_run))
        row["quantus_other_s"] = max(quantus_seconds - row["quantus_model_s"], 0.0)
        row["quantus_over_lrpcore"] = quantus_seconds / twin_seconds
        row["quantus_other_over_lrpcore_overhead"] = row["quantus_other_s"] / max(row["twin_overhead_s"], 1e-9)
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | images × steps | lrpcore inpaint: total / model / OpenCV / overhead (share) | "
        "lrpcore constant, lrpcore model | lrpcore constant, torch twin: total / non-model (calls) | "
        "Quantus RegionPerturbation, torch twin: total / non-model (calls) | Quantus / lrpcore: total, non-model |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "quantus_s" in row:
            quantus = (f"{row['quantus_s']:.2f} / {row['quantus_other_s']:.3f} s ({row['quantus_calls']})",
                       f"{row['quantus_over_lrpcore']:.2f}, {row['quantus_other_over_lrpcore_overhead']:.1f}")
        else:
            quantus = ("n/a", "n/a")
        lines.append(
            f"| {row['model']} ({row['size']}×{row['size']}) | {row['images']} × {row['steps']} | "
            f"{row['inpaint_total_s']:.2f} / {row['inpaint_model_s']:.2f} / {row['inpaint_opencv_s']:.2f} / "
            f"{row['inpaint_overhead_s']:.3f} s ({100 * row['inpaint_overhead_share']:.1f} %) | "
            f"{row['constant_total_s']:.2f} s | {row['twin_total_s']:.2f} / {row['twin_overhead_s']:.3f} s "
            f"({row['model_calls']}) | {quantus[0]} | {quantus[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["shapes", "vgg16"], choices=("shapes", "vgg16"))
    parser.add_argument("--images", type=int, default=None, help="images per model (default 16 shapes, 4 VGG)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, fastest kept (default 3 shapes, 1 VGG)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the CI machine)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit NumPy's BLAS threads (threadpoolctl); on a machine shared with other jobs "
                             "multi-threaded OpenBLAS slows down erratically, 1 thread is far more stable")
    parser.add_argument("--composite", default="epsilon_gamma_box", help="composite of the heatmaps")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")
    quantus = _import_quantus()
    rows = []
    for name in args.models:
        if name == "shapes":
            model, count, repeats = _shapes_model(), args.images or 16, args.repeats or 3
        else:
            from lrpcore.models import vgg16

            model, count, repeats = vgg16(seed=0), args.images or 4, args.repeats or 1
        rows.append(bench(name, model, count, repeats, quantus, args.composite))
        print(rows[-1], file=sys.stderr)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, torch "
          f"{torch.__version__}, {args.threads} torch threads, BLAS threads {args.blas_threads or 'default'}, opencv "
          f"{__import__('cv2').__version__}, quantus {getattr(quantus, '__version__', 'n/a')}")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
