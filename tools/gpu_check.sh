#!/usr/bin/env bash
# lrpcore on an NVIDIA GPU in one call: the CuPy-marked tests, then VGG-16 timed beside torch on CUDA.
#
#   bash tools/gpu_check.sh [WHEELS]
#
# WHEELS (or $LRPCORE_WHEELS): a folder of wheels, or one .whl file, for Python packages lrpcore and its
# tests need that this machine lacks (numpy's companions h5py and array-api-compat, pytest, threadpoolctl).
# They are installed from there only (pip --no-index: a GPU machine may have no network); nothing already
# installed is upgraded. CuPy must be installed already (cupy-cuda12x or cupy-cuda13x), with a GPU.
#
# Environment: PYTHON (default python3), GPU_CHECK_BATCH (VGG-16 batch, default 8), GPU_CHECK_REPEATS
# (timed runs, default 3), GPU_CHECK_TIMEOUT (seconds per step, default 600), GPU_CHECK_OUT or OUT (a folder
# for gpu_check.json and the pytest report; default: none). Exit status: 0 when the tests pass with no CuPy
# test skipped and the GPU explanation matches the NumPy one; non-zero otherwise. Takes 1–3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=${1:-${LRPCORE_WHEELS:-}}
TIMEOUT=${GPU_CHECK_TIMEOUT:-600}
OUTDIR=${GPU_CHECK_OUT:-${OUT:-}}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"      # this checkout, not an installed lrpcore

say() { printf '\n== %s\n' "$*"; }

say "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "nvidia-smi not found (continuing: CuPy decides)"
fi
"$PYTHON" - <<'EOF'
import sys
try:
    import cupy
except Exception as error:
    sys.exit(f"CuPy is not importable ({type(error).__name__}: {error}); install cupy-cuda12x or cupy-cuda13x "
             "matching the CUDA driver first")
try:
    count = cupy.cuda.runtime.getDeviceCount()
except Exception as error:
    sys.exit(f"CuPy imports but finds no usable GPU ({type(error).__name__}: {error})")
if count < 1:
    sys.exit("CuPy imports but finds no GPU")
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
      f"{count} GPU(s), device 0: {props['name'].decode()}")
EOF

say "Python packages"
# module:distribution pairs lrpcore (import time) and the CuPy tests need
REQUIRED="numpy:numpy array_api_compat:array-api-compat h5py:h5py pytest:pytest threadpoolctl:threadpoolctl"
missing=()
for pair in $REQUIRED; do
    module=${pair%%:*}
    "$PYTHON" -c "import $module" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    echo "missing: ${missing[*]}"
    if [[ -z "$WHEELS" ]]; then
        echo "give a folder of wheels for them: bash tools/gpu_check.sh /path/to/wheels" >&2
        exit 2
    fi
    if [[ -d "$WHEELS" ]]; then
        "$PYTHON" -m pip install --no-index --find-links "$WHEELS" "${missing[@]}"
    else
        "$PYTHON" -m pip install --no-index --find-links "$(dirname "$WHEELS")" "$WHEELS" "${missing[@]}"
    fi
else
    echo "all present"
fi
"$PYTHON" -c "import numpy, array_api_compat, lrpcore; print('numpy', numpy.__version__, '| array-api-compat', \
array_api_compat.__version__, '| lrpcore from', lrpcore.__file__)"

say "CuPy-marked tests (pytest -m cupy)"
# the test modules with CuPy cases: the backend fixture's "cupy" parameter and @pytest.mark.cupy
mapfile -t FILES < <(grep -lE "[(, ]backend[,):]|mark\.cupy" tests/test_*.py)
REPORT=$(mktemp -d)/cupy.xml
set +e
timeout "$TIMEOUT" "$PYTHON" -m pytest -m cupy -q -rs -p no:cacheprovider --junitxml="$REPORT" "${FILES[@]}"
tests_status=$?
set -e
"$PYTHON" - "$REPORT" <<'EOF'
import sys
import xml.etree.ElementTree as tree
root = tree.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
counts = {name: int(suite.get(name, 0)) for name in ("tests", "failures", "errors", "skipped")}
print("cupy tests: {tests} run, {failures} failed, {errors} errors, {skipped} skipped".format(**counts))
if counts["tests"] == 0 or counts["skipped"]:
    sys.exit("CuPy tests were skipped or none ran: the GPU backend is not verified")
EOF
if [[ -n "$OUTDIR" ]]; then mkdir -p "$OUTDIR" && cp "$REPORT" "$OUTDIR/cupy_tests.xml"; fi
if ((tests_status != 0)); then echo "pytest failed (status $tests_status)" >&2; exit "$tests_status"; fi

say "VGG-16 224×224 float32: lrpcore on CuPy beside torch on CUDA"
GPU_CHECK_OUTDIR="$OUTDIR" timeout "$TIMEOUT" "$PYTHON" - <<'EOF'
import json
import os
import statistics
import sys
import time

