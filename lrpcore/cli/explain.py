"""``lrpcore explain``: a heatmap PNG, the prediction and the per-layer conservation table.

With no arguments the command explains the shipped shapes model (``models/shapes_cnn.h5``)
on one freshly generated image, so a newcomer sees a first heatmap in one step::

    lrpcore explain                                   # → lrpcore_out/heatmap.png
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

Without ``--out`` the picture goes to a folder ``lrpcore_out`` in the working folder, under a
name not used yet (``heatmap.png``, then ``heatmap-2.png``, ...): running the command again
never fails and never replaces a file. An explicit ``--out`` that exists is replaced only with
``--overwrite``.
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
from ._common import TARGET_HELP, add_dtype_argument, cast_model, dtype_name, fresh_output, target_from_text, \
    write_figure
from ._inputs import announce, as_raw_values, check_not_empty, check_value_range, input_file, read_image, scale_note
from ._models import add_source_arguments

#: Environment variable naming a folder with the shipped models.
MODELS_ENVIRONMENT_VARIABLE = "LRPCORE_MODELS"
#: The shipped model used when no MODEL is given.
DEFAULT_MODEL = "shapes_cnn"
#: The heatmap file written when no --out is given (in the folder lrpcore_out, numbered when taken).
DEFAULT_OUTPUT = "heatmap.png"
#: The composite used when no --composite is given (see the --composite help).
DEFAULT_COMPOSITE = "epsilon_gamma_box"
#: File name endings read as pictures (through Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Samples explained at once.
BATCH_SIZE = 16

#: The --help epilog: the module docstring's content as plain text.
EPILOG = """examples:
  lrpcore explain                                  writes lrpcore_out/heatmap.png (then heatmap-2.png, ...)
  lrpcore explain models/digits_cnn.h5             a digits test image
  lrpcore explain shapes_cnn photo.png --target circle --out circle.png
  lrpcore explain my_model.h5 batch.npy --grid --out batch.png
  lrpcore explain my_model.keras                   any format 'lrpcore inspect' reads
  lrpcore explain shapes_cnn_cleverhans --watermark --samples 6 --grid --out hans.png

Where the shipped models are found (first match wins): the folder named by the environment
variable LRPCORE_MODELS; the models/ folder next to the lrpcore package (a source checkout);
<sys.prefix>/share/lrpcore/models (an installed data folder). A MODEL argument that is not an
existing file but the name of a shipped model (shapes_cnn, digits_mlp, ...) is looked up there.

INPUT holds raw values in the model's value range (e.g. [0, 1]); the model's preprocessing
(per-channel mean/std) is applied before the network sees them (--preprocessed skips it).
Images are never resized: their size must match the model's input.

