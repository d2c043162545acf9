"""``lrpcore explain``: a heatmap PNG, the prediction and the per-layer conservation table.

With no arguments the command explains the shipped shapes model (``models/shapes_cnn.h5``)
on one freshly generated image, so a newcomer sees a first heatmap in one step::

    lrpcore explain                                   # → lrpcore_heatmap.png
    lrpcore explain models/digits_cnn.h5              # a digits test image
    lrpcore explain shapes_cnn photo.png --target circle --out circle.png
    lrpcore explain my_model.h5 batch.npy --grid --out batch.png
    lrpcore explain shapes_cnn_cleverhans --watermark --samples 6 --grid --out hans.png

Where the shipped models are found (first match wins): the folder named by the
environment variable ``LRPCORE_MODELS``; the ``models/`` folder next to the ``lrpcore``
package (a source checkout); ``<sys.prefix>/share/lrpcore/models`` (an installed data
folder). A MODEL argument that is not an existing file but the name of a shipped model
(``shapes_cnn``, ``digits_mlp``, ...) is looked up there too.

INPUT holds *raw* values in the model's value range (``model.metadata.value_range``, e.g.
[0, 1]); the model's preprocessing (``model.metadata.preprocess``: per-channel mean/std)
is applied before the network sees them (``--preprocessed`` skips it). Images are never
resized: their size must match the model's input.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy

from ..errors import InputValueError, ShapeError

#: Environment variable naming a folder with the shipped models.
MODELS_ENVIRONMENT_VARIABLE = "LRPCORE_MODELS"
#: The shipped model used when no MODEL is given.
DEFAULT_MODEL = "shapes_cnn"
#: The heatmap file written when no --out is given (in the current folder).
DEFAULT_OUTPUT = "lrpcore_heatmap.png"
#: The composite used when no --composite is given (see the --composite help).
DEFAULT_COMPOSITE = "epsilon_gamma_box"
#: File name endings read as pictures (through Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Samples explained at once.
BATCH_SIZE = 16


def models_folders() -> list[Path]:
    """The folders searched for shipped models, in order (existing or not)."""
    folders = []
    if os.environ.get(MODELS_ENVIRONMENT_VARIABLE):
        folders.append(Path(os.environ[MODELS_ENVIRONMENT_VARIABLE]))
    folders.append(Path(__file__).resolve().parents[2] / "models")
    folders.append(Path(sys.prefix) / "share" / "lrpcore" / "models")
    return folders


def find_shipped_model(name: str) -> Path:
    """The path of shipped model ``name`` (with or without ``.h5``); ``FileNotFoundError`` naming the folders."""
    file_name = name if name.endswith(".h5") else f"{name}.h5"
    for folder in models_folders():
        candidate = folder / file_name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(folder) for folder in models_folders())
    raise FileNotFoundError(f"shipped model {file_name} not found in {searched}; set {MODELS_ENVIRONMENT_VARIABLE} "
                            "to the folder holding the lrpcore models, or give the model file's path")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS
    from ..stabilizers import STABILIZERS

    parser = subparsers.add_parser(
        "explain",
        help="explain a prediction: write a heatmap PNG and print the conservation table",
        description="Explain a model's prediction with LRP: write a heatmap PNG, print the predicted\n"
                    "class and the per-layer relevance conservation table. With no arguments it explains\n"
                    f"the shipped {DEFAULT_MODEL} model on a generated image and writes {DEFAULT_OUTPUT}.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help=f"lrpcore model file (.h5), or the name of a shipped model (default: {DEFAULT_MODEL}). "
                             "If the only argument is an input file (.npy, an image or FILE.h5:DATASET) it is "
                             "taken as INPUT for the default model")
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="input: a .npy array (one sample (C, H, W) or a batch (N, C, H, W); sequences (C, L)), an image "
                             "(.png/.jpg, size must match the model), or an HDF5 dataset FILE.h5:DATASET/PATH. "
                             "Default: a generated image (shapes models: lrpcore.data.shapes; digits models: "
                             "a test-split digit)")
    parser.add_argument("--composite", default=DEFAULT_COMPOSITE, choices=sorted(PRESETS), metavar="NAME",
                        help=f"LRP rule preset (default {DEFAULT_COMPOSITE}: z^B on the first convolution, γ=0.25 "
                             "on the other convolutions, ε on dense layers; it suits conv nets and works for "
                             f"MLPs). One of: {', '.join(sorted(PRESETS))}")
    parser.add_argument("--stabilizer", choices=sorted(STABILIZERS), metavar="NAME",
                        help="override every rule's denominator stabilizer (each rule keeps its ε). One of: "
                             f"{', '.join(sorted(STABILIZERS))}")
    parser.add_argument("--target", default="pred", metavar="T",
                        help="class to explain: 'pred' (the predicted class, default), a class index, or a "
                             "class name such as 'circle'")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help=f"PNG to write (default {DEFAULT_OUTPUT} in the current folder). A batch writes "
                             "FILE_000.png, FILE_001.png, ... (or one grid with --grid)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--grid", action="store_true", help="for a batch: write one grid picture instead of "
                                                            "one PNG per sample")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the generated input when no INPUT is given (default 0)")
    parser.add_argument("--samples", type=int, default=1, metavar="N",
                        help="number of generated inputs when no INPUT is given (default 1)")
    parser.add_argument("--watermark", action="store_true",
                        help="generated shapes images carry the class watermark (to unmask the 'Clever Hans' "
                             "model shapes_cnn_cleverhans)")
    parser.add_argument("--scale", default="auto", choices=("auto", "tutorial", "max"),
                        help="heatmap colour range [-b, b]: 'tutorial' b = 10·mean(|R|³)^(1/3) (Montavon's "
                             "LRP tutorial), 'max' b = max|R|, 'auto' (default) the smaller of the two, so "
                             "small images such as 8x8 digits are not washed out")
    parser.add_argument("--preprocessed", action="store_true",
                        help="INPUT already holds model inputs (after mean/std normalisation); skip "
                             "model.metadata.preprocess")
    parser.set_defaults(run=run)
    return parser


# --- inputs ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Inputs:
    """A batch to explain: ``raw`` (N, C, H, W) float32 inputs, their labels if known, and where they came from."""

    raw: numpy.ndarray
    labels: numpy.ndarray | None
    description: str


def _looks_like_input(argument: str) -> bool:
    lowered = argument.lower()
    return lowered.endswith((".npy",) + IMAGE_SUFFIXES) or ".h5:" in lowered or ".hdf5:" in lowered


def _resolve_model_path(argument: str | None) -> Path:
    if argument is None:
        return find_shipped_model(DEFAULT_MODEL)
    path = Path(argument)
    if path.is_file():
        return path
    if os.sep not in argument and "/" not in argument:
        try:
            return find_shipped_model(argument)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"model file {argument} does not exist (nor is it the name of a shipped model in "
                            f"{', '.join(str(folder) for folder in models_folders())})")


def _sample_shape(model: Any) -> tuple[int, ...]:
    shape = model.metadata.input_shape
    if not shape:
        raise ShapeError(f"model {model.metadata.name!r} does not state its input shape (metadata.input_shape); "
                         "lrpcore explain needs it to read inputs")
    if len(shape) not in (2, 3):
        raise ShapeError(f"lrpcore explain draws heatmaps of image inputs (C, H, W) and sequences (C, L); model "
                         f"{model.metadata.name!r} takes inputs of shape {tuple(shape)}")
    return tuple(int(size) for size in shape)


def _batch_of(values: numpy.ndarray, shape: tuple[int, ...], source: str) -> numpy.ndarray:
    """``values`` as (N, *shape): one sample gets a batch axis; anything else is a ShapeError naming both."""
    if values.shape == shape:
        values = values[None]
    if values.ndim != len(shape) + 1 or values.shape[1:] != shape:
        raise ShapeError(f"{source}: input of shape {values.shape} does not match the model's input shape "
                         f"{shape} (one sample) or (N, {', '.join(map(str, shape))}) (a batch)")
    if values.shape[0] == 0:
        raise ShapeError(f"{source}: the input batch is empty (shape {values.shape})")
    return values


def _as_raw_values(values: numpy.ndarray, value_range: tuple[float, float], source: str) -> numpy.ndarray:
    """Floats pass unchanged; uint8 is mapped from 0..255 to the value range; other dtypes are refused."""
    low, high = (float(bound) for bound in value_range)
    if values.dtype == numpy.uint8:
        return low + (high - low) * values.astype(numpy.float32) / numpy.float32(255.0)
    if values.dtype.kind != "f":
        raise InputValueError(f"{source}: inputs must be floating point (raw values in the model's value range "
                              f"[{low:g}, {high:g}]) or uint8 images, got dtype {values.dtype}")
    return values.astype(numpy.float32, copy=False)


def _check_finite_and_range(values: numpy.ndarray, value_range: tuple[float, float], source: str,
                            preprocessed: bool) -> None:
    if not numpy.isfinite(values).all():
        bad = int((~numpy.isfinite(values)).sum())
        raise InputValueError(f"{source}: input contains {bad} NaN or inf values")
    if preprocessed:
        return
    low, high = (float(bound) for bound in value_range)
    tolerance = 1e-3 * (high - low)
    found_low, found_high = float(values.min()), float(values.max())
    if found_low < low - tolerance or found_high > high + tolerance:
        raise InputValueError(f"{source}: values span [{found_low:.4g}, {found_high:.4g}], outside the model's raw "
                              f"value range [{low:g}, {high:g}]; INPUT must hold raw values (pass --preprocessed "
                              "if they are already normalised)")


def _read_image(path: Path, shape: tuple[int, ...]) -> numpy.ndarray:
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    if channels not in (1, 3):
        raise ShapeError(f"{path}: images can feed models with 1 or 3 input channels; the model takes {channels}")
    try:
        with Image.open(path) as image:
            converted = image.convert("RGB" if channels == 3 else "L")
    except UnidentifiedImageError:
        raise InputValueError(f"{path}: not an image file Pillow can read") from None
    if converted.size != (width, height):
        raise ShapeError(f"{path}: image is {converted.size[0]}x{converted.size[1]} (width x height) but the model "
                         f"takes {width}x{height}; resize it first (lrpcore explain does not resize)")
    pixels = numpy.asarray(converted, dtype=numpy.uint8)
    return pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]


def _read_hdf5(argument: str) -> tuple[numpy.ndarray, str]:
    import h5py

    file_name, _, dataset_path = argument.partition(":")
    if not Path(file_name).is_file():
        raise FileNotFoundError(f"input file {file_name} does not exist")
    with h5py.File(file_name, "r") as handle:
        if dataset_path not in handle or not isinstance(handle[dataset_path], h5py.Dataset):
            names: list[str] = []
            handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
            listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise InputValueError(f"{file_name}: no dataset {dataset_path!r}; datasets in the file: {listed or 'none'}")
        return numpy.asarray(handle[dataset_path]), f"{file_name}:{dataset_path}"


def read_input(argument: str, model: Any, preprocessed: bool = False) -> numpy.ndarray:
    """Read INPUT for ``model`` as a (N, C, H, W) float32 batch of raw values (or model inputs if ``preprocessed``).

    ``.npy``: float arrays as they are, uint8 scaled from 0..255 to the value range;
    images (Pillow): converted to RGB or grey as the model's channel count, scaled from
    0..255 to the value range, never resized; ``FILE.h5:PATH``: an HDF5 dataset like ``.npy``.
    Errors name the file and what is wrong (shape, dtype, values).
    """
    shape = _sample_shape(model)
    value_range = model.metadata.value_range
    lowered = argument.lower()
    if ".h5:" in lowered or ".hdf5:" in lowered:
        values, source = _read_hdf5(argument)
    else:
        path = Path(argument)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"input file {path} does not exist")
        if lowered.endswith(".npy"):
            try:
                values = numpy.load(path, allow_pickle=False)
            except ValueError as error:
                raise InputValueError(f"{path}: not a plain .npy array ({error})") from None
        elif lowered.endswith(IMAGE_SUFFIXES):
            values = _read_image(path, shape)
        else:
            raise InputValueError(f"{path}: unknown input type; use .npy, an image ({', '.join(IMAGE_SUFFIXES)}) "
                                  "or FILE.h5:DATASET")
    values = _as_raw_values(numpy.asarray(values), value_range, source)
    batch = _batch_of(values, shape, source)
    _check_finite_and_range(batch, value_range, source, preprocessed)
    return batch


def _generated_inputs(model: Any, seed: int, count: int, watermark: bool = False) -> _Inputs:
    """A generated sample fitting ``model``: shapes images or digits test images, chosen by the metadata."""
    from .. import data

    shape = _sample_shape(model)
    names = tuple(model.metadata.class_names or ())
    if shape[0] == 3 and shape[1] == shape[2] and names and set(names) <= set(data.SHAPE_NAMES):
        dataset = data.shapes(count, size=shape[1], seed=seed, classes=names, watermark=watermark)
        return _Inputs(dataset.x, dataset.y, f"{count} generated shapes image(s) (lrpcore.data.shapes, seed {seed}"
                       + (", with watermark)" if watermark else ")"))
    if watermark:
        raise InputValueError("--watermark applies to generated shapes images only")
    if shape == (1, 8, 8) and names == tuple(str(digit) for digit in range(10)):
        test = data.digits("test")
        if count > len(test):
            raise InputValueError(f"--samples {count} is more than the {len(test)} digits test images")
        chosen = numpy.random.default_rng(seed).choice(len(test), size=count, replace=False)
        picked = test[numpy.sort(chosen)]
        return _Inputs(picked.x, picked.y, f"{count} digits test image(s) (lrpcore.data.digits, seed {seed})")
    raise InputValueError(f"no INPUT given and lrpcore cannot generate inputs for model {model.metadata.name!r} "
                          f"(input shape {shape}); pass an INPUT file")


# --- targets and output files ---------------------------------------------------------------------------
def _resolve_target(text: str, class_names: Sequence[str]) -> Any:
    if text == "pred":
        return "pred"
    if text.lstrip("-").isdigit():
        return int(text)
    if text in class_names:
        return list(class_names).index(text)
    known = ", ".join(class_names) if class_names else "the model has no class names"
    raise InputValueError(f"--target {text!r} is neither 'pred', a class index nor a class name ({known})")


def _output_paths(out: str, count: int, grid: bool) -> list[Path]:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise InputValueError(f"--out {out}: heatmaps are written as PNG; give a file name ending in .png")
    if count == 1 or grid:
        return [path]
    return [path.with_name(f"{path.stem}_{index:03d}{path.suffix}") for index in range(count)]


def _check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}{more} already exists; pass --overwrite to replace it, or choose "
                              "another file with --out")
    for path in paths:
        if not path.parent.resolve().is_dir():
            raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")


# --- pictures -------------------------------------------------------------------------------------------
def _panel_figure(image: numpy.ndarray, relevance: numpy.ndarray, value_range: tuple[float, float],
                  caption: str, heading: str, scale: str) -> Any:
    """Input, heatmap (with colour bar) and overlay side by side."""
    from matplotlib.figure import Figure

    from ..plot.heatmap import _image_for_display, heatmap, overlay

    figure = Figure(figsize=(9.6, 3.6), layout="constrained")
    axes = figure.subplots(1, 3)
    shown = _image_for_display(image, value_range)
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[0].set_title("input", fontsize=10)
    heatmap(relevance, ax=axes[1], scale=scale, colorbar=True, title="relevance (red +, blue −)")
    overlay(image, relevance, ax=axes[2], scale=scale, value_range=value_range, title="overlay")
    figure.suptitle(heading, fontsize=11)
    figure.text(0.5, 0.0, caption, ha="center", va="bottom", fontsize=8, color="0.35")
    return figure


# --- the command ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Results:
    """What the batches of explanations gave: relevance, logits and explained class per sample."""

    relevance: numpy.ndarray
    logits: numpy.ndarray
    targets: numpy.ndarray
    explanations: list[Any]

    @property
    def predictions(self) -> numpy.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def probabilities(self) -> numpy.ndarray:
        shifted = numpy.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def _explain_in_batches(model: Any, model_inputs: numpy.ndarray, target: Any, composite: Any,
                        stabilizer: str | None) -> _Results:
    """LRP for every sample, ``BATCH_SIZE`` at a time, with a progress bar for batches."""
    from tqdm.auto import tqdm

    from ..explain import explain

    count = model_inputs.shape[0]
    relevances, logits, targets, explanations = [], [], [], []
    with tqdm(total=count, desc="explaining", unit="sample", disable=count == 1, file=sys.stderr) as progress:
        for begin in range(0, count, BATCH_SIZE):
            explanation = explain(model, model_inputs[begin:begin + BATCH_SIZE], target=target,
                                  composite=composite, stabilizer=stabilizer)
            relevances.append(numpy.asarray(explanation.relevance))
            logits.append(numpy.asarray(explanation.logits))
            targets.append(numpy.asarray(explanation.target))
            explanations.append(explanation)
            progress.update(min(BATCH_SIZE, count - begin))
    return _Results(numpy.concatenate(relevances), numpy.concatenate(logits), numpy.concatenate(targets),
                    explanations)


def _class_name(class_names: Sequence[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else str(index)


def _print_report(model: Any, model_path: Path, inputs: _Inputs, results: _Results, args: argparse.Namespace) -> None:
    """Model, input, per-sample prediction and explained class, then the conservation table(s)."""
    names = tuple(model.metadata.class_names or ())
    count = results.logits.shape[0]
    predictions, probabilities = results.predictions, results.probabilities
    print(f"model: {model.metadata.name} ({model_path})")
    print(f"input: {inputs.description}")
    print(f"composite: {args.composite}" + (f", stabilizer override: {args.stabilizer}" if args.stabilizer else ""))
    for sample in range(count):
        predicted, explained = int(predictions[sample]), int(results.targets[sample])
        truth = f", true class {_class_name(names, int(inputs.labels[sample]))}" if inputs.labels is not None else ""
        prefix = f"sample {sample}: " if count > 1 else ""
        print(f"{prefix}prediction: {_class_name(names, predicted)} (score {results.logits[sample, predicted]:.4g}, "
              f"probability {probabilities[sample, predicted]:.3f}){truth}; explained class "
              f"{_class_name(names, explained)} (score {results.logits[sample, explained]:.4g})")
    print()
    for number, explanation in enumerate(results.explanations):
        if len(results.explanations) > 1:
            last = min((number + 1) * BATCH_SIZE, count) - 1
            print(f"conservation, samples {number * BATCH_SIZE}..{last} (relevance sums over these samples):")
        elif count > 1:
            print("conservation (per layer, relevance sums over the batch):")
        else:
            print("conservation (per layer):")
        print(explanation.conservation())


def _write_pictures(model: Any, raw_images: numpy.ndarray, inputs: _Inputs, results: _Results,
                    outputs: Sequence[Path], args: argparse.Namespace) -> None:
    """One grid picture (``--grid`` with several samples) or one three-panel picture per sample."""
    from ..plot.heatmap import heatmap_grid, save_figure

    if raw_images.ndim == 3:        # sequences (N, C, L) are drawn as one-channel images of C rows × L positions
        raw_images = raw_images[:, None]
        results = dataclasses.replace(results, relevance=results.relevance[:, None])
    metadata = model.metadata
    names = tuple(metadata.class_names or ())
    count = results.logits.shape[0]
    predictions, probabilities = results.predictions, results.probabilities
    if args.grid and count > 1:
        titles = []
        for sample in range(count):
            title = f"pred {_class_name(names, int(predictions[sample]))}"
            if inputs.labels is not None:
                title += f" (true {_class_name(names, int(inputs.labels[sample]))})"
            if results.targets[sample] != predictions[sample]:
                title += f"\nR for {_class_name(names, int(results.targets[sample]))}"
            titles.append(title)
        figure = heatmap_grid(results.relevance, titles=titles, images=raw_images, value_range=metadata.value_range,
                              scale=args.scale)
        save_figure(figure, outputs[0], overwrite=args.overwrite)
        return
    limit = {"tutorial": "b = 10·mean(|R|³)^(1/3)", "max": "b = max|R|",
             "auto": "b = min(10·mean(|R|³)^(1/3), max|R|)"}[args.scale]
    caption = f"LRP composite {args.composite}; relevance summed over channels; colour limit {limit}"
    for sample, path in enumerate(outputs):
        predicted, explained = int(predictions[sample]), int(results.targets[sample])
        heading = (f"{metadata.name}: predicted {_class_name(names, predicted)} "
                   f"(p = {probabilities[sample, predicted]:.2f}); explaining '{_class_name(names, explained)}' "
                   f"(score {results.logits[sample, explained]:.3g})")
        figure = _panel_figure(raw_images[sample], results.relevance[sample], metadata.value_range, caption, heading,
                               args.scale)
        save_figure(figure, path, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    from ..composites import get_composite
    from ..io import load

    model_argument, input_argument = args.model, args.input
    if input_argument is None and model_argument is not None and _looks_like_input(model_argument) \
            and not Path(model_argument).suffix.lower() == ".h5":
        model_argument, input_argument = None, model_argument
    if args.samples < 1:
        raise InputValueError(f"--samples must be at least 1, got {args.samples}")
    model_path = _resolve_model_path(model_argument)
    model = load(model_path)
    metadata = model.metadata

    if input_argument is None:
        if args.preprocessed:
            raise InputValueError("--preprocessed applies to an INPUT file only; generated inputs are raw")
        inputs = _generated_inputs(model, args.seed, args.samples, args.watermark)
    else:
        if args.watermark or args.samples != 1:
            raise InputValueError("--watermark and --samples apply to generated inputs only, not to an INPUT file")
        inputs = _Inputs(read_input(input_argument, model, args.preprocessed), None, input_argument)
    count = inputs.raw.shape[0]
    outputs = _output_paths(args.out or DEFAULT_OUTPUT, count, args.grid)
    _check_writable(outputs, args.overwrite)  # before any work: never overwrite, never waste the user's time
    target = _resolve_target(args.target, tuple(metadata.class_names or ()))

    model_inputs = inputs.raw if args.preprocessed else metadata.preprocess(inputs.raw)
    raw_images = metadata.deprocess(inputs.raw) if args.preprocessed else inputs.raw
    results = _explain_in_batches(model, model_inputs, target, get_composite(args.composite), args.stabilizer)
    _print_report(model, model_path, inputs, results, args)
    _write_pictures(model, raw_images, inputs, results, outputs, args)
    print()
    print("wrote " + (str(outputs[0]) if len(outputs) == 1
                      else f"{outputs[0]} ... {outputs[-1]} ({len(outputs)} files)"))
    return 0
