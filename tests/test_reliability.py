"""Issue 13, "Nothing lost, nothing hangs": one test (or more) per defect found by trying to break lrpcore.

Each test is named after the item of the issue it covers (``test_itemNN_...``). A full disk is simulated
two ways: by making ``os.write`` raise ``ENOSPC`` for chosen files (always runs; lrpcore writes every
output through ``os.write``), and on a real, tiny tmpfs (runs where this process may mount one, e.g. as
root in a container; skipped with the reason otherwise). Loads that used to hang or to allocate
gigabytes run in a subprocess with a timeout and an address-space limit, so a regression fails the
test instead of hanging or swapping the machine.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import lrpcore
from lrpcore import ModelMetadata, Sequential
from lrpcore.errors import LRPError, ModelFormatError
from lrpcore.layers import Dense, Dropout, Flatten

from io_helpers import every_layer_model, set_attribute, write_keras2

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models"
ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"
#: The small sweep of these tests: 4 configurations × 6 images in tasks of 2 × 2, so 6 tasks of 12 rows.
SWEEP_IMAGES, SWEEP_TASKS, SWEEP_ROWS = 6, 6, 4 * 6 * 3


# --- helpers ----------------------------------------------------------------------------------------------
def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@contextlib.contextmanager
def disk_full(monkeypatch, when, room: int = 0):
    """``os.write`` to a file whose path satisfies ``when(path)`` writes ``room`` bytes in all, then ENOSPC."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file a descriptor writes")
    real_write = os.write
    state = {"written": 0, "failures": 0}

    def write(fd, data):
        if when(_fd_path(fd)):
            left = room - state["written"]
            if left <= 0:
                state["failures"] += 1
                raise OSError(errno.ENOSPC, ENOSPC_TEXT)
            done = real_write(fd, bytes(data[:left]))
            state["written"] += done
            return done
        return real_write(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        yield state


def _temporary_leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp") or ".tmp." in name)


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs mounted for this test (skipped where mounting is not allowed)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs a tmpfs mount: Linux, root, and the mount command")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_disk(mount: Path, leave: int) -> Path:
    """Fill ``mount`` with one file until only about ``leave`` bytes are free; returns that file."""
    filler = mount / "filler"
    stats = os.statvfs(mount)
    free = stats.f_bavail * stats.f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def run_python(code: str, timeout: float = 120, memory_limit: int | None = 3 * 2**30,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this checkout first on the path), under an address-space limit."""
    prelude = ""
    if memory_limit is not None:
        prelude = (f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({memory_limit}, {memory_limit}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def load_in_subprocess(path: Path, timeout: float = 120) -> str:
    """``lrpcore.load(path)`` in a subprocess: returns "ModelFormatError: <message>" (or what else happened)."""
    done = run_python(f"""
        import lrpcore
        try:
            lrpcore.load({str(path)!r})
            print("LOADED")
        except Exception as error:
            print(f"{{type(error).__name__}}: {{error}}")
    """, timeout=timeout)
    return (done.stdout + done.stderr).strip() + (f" [exit {done.returncode}]" if done.returncode else "")


def small_sweep_options(out: Path | None) -> dict:
    from lrpcore.composites import tutorial as tutorial_composite

    class Factory:  # picklable enough for the serial executor, and named like the preset
        name = "tutorial"

        def __init__(self):
            self.calls = 0
            self.before_call = None  # a test's hook, called with the call number

        def __call__(self, gamma, epsilon):
            self.calls += 1
            if self.before_call is not None:
                self.before_call(self.calls)
            return tutorial_composite(gamma=gamma, epsilon=epsilon)

    return dict(composite=Factory(), params={"gamma": (0.0, 0.25), "epsilon": (0.01, 0.25)},
                evaluation={"patch_size": 4, "batch_size": 16}, config_block=2, image_block=2, progress=False,
                out=out)


@pytest.fixture(scope="module")
def sweep_inputs():
    from test_sweep import five_conv_network

    images = np.random.default_rng(5).uniform(0, 1, size=(SWEEP_IMAGES, 3, 16, 16)).astype(np.float32)
    return five_conv_network(), images


@pytest.fixture(scope="module")
def sweep_reference(sweep_inputs):
    from lrpcore.sweep import grid

    model, images = sweep_inputs
    return grid(model, images, **small_sweep_options(None))


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def _assert_same_table(first, second) -> None:
    assert set(first.table) == set(second.table)
    for name in first.table:
        if first.table[name].dtype == object:
            assert first.table[name].tolist() == second.table[name].tolist(), name
        else:
            np.testing.assert_array_equal(first.table[name], second.table[name], err_msg=name)


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "model.h5"
    lrpcore.save(every_layer_model(), path)
    return path


def _cli(argv: list[str]) -> int:
    from lrpcore.cli import main

    return main(argv)


# --- 1. full disk during a sweep's append -------------------------------------------------------------------
def test_item01_full_disk_during_sweep_append_leaves_no_duplicates(tmp_path, monkeypatch, sweep_inputs,
                                                                   sweep_reference):
    from lrpcore.sweep import grid

    model, images = sweep_inputs
    out = tmp_path / "run"
    # tasks of 2 configurations × 2 images × 3 sorts = 12 rows each; the disk fills in the middle of the third
    grid(model, images, **small_sweep_options(tmp_path / "probe"))
    probe = (tmp_path / "probe" / "results.csv").read_text()
    header = len(probe.splitlines()[0]) + 1
    task_bytes = (len(probe) - header) // SWEEP_TASKS
    with disk_full(monkeypatch, lambda path: path.endswith("results.csv"),
                   room=header + 2 * task_bytes + task_bytes // 2) as state:
        with pytest.raises(OSError) as failure:
            grid(model, images, **small_sweep_options(out))
    assert state["failures"] >= 1
    assert failure.value.errno == errno.ENOSPC and "results.csv" in str(failure.value)
    result = grid(model, images, **small_sweep_options(out))
    rows = _rows(out / "results.csv")
    keys = [tuple(row.split(",")[i] for i in (0, 3, 5)) for row in rows]  # config, image, sort
    assert len(keys) == len(set(keys)) == SWEEP_ROWS
    _assert_same_table(result, sweep_reference)


def test_item01_real_full_disk_during_sweep_then_resume_gives_the_uninterrupted_table(tiny_disk, tmp_path,
                                                                                        sweep_inputs, sweep_reference):
    from lrpcore.sweep import grid

    model, images = sweep_inputs
    grid(model, images, **small_sweep_options(tmp_path / "probe"))
    probe = (tmp_path / "probe" / "results.csv").read_text()
    task_bytes = (len(probe) - len(probe.splitlines()[0]) - 1) // SWEEP_TASKS
    out = tiny_disk / "run"
    options = small_sweep_options(out)
    page = os.statvfs(tiny_disk).f_frsize
    filled = []

    def fill_before_a_task_that_needs_a_new_page(call: int) -> None:
        # tmpfs hands out whole pages: fill the disk just before the first task whose rows cross into a new page
        results = out / "results.csv"
        if not filled and call % 2 == 1 and results.exists() and results.stat().st_size % page + task_bytes > page:
            filled.append(fill_disk(tiny_disk, leave=0))

    options["composite"].before_call = fill_before_a_task_that_needs_a_new_page
    with pytest.raises(OSError) as failure:
        grid(model, images, **options)
    assert filled and failure.value.errno == errno.ENOSPC and "results.csv" in str(failure.value)
    filled[0].unlink()
    result = grid(model, images, **small_sweep_options(out))
    rows = _rows(out / "results.csv")
    assert len(rows) == len(set(rows)) == SWEEP_ROWS
    _assert_same_table(result, sweep_reference)
    assert _temporary_leftovers(out) == []


# --- 2. two sweeps into one folder ----------------------------------------------------------------------------
def test_item02_second_sweep_into_a_locked_folder_is_refused_naming_the_holder(tmp_path, sweep_inputs):
    from lrpcore.sweep import grid

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from lrpcore.sweep.store import SweepStore
        store = SweepStore({str(out)!r}, ["gamma", "epsilon"])
        store.open({{"held": "by a test"}})
        print("holding", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    try:
        assert holder.stdout.readline().strip() == "holding"
        model, images = sweep_inputs
        with pytest.raises(LRPError) as refused:
            grid(model, images, **small_sweep_options(out))
        message = str(refused.value)
        assert "in use by another sweep" in message and f"pid {holder.pid}" in message
        assert socket.gethostname() in message
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: the OS released its lock), so the folder can be used again
    result = grid(*sweep_inputs, **{**small_sweep_options(out), "restart": True})
    assert len(result) == SWEEP_ROWS


# --- 3. "overwrite": "false" ------------------------------------------------------------------------------------
@pytest.fixture()
def sweep_config(tmp_path):
    from test_sweep import five_conv_network

    lrpcore.save(five_conv_network(), tmp_path / "model.h5")
    np.save(tmp_path / "raw.npy", np.random.default_rng(3).uniform(0, 1, size=(2, 3, 16, 16)))
    config = {"model": "model.h5", "data": {"npy": "raw.npy"}, "target": "pred", "composite": "tutorial",
              "grid": {"values": [0, 0.25]}, "evaluation": {"patch_size": 4}, "out": str(tmp_path / "out")}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    return path


def _edit_config(path: Path, **changes) -> None:
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_item03_overwrite_given_as_a_string_is_refused_and_keeps_the_other_sweep(sweep_config, tmp_path, capsys):
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 0
    stored = (tmp_path / "out" / "results.csv").read_bytes()
    _edit_config(sweep_config, grid={"values": [0, 0.5]}, overwrite="false")  # a different sweep
    capsys.readouterr()
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 1
    error = capsys.readouterr().err
    assert "'overwrite' must be true or false" in error and "'false'" in error
    assert (tmp_path / "out" / "results.csv").read_bytes() == stored


@pytest.mark.parametrize("key,value,message", [
    ("workers", "two", "'workers' must be a positive integer"),
    ("workers", 2.5, "'workers' must be a positive integer"),
    ("config_block", "16", "'config_block' must be a positive integer"),
    ("image_block", True, "'image_block' must be a positive integer"),
    ("executor", "threads", "'executor' must be"),
    ("out", 3, "'out' must be a string"),
    ("evaluation", [1], "'evaluation' must be a mapping"),
])
def test_item03_sweep_config_values_are_typed_strictly(sweep_config, capsys, key, value, message):
    _edit_config(sweep_config, **{key: value})
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 1
    assert message in capsys.readouterr().err


# --- 4. --overwrite with a failed write ---------------------------------------------------------------------------
def test_item04_explain_overwrite_on_a_full_disk_keeps_the_old_heatmap(tmp_path, monkeypatch, capsys):
    out = tmp_path / "heat.png"
    model = str(SHIPPED / "digits_cnn.h5")
    assert _cli(["explain", model, "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    with disk_full(monkeypatch, lambda path: path.startswith(str(tmp_path)), room=100):
        assert _cli(["explain", model, "--seed", "3", "--out", str(out), "--overwrite"]) == 1
    error = capsys.readouterr().err
    assert ENOSPC_TEXT in error and "heat.png" in error
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["heat.png"]


def test_item04_explain_batch_overwrite_failing_midway_leaves_the_previous_set(tmp_path, monkeypatch, capsys):
    out = tmp_path / "heat.png"
    model = str(SHIPPED / "digits_cnn.h5")
    assert _cli(["explain", model, "--samples", "3", "--out", str(out)]) == 0
    names = ["heat_000.png", "heat_001.png", "heat_002.png"]
    before = {name: (tmp_path / name).read_bytes() for name in names}
    with disk_full(monkeypatch, lambda path: "heat_002" in path):  # the first two would fit
        assert _cli(["explain", model, "--samples", "3", "--seed", "4", "--out", str(out), "--overwrite"]) == 1
    assert ENOSPC_TEXT in capsys.readouterr().err
    assert {name: (tmp_path / name).read_bytes() for name in names} == before  # not a mix of two runs
    assert _temporary_leftovers(tmp_path) == []


def test_item04_explain_overwrite_on_a_real_full_disk_keeps_the_old_heatmap(tiny_disk, capsys):
    out = tiny_disk / "heat.png"
    model = str(SHIPPED / "digits_cnn.h5")
    assert _cli(["explain", model, "--out", str(out)]) == 0
    before = out.read_bytes()
    fill_disk(tiny_disk, leave=0)
    capsys.readouterr()
    assert _cli(["explain", model, "--seed", "3", "--out", str(out), "--overwrite"]) == 1
    assert ENOSPC_TEXT in capsys.readouterr().err
    assert out.read_bytes() == before
    assert _temporary_leftovers(tiny_disk) == []


@pytest.fixture()
def evaluate_setup(tmp_path):
    from test_sweep import five_conv_network

    lrpcore.save(five_conv_network(), tmp_path / "model.h5")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).uniform(0, 1, size=(3, 3, 16, 16)))
    return tmp_path


def _evaluate(folder: Path, *extra: str) -> int:
    return _cli(["evaluate", str(folder / "model.h5"), str(folder / "x.npy"), "--patch-size", "4", "--mode",
                 "constant", "--out", str(folder / "pf"), *extra])


def test_item04_evaluate_overwrite_failing_midway_leaves_the_previous_results(evaluate_setup, monkeypatch, capsys):
    folder = evaluate_setup
    assert _evaluate(folder) == 0
    pf = folder / "pf"
    before = {name: (pf / name).read_bytes() for name in ("curve.png", "steps.png", "per_image.csv",
                                                           "results.json")}
    with disk_full(monkeypatch, lambda path: "results.json" in path):
        assert _evaluate(folder, "--seed", "5", "--sort", "morf", "lrf", "--overwrite") == 1
    assert "results.json" in capsys.readouterr().err
    assert {name: (pf / name).read_bytes() for name in before} == before
    assert _temporary_leftovers(pf) == []


# --- 5. sweep plots and the user's own files ---------------------------------------------------------------------
def test_item05_sweep_never_replaces_a_plot_name_it_did_not_write(sweep_config, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "contour_morf.png").write_bytes(b"the user's own picture")
    assert _cli(["sweep", str(sweep_config), "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert "contour_morf.png" in error and "not written by" in error
    assert (out / "contour_morf.png").read_bytes() == b"the user's own picture"
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--overwrite"]) == 1  # --overwrite is no licence
    assert (out / "contour_morf.png").read_bytes() == b"the user's own picture"
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 0  # the table alone is fine


def test_item05_sweep_rerun_replaces_its_own_plots(sweep_config, tmp_path):
    assert _cli(["sweep", str(sweep_config), "--no-progress"]) == 0
    out = tmp_path / "out"
    os.utime(out / "contour_morf.png", (0, 0))
    assert _cli(["sweep", str(sweep_config), "--no-progress"]) == 0  # resume: its own plots are redrawn
    assert (out / "contour_morf.png").stat().st_mtime > 10**9


# --- 6. 16-bit PNG input ------------------------------------------------------------------------------------------
def test_item06_16bit_png_is_scaled_by_65535_and_announced(tmp_path, capsys):
    from PIL import Image

    from lrpcore.cli.explain import read_input

    model = lrpcore.load(SHIPPED / "digits_cnn.h5")
    pixels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 535).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit grey PNG
    values = read_input(str(path), model)
    np.testing.assert_allclose(values[0, 0], pixels / 65535.0, rtol=0, atol=1e-6)
    assert "scaled by 1/65535" in capsys.readouterr().err


def test_item06_16bit_colour_png_is_read_at_full_depth(tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    from lrpcore.cli.explain import read_input

    model = Sequential([Flatten(), Dense(np.zeros((2, 3 * 8 * 8), np.float32), np.zeros(2, np.float32))],
                       ModelMetadata(input_shape=(3, 8, 8), value_range=(0.0, 2.0)))
    rgb = np.random.default_rng(0).integers(0, 65536, size=(8, 8, 3), dtype=np.uint16)
    path = tmp_path / "colour.png"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    values = read_input(str(path), model)
    np.testing.assert_allclose(values[0], 2.0 * rgb.transpose(2, 0, 1) / 65535.0, atol=1e-6)
    note = capsys.readouterr().err
    assert "16-bit image scaled by 1/65535 and mapped to the model's value range [0, 2]" in note


def test_item06_stability_reads_16bit_images_into_the_value_range_and_announces_the_resize(tmp_path, capsys):
    from PIL import Image

    from lrpcore.cli.stability import _read_input

    model = Sequential([Flatten(), Dense(np.zeros((2, 16), np.float32), np.zeros(2, np.float32))],
                       ModelMetadata(input_shape=(1, 4, 4)))
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "white.png")
    values = _read_input(str(tmp_path / "white.png"), model, preprocessed=False)
    np.testing.assert_allclose(values, np.ones((1, 1, 4, 4)), atol=1e-6)  # white stays 1, not clipped or 1/255
    note = capsys.readouterr().err
    assert "scaled by 1/65535" in note and "resized from 8x8 to 4x4" in note


def test_item06_8bit_png_scaling_is_announced(tmp_path, capsys):
    from PIL import Image

    from lrpcore.cli.explain import read_input

    model = lrpcore.load(SHIPPED / "digits_cnn.h5")
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    values = read_input(str(tmp_path / "grey.png"), model)
    np.testing.assert_allclose(values[0, 0], pixels / 255.0, atol=1e-6)
    assert "scaled by 1/255" in capsys.readouterr().err


# --- 7. out-of-range raw inputs -------------------------------------------------------------------------------------
def test_item07_evaluate_refuses_raw_inputs_outside_the_value_range(evaluate_setup, capsys):
    folder = evaluate_setup
    np.save(folder / "x.npy", np.random.default_rng(1).uniform(0, 255, size=(3, 3, 16, 16)))  # unscaled
    assert _evaluate(folder) == 1
    error = capsys.readouterr().err
    assert "outside the model's raw value range [0, 1]" in error and "--allow-out-of-range" in error
    assert not (folder / "pf" / "results.json").exists()
    assert _evaluate(folder, "--allow-out-of-range") == 0


def test_item07_stability_refuses_raw_inputs_outside_the_value_range(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 255, size=(1, 3, 32, 32)))
    argv = ["stability", "linear_bottleneck", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s"),
            "--stabilizers", "zennit", "--dtypes", "float64"]
    assert _cli(argv) == 1
    error = capsys.readouterr().err
    assert "outside the model's raw value range [0, 1]" in error and "--allow-out-of-range" in error
    assert _cli(argv + ["--allow-out-of-range"]) == 0


def test_item07_sweep_refuses_raw_npy_data_outside_the_value_range(sweep_config, tmp_path, capsys):
    np.save(tmp_path / "raw.npy", np.random.default_rng(3).uniform(0, 255, size=(2, 3, 16, 16)))
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 1
    error = capsys.readouterr().err
    assert "outside the model's raw value range [0, 1]" in error and "allow_out_of_range" in error
    _edit_config(sweep_config, data={"npy": "raw.npy", "allow_out_of_range": True})
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 0


def test_item07_uint8_arrays_are_scaled_into_the_value_range_with_a_note(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, size=(1, 3, 32, 32), dtype=np.uint8))
    assert _cli(["stability", "linear_bottleneck", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s"),
                 "--stabilizers", "zennit", "--dtypes", "float64"]) == 0
    assert "uint8 input scaled by 1/255" in capsys.readouterr().err


# --- 8. overflowing models ------------------------------------------------------------------------------------------
def test_item08_explain_of_an_overflowing_model_raises_naming_the_layer():
    big = np.full((4, 4), 3e38, dtype=np.float32)
    model = Sequential([Dense(big, np.zeros(4, np.float32)), Dense(big, np.zeros(4, np.float32))],
                       ModelMetadata(input_shape=(4,)))
    with pytest.raises(lrpcore.NonFiniteError, match=r"not finite from layer 0 \(Dense\(4→4\)\)"):
        lrpcore.explain(model, np.ones((1, 4), np.float32), target=0)


# --- 9. data from outside the file ----------------------------------------------------------------------------------
def test_item09_external_storage_is_refused(model_file, tmp_path):
    secret = tmp_path / "secret.bin"
    with h5py.File(model_file, "r") as handle:
        weight = handle["layers/0/weight"][()]
    secret.write_bytes(weight.tobytes())
    with h5py.File(model_file, "r+") as handle:
        del handle["layers/0/weight"]
        handle["layers/0"].create_dataset("weight", shape=weight.shape, dtype=weight.dtype,
                                          external=[(str(secret), 0, weight.nbytes)])
    with pytest.raises(ModelFormatError, match="external storage"):
        lrpcore.load(model_file)


def test_item09_external_link_to_another_model_is_refused(model_file, tmp_path):
    other = tmp_path / "other.h5"
    lrpcore.save(every_layer_model(seed=1), other)
    with h5py.File(model_file, "r+") as handle:
        del handle["layers/0"]
        handle["layers/0"] = h5py.ExternalLink(str(other), "/layers/0")
    with pytest.raises(ModelFormatError, match="external link"):
        lrpcore.load(model_file)


def test_item09_virtual_dataset_and_soft_link_are_refused(model_file, tmp_path):
    other = tmp_path / "other.h5"
    lrpcore.save(every_layer_model(seed=1), other)
    with h5py.File(model_file, "r+") as handle:
        shape, dtype = handle["layers/0/weight"].shape, handle["layers/0/weight"].dtype
        del handle["layers/0/weight"]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(other), "layers/0/weight", shape=shape)
        handle["layers/0"].create_virtual_dataset("weight", layout)
    with pytest.raises(ModelFormatError, match="virtual dataset"):
        lrpcore.load(model_file)
    lrpcore.save(every_layer_model(), model_file, overwrite=True)
    with h5py.File(model_file, "r+") as handle:
        handle["layers/1"].move("bias", "bias_data")
        handle["layers/1/bias"] = h5py.SoftLink("/layers/1/bias_data")
    with pytest.raises(ModelFormatError, match="link"):
        lrpcore.load(model_file)


# --- 10. stability --overwrite ------------------------------------------------------------------------------------
def test_item10_stability_overwrite_removes_the_previous_runs_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "two.npy", rng.uniform(0, 1, size=(2, 3, 32, 32)))
    np.save(tmp_path / "one.npy", rng.uniform(0, 1, size=(1, 3, 32, 32)))
    out = tmp_path / "s"
    assert _cli(["stability", "linear_bottleneck", str(tmp_path / "two.npy"), "--out", str(out), "--stabilizers",
                 "vanilla", "zennit", "--epsilons", "0.01", "0.1", "0.25", "--dtypes", "float64"]) == 0
    assert (out / "diagnosis.txt").exists() and (out / "heatmaps_sample1.png").exists()
    (out / "notes.txt").write_text("the user's notes")
    capsys.readouterr()
    assert _cli(["stability", "linear_bottleneck", str(tmp_path / "one.npy"), "--out", str(out), "--stabilizers",
                 "zennit", "--dtypes", "float64", "--overwrite"]) == 0
    assert "0 unstable heatmap(s)" in capsys.readouterr().out
    visible = sorted(name for name in os.listdir(out) if not name.startswith("."))
    assert visible == ["comparison.csv", "comparison.txt", "heatmaps_sample0.png", "notes.txt",
                       "profiles_sample0.png"]
    assert (out / "notes.txt").read_text() == "the user's notes"


# --- 11. save / convert on a full disk --------------------------------------------------------------------------------
def _big_model() -> Sequential:
    rng = np.random.default_rng(0)
    return Sequential([Flatten(), Dense(rng.normal(size=(64, 1024)).astype(np.float32), np.zeros(64, np.float32))],
                      ModelMetadata(input_shape=(1, 32, 32), name="big"))


def test_item11_save_on_a_full_disk_raises_naming_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    lrpcore.save(every_layer_model(), path)
    before = path.read_bytes()
    with disk_full(monkeypatch, lambda name: name.startswith(str(tmp_path)), room=5000):
        with pytest.raises(OSError) as failure:
            lrpcore.save(_big_model(), path, overwrite=True)
    assert failure.value.errno == errno.ENOSPC and "model.h5" in str(failure.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]


def test_item11_convert_on_a_full_disk_is_one_error_line(tmp_path, monkeypatch, capsys):
    lrpcore.save(_big_model(), tmp_path / "source.h5")
    with disk_full(monkeypatch, lambda name: "copy.h5" in name, room=3000):
        assert _cli(["convert", str(tmp_path / "source.h5"), str(tmp_path / "copy.h5")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("lrpcore: error:") and ENOSPC_TEXT in error and "copy.h5" in error
    assert sorted(os.listdir(tmp_path)) == ["source.h5"]


def test_item11_save_and_convert_on_a_real_full_disk_do_not_crash(tiny_disk, tmp_path):
    lrpcore.save(_big_model(), tmp_path / "source.h5")
    fill_disk(tiny_disk, leave=64 * 1024)  # the model needs about 260 KiB
    done = run_python(f"""
        import lrpcore
        from test_reliability import _big_model
        try:
            lrpcore.save(_big_model(), {str(tiny_disk / "model.h5")!r})
            print("SAVED")
        except OSError as error:
            print("ERROR", error)
    """)
    assert done.returncode == 0, done.stderr[-2000:]  # a segfault gives -11
    assert "ERROR" in done.stdout and ENOSPC_TEXT in done.stdout and "model.h5" in done.stdout
    done = run_python(f"""
        import sys
        from lrpcore.cli import main
        sys.exit(main(["convert", {str(tmp_path / "source.h5")!r}, {str(tiny_disk / "copy.h5")!r}]))
    """)
    assert done.returncode == 1 and ENOSPC_TEXT in done.stderr
    assert sorted(os.listdir(tiny_disk)) == ["filler"]


# --- 12. loads that hang ------------------------------------------------------------------------------------------------
def test_item12_load_of_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "model.h5"
    os.mkfifo(fifo)
    result = load_in_subprocess(fifo, timeout=60)
    assert result.startswith("ModelFormatError") and "not a regular file" in result and "FIFO" in result
    done = run_python(f"""
        import sys
        from lrpcore.cli import main
        sys.exit(main(["inspect", {str(fifo)!r}]))
    """, timeout=60)
    assert done.returncode == 1 and "not a regular file" in done.stderr


def test_item12_layer_count_of_2_to_the_62_is_refused(model_file):
    set_attribute(model_file, "layers", "count", np.int64(2**62))
    result = load_in_subprocess(model_file, timeout=60)
    assert result.startswith("ModelFormatError") and "count" in result


def _damage_global_heap(path: Path) -> None:
    """Zero the size of the free-space object of the file's first global heap collection ("GCOL")."""
    data = bytearray(path.read_bytes())
    start = data.find(b"GCOL")
    assert start >= 0, "no global heap in the file"
    end = start + int.from_bytes(data[start + 8:start + 16], "little")  # collection size
    position = start + 16
    while position + 16 <= min(end, len(data)):  # objects: index (2), references (2), reserved (4), size (8), data
        index = int.from_bytes(data[position:position + 2], "little")
        size = int.from_bytes(data[position + 8:position + 16], "little")
        if index == 0:  # the free-space object
            data[position + 8:position + 16] = bytes(8)
            path.write_bytes(bytes(data))
            return
        position += 16 + (size + 7) // 8 * 8
    pytest.fail("the global heap has no free-space object where expected")


def test_item12_variable_length_strings_are_refused_before_the_global_heap_is_read(model_file):
    with h5py.File(model_file, "r+") as handle:
        handle["layers/0"].attrs["type"] = "Conv2d"  # a Python str: h5py writes a variable-length string
    with pytest.raises(ModelFormatError, match="variable-length string"):
        lrpcore.load(model_file)
    _damage_global_heap(model_file)  # reading that string now loops for ever inside HDF5
    result = load_in_subprocess(model_file, timeout=60)
    assert result.startswith("ModelFormatError") and "variable-length string" in result


# --- 13. memory --------------------------------------------------------------------------------------------------------
def _dense_keras_config(features: int, units: int) -> dict:
    return {"class_name": "Sequential", "config": {"name": "bomb", "layers": [
        {"class_name": "InputLayer", "config": {"name": "input", "batch_input_shape": [None, features]}},
        {"class_name": "Dense", "config": {"name": "dense", "units": units, "use_bias": True,
                                           "activation": "linear"}}]}}


def _load_keras_in_subprocess(path: Path) -> str:
    done = run_python(f"""
        from lrpcore.io import load_keras
        try:
            load_keras({str(path)!r})
            print("LOADED")
        except Exception as error:
            print(f"{{type(error).__name__}}: {{error}}")
    """, memory_limit=2 * 2**30, timeout=120)
    return (done.stdout + done.stderr).strip() + (f" [exit {done.returncode}]" if done.returncode else "")


def test_item13_small_keras_file_declaring_a_huge_kernel_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as handle:  # the kernel is declared, never written: HDF5 returns fill values
        root = handle.create_group("model_weights")
        handle.attrs["model_config"] = json.dumps(_dense_keras_config(30000, 30000))
        root.attrs["layer_names"] = np.array([b"input", b"dense"])
        root.create_group("input").attrs["weight_names"] = np.array([], dtype="S1")
        group = root.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        group.create_dataset("dense/kernel:0", shape=(30000, 30000), dtype="float32")
        group.create_dataset("dense/bias:0", data=np.zeros(30000, np.float32))
    assert path.stat().st_size < 200_000
    result = _load_keras_in_subprocess(path)
    assert result.startswith("ModelFormatError") and "stored" in result and "dense" in result


def test_item13_gzip_bomb_in_a_keras_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "gzip.h5"
    config = _dense_keras_config(4096, 4096)
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights")
        handle.attrs["model_config"] = json.dumps(config)
        root.attrs["layer_names"] = np.array([b"input", b"dense"])
        root.create_group("input").attrs["weight_names"] = np.array([], dtype="S1")
        group = root.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        kernel = group.create_dataset("dense/kernel:0", shape=(4096, 4096), dtype="float32", compression="gzip",
                                      chunks=(1024, 1024))
        zeros = np.zeros((1024, 4096), np.float32)
        for row in range(0, 4096, 1024):
            kernel[row:row + 1024] = zeros
        group.create_dataset("dense/bias:0", data=np.zeros(4096, np.float32))
    assert path.stat().st_size < 1_000_000  # 64 MiB of weights in under 1 MB (a 1000:1 ratio scales to GBs)
    result = _load_keras_in_subprocess(path)
    assert result.startswith("ModelFormatError") and "compressed" in result


def test_item13_keras_archive_inflating_far_beyond_its_size_is_refused(tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(_dense_keras_config(4, 2)))
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(160):  # 160 MiB of zeros in a zip of about 160 KB
                member.write(block)
    assert path.stat().st_size < 2_000_000
    result = _load_keras_in_subprocess(path)
    assert result.startswith("ModelFormatError") and "model.weights.h5" in result and "limit" in result


def test_item13_native_conv_padding_of_15000_is_refused_before_the_validation_pass(tmp_path):
    from lrpcore.layers import Conv2d

    model = Sequential([Conv2d(np.ones((1, 1, 3, 3), np.float32), np.zeros(1, np.float32), padding=1)],
                       ModelMetadata(input_shape=(1, 8, 8)))
    path = tmp_path / "pad.h5"
    lrpcore.save(model, path)
    set_attribute(path, "layers/0", "padding", np.array([15000, 15000], dtype=np.int64))
    assert path.stat().st_size < 10_000
    result = load_in_subprocess(path)
    assert result.startswith("ModelFormatError") and "padding" in result


def test_item13_dev_zero_is_refused_as_not_a_regular_file():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    result = load_in_subprocess(Path("/dev/zero"), timeout=60)
    assert result.startswith("ModelFormatError") and "not a regular file" in result
    done = run_python("""
        from lrpcore.io import load_keras
        try:
            load_keras("/dev/zero")
        except Exception as error:
            print(f"{type(error).__name__}: {error}")
    """, timeout=60)
    assert done.stdout.startswith("ModelFormatError") and "not a regular file" in done.stdout
    done = run_python("""
        from lrpcore.io.keras_weights import parse_config
        try:
            parse_config("/dev/zero", "config")
        except Exception as error:
            print(f"{type(error).__name__}: {error}")
    """, timeout=60, memory_limit=2 * 2**30)
    assert done.stdout.startswith("ModelFormatError") and "not a regular file" in done.stdout


# --- 14. workers of a killed --executor processes sweep: helper `dask` (lrpcore/sweep/executors.py) -----------------


# --- 15. digits in sweep configs ----------------------------------------------------------------------------------------
def test_item15_sweep_config_with_the_digits_data_set_runs(tmp_path, capsys):
    config = {"model": str(SHIPPED / "digits_cnn.h5"), "data": {"dataset": "digits", "count": 2},
              "composite": "tutorial", "grid": {"values": [0, 0.25]}, "evaluation": {"patch_size": 2},
              "out": str(tmp_path / "out")}
    (tmp_path / "sweep.json").write_text(json.dumps(config))
    assert _cli(["sweep", str(tmp_path / "sweep.json"), "--no-progress", "--no-plots"]) == 0
    from lrpcore.sweep import SweepStore

    table = SweepStore(tmp_path / "out", ["gamma", "epsilon"]).load()
    assert sorted(set(table["image"].tolist())) == [0, 1] and len(table["config"]) == 4 * 2 * 3
    expected = lrpcore.data.digits("test")
    assert table["target"][table["image"] == 1][0] == int(expected.y[1])  # the test split's labels


# --- 16. messages that named the wrong thing ------------------------------------------------------------------------------
def test_item16_empty_batch_through_the_api_is_named():
    model = lrpcore.load(SHIPPED / "digits_cnn.h5")
    with pytest.raises(LRPError, match="empty"):
        lrpcore.explain(model, np.zeros((0, 1, 8, 8), np.float32))


def test_item16_empty_batch_on_the_command_line_is_named(evaluate_setup, capsys):
    np.save(evaluate_setup / "x.npy", np.zeros((0, 3, 16, 16)))
    assert _evaluate(evaluate_setup) == 1
    assert "empty" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["0", "-1"])