Without --out the picture goes to the folder lrpcore_out in the working folder, under a name
not used yet (heatmap.png, then heatmap-2.png, ...): running the command again never fails and
never replaces a file. An --out file that exists is replaced only with --overwrite."""


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
                    f"the shipped {DEFAULT_MODEL} model on a generated image and writes "
                    f"lrpcore_out/{DEFAULT_OUTPUT}.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="model file in any format 'lrpcore inspect' reads (lrpcore .h5, Keras .h5/.keras/"
                             ".weights.h5, PyTorch .pt/.pth with --arch), or the name of a shipped model "
                             f"(default: {DEFAULT_MODEL}). "
                             "If the only argument is an input file (.npy, an image or FILE.h5:DATASET) it is "
                             "taken as INPUT for the default model")
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="input: a .npy array (one sample (C, H, W) or a batch (N, C, H, W); sequences (C, L)), an image "
                             "(.png/.jpg, size must match the model), or an HDF5 dataset FILE.h5:DATASET/PATH. "
                             "Default: a generated image (shapes models: lrpcore.data.shapes; digits models: "
                             "a test-split digit)")
    from ..baselines import BASELINES

    parser.add_argument("--composite", "--method", dest="composite", default=DEFAULT_COMPOSITE,
                        choices=sorted(PRESETS) + list(BASELINES), metavar="NAME",
                        help=f"LRP rule preset (default {DEFAULT_COMPOSITE}: z^B on the first convolution, γ=0.25 "
                             "on the other convolutions, ε on dense layers; it suits conv nets and works for "
                             f"MLPs). One of: {', '.join(sorted(PRESETS))}; or, to compare, an attribution "
                             f"baseline: {', '.join(BASELINES)}")
    parser.add_argument("--stabilizer", choices=sorted(STABILIZERS), metavar="NAME",
                        help="override every rule's denominator stabilizer (each rule keeps its ε). One of: "
                             f"{', '.join(sorted(STABILIZERS))}")
    parser.add_argument("--target", default="pred", metavar="T", help=TARGET_HELP)
    add_dtype_argument(parser)
    parser.add_argument("--out", default=None, metavar="FILE",
                        help=f"PNG to write (default: lrpcore_out/{DEFAULT_OUTPUT}, numbered -2, -3, ... when "
                             "taken). A batch writes FILE_000.png, FILE_001.png, ... (or one grid with --grid)")
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
    add_source_arguments(parser)
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


def _read_image(path: Path, shape: tuple[int, ...], value_range: tuple[float, float]) -> numpy.ndarray:
    """An image as raw values (C, H, W): 8-bit scaled by 1/255, 16-bit by 1/65535, into the value range (announced)."""
    channels, height, width = shape
    values, bits = read_image(path, channels)
    if values.shape[1:] != (height, width):
        raise ShapeError(f"{path}: image is {values.shape[2]}x{values.shape[1]} (width x height) but the model "
                         f"takes {width}x{height}; resize it first (lrpcore explain does not resize)")
    announce(scale_note(str(path), f"{bits}-bit image", 255 if bits == 8 else 65535, value_range))
    low, high = (float(bound) for bound in value_range)
    return (low + (high - low) * values.astype(numpy.float64)).astype(numpy.float32)


def _read_hdf5(argument: str) -> tuple[numpy.ndarray, str]:
    import h5py

    file_name, _, dataset_path = argument.partition(":")
    input_file(file_name)
    with h5py.File(file_name, "r") as handle:
        if dataset_path not in handle or not isinstance(handle[dataset_path], h5py.Dataset):
            names: list[str] = []
            handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
            listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise InputValueError(f"{file_name}: no dataset {dataset_path!r}; datasets in the file: {listed or 'none'}")
        return numpy.asarray(handle[dataset_path]), f"{file_name}:{dataset_path}"


def read_input(argument: str, model: Any, preprocessed: bool = False) -> numpy.ndarray:
    """Read INPUT for ``model`` as a (N, C, H, W) float32 batch of raw values (or model inputs if ``preprocessed``).

    ``.npy``: float arrays as they are, uint8 (uint16) scaled from 0..255 (0..65535) to the value range;
    images: converted to RGB or grey as the model's channel count, 8-bit images scaled by 1/255,
    16-bit ones by 1/65535 to the value range, never resized; ``FILE.h5:PATH``: an HDF5 dataset like
    ``.npy``. Every automatic rescaling is announced on stderr. Errors name the file and what is
    wrong (a directory, shape, dtype, values).
    """
    shape = _sample_shape(model)
    value_range = model.metadata.value_range
    lowered = argument.lower()
    if ".h5:" in lowered or ".hdf5:" in lowered:
        values, source = _read_hdf5(argument)
    else:
        path = input_file(argument)
        source = str(path)
        if lowered.endswith(".npy"):
            try:
                values = numpy.load(path, allow_pickle=False)
            except ValueError as error:
                raise InputValueError(f"{path}: not a plain .npy array ({error})") from None
        elif lowered.endswith(IMAGE_SUFFIXES):
            values = _read_image(path, shape, value_range)
        else:
            raise InputValueError(f"{path}: unknown input type; use .npy, an image ({', '.join(IMAGE_SUFFIXES)}) "
                                  "or FILE.h5:DATASET")
    values = numpy.asarray(values)
    check_not_empty(values, source)
    values = as_raw_values(values, value_range, source)
    batch = _batch_of(values, shape, source)
    if preprocessed:
        check_value_range(batch, None, source)  # finite only: model inputs have no documented range
    else:
        check_value_range(batch, value_range, source)
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
def _output_paths(out: str, count: int, grid: bool) -> list[Path]:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise InputValueError(f"--out {out}: heatmaps are written as PNG; give a file name ending in .png")
    if count == 1 or grid:
        return [path]
    return [path.with_name(f"{path.stem}_{index:03d}{path.suffix}") for index in range(count)]


def _output_set(paths: Sequence[Path], overwrite: bool) -> Any:
    """The files of a batch (FILE_000.png, ...) as one recorded :class:`~lrpcore._outputs.OutputSet`: written
    together, and ``--overwrite`` replaces exactly the files of the previous run for the same ``--out``."""
    from .._outputs import OutputSet

    first = paths[0]
    owner = f"explain:{first.name.rsplit('_', 1)[0]}{first.suffix}"
    return OutputSet(first.parent, owner, overwrite=overwrite, command="lrpcore explain")


def _check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    for path in paths:
        if not path.parent.resolve().is_dir():
            raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    if len(paths) > 1:
        _output_set(paths, overwrite).check([path.name for path in paths])
        return
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
    """LRP for every sample, ``BATCH_SIZE`` at a time, with a progress bar (on a terminal) for batches."""
    from .._progress import progress_bar
    from ..explain import explain

    count = model_inputs.shape[0]
    relevances, logits, targets, explanations = [], [], [], []
    with progress_bar(count, "explaining", unit="sample") as progress:
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


def _method_label(name: str) -> str:
    """How pictures name the method: 'LRP composite NAME', or the baseline's name."""
    from ..baselines import is_baseline

    return f"baseline {name}" if is_baseline(name) else f"LRP composite {name}"


