"""explain's NumPy fast path (the batch cut into one share per thread) gives the serial pass's numbers exactly."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("threadpoolctl", reason="threadpoolctl not installed: explain keeps its serial pass")

import lrpcore  # noqa: E402
from lrpcore import _parallel  # noqa: E402
from lrpcore.composites import Composite, get_composite  # noqa: E402
from lrpcore.layers import Conv2d, Dense  # noqa: E402
from lrpcore.rules import Epsilon, Gamma, Rule, ZBox  # noqa: E402
from _networks import relu_network  # noqa: E402

COMPOSITES = ("zero", "epsilon_gamma_box", "tutorial", "epsilon_plus_flat", "epsilon_alpha2_beta1", "cmp")


@pytest.fixture
def split_calls(monkeypatch):
    """Count the share-parallel steps; ``force(n)`` pretends BLAS may use n threads."""
    calls = []
    original = _parallel.BatchSplit.run

    def counting(self, work):
        calls.append(len(self.shares))
        return original(self, work)

    monkeypatch.setattr(_parallel.BatchSplit, "run", counting)

    def force(threads: int) -> list[int]:
        monkeypatch.setattr(_parallel, "_blas_threads", lambda: threads)
        calls.clear()
        return calls

    return force


def _inputs(batch: int, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(batch, 3, 8, 8)).astype(dtype)


@pytest.mark.parametrize("name", COMPOSITES)
def test_split_batch_gives_the_serial_numbers_exactly(name, split_calls):
    model = relu_network(seed=2, dtype=np.float32)
    x = _inputs(5)
    settings = {"low": -3.0, "high": 3.0} if name == "epsilon_gamma_box" else {}
    calls = split_calls(1)
    serial = lrpcore.explain(model, x, composite=get_composite(name, **settings))
    assert calls == []
    calls = split_calls(2)
    split = lrpcore.explain(model, x, composite=get_composite(name, **settings))
    assert calls and set(calls) == {2}                 # the fast path ran, in two shares
    for ours, reference in zip(split.layer_relevances, serial.layer_relevances):
        np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(split.logits, serial.logits)
    np.testing.assert_array_equal(split.zero_denominators, serial.zero_denominators)
    np.testing.assert_array_equal(split.near_zero_denominators, serial.near_zero_denominators)


def test_three_shares_and_uneven_batches_agree(split_calls):
    model = relu_network(seed=3, dtype=np.float64)
    x = _inputs(7, np.float64)
    split_calls(1)
    serial = lrpcore.explain(model, x, composite="epsilon_gamma_box", target=[0, 1, 2, 3, 4, 0, 1])
    calls = split_calls(3)
    split = lrpcore.explain(model, x, composite="epsilon_gamma_box", target=[0, 1, 2, 3, 4, 0, 1])
    assert set(calls) == {3}
    np.testing.assert_array_equal(split.relevance, serial.relevance)


def test_batch_wide_stabilizers_trace_and_foreign_rules_keep_the_serial_pass(split_calls):
    model = relu_network(seed=4, dtype=np.float32)
    x = _inputs(4)
    calls = split_calls(2)
    lrpcore.explain(model, x, composite="tutorial", stabilizer="quadratic_mean_batch")   # RMS over the batch
    lrpcore.explain(model, x, composite="zero", record=True)                          # the trace keeps arrays
    lrpcore.explain(model, x[:1], composite="zero")                                   # one sample

    class Doubling(Epsilon):                        # a rule lrpcore does not know
        pass

    lrpcore.explain(model, x, composite=Composite(by_type={Conv2d: Doubling(0.1), Dense: Epsilon(0.1)}))
    per_sample_box = ZBox(np.zeros((4, 3, 8, 8), np.float32), np.ones((4, 3, 8, 8), np.float32))
    lrpcore.explain(model, x, composite=Composite(by_index={0: per_sample_box}))
    assert calls == []
    lrpcore.explain(model, x, composite="tutorial")                                   # per-sample RMS: splits
    assert calls


def test_per_sample_names_what_may_be_split():
    assert Gamma(0.25, symmetric=True).per_sample
    assert ZBox(-1.0, 1.0).per_sample and ZBox(np.zeros((1, 3, 1, 1)), 1.0).per_sample
    assert not ZBox(np.zeros((2, 3, 1, 1)), 1.0).per_sample
    assert not Epsilon(0.1, stabilizer="quadratic_mean_batch").per_sample
    assert not Epsilon(0.1, stabilizer=lambda z, eps: z + eps).per_sample

    class Custom(Rule):
        pass

    assert not Custom().per_sample


def test_split_forward_reports_shape_errors_like_the_serial_forward(split_calls):
    from lrpcore import Sequential

    model = relu_network(seed=5, dtype=np.float32)
    broken = Sequential(model.layers[:3] + model.layers[:1])        # layer 3: Conv2d(3→4) gets 4 channels
    split_calls(1)
    with pytest.raises(lrpcore.ShapeError) as serial:
        lrpcore.explain(broken, _inputs(4), composite="zero")
    split_calls(2)
    with pytest.raises(lrpcore.ShapeError) as split:
        lrpcore.explain(broken, _inputs(4), composite="zero")
    assert str(split.value) == str(serial.value) and str(serial.value).startswith("layer 3 (Conv2d")


@pytest.fixture
def block_calls(monkeypatch):
    """Count the blocks run on the worker threads when the batch is not cut."""
    calls = []
    original = _parallel.BlockRunner.map

    def counting(self, work, items):
        calls.append(len(items))
        return original(self, work, items)

    monkeypatch.setattr(_parallel.BlockRunner, "map", counting)
    return calls


@pytest.mark.parametrize("batch, record", [(1, False), (3, True)])
def test_convolution_blocks_on_threads_give_the_serial_numbers(batch, record, split_calls, block_calls):
    model = relu_network(seed=6, dtype=np.float64)
    x = _inputs(batch, np.float64)
    split_calls(1)
    serial = lrpcore.explain(model, x, composite="epsilon_gamma_box", record=record)
    assert block_calls == []
    split_calls(2)
    threaded = lrpcore.explain(model, x, composite="epsilon_gamma_box", record=record)
    assert block_calls and min(block_calls) >= 2         # row blocks and channel groups ran on the threads
    for ours, reference in zip(threaded.layer_relevances, serial.layer_relevances):
        np.testing.assert_array_equal(ours, reference)
    assert (threaded.trace is None) == (not record)


def test_outside_explain_blocks_run_on_the_shared_pool_only_from_the_main_thread(split_calls, block_calls):
    """model.forward: explain's runner is gone, the main thread's convolutions use the shared pool when BLAS
    may use two threads (same numbers as serial), other threads and one BLAS thread run blocks serially."""
    import threading

    model = relu_network(seed=7, dtype=np.float32)
    x = _inputs(1)
    split_calls(1)
    serial = model.forward(x)
    assert _parallel.block_runner() is None and block_calls == []
    split_calls(2)
    pooled = model.forward(x)
    assert block_calls and min(block_calls) >= 2
    np.testing.assert_array_equal(pooled, serial)
    block_calls.clear()
    found = []
    worker = threading.Thread(target=lambda: found.append(model.forward(x)))
    worker.start()
    worker.join()
    assert block_calls == []
    np.testing.assert_array_equal(found[0], serial)