def test_item16_batch_size_must_be_positive(evaluate_setup, capsys, size):
    with pytest.raises(SystemExit) as usage:
        _evaluate(evaluate_setup, "--batch-size", size)
    assert usage.value.code == 2
    error = capsys.readouterr().err
    assert "--batch-size" in error and "must be a positive integer" in error and "range()" not in error


def test_item16_keras_config_given_as_a_json_list_is_named_as_json():
    from lrpcore.io.keras_weights import parse_config

    with pytest.raises(ModelFormatError, match="must be a JSON object, found list"):
        parse_config('[{"class_name": "Dense"}]', "config")
    with pytest.raises(ModelFormatError, match="must be a JSON object, found list"):
        parse_config('  [1, 2]', "config")


def test_item16_workers_two_is_named(sweep_config, capsys):
    _edit_config(sweep_config, workers="two")
    assert _cli(["sweep", str(sweep_config), "--no-progress", "--no-plots"]) == 1
    assert "'workers' must be a positive integer (or null), got the string 'two'" in capsys.readouterr().err


def test_item16_tiny_std_is_blamed_on_the_metadata(model_file, tmp_path):
    set_attribute(model_file, "metadata", "std", np.array([1e-300, 1e-300, 1e-300]))
    with pytest.raises(ModelFormatError) as refused:
        lrpcore.load(model_file)
    message = str(refused.value)
    assert "std" in message and "metadata" in message and "input contains" not in message


