"""Tests of pruned LRP (lrpcore.pruning): thresholds, PLRP-λ, PLRP-M, sparsity gain, trace."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore.backend import to_backend, to_numpy
from lrpcore.layers import Dense, Flatten, ReLU
from lrpcore.layers1d import AvgPool1d, Conv1d, MaxPool1d
from lrpcore.pruning import (Pruning, explain_pruned, gini, prune, pruning_summary, sparsity_gain,
                             sparsity_gain_masks, sparsity_gain_proportion, threshold)
from lrpcore.rules import Zero
from _networks import sequence_network


# --- independent references (plain NumPy, one sample at a time) ----------------------------------
def _reference_threshold(scores: np.ndarray, proportion: float) -> float:
    """θ = the largest score whose ascending cumulative sum stays ≤ p · total; 0 if none."""
    theta = 0.0
    running = 0.0
    total = scores.sum()
    for value in sorted(scores.tolist()):
        running += value
        if running <= proportion * total:
            theta = value
        else:
            break
    return theta


def _reference_keep(relevance: np.ndarray, p_pos: float, p_neg: float) -> np.ndarray:
    flat = relevance.ravel()
    positive, negative = np.maximum(flat, 0), np.maximum(-flat, 0)
    keep = np.zeros(flat.shape, dtype=bool)
    for scores, proportion in ((positive, p_pos), (negative, p_neg)):
        theta = _reference_threshold(scores, proportion)
        keep |= scores > theta
        if scores.max() > 0:
            keep |= scores == scores.max()
    return keep.reshape(relevance.shape)


def _reference_gini(values: np.ndarray) -> float:
    """Gini index written from its definition as mean absolute difference / (2 · mean)."""
    values = np.abs(values.ravel())
    return float(np.abs(values[:, None] - values[None, :]).sum() / (2 * values.size ** 2 * values.mean()))


# --- models ---------------------------------------------------------------------------------------
def _dense_model(seed: int = 0, bias: bool = True) -> lrpcore.Sequential:
    rng = np.random.default_rng(seed)

    def maybe(size):
        return rng.normal(size=size) * 0.1 if bias else np.zeros(size)

    layers = [Dense(rng.normal(size=(24, 10)), maybe(24)), ReLU(), Dense(rng.normal(size=(16, 24)) * 0.3, maybe(16)),
              ReLU(), Dense(rng.normal(size=(3, 16)) * 0.5, maybe(3))]
    return lrpcore.Sequential(layers, lrpcore.ModelMetadata(input_shape=(10,)))


def _inputs(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape)


# --- threshold, λ and kept mass on hand-built vectors --------------------------------------------
def test_threshold_is_the_largest_score_whose_cumulative_sum_stays_within_p():
    scores = np.array([[4.0, 1.0, 3.0, 2.0]])           # ascending 1, 2, 3, 4; cumulative 1, 3, 6, 10
    assert threshold(scores, 0.3)[0] == 2.0              # 3 ≤ 0.3·10
    assert threshold(scores, 0.6)[0] == 3.0              # 6 ≤ 6
    assert threshold(scores, 0.05)[0] == 0.0             # 1 > 0.5: no score qualifies
    assert threshold(scores, 0.0)[0] == 0.0
    np.testing.assert_array_equal(threshold(np.array([[4.0, 1.0, 3.0, 2.0], [10.0, 1.0, 1.0, 1.0]]), 0.3), [2.0, 1.0])


def test_plrp_lambda_keeps_scores_above_theta_and_rescales_each_sign_to_its_mass():
    relevance = np.array([[1.0, 2.0, 3.0, 4.0, -0.5, -1.5, 0.0]])
    result = prune(relevance, 0.3, 0.3)
    # positive: total 10, θ⁺ = 2, kept 3 + 4 = 7, λ⁺ = 10/7; negative: total 2, 0.5 ≤ 0.6 so θ⁻ = 0.5, λ⁻ = 2/1.5
    assert result.theta_pos[0] == 2.0 and result.theta_neg[0] == 0.5
    assert result.lambda_pos[0] == pytest.approx(10 / 7) and result.lambda_neg[0] == pytest.approx(2 / 1.5)
    np.testing.assert_allclose(result.relevance, [[0, 0, 30 / 7, 40 / 7, 0, -2.0, 0]], rtol=1e-15)
    np.testing.assert_array_equal(result.kept, [[False, False, True, True, False, True, False]])
    assert result.pruned_mass[0] == pytest.approx(3.5) and result.mass[0] == pytest.approx(12.0)
    assert result.pruned_count[0] == 3
    assert np.abs(result.relevance).sum() == pytest.approx(12.0) and result.relevance.sum() == pytest.approx(8.0)
    unscaled = prune(relevance, 0.3, 0.3, rescale=False)
    np.testing.assert_allclose(unscaled.relevance, [[0, 0, 3, 4, 0, -1.5, 0]])


def test_positive_and_negative_relevance_are_pruned_with_their_own_proportions():
    relevance = np.array([[1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0]])
    only_positive = prune(relevance, p_pos=0.3, p_neg=0.0, rescale=False).relevance
    np.testing.assert_array_equal(only_positive, [[0, 0, 3, 4, -1, -2, -3, -4]])
    only_negative = prune(relevance, p_pos=0.0, p_neg=0.6, rescale=False).relevance
    np.testing.assert_array_equal(only_negative, [[1, 2, 3, 4, 0, 0, 0, -4]])


def test_prune_matches_a_loop_reference_per_sample_on_random_vectors():
    rng = np.random.default_rng(3)
    relevance = rng.standard_cauchy(size=(6, 40)) * (rng.random((6, 40)) > 0.3)
    for p_pos, p_neg in ((0.1, 0.1), (0.3, 0.05), (0.7, 0.5)):
        result = prune(relevance, p_pos, p_neg, rescale=False)
        for row in range(relevance.shape[0]):
            keep = _reference_keep(relevance[row], p_pos, p_neg)
            np.testing.assert_array_equal(result.kept[row], keep)
            np.testing.assert_array_equal(result.relevance[row], np.where(keep, relevance[row], 0.0))
            pruned_positive = np.maximum(relevance[row], 0)[~keep].sum()
            assert pruned_positive <= p_pos * np.maximum(relevance[row], 0).sum() + 1e-12


def test_thresholds_are_per_sample_not_per_batch():
    rng = np.random.default_rng(4)
    batch = np.stack([rng.normal(size=30), 100 * rng.normal(size=30) ** 3, np.zeros(30)])
    together = prune(batch, 0.2, 0.1).relevance
    for row in range(3):
        np.testing.assert_array_equal(together[row], prune(batch[row:row + 1], 0.2, 0.1).relevance[0])
    np.testing.assert_array_equal(together[2], np.zeros(30))           # all-zero sample: nothing to keep, no NaN


def test_ties_at_the_top_never_prune_a_whole_sign():
    result = prune(np.array([[1.0, 1.0, 1.0, 1.0, -2.0]]), 0.5, 0.5)
    np.testing.assert_array_equal(result.relevance, [[1.0, 1.0, 1.0, 1.0, -2.0]])
    assert np.all(np.isfinite(result.lambda_pos))


def test_gini_index_matches_its_mean_absolute_difference_definition():
    rng = np.random.default_rng(5)
    values = np.abs(rng.standard_cauchy(size=(4, 25))) * (rng.random((4, 25)) > 0.4)
    ours = gini(values)
    for row in range(4):
        assert ours[row] == pytest.approx(_reference_gini(values[row]), rel=1e-12)
    assert gini(np.array([[0.0, 0.0, 0.0, 1.0]]))[0] == pytest.approx(0.75)
    assert gini(np.ones((1, 9)))[0] == pytest.approx(0.0, abs=1e-15)
    assert gini(np.zeros((1, 5)))[0] == 0.0


# --- PLRP in explain ------------------------------------------------------------------------------
@pytest.mark.parametrize("method,options", [("lambda", {}), ("m", {"m_rule": "composite"})])
def test_p_zero_gives_plain_lrp(method, options):
    model, x = sequence_network(), _inputs((3, 4, 20))
    composite = lrpcore.composites.epsilon_gamma_box(low=-3.0, high=3.0)
    plain = lrpcore.explain(model, x, composite=composite)
    pruned = explain_pruned(model, x, composite=composite, method=method, p=0.0, **options)
    np.testing.assert_allclose(pruned.relevance, plain.relevance, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model_factory,shape", [(_dense_model, (5, 10)), (sequence_network, (4, 4, 20))])
@pytest.mark.parametrize("p", [0.1, 0.4])
def test_plrp_lambda_conserves_relevance_at_every_layer(model_factory, shape, p):
    model, x = model_factory(bias=False), _inputs(shape)
    explanation = explain_pruned(model, x, composite=lrpcore.composites.uniform(Zero()), p=p, record=True)
    lrpcore.check_conservation(explanation, rtol=1e-9, atol=1e-12)
    pruned_layers = [step for step in explanation.trace if "pruned_mass" in step.info]
    assert pruned_layers and all(step.info["pruned_fraction"].max() > 0 for step in pruned_layers)
    for step in pruned_layers:
        unpruned = step.info["unpruned"]
        np.testing.assert_allclose(np.abs(step.relevance_in).sum(axis=tuple(range(1, unpruned.ndim))),
                                   np.abs(unpruned).sum(axis=tuple(range(1, unpruned.ndim))), rtol=1e-10)


def test_pruning_applies_once_per_vector_at_linear_layer_inputs_never_at_the_model_input():
    model, x = sequence_network(), _inputs((2, 4, 20))
    explanation = explain_pruned(model, x, composite="epsilon_plus", p=0.3, record=True)
    pruned = [step.index for step in explanation.trace if "pruned_mass" in step.info]
    assert pruned == [2, 3, 5, 7, 9]             # MaxPool, Conv, AvgPool, Dense, Dense; not 0, not Pass layers
    # relevance at a ReLU's input is the (already pruned) relevance at its output, reshaped by Flatten
    for index in (1, 4, 6, 8):
        step = explanation.trace[index]
        np.testing.assert_array_equal(step.relevance_in, np.reshape(step.relevance_out, step.a.shape))
    rows = pruning_summary(explanation)
    assert [row["index"] for row in rows] == pruned and all(row["p_pos"] == 0.3 for row in rows)
    only = explain_pruned(model, x, composite="epsilon_plus", p=0.3, layers=[7], record=True)
    assert [step.index for step in only.trace if "pruned_mass" in step.info] == [7]


def test_plrp_m_composite_rule_equals_lrp_on_the_network_with_pruned_activations_zeroed_by_hand():
    """``m_rule="composite"``: lrpcore's PLRP-M before issue 14, the layer's own rule re-run on â."""
    model, x = sequence_network(), _inputs((3, 4, 20))
    composite = lrpcore.composites.epsilon_gamma_box(low=-3.0, high=3.0)
    p, upper_index, lower_index = 0.3, 7, 3
    activations = model.forward(x, record=True)
    # step 1: LRP as usual down to layer 7's input; prune that vector by hand and zero those activations
    plain = lrpcore.explain(model, x, composite=composite)
    keep_upper = np.stack([_reference_keep(r, p, p) for r in plain.layer_relevances[upper_index]])
    zeroed = list(activations)
    zeroed[upper_index] = np.where(keep_upper, activations[upper_index], 0.0)
    # step 2: with that network, LRP down to layer 3's input; prune it by hand too
    once = lrpcore.explain(model, x, composite=composite, activations=zeroed)
    keep_lower = np.stack([_reference_keep(r, p, p) for r in once.layer_relevances[lower_index]])
    zeroed[lower_index] = np.where(keep_lower, activations[lower_index], 0.0)
    by_hand = lrpcore.explain(model, x, composite=composite, activations=zeroed)

    pruned = explain_pruned(model, x, composite=composite, method="m", p=p, layers=[lower_index, upper_index],
                            m_rule="composite")
    np.testing.assert_allclose(pruned.relevance, by_hand.relevance, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(pruned.layer_relevances[upper_index], by_hand.layer_relevances[upper_index],
                               rtol=1e-10, atol=1e-13)
    assert not np.allclose(pruned.relevance, plain.relevance)


def test_plrp_m_on_a_hand_computed_dense_layer():
    # one dense layer on 4 inputs with LRP-0: R_j = â_j w_j / Σ_j' â_j' w_j' · R
    layer = Dense(np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([0.0]))
    model = lrpcore.Sequential([Dense(np.eye(4), np.zeros(4)), ReLU(), layer])
    x = np.array([[1.0, 1.0, 1.0, 1.0]])                       # contributions 1, 2, 3, 4; R = 10
    explanation = explain_pruned(model, x, composite=lrpcore.composites.uniform(Zero()), method="m", p=0.3,
                                 layers=[2], record=True)
    # θ = 2 prunes the inputs with contributions 1 and 2; â = (0, 0, 1, 1), R = 10 shared 3 : 4
    np.testing.assert_allclose(explanation.relevance, [[0, 0, 30 / 7, 40 / 7]])
    info = explanation.trace[2].info
    assert info["theta_pos"][0] == 2.0 and info["pruned_fraction"][0] == pytest.approx(0.3)
    assert info["lambda_pos"][0] == 1.0 and info["method"] == "m"


def test_plrp_m_is_eq_3_5_the_lrp0_form_on_the_masked_activations_whatever_the_composite():
    """Eq. 3.5: R_j = Σ_k â_j w_jk / Σ_j â_j w_jk · R_k with â = 1{kept} ⊙ a; no bias, no ε."""
    top = Dense(np.array([[1.0, 2.0, -1.0, 4.0]]), np.array([0.5]))
    model = lrpcore.Sequential([Dense(np.eye(4), np.zeros(4)), ReLU(), top])
    x = np.ones((1, 4))                                        # contributions 1, 2, −1, 4; f = 6.5
    composite = lrpcore.composites.uniform(lrpcore.rules.Epsilon(0.1))
    explanation = explain_pruned(model, x, composite=composite, method="m", p=0.2, layers=[2], record=True)
    # r̃ ∝ (1, 2, −1, 4): p = 0.2 of the positive mass 7 prunes the 1 (θ⁺ = 1); the lone negative is kept
    assert explanation.trace[2].info["theta_pos"][0] == pytest.approx(1 * 6.5 / (6.5 + 0.1))   # r̃ = z_j R / (z + ε)
    assert explanation.trace[2].info["m_rule"] == "lrp0"
    a_hat, w = np.array([0.0, 1.0, 1.0, 1.0]), top.weight[0]
    expected = a_hat * w / (a_hat * w).sum() * 6.5             # (0, 2.6, −1.3, 5.2): conserved, bias ignored
    np.testing.assert_allclose(explanation.layer_relevances[2], [expected], rtol=1e-12)
    old = explain_pruned(model, x, composite=composite, method="m", p=0.2, layers=[2], m_rule="composite")
    np.testing.assert_allclose(old.layer_relevances[2], [a_hat * w / ((a_hat * w).sum() + 0.5 + 0.1) * 6.5],
                               rtol=1e-12)


def test_plrp_m_by_eq_3_5_equals_the_formula_written_as_loops_on_a_conv_network():
    model, x = sequence_network(), _inputs((2, 4, 20))
    composite = lrpcore.composites.epsilon_plus()
    index, p = 3, 0.3                                            # Conv1d(6→5, k=3, p=1) at index 3
    explanation = explain_pruned(model, x, composite=composite, method="m", p=p, layers=[index], record=True)
    step = explanation.trace[index]
    a, upper = step.a, step.relevance_out
    keep = np.stack([_reference_keep(r, p, p) for r in step.info["unpruned"]])
    a_hat = np.where(keep, a, 0.0)
    conv = model.layers[index]
    weight = conv.weight                                         # (out, in, k), padding 1
    padded = np.pad(a_hat, ((0, 0), (0, 0), (1, 1)))
    expected = np.zeros_like(padded)
    for n in range(a.shape[0]):
        for k_out in range(weight.shape[0]):
            for position in range(a.shape[2]):
                window = padded[n, :, position:position + 3]
                z = (window * weight[k_out]).sum()
                if z != 0:
                    expected[n, :, position:position + 3] += window * weight[k_out] / z * upper[n, k_out, position]
    np.testing.assert_allclose(step.relevance_in, expected[:, :, 1:-1], rtol=1e-9, atol=1e-12)


def _reference_gini_all(values: np.ndarray) -> float:
    return _reference_gini(values) if np.abs(values).sum() > 0 else 0.0


def test_sparsity_gain_is_eq_3_3_on_a_vector_pruned_by_hand():
    v0 = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    # Gini over all five entries: 0.4 → 22/45 → 22/35 → 0.8 as the 1, the 2, the 3 are zeroed
    assert _reference_gini_all(v0[0]) == pytest.approx(0.4)
    steps = [np.array([[0.0, 0.0, 2.0, 3.0, 4.0]]), np.array([[0.0, 0.0, 0.0, 3.0, 4.0]]),
             np.array([[0.0, 0.0, 0.0, 0.0, 4.0]])]
    expected_gains = [10 * (22 / 45 - 0.4) / 1, 10 * (22 / 35 - 22 / 45) / 2, 10 * (0.8 - 22 / 35) / 3]
    before = v0
    for after, gain in zip(steps, expected_gains):
        assert sparsity_gain(v0, before, after)[0] == pytest.approx(gain, rel=1e-12)
        before = after
    for minimum, kept, share in ((0.95, [1, 2, 3, 4], 0.0), (0.8, [2, 3, 4], 0.1), (0.6, [3, 4], 0.3),
                                 (0.5, [4], 0.6), (0.1, [4], 0.6)):   # the largest entry always stays
        kept_pos, kept_neg, theta_pos, _, p_pos, p_neg = sparsity_gain_masks(v0, minimum)
        assert np.flatnonzero(kept_pos[0] & (v0[0] > 0)).tolist() == kept, minimum
        assert p_pos[0] == pytest.approx(share) and p_neg[0] == 0.0
        assert theta_pos[0] == (v0[0][~kept_pos[0]].max() if share else 0.0)


def test_sparsity_gain_search_prunes_each_sign_entry_by_entry_with_its_own_p():
    rng = np.random.default_rng(12)
    relevance = rng.normal(size=(6, 40)) * (rng.random((6, 40)) > 0.3)
    relevance[0, :] = 0.0
    for minimum in (0.3, 0.7, 1.0):
        kept_pos, kept_neg, _, _, p_pos, p_neg = sparsity_gain_masks(relevance, minimum)
        for row in range(6):
            for kept, magnitudes, share in ((kept_pos, np.maximum(relevance[row], 0), p_pos),
                                            (kept_neg, np.maximum(-relevance[row], 0), p_neg)):
                # reference: zero the smallest non-zero entry while Δ_SG (eq. 3.3) ≥ minimum, never the largest
                current, order = magnitudes.copy(), np.argsort(magnitudes, kind="stable")
                for position in order[:-1]:
                    if current[position] == 0:
                        continue
                    trial = current.copy()
                    trial[position] = 0.0
                    gain = magnitudes.sum() * (_reference_gini_all(trial) - _reference_gini_all(current)) \
                        / current[position]
                    if gain < minimum:
                        break
                    current = trial
                np.testing.assert_array_equal(kept[row] & (magnitudes > 0), current > 0)
                total = magnitudes.sum()
                assert share[row] == pytest.approx((total - current.sum()) / total if total else 0.0, abs=1e-12)
        if minimum == 0.3:
            assert p_pos.max() > 0 and not np.allclose(p_pos, p_neg)    # one p per sign


def test_sparsity_gain_records_per_sample_p_where_the_gain_first_drops_below_the_minimum():
    rng = np.random.default_rng(6)
    relevance = rng.normal(size=(7, 60)) * (rng.random((7, 60)) > 0.5)
    relevance[-2] = 0.0                                   # nothing to prune: p = 0
    relevance[-1] = 0.0                                   # p = 0.05 prunes nothing new, p = 0.1 the two 1s
    relevance[-1, :6] = [8.0, 1.0, 1.0, 1.5, 1.5, -0.3]
    step, minimum = 0.05, 1.0
    chosen = sparsity_gain_proportion(relevance, minimum, step=step, max_p=0.95)
    assert chosen[-2] == 0.0 and chosen[-1] == pytest.approx(0.1)
    for row in range(7):
        vector = relevance[row]
        support = np.count_nonzero(vector)

        def support_gini(values):
            return _reference_gini(values[vector != 0]) if support else 0.0

        share, value, expected = 0.0, support_gini(vector), 0.0
        for k in range(1, 20):
            keep = _reference_keep(vector, k * step, k * step)
            new_share = np.abs(vector[~keep]).sum() / max(np.abs(vector).sum(), 1e-300)
            new_value = support_gini(np.where(keep, vector, 0.0))
            if new_share == share:
                continue                                   # nothing new pruned: neither gain nor loss
            if (new_value - value) / (new_share - share) < minimum:
                break
            expected, share, value = k * step, new_share, new_value
        assert chosen[row] == pytest.approx(expected), row
    assert len(set(np.round(chosen, 6))) > 1               # found per sample, not one p for the batch


def test_sparsity_gain_mode_prunes_and_records_the_chosen_p_in_the_trace():
    model, x = sequence_network(), np.abs(_inputs((3, 4, 20)))
    plain = lrpcore.explain(model, x, composite="epsilon_plus")
    grid = explain_pruned(model, x, composite="epsilon_plus", sparsity_gain=1.0, gain_search="grid", record=True)
    infos = [step.info for step in grid.trace if "pruned_mass" in step.info]
    assert infos and all(info["p_pos"].shape == (3,) for info in infos)
    assert any(info["p_pos"].max() > 0 for info in infos)
    np.testing.assert_array_equal(infos[0]["p_pos"], infos[0]["p_neg"])      # the grid search: one p for both
    assert gini(grid.relevance).mean() > gini(plain.relevance).mean()
    paper = explain_pruned(model, x, composite="epsilon_plus", sparsity_gain=0.3, record=True)
    infos = [step.info for step in paper.trace if "pruned_mass" in step.info]
    assert any(info["p_pos"].max() > 0 for info in infos)
    assert any(not np.array_equal(info["p_pos"], info["p_neg"]) for info in infos)   # one p per sign
    for step in paper.trace:
        if "pruned_mass" in step.info:
            expected = sparsity_gain_masks(step.info["unpruned"], 0.3)
            np.testing.assert_allclose(step.info["p_pos"], expected[4], rtol=1e-12)
    assert gini(paper.relevance).mean() > gini(plain.relevance).mean()


def test_plrp_runs_on_array_api_strict_as_on_numpy():
    pytest.importorskip("array_api_strict")
    model, x = sequence_network(), _inputs((2, 4, 20))
    composite = lrpcore.composites.epsilon_gamma_box(low=-3.0, high=3.0)
    for method, options in (("lambda", {"p": 0.2}), ("m", {"p": 0.2}), ("lambda", {"sparsity_gain": 1.0})):
        expected = explain_pruned(model, x, composite=composite, method=method, **options).relevance
        strict = explain_pruned(model.to("array_api_strict"), to_backend(x, "array_api_strict"),
                                composite=composite, method=method, **options)
        np.testing.assert_allclose(to_numpy(strict.relevance), expected, rtol=1e-9, atol=1e-12)


def test_pruning_rejects_bad_settings_with_clear_errors():
    model = sequence_network()
    x = _inputs((1, 4, 20))
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        Pruning(p=1.0)
    with pytest.raises(ValueError, match="p_neg"):
        Pruning(p=0.1, p_neg=-0.2)
    with pytest.raises(ValueError, match="method"):
        Pruning(method="mask")
    with pytest.raises(ValueError, match="not both"):
        Pruning(p=0.1, sparsity_gain=1.0)
    with pytest.raises(ValueError, match="sparsity_gain"):
        Pruning(sparsity_gain=0.0)
    with pytest.raises(ValueError, match="never prunes"):
        Pruning(p=0.1, layers=[0, 3])
    with pytest.raises(ValueError, match=r"layer 4 \(ReLU\(\)\) is not one"):
        explain_pruned(model, x, p=0.1, layers=[4])
    with pytest.raises(ValueError, match="outside the model"):
        explain_pruned(model, x, p=0.1, layers=[12])
    with pytest.raises(ValueError, match="p_pos"):
        prune(np.ones((1, 3)), p_pos=1.5)
    with pytest.raises(ValueError, match="p_neg must hold"):
        prune(np.ones((2, 3)), p_neg=np.array([0.1, 1.0]))
    with pytest.raises(ValueError, match="record=True"):
        pruning_summary(explain_pruned(model, x, p=0.1))