def _class_name(class_names: Sequence[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else str(index)


def _print_report(model: Any, model_path: Any, inputs: _Inputs, results: _Results, args: argparse.Namespace) -> None:
    """Model, input, per-sample prediction and explained class, then the conservation table(s)."""
    names = tuple(model.metadata.class_names or ())
    count = results.logits.shape[0]
    predictions, probabilities = results.predictions, results.probabilities
    print(f"model: {model.metadata.name} ({model_path})")
    print(f"input: {inputs.description}")
    print(f"composite: {args.composite}" + (f", stabilizer override: {args.stabilizer}" if args.stabilizer else "")
          + f"; precision: {dtype_name(model)}")
    for sample in range(count):
        predicted, explained = int(predictions[sample]), int(results.targets[sample])
        truth = f", true class {_class_name(names, int(inputs.labels[sample]))}" if inputs.labels is not None else ""
        prefix = f"sample {sample}: " if count > 1 else ""
        print(f"{prefix}prediction: {_class_name(names, predicted)} (score {results.logits[sample, predicted]:.4g}, "
              f"probability {probabilities[sample, predicted]:.3f}){truth}; explained class "
              f"{_class_name(names, explained)} (score {results.logits[sample, explained]:.4g})")
    print()
    for number, explanation in enumerate(results.explanations):
        if explanation.method != "lrp":
            print(f"{explanation.method} is an attribution baseline: no layer-wise conservation table")
            break
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
    from ..plot.heatmap import heatmap_grid

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
                              scale=args.scale,
                              title=f"{metadata.name}: {_method_label(args.composite)}, {count} samples, "
                                    f"{dtype_name(model)}")
        write_figure(figure, outputs[0], overwrite=args.overwrite)
        return
    limit = {"tutorial": "b = 10·mean(|R|³)^(1/3)", "max": "b = max|R|",
             "auto": "b = min(10·mean(|R|³)^(1/3), max|R|)"}[args.scale]
    caption = (f"{_method_label(args.composite)}, {dtype_name(model)}; relevance summed over channels; "
               f"colour limit {limit}")
    batch = _output_set(outputs, args.overwrite) if len(outputs) > 1 else None
    try:
        for sample, path in enumerate(outputs):
            predicted, explained = int(predictions[sample]), int(results.targets[sample])
            heading = (f"{metadata.name}: predicted {_class_name(names, predicted)} "
                       f"(p = {probabilities[sample, predicted]:.2f}); explaining '{_class_name(names, explained)}' "
                       f"(score {results.logits[sample, explained]:.3g})")
            figure = _panel_figure(raw_images[sample], results.relevance[sample], metadata.value_range, caption,
                                   heading, args.scale)
            if batch is None:
                write_figure(figure, path, overwrite=args.overwrite)  # atomic: a failed write keeps the old file
            else:
                batch.add_figure(path.name, figure, dpi=150, format="png")
    except BaseException:
        if batch is not None:
            batch.abort()  # a batch is written whole or not at all: never a mix of two runs
        raise
    if batch is not None:
        batch.commit()


def zero_denominator_warnings(model: Any, explanations: Sequence[Any]) -> list[str]:
    """One line per layer where relevance was dropped at exactly-zero denominators (from each explanation's
    ``zero_denominators``, a (layers × samples) count array)."""
    totals: dict[int, int] = {}
    samples: dict[int, set[int]] = {}
    offset = 0
    for explanation in explanations:
        counts = getattr(explanation, "zero_denominators", None)
        if counts is None:
            continue
        counts = numpy.asarray(counts)
        for layer, sample in zip(*numpy.nonzero(counts)):
            totals[int(layer)] = totals.get(int(layer), 0) + int(counts[layer, sample])
            samples.setdefault(int(layer), set()).add(offset + int(sample))
        offset += counts.shape[1] if counts.ndim == 2 else 0
    lines = []
    for index in sorted(totals):
        where = model.where(index) if hasattr(model, "where") else f"layer {index}"
        which = sorted(samples[index])
        shown = ", ".join(map(str, which[:8])) + (", ..." if len(which) > 8 else "")
        lines.append(f"warning: relevance was dropped at {totals[index]} zero denominator(s) in {where}, "
                     f"sample(s) {shown}: the heatmap misses that relevance (conservation fails there); "
                     "a stabilizer that moves z away from zero (--stabilizer zennit) avoids it")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..composites import get_composite
    from ._common import load_model

    model_argument, input_argument = args.model, args.input
    if input_argument is None and model_argument is not None and _looks_like_input(model_argument) \
            and not Path(model_argument).suffix.lower() == ".h5":
        model_argument, input_argument = None, model_argument
    if args.samples < 1:
        raise InputValueError(f"--samples must be at least 1, got {args.samples}")
    model, model_path = load_model(model_argument, args, default=DEFAULT_MODEL)
    model = cast_model(model, args.dtype)
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
    target = target_from_text(args.target, model)
    if args.out is None:   # a fresh name in lrpcore_out/: a rerun never fails and never replaces a file
        out = fresh_output(DEFAULT_OUTPUT, lambda candidate: _output_paths(str(candidate), count, args.grid))
    else:
        out = args.out
    outputs = _output_paths(str(out), count, args.grid)
    _check_writable(outputs, args.overwrite)  # before any work: never overwrite, never waste the user's time

    model_inputs = inputs.raw if args.preprocessed else metadata.preprocess(inputs.raw)
    raw_images = metadata.deprocess(inputs.raw) if args.preprocessed else inputs.raw
    from ..baselines import is_baseline

    method = args.composite if is_baseline(args.composite) else get_composite(args.composite)
    results = _explain_in_batches(model, model_inputs, target, method, args.stabilizer)
    _print_report(model, model_path, inputs, results, args)
    for line in zero_denominator_warnings(model, results.explanations):
        print(line, file=sys.stderr)
    _write_pictures(model, raw_images, inputs, results, outputs, args)
    print()
    print("wrote " + (str(outputs[0]) if len(outputs) == 1
                      else f"{outputs[0]} ... {outputs[-1]} ({len(outputs)} files)"))
    return 0
