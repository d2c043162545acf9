"""lrpcore.stability: stabilizer comparison, γ × ε grid, precision study, locating a blow-up, plots and command."""
from __future__ import annotations

import numpy as np
import pytest

from lrpcore import explain
from lrpcore.composites import uniform
from lrpcore.errors import InputValueError
from lrpcore.rules import Epsilon
from lrpcore.stability import (compare_stabilizers, layer_profile, linear_bottleneck_network, locate_instability,
                               precision_study, stability_grid, with_stabilizer)

from _networks import relu_network

# A natural patch found by tools/find_instability.py: linear-bottleneck net (seed 1), LRP-ε (ε = 0.1) with the
# vanilla stabilizer, third input of U(0,1) seed 101: z = −0.1 + 3.9e-6 at neuron (1, 28, 28) of layer 2.
PATCH_SEED, PATCH_EPSILON, PATCH_SAMPLE, PATCH_LAYER = 1, 0.1, 2, 2


@pytest.fixture(scope="module")
def patch_case():
    model = linear_bottleneck_network(PATCH_SEED, size=32)
    x = np.random.default_rng(100 + PATCH_SEED).uniform(size=(4, 3, 32, 32))
    return model, x


def test_vanilla_stabilizer_makes_a_patch_that_zennit_removes(patch_case):
    model, x = patch_case
    comparison = compare_stabilizers(model, x, uniform(Epsilon(PATCH_EPSILON)), stabilizers=("vanilla", "zennit"),
                                     dtypes=("float64",))
    rows = {row.stabilizer: row for row in comparison.rows_for(PATCH_SAMPLE)}
    assert rows["vanilla"].unstable and rows["vanilla"].statistic > 2
    assert not rows["zennit"].unstable and rows["zennit"].statistic < 1
    # the vanilla denominator at the bottleneck is orders below ε; zennit's cannot go below ε
    assert rows["vanilla"].smallest_denominator[PATCH_LAYER] < 1e-4
    assert rows["zennit"].smallest_denominator[PATCH_LAYER] >= PATCH_EPSILON * (1 - 1e-12)
    assert rows["vanilla"].conservation_error[PATCH_LAYER] > 10 * rows["zennit"].conservation_error[PATCH_LAYER]


def test_locate_instability_names_the_bottleneck_layer_and_neuron(patch_case):
    model, x = patch_case
    result = explain(model, x, composite=uniform(Epsilon(PATCH_EPSILON, stabilizer="vanilla")), record=True)
    diagnosis = locate_instability(result, PATCH_SAMPLE)
    assert diagnosis.layer == PATCH_LAYER
    assert diagnosis.neurons[0] == (1, 28, 28)
    assert abs(diagnosis.denominators[0]) < 1e-4
    assert diagnosis.peak_growth[PATCH_LAYER] > 100 and diagnosis.growth[PATCH_LAYER] > 10
    assert "layer 2" in str(diagnosis)


def test_comparison_table_reports_dtype_difference_and_writes_csv_per_layer():
    model = relu_network(seed=4)
    x = np.abs(np.random.default_rng(1).normal(size=(2, 3, 8, 8)))
    comparison = compare_stabilizers(model, x, "epsilon_gamma_box", epsilons=(None, 0.1))
    assert len(comparison.rows) == 2 * 3 * 2 * 2          # samples × stabilizers × ε × dtypes
    for row in comparison.rows:
        if row.dtype == "float64":
            assert row.dtype_difference == 0.0
        else:
            assert 0 < row.dtype_difference < 1e-5        # float32 rounding, not zero
    lines = comparison.to_csv().strip().splitlines()
    assert len(lines) == 1 + len(comparison.rows) * len(model)
    assert "UNSTABLE" not in comparison.table(0) and "sample 0" in comparison.table(0)


def test_with_stabilizer_replaces_stabilizer_and_epsilon_without_touching_the_preset():
    model = relu_network(seed=0)
    composite = with_stabilizer(model, "tutorial", "zennit", epsilon=0.5)
    rules = composite.rules(model)
    linear = [rule for rule in rules if rule.name != "Pass"]
    assert all(rule.stabilizer_name == "zennit" and rule.epsilon == 0.5 for rule in linear)
    from lrpcore.composites import tutorial

    assert all(rule.stabilizer_name != "zennit" for rule in tutorial().rules(model) if rule.name != "Pass")