@pytest.mark.parametrize("command", ["explain", "evaluate", "stability"])
def test_item16_directory_as_input_says_it_is_a_directory(tmp_path, capsys, command):
    (tmp_path / "folder").mkdir()
    model = str(SHIPPED / "digits_cnn.h5")
    argv = {"explain": ["explain", model, str(tmp_path / "folder")],
            "evaluate": ["evaluate", model, str(tmp_path / "folder"), "--out", str(tmp_path / "pf")],
            "stability": ["stability", model, str(tmp_path / "folder"), "--out", str(tmp_path / "s")]}[command]
    assert _cli(argv) == 1
    error = capsys.readouterr().err
    assert "is a directory" in error and "does not exist" not in error


# --- 17. zero denominators in the explain command -------------------------------------------------------------------------
def test_item17_explain_warns_naming_the_layers_with_zero_denominators(tmp_path, capsys):
    # linear hidden unit with z = 1 − 1.25 = −0.25 = −ε: the vanilla stabilizer's z + ε is exactly zero while the
    # unit still carries relevance from the top layer
    hidden = Dense(np.array([[1.0, -1.25], [1.0, 1.0]], np.float32), np.zeros(2, np.float32))
    top = Dense(np.array([[1.0, 1.0]], np.float32), np.zeros(1, np.float32))
    model = Sequential([Flatten(), hidden, top], ModelMetadata(input_shape=(1, 1, 2), name="zero_z"))
    lrpcore.save(model, tmp_path / "model.h5")
    np.save(tmp_path / "x.npy", np.ones((1, 1, 2), np.float32))
    argv = ["explain", str(tmp_path / "model.h5"), str(tmp_path / "x.npy"), "--composite", "epsilon",
            "--out", str(tmp_path / "heat.png")]
    assert _cli(argv + ["--stabilizer", "vanilla"]) == 0
    error = capsys.readouterr().err
    assert "zero denominator" in error and "layer 1 (Dense" in error and "layer 2" not in error
    assert _cli(argv + ["--stabilizer", "zennit", "--overwrite"]) == 0
    assert "zero denominator" not in capsys.readouterr().err


