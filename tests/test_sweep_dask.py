"""Sweeps on real worker processes: a Dask cluster started as a user would, and workers that die with the sweep.

- ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on loopback; ``lrpcore sweep CONFIG
  --scheduler tcp://127.0.0.1:PORT`` must store the table of the serial sweep, bit for bit, and write no
  progress into a pipe. Everything is shut down afterwards, also when the test fails.
- Killing a sweep (SIGTERM or SIGKILL) must not leave its process-pool or LocalCluster workers running
  (issue 13, item 14).

Linux only (processes are found through /proc).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    """This checkout first on the path of every process started here (workers import lrpcore from it)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1"}


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, state) of every live process; zombies count as gone."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _descendants(pid: int) -> set[int]:
    table = _processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _in_groups(groups: set[int]) -> set[int]:
    return {pid for pid, (_, group, _) in _processes().items() if group in groups}


def _wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@contextlib.contextmanager
def _session_processes():
    """Start processes in their own sessions; on exit end every process of those sessions, and check none is left."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], **options) -> subprocess.Popen:
        process = subprocess.Popen(command, env=_env(), start_new_session=True, **options)
        started.append(process)
        return process
    try:
        yield start
    finally:
        groups = {process.pid for process in started}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _in_groups(groups):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            if _wait_until(lambda: not _in_groups(groups), timeout=15):
                break
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        assert not _in_groups(groups), "processes left behind"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_sweep(tmp_path: Path, values, images: int) -> Path:
    from lrpcore.io import save
    from test_sweep import five_conv_network
    save(five_conv_network(), tmp_path / "model.h5")
    np.save(tmp_path / "x.npy", np.random.default_rng(3).uniform(0, 1, size=(images, 3, 16, 16)))
    config = {"model": "model.h5", "data": {"npy": "x.npy"}, "target": "pred", "composite": "tutorial",
              "grid": {"values": list(values)}, "evaluation": {"patch_size": 4, "batch_size": 16},
              "image_block": 4}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    return path


CLI = [sys.executable, "-c", "import sys; from lrpcore.cli import main; sys.exit(main())", "sweep"]


@pytest.mark.slow
def test_sweep_on_a_dask_cluster_started_from_the_command_line_gives_the_serial_table(tmp_path):
    from lrpcore.sweep import SweepStore
    config = _write_sweep(tmp_path, [0.0, 0.01, 0.25, 1.0], images=6)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    with _session_processes() as start:
        with open(logs / "scheduler.log", "w") as log:
            start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                   "--no-dashboard", "--idle-timeout", "300"], stdout=log, stderr=subprocess.STDOUT)
        for name in ("w0", "w1"):
            with open(logs / f"{name}.log", "w") as log:
                start([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--name", name,
                       "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "120"],
                      stdout=log, stderr=subprocess.STDOUT)
        # the serial reference runs while the cluster starts
        serial = start(CLI + [str(config), "--out", str(tmp_path / "serial"), "--executor", "serial", "--no-plots"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        from dask.distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            worker_pids = set(client.run(os.getpid).values())
        distributed = start(CLI + [str(config), "--out", str(tmp_path / "dask"), "--scheduler", address,
                                   "--no-plots"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = distributed.communicate(timeout=240)
        assert distributed.returncode == 0, err + "".join(path.read_text() for path in logs.iterdir())
        serial_out, serial_err = serial.communicate(timeout=240)
        assert serial.returncode == 0, serial_err
    assert "tasks done" not in err and "running" not in err  # progress stays off the pipe
    assert "rows in" in out
    names = ["gamma", "epsilon"]
    tables = [SweepStore(tmp_path / run, names).load() for run in ("serial", "dask")]
    orders = [np.lexsort((table["sort"].astype(str), table["image"], table["config"])) for table in tables]
    assert len(tables[0]["config"]) == 16 * 6 * 3
    for name in tables[0]:
        first, second = tables[0][name][orders[0]], tables[1][name][orders[1]]
        if first.dtype == object:
            assert first.tolist() == second.tolist(), name
        else:
            np.testing.assert_array_equal(first, second, err_msg=name)
    assert len(worker_pids) == 2


# --- killing a sweep leaves no workers ---------------------------------------------------------------------
LONG_SWEEP = textwrap.dedent("""
    import sys
    import numpy as np
    from lrpcore.sweep import THESIS_VALUES, grid, tutorial
    from test_sweep import five_conv_network

    if __name__ == "__main__":
        images = np.random.default_rng(3).uniform(0, 1, size=(8, 3, 16, 16)).astype(np.float32)
        grid(five_conv_network(), images, composite=tutorial(THESIS_VALUES), evaluation={"patch_size": 2},
             executor=sys.argv[1], workers=2, progress=False)
""")


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_a_sweep_leaves_no_worker_running(tmp_path, executor, sig):
    if executor == "dask":
        pytest.importorskip("distributed")
    script = tmp_path / "long_sweep.py"
    script.write_text(LONG_SWEEP)
    log = tmp_path / "sweep.log"  # a file, not a pipe: surviving workers would hold a pipe open for ever
    with _session_processes() as start, open(log, "w") as stream:
        sweep = start([sys.executable, str(script), executor], stdout=subprocess.DEVNULL, stderr=stream)

        def busy_workers() -> set[int]:
            """Descendants of the sweep that have used CPU: workers started and computing."""
            busy = set()
            for pid in _descendants(sweep.pid):
                with contextlib.suppress(OSError):
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"resource_tracker" not in cmdline and int(fields[11]) > 100:  # > 1 s of user CPU
                        busy.add(pid)
            return busy
        assert _wait_until(lambda: len(busy_workers()) >= 2 or sweep.poll() is not None, timeout=240), \
            "the workers never started"
        assert sweep.poll() is None, log.read_text()
        workers = _descendants(sweep.pid)
        os.kill(sweep.pid, sig)
        sweep.wait(timeout=60)
        if sig == signal.SIGTERM:
            assert sweep.returncode == 128 + signal.SIGTERM, log.read_text()[-2000:]
        assert _wait_until(lambda: not (workers & set(_processes())), timeout=30), \
            f"workers {sorted(workers & set(_processes()))} still run after the sweep got {sig.name}"
