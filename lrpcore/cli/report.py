"""``lrpcore report [MODEL] [INPUT]``: a step-through HTML report of one backward pass.

Explains one sample with ``record=True`` and writes one self-contained HTML file (see
:mod:`lrpcore.report`): input, prediction and heatmap; every layer from the top down with the
relevance arriving there, Σ R in and out, the absorbed share, rule and stabilizer, denominator
statistics with zero and near-zero denominators flagged, one neuron's a, z, s and c and, on
small layers, the column of M_l that distributes its relevance; a conservation waterfall.
MODEL and INPUT are read as ``lrpcore explain`` reads them; with no arguments the report
explains the shipped shapes model on a generated image. Without ``--out`` the file goes to
``lrpcore_out/report.html`` (then ``report-2.html``, ...), never replacing a file.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputValueError
from ._common import TARGET_HELP, add_dtype_argument, cast_model, dtype_name, fresh_output, load_model, \
    target_from_text

DEFAULT_OUTPUT = "report.html"

EPILOG = """examples:
  lrpcore report                                   the shipped shapes_cnn on a generated image
  lrpcore report shapes_cnn --target cross --composite epsilon_plus --out cross.html
  lrpcore report models/digits_cnn.h5 --seed 4
  lrpcore report my_model.h5 batch.npy --sample 3 --dtype float64

Open the file in any browser (no server, no network). Navigate with the slider, the arrow
keys (or j/k, Home/End), the rows of the overview table or the bars of the waterfall; switch
the colour scale between per layer and shared. The address fragment selects a step:
report.html#layer=12 (a step name) or #pos=3 (counted from the top), and #scale=shared."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS
    from ..stabilizers import STABILIZERS
    from ._models import add_source_arguments

    parser = subparsers.add_parser(
        "report",
        help="write a step-through HTML report of one backward pass (layer by layer)",
        description="Explain one sample and write a self-contained HTML page that walks through the backward "
                    "pass layer by layer: relevance maps, conservation, rules, stabilizers, denominators, one "
                    "neuron's a, z, s, c and the column of the explicit matrix M_l. With no arguments it "
                    "explains the shipped shapes_cnn on a generated image.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="model file in any format 'lrpcore inspect' reads, or a shipped model's name "
                             "(default shapes_cnn). If the only argument is an input file it is taken as INPUT")
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="input as 'lrpcore explain' reads it (.npy, image, FILE.h5:DATASET); default: a "
                             "generated image")
    parser.add_argument("--composite", default="epsilon_gamma_box", choices=sorted(PRESETS), metavar="NAME",
                        help=f"LRP rule preset (default epsilon_gamma_box); one of {', '.join(sorted(PRESETS))}")
    parser.add_argument("--stabilizer", choices=sorted(STABILIZERS), metavar="NAME",
                        help=f"override every rule's stabilizer; one of {', '.join(sorted(STABILIZERS))}")
    parser.add_argument("--target", default="pred", metavar="T", help=TARGET_HELP)
    add_dtype_argument(parser)
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="which sample of a batch INPUT to report (default 0)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the generated input when no INPUT is given (default 0)")
    parser.add_argument("--watermark", action="store_true",
                        help="the generated shapes image carries the class watermark (for shapes_cnn_cleverhans)")
    parser.add_argument("--preprocessed", action="store_true",
                        help="INPUT already holds model inputs (skip the model's mean/std preprocessing)")
    parser.add_argument("--out", metavar="FILE",
                        help=f"HTML file to write (default: lrpcore_out/{DEFAULT_OUTPUT}, numbered -2, -3, ... "
                             "when taken)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    add_source_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy

    from .._progress import progress_bar
    from ..report import build_report, write_report
    from .explain import DEFAULT_MODEL, _generated_inputs, _looks_like_input, read_input

    model_argument, input_argument = args.model, args.input
    if input_argument is None and model_argument is not None and _looks_like_input(model_argument) \
            and Path(model_argument).suffix.lower() != ".h5":
        model_argument, input_argument = None, model_argument
    model, origin = load_model(model_argument, args, default=DEFAULT_MODEL)
    model = cast_model(model, args.dtype)
    if input_argument is None:
        if args.preprocessed:
            raise InputValueError("--preprocessed applies to an INPUT file only; generated inputs are raw")
        generated = _generated_inputs(model, args.seed, args.sample + 1, args.watermark)
        raw, note = generated.raw, generated.description
        if generated.labels is not None:
            note += f"; true class {model.metadata.class_names[int(generated.labels[args.sample])]}" \
                if model.metadata.class_names else f"; label {int(generated.labels[args.sample])}"
    else:
        if args.watermark:
            raise InputValueError("--watermark applies to generated inputs only, not to an INPUT file")
        raw, note = read_input(input_argument, model, args.preprocessed), input_argument
    if not 0 <= args.sample < raw.shape[0]:
        raise InputValueError(f"--sample {args.sample} is out of range: the input holds {raw.shape[0]} sample(s)")
    if raw.shape[0] > 1:
        note += f" (sample {args.sample} of {raw.shape[0]})"
    target = target_from_text(args.target, model)
    if args.out is None:    # a fresh name in lrpcore_out/: a rerun never fails and never replaces a file
        out = fresh_output(DEFAULT_OUTPUT)
    else:
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it, or choose another file with --out")
    sample = raw[args.sample:args.sample + 1]
    x = sample if args.preprocessed else model.metadata.preprocess(sample)
    shown = model.metadata.deprocess(numpy.asarray(sample, dtype=numpy.float64)) if args.preprocessed else sample
    with progress_bar(None, "building the report", unit="step"):
        page = build_report(model, numpy.asarray(x), numpy.asarray(shown)[0], composite=args.composite,
                            target=None if target == "pred" else target, stabilizer=args.stabilizer,
                            origin=f"model {origin}", input_note=note)
    write_report(page, out, overwrite=args.overwrite)
    print(f"wrote {out} ({len(page) / 1e6:.2f} MB; {model.metadata.name}, composite {args.composite}, "
          f"{dtype_name(model)}): open it in a browser")
    return 0