# --- 18. minor ---------------------------------------------------------------------------------------------------------------
def test_item18_overwrite_on_the_same_sweep_resumes(tmp_path, sweep_inputs):
    from lrpcore.sweep import grid

    options = small_sweep_options(tmp_path / "run")
    grid(*sweep_inputs, **options)
    again = small_sweep_options(tmp_path / "run")
    grid(*sweep_inputs, **{**again, "overwrite": True})
    assert again["composite"].calls == 0  # same sweep: resumed, nothing recomputed
    restart = small_sweep_options(tmp_path / "run")
    grid(*sweep_inputs, **{**restart, "restart": True})
    assert restart["composite"].calls == 4 * 3  # explicit restart: 4 configurations × 3 image blocks again


def test_item18_layer_count_of_2_7_is_refused(model_file, tmp_path):
    set_attribute(model_file, "layers", "count", np.float64(2.7))
    with pytest.raises(ModelFormatError, match="count"):
        lrpcore.load(model_file)
    config = _dense_keras_config(4, 2)
    config["config"]["layers"][1]["config"]["units"] = 2.7
    write_keras2(tmp_path / "keras.h5", config, {"dense": [("kernel", np.ones((4, 2), np.float32)),
                                                           ("bias", np.zeros(2, np.float32))]}, full=True)
    with pytest.raises(ModelFormatError, match="units"):
        lrpcore.io.load_keras(tmp_path / "keras.h5")


@pytest.mark.parametrize("p", [7.0, -0.1, float("nan")])
def test_item18_dropout_probability_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(p)


def test_item18_datasets_without_fletcher32_checksums_are_refused(model_file):
    with h5py.File(model_file, "r+") as handle:
        weight = handle["layers/0/weight"][()]
        del handle["layers/0/weight"]
        handle["layers/0"].create_dataset("weight", data=weight)  # contiguous, no checksum
    with pytest.raises(ModelFormatError, match="Fletcher-32"):
        lrpcore.load(model_file)