def test_stability_grid_marks_the_unstable_epsilon_cells(patch_case):
    model, x = patch_case
    one = x[PATCH_SAMPLE:PATCH_SAMPLE + 1]
    grid = stability_grid(model, one, {"epsilon": [0.03, 0.1]}, composite=lambda epsilon: uniform(Epsilon(epsilon)),
                          stabilizer="vanilla")
    assert grid.heatmaps.shape == (2, 1) and grid.column_name == ""
    assert grid.unstable[:, 0, 0].tolist() == [False, True]
    assert grid.statistic[1, 0, 0] > 2 > grid.statistic[0, 0, 0]
    zennit = stability_grid(model, one, {"epsilon": [0.1]}, composite=lambda epsilon: uniform(Epsilon(epsilon)),
                            stabilizer="zennit")
    assert not zennit.unstable.any()


def test_stability_grid_over_gamma_and_epsilon_of_the_tutorial_preset():
    model = relu_network(seed=2)
    x = np.abs(np.random.default_rng(3).normal(size=(2, 3, 8, 8)))
    grid = stability_grid(model, x, {"gamma": [0.0, 0.25, 1.0], "epsilon": [0.01, 0.25]}, "vanilla")
    assert grid.statistic.shape == (3, 2, 2) and np.isfinite(grid.statistic).all()
    # γ changes the heatmap (the grid is not the same explanation repeated)
    assert not np.allclose(grid.heatmaps[0, 0], grid.heatmaps[2, 0])
    with pytest.raises(InputValueError, match="one or two"):
        stability_grid(model, x, {"gamma": [0.1], "epsilon": [0.1], "low": [0.0]})
    with pytest.raises(InputValueError, match="does not take"):
        stability_grid(model, x, {"alpha": [1.0]})


def test_precision_study_finds_float16_departing_more_than_float32():
    model = relu_network(seed=4)
    x = np.abs(np.random.default_rng(1).normal(size=(2, 3, 8, 8)))
    study = precision_study(model, x, "epsilon_gamma_box", tolerance=1e-4)
    assert study.reference == "float64"
    assert np.all(study.heatmap_difference["float16"] > 100 * study.heatmap_difference["float32"])
    assert np.all(study.heatmap_difference["float32"] < 1e-5)
    assert all(layer is not None for layer in study.first_departure["float16"])
    assert all(layer is None for layer in study.first_departure["float32"])
    assert "float16" in str(study)


def test_precision_study_shows_vanilla_near_zero_denominator_amplifying_rounding(patch_case):
    model, x = patch_case
    composite = uniform(Epsilon(PATCH_EPSILON))
    stable = precision_study(model, x, composite, dtypes=("float32", "float64"), stabilizer="zennit")
    unstable = precision_study(model, x, composite, dtypes=("float32", "float64"), stabilizer="vanilla",
                               tolerance=1e-3)
    sample = PATCH_SAMPLE
    assert stable.heatmap_difference["float32"][sample] < 1e-5
    assert unstable.heatmap_difference["float32"][sample] > 100 * stable.heatmap_difference["float32"][sample]
    assert unstable.largest_jump["float32"][sample] == PATCH_LAYER
    assert unstable.first_departure["float32"][sample] == PATCH_LAYER


def test_layer_profile_needs_a_trace_and_the_lab_rejects_bad_arguments():
    model = relu_network(seed=0)
    x = np.abs(np.random.default_rng(0).normal(size=(1, 3, 8, 8)))
    with pytest.raises(InputValueError, match="record=True"):
        layer_profile(explain(model, x))
    with pytest.raises(InputValueError, match="unknown stabilizer"):
        compare_stabilizers(model, x, "tutorial", stabilizers=("nope",))
    with pytest.raises(InputValueError, match="dtypes"):
        compare_stabilizers(model, x, "tutorial", dtypes=("int8",))


def test_plots_write_png_files(tmp_path, patch_case):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from lrpcore.plot import plot_layer_profiles, plot_stability_grid

    model = relu_network(seed=4)
    x = np.abs(np.random.default_rng(1).normal(size=(1, 3, 8, 8)))
    comparison = compare_stabilizers(model, x, "tutorial", dtypes=("float64",))
    plot_layer_profiles(comparison, 0, path=str(tmp_path / "profiles.png"))
    grid = stability_grid(model, x, {"gamma": [0.1, 1.0], "epsilon": [0.25]}, "vanilla")
    plot_stability_grid(grid, 0, path=str(tmp_path / "grid.png"))
    assert (tmp_path / "profiles.png").stat().st_size > 1000 and (tmp_path / "grid.png").stat().st_size > 1000
    with pytest.raises(FileExistsError, match="overwrite"):
        plot_stability_grid(grid, 0, path=str(tmp_path / "grid.png"))


