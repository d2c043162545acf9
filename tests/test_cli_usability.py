"""The command line as a new user meets it: progress, class names, precision, help texts, pictures, reprs.

Each test names the friction of issue 18 it covers.
"""
from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrpcore
from lrpcore.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(action.choices)


# --- 1. progress bars on a terminal, quiet in pipes ---------------------------------------------------
class _Stream(io.StringIO):
    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_progress_bars_are_drawn_on_terminals_only_unless_told(monkeypatch):
    from lrpcore._progress import progress_bar, progress_enabled

    monkeypatch.delenv("LRPCORE_PROGRESS", raising=False)
    assert progress_enabled(_Stream(True)) and not progress_enabled(_Stream(False))
    assert not progress_enabled(_Stream(True), requested=False)        # --no-progress
    monkeypatch.setenv("LRPCORE_PROGRESS", "never")
    assert not progress_enabled(_Stream(True))
    monkeypatch.setenv("LRPCORE_PROGRESS", "always")
    stream = _Stream(False)
    with progress_bar(10, "working", unit="item", file=stream) as bar:
        bar.update(10)
    assert "working:" in stream.getvalue() and "/10 " in stream.getvalue()


def test_commands_are_quiet_in_a_pipe(tmp_path):
    """A real process whose stderr is a pipe: no bar characters, even for a batch."""
    result = subprocess.run([sys.executable, "-m", "lrpcore.cli", "explain", "--samples", "20", "--grid",
                             "--out", str(tmp_path / "grid.png")], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("arguments,description", [
    (["explain", "--samples", "3", "--grid"], "explaining"),
    (["stability", "--stabilizers", "vanilla", "zennit"], "explaining"),
    (["report"], "building the report"),
    (["evaluate", "shapes_cnn", "shapes:2:seed=1", "--mode", "constant"], "evaluating"),
])
def test_every_long_command_reports_progress(arguments, description, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRPCORE_PROGRESS", "always")
    if arguments[0] == "evaluate":
        arguments = arguments + ["--out", str(tmp_path / "pf")]
    assert main(arguments) == 0
    assert description in capsys.readouterr().err


def test_sweep_progress_moves_at_a_finer_grain_than_one_task_per_block(monkeypatch, capsys):
    """A serial sweep of 3 configurations × 4 images (one block): with progress shown, the work is cut into
    several tasks so the line moves more than once, and the table is the one of the unshown run."""
    import lrpcore.sweep.progress as progress
    from lrpcore.sweep import grid
    from test_sweep import five_conv_network

    images = np.random.default_rng(0).uniform(size=(4, 3, 16, 16)).astype(np.float32)
    options = dict(composite="tutorial", params={"gamma": [0.0, 0.1, 0.25], "epsilon": [0.1]},
                   evaluation={"patch_size": 4, "sorts": ["morf", "random"]}, image_block=4)
    quiet = grid(five_conv_network(), images, progress=False, **options)
    monkeypatch.setattr(progress, "_interactive", lambda stream: True)
    shown = grid(five_conv_network(), images, progress=True, **options)
    assert len(shown.timings) >= 4 > len(quiet.timings)       # several explain and flip tasks, not one of each
    assert "tasks" in capsys.readouterr().err
    for name in ("config", "image", "sort", "auc"):
        np.testing.assert_array_equal(shown.table[name], quiet.table[name])


# --- 2. targets by class name everywhere -----------------------------------------------------------------
def test_class_names_are_resolved_with_clear_errors():
    from lrpcore.class_names import parse_target, resolve_target_names

    names = ("circle", "square", "cross")
    assert resolve_target_names("cross", names) == 2
    assert resolve_target_names(["circle", 1, "cross"], names) == [0, 1, 2]
    assert resolve_target_names("pred", names) == "pred" and resolve_target_names(None, names) is None
    assert parse_target("2", names) == 2 and parse_target("pred", names) == "pred"
    with pytest.raises(lrpcore.InputValueError, match="'hexagon' is not a class of model 'm'; classes: circle"):
        resolve_target_names("hexagon", names, "m")
    with pytest.raises(lrpcore.InputValueError, match="has no class names"):
        resolve_target_names("circle", None)
    with pytest.raises(lrpcore.InputValueError, match="not a class index"):
        parse_target("3", names)


def test_stability_takes_a_class_name(tmp_path, capsys):
    from lrpcore.stability import compare_stabilizers

    model = lrpcore.load(ROOT / "models" / "shapes_cnn.h5")
    x = model.metadata.preprocess(lrpcore.data.shapes(2, seed=3).x)
    comparison = compare_stabilizers(model, x, "tutorial", stabilizers=("zennit",), dtypes=("float32",),
                                     target="cross")
    assert all((np.asarray(result.target) == 3).all() for result in comparison.explanations.values())
    assert main(["stability", "shapes_cnn", "--target", "cross", "--stabilizers", "zennit", "--dtypes", "float64",
                 "--out", str(tmp_path / "s")]) == 0
    assert main(["stability", "--target", "crosss", "--out", str(tmp_path / "t")]) == 1
    assert "'crosss' is not a class of model 'shapes_cnn'" in capsys.readouterr().err


def test_library_explain_takes_a_class_name():
    """lrpcore.explain(..., target="circle"): needs the hook in explain.py (see the report of issue 18)."""
    model = lrpcore.load(ROOT / "models" / "shapes_cnn.h5")
    x = model.metadata.preprocess(lrpcore.data.shapes(1, seed=3).x)
    try:
        explanation = lrpcore.explain(model, x, target="ring")
    except lrpcore.InputValueError as error:
        if "got 'ring'" in str(error):
            pytest.skip("lrpcore.explain does not resolve class names yet (lead's explain.py change pending)")
        raise
    assert int(explanation.target[0]) == 4


# --- 3. short reprs and notebook views ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded():
    model = lrpcore.load(ROOT / "models" / "shapes_cnn.h5")
    x = model.metadata.preprocess(lrpcore.data.shapes(2, seed=7).x)
    return lrpcore.explain(model, x, composite="epsilon_gamma_box", record=True)


def test_explanation_trace_and_step_have_short_reprs_and_html(recorded):
    from lrpcore import _display

    text = _display.explanation_repr(recorded)
    assert len(text) < 400 and "shapes_cnn" in text and "(2, 3, 64, 64) float32" in text and "trace of 16" in text
    names = recorded.model.metadata.class_names
    assert f"({names[int(recorded.target[0])]})" in text
    assert len(_display.trace_repr(recorded.trace)) < 300
    step = _display.step_repr(recorded.trace[3])
    assert len(step) < 300 and "Gamma" in step and "ΣR out" in step
    page = _display.explanation_html(recorded)
    assert page.count("<tr>") == 1 + len(recorded.model) and page.count("<img") == 2
    assert _display.trace_html(recorded.trace).count("<tr>") == 1 + len(recorded.model)
    assert "<img" in _display.step_html(recorded.trace[3]) and "relevance_in" in _display.step_html(recorded.trace[3])


def test_reprs_are_hooked_into_the_classes(recorded):
    from lrpcore import _display

    if type(recorded).__repr__ is not _display.explanation_repr:
        pytest.skip("explain.py does not bind lrpcore._display yet (lead's change pending)")
    assert len(repr(recorded)) < 400 and len(repr(recorded.trace)) < 300 and len(repr(recorded.trace[0])) < 300
    assert "<table" in recorded._repr_html_() and "<table" in recorded.trace._repr_html_()


def test_perturbation_curve_repr_is_short_and_its_html_has_the_curve():
    from lrpcore.evaluate import pixel_flipping

    model = lrpcore.load(ROOT / "models" / "shapes_cnn.h5")
    data = lrpcore.data.shapes(3, seed=1)
    x = model.metadata.preprocess(data.x).astype(np.float32)
    relevance = lrpcore.explain(model, x, target=data.y).relevance
    curve = pixel_flipping(model, x, relevance, data.y, mode="constant", keep_images=True)
    text = repr(curve)
    assert len(text) < 300 and text.startswith("PerturbationCurve(3 images") and "lower is better" in text
    page = curve._repr_html_()
    assert "data:image/png;base64," in page and "auc" in page


# --- 5. --dtype, stated in the output --------------------------------------------------------------------------
def test_dtype_option_changes_the_computation_and_is_stated(tmp_path, capsys):
    assert main(["explain", "--dtype", "float64", "--out", str(tmp_path / "a.png")]) == 0
    out64 = capsys.readouterr().out
    assert "precision: float64" in out64
    assert main(["explain", "--out", str(tmp_path / "b.png")]) == 0
    out32 = capsys.readouterr().out
    assert "precision: float32" in out32
    score = re.compile(r"score (\S+), probability")
    assert score.search(out64).group(1)[:4] == score.search(out32).group(1)[:4]   # same prediction


# --- 6. stability: generated input, explained columns, a full heatmap picture ------------------------------
def test_stability_without_input_explains_its_columns(tmp_path, capsys):
    assert main(["stability", "--stabilizers", "vanilla", "zennit", "--out", str(tmp_path / "s")]) == 0
    text = (tmp_path / "s" / "comparison.txt").read_text()
    assert "generated shapes image" in text
    assert "statistic   log10(max pixel |R| / 95th percentile" in text
    assert "Δ dtype     ‖R − R_ref‖ / ‖R_ref‖" in text and "in float64,\n              the most precise" in text
    assert (tmp_path / "s" / "heatmaps_sample0.png").stat().st_size > 10_000


def test_stability_heatmap_row_has_input_colour_bar_and_title():
    from lrpcore.plot import plot_heatmap_row

    rng = np.random.default_rng(0)
    figure = plot_heatmap_row({"a": rng.normal(size=(3, 8, 8)), "b": rng.normal(size=(3, 8, 8))}, {"b": True},
                              image=rng.uniform(size=(3, 8, 8)), title="model: sample 0")
    panels = [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]
    assert [axes.get_title() for axes in panels] == ["input", "a", "b\nUNSTABLE"]
    assert len(figure.axes) == 4 and figure.get_suptitle() == "model: sample 0"


# --- 7. help texts in plain text --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_help_texts_are_plain_text(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = capsys.readouterr().out
    markup = re.findall(r"``|:(?:func|class|mod|meth|attr):|`[^`\n]+`_?|\*\*?\w[^*\n]*\*", text)
    assert not markup, f"lrpcore {name} --help shows markup: {markup[:3]}"


# --- 9. evaluate's plots name the classes --------------------------------------------------------------------------
def test_evaluate_step_picture_names_the_class():
    from lrpcore.evaluate import pixel_flipping
    from lrpcore.plot import perturbation_steps

    model = lrpcore.load(ROOT / "models" / "shapes_cnn.h5")
    data = lrpcore.data.shapes(1, seed=1, classes=("ring",))
    x = model.metadata.preprocess(data.x).astype(np.float32)
    relevance = lrpcore.explain(model, x, target=4).relevance
    curve = pixel_flipping(model, x, relevance, [4], mode="constant", keep_images=True)
    figure = perturbation_steps(curve, relevance=relevance[0], metadata=model.metadata)
    assert "'ring'" in figure.axes[1].get_title() and "class 4" not in figure.axes[1].get_title()


# --- 4. every command reads every model format inspect reads ------------------------------------------------------
@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
    folder = tmp_path_factory.mktemp("keras_cli")
    model.save(folder / "net.keras")
    x = np.random.default_rng(1).uniform(size=(4, 3, 16, 16)).astype(np.float32)
    np.save(folder / "x.npy", x)
    np.save(folder / "one.npy", x[0])
    np.save(folder / "y.npy", np.array([0, 1, 2, 0]))
    return folder


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_every_command_reads_a_keras_archive(keras_model, tmp_path, capsys):
    folder = keras_model
    path = str(folder / "net.keras")
    reference = lrpcore.io.load_keras(path)
    score = float(np.max(reference.forward(np.load(folder / "one.npy")[None])))
    assert main(["explain", path, str(folder / "one.npy"), "--out", str(tmp_path / "e.png")]) == 0
    assert f"(score {score:.4g}" in capsys.readouterr().out
    assert main(["report", path, str(folder / "one.npy"), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["stability", path, str(folder / "x.npy"), "--stabilizers", "zennit", "--out",
                 str(tmp_path / "s")]) == 0
    assert main(["evaluate", path, str(folder / "x.npy"), "--targets", str(folder / "y.npy"), "--mode", "constant",
                 "--out", str(tmp_path / "pf")]) == 0
    assert main(["inspect", path]) == 0
    output = capsys.readouterr().out
    assert "keras file" in output