import cupy
import numpy

import lrpcore
from lrpcore.backend import to_numpy
from lrpcore.composites import get_composite
from lrpcore.models import IMAGENET_MEAN, IMAGENET_STD, vgg16

batch = int(os.environ.get("GPU_CHECK_BATCH", "8"))
repeats = int(os.environ.get("GPU_CHECK_REPEATS", "3"))
raw = numpy.random.default_rng(0).random((batch, 3, 224, 224), dtype=numpy.float32)
mean = numpy.asarray(IMAGENET_MEAN, dtype=numpy.float32).reshape(1, 3, 1, 1)
std = numpy.asarray(IMAGENET_STD, dtype=numpy.float32).reshape(1, 3, 1, 1)
x = (raw - mean) / std
model = vgg16(input_size=224, seed=0)
rules = get_composite("epsilon_gamma_box", low=-3.0, high=3.0)


def timed(function, synchronize):
    function()                                          # warm-up: kernels, plans, memory pool
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


results = {"batch": batch, "repeats": repeats, "device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}
gpu = model.to("cupy")
x_gpu = cupy.asarray(x)
sync = cupy.cuda.Device().synchronize
results["lrpcore_explain_s"] = timed(lambda: lrpcore.explain(gpu, x_gpu, composite=rules), sync)
results["lrpcore_forward_s"] = timed(lambda: gpu.forward(x_gpu), sync)
results["lrpcore_pool_gib"] = cupy.get_default_memory_pool().total_bytes() / 2**30

# the same explanation on the CPU (NumPy) for the first sample: the backends must agree to float32 rounding
cpu_relevance = lrpcore.explain(model, x[:1], composite=rules).relevance
gpu_relevance = to_numpy(lrpcore.explain(gpu, x_gpu[:1], composite=rules).relevance)
scale = float(numpy.abs(cpu_relevance).max())
results["max_relative_difference_numpy"] = float(numpy.abs(gpu_relevance - cpu_relevance).max()) / scale

try:
    import torch
    cuda = torch.cuda.is_available()
except Exception as error:  # torch absent or broken: lrpcore's figures stand alone
    results["torch"] = f"not available ({type(error).__name__})"
    cuda = False
if cuda:
    from lrpcore.io.torch import to_torch

    network = to_torch(model).cuda().eval()
    inputs = torch.from_numpy(x).cuda()
    results["torch"] = torch.__version__
    with torch.no_grad():
        results["torch_forward_s"] = timed(lambda: network(inputs), torch.cuda.synchronize)

    def gradient():
        leaf = inputs.clone().requires_grad_(True)
        output = network(leaf)
        picked = output.gather(1, output.argmax(1, keepdim=True)).sum()
        torch.autograd.grad(picked, leaf)

    results["torch_gradient_s"] = timed(gradient, torch.cuda.synchronize)
    try:
        sys.path.insert(0, os.path.join(os.getcwd(), "tests", "reference"))
        import _torchvision_stand_in

        _torchvision_stand_in.install()
        from zennit.composites import EpsilonGammaBox

        composite = EpsilonGammaBox(low=-3.0, high=3.0)

        def zennit_explain():
            leaf = inputs.clone().requires_grad_(True)
            with composite.context(network) as modified:
                output = modified(leaf)
                onehot = torch.zeros_like(output)
                onehot[torch.arange(output.shape[0]), output.argmax(dim=1)] = 1.0
                torch.autograd.grad(output, leaf, grad_outputs=(onehot * output).detach())

        results["zennit_explain_s"] = timed(zennit_explain, torch.cuda.synchronize)
    except Exception as error:
        results["zennit"] = f"not run ({type(error).__name__}: {error})"
elif "torch" not in results:
    results["torch"] = "installed without CUDA"

for key, value in results.items():
    print(f"{key:32s} {value:.4f}" if isinstance(value, float) else f"{key:32s} {value}")
if "torch_forward_s" in results:
    print(f"lrpcore/torch forward {results['lrpcore_forward_s'] / results['torch_forward_s']:.2f}; lrpcore explain / "
          f"torch gradient {results['lrpcore_explain_s'] / results['torch_gradient_s']:.2f}")
if "zennit_explain_s" in results:
    print(f"lrpcore/zennit explain {results['lrpcore_explain_s'] / results['zennit_explain_s']:.2f}")
folder = os.environ.get("GPU_CHECK_OUTDIR")
if folder:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "gpu_check.json"), "w") as handle:
        json.dump(results, handle, indent=2)
if not results["max_relative_difference_numpy"] <= 1e-3:
    sys.exit(f"CuPy and NumPy relevances differ by {results['max_relative_difference_numpy']:.2e} (> 1e-3)")
EOF
say "gpu_check: passed"