def test_stability_command_writes_tables_and_never_overwrites(tmp_path):
    pytest.importorskip("matplotlib")
    from lrpcore.cli import main

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(100 + PATCH_SEED).uniform(size=(4, 3, 32, 32))[PATCH_SAMPLE:PATCH_SAMPLE + 1])
    out = tmp_path / "out"
    arguments = ["stability", "linear_bottleneck", str(data), "--composite", "epsilon", "--epsilons", "0.1",
                 "--seed", str(PATCH_SEED), "--dtypes", "float64", "--out", str(out)]
    assert main(arguments) == 0
    text = (out / "comparison.txt").read_text()
    assert "vanilla, ε=0.1, float64         UNSTABLE" in text
    assert "layer 2" in (out / "diagnosis.txt").read_text()
    assert (out / "heatmaps_sample0.png").exists() and (out / "comparison.csv").exists()
    before = (out / "comparison.txt").stat().st_mtime_ns
    assert main(arguments) == 1                              # refuses to replace
    assert (out / "comparison.txt").stat().st_mtime_ns == before
    assert main(arguments + ["--overwrite"]) == 0


@pytest.mark.slow
def test_vgg16_vanilla_top_layer_explodes_when_the_explained_logit_is_near_minus_epsilon():
    """The natural case on a ReLU network (tools/find_instability.py): only the top denominator can vanish."""
    from lrpcore.models import vgg16

    model = vgg16(input_size=32, dtype="float64")
    x = np.asarray(model.metadata.preprocess(np.random.default_rng(0).uniform(size=(2, 3, 32, 32))))
    epsilon = 0.003
    logits = np.asarray(model.forward(x))
    target = np.argmin(np.abs(logits + epsilon), axis=1)          # "why not class c?" with z_c ≈ −ε
    comparison = compare_stabilizers(model, x, uniform(Epsilon(epsilon)), stabilizers=("vanilla", "zennit"),
                                     dtypes=("float64",), target=target)
    top = len(model) - 1
    for sample in range(2):
        rows = {row.stabilizer: row for row in comparison.rows_for(sample)}
        z = logits[sample, target[sample]]
        # vanilla: R_in / R_out = z / (z + ε), hundreds of times too large; zennit: z / (z − ε) ≈ 1/2
        assert rows["vanilla"].conservation_error[top] > 100
        assert rows["zennit"].conservation_error[top] < 1
        assert abs(rows["vanilla"].smallest_denominator[top] - abs(z + epsilon)) < 1e-12
        diagnosis = locate_instability(comparison.explanations[("vanilla", None, "float64")], sample)
        assert diagnosis.layer == top and diagnosis.neurons[0] == (int(target[sample]),)


def test_stability_command_names_a_bad_input_file(tmp_path, capsys):
    from lrpcore.cli import main

    data = tmp_path / "wrong.npy"
    np.save(data, np.zeros((2, 3, 8, 8)))
    assert main(["stability", "linear_bottleneck", str(data), "--out", str(tmp_path / "out")]) == 1
    message = capsys.readouterr().err
    assert "wrong.npy" in message and "(2, 3, 8, 8)" in message
    assert main(["stability", "linear_bottleneck", str(tmp_path / "missing.npy"), "--out", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_gamma_rule_patch_behind_a_bottleneck_resists_every_stabilizer_but_not_symmetric_gamma():
    """tools/find_instability.py part 3: γ's z_k + γ z⁺_k ≈ 0 for an output with z_k < 0; ε = 1e-9 is too small."""
    from lrpcore.composites import Composite, tutorial
    from lrpcore.rules import Gamma

    model = linear_bottleneck_network(0, size=32)
    x = np.random.default_rng(100).uniform(size=(4, 3, 32, 32))[3:4]
    comparison = compare_stabilizers(model, x, "tutorial", dtypes=("float64",))
    assert all(row.unstable for row in comparison.rows)
    diagnosis = locate_instability(comparison.explanations[("zennit", None, "float64")], 0)
    assert diagnosis.layer == 2 and diagnosis.rule.startswith("Gamma") and diagnosis.denominators[0] < 0
    rules = {index: (Gamma(0.25, symmetric=True, stabilizer="vanilla", epsilon=1e-9, maxpool="sum")
                     if isinstance(rule, Gamma) else rule)
             for index, rule in enumerate(tutorial().rules(model)) if rule.name != "Pass"}
    from lrpcore import detect_instability

    assert not detect_instability(explain(model, x, composite=Composite(by_index=rules)))
