#!/usr/bin/env bash
# Install lrpcore with everything its test suite uses, then run the suite.
# Used by README's test command and by CI (.ci/run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python -m pip install --quiet --disable-pip-version-check "$@"; }

# PyTorch first, pinned: 2.13.0 is a CPU wheel these machines already hold. An unpinned torch
# (pulled in by another package) would download several GB of CUDA packages.
pip_install torch==2.13.0
pip_install -e ".[test,eval,torch]"
# zennit, the reference implementation the suite compares with. A plain install pulls torchvision
# and a newer CUDA torch; zennit itself needs only torch, numpy, pillow and click.
pip_install --no-deps zennit==0.5.1
pip_install click
# captum, the second peer of the attribution baselines (tests/reference/test_baselines_reference.py);
# 0.9.0 keeps torch 2.13.0.
pip_install captum==0.9.0
# Keras 3 writes the files the Keras loader is tested on (torch backend; no TensorFlow needed).
pip_install keras==3.15.1
# Quantus 0.6 for the evaluation cross-check; --no-deps keeps it from adding opencv-python next to the
# headless build (the test works around its use of numpy.trapz, which NumPy 2.4 removed).
pip_install --no-deps quantus==0.6.0
pip_install pandas scikit-image cachetools
# Dask runs the distributed sweep tests on a real 2-worker LocalCluster (loopback only).
pip_install "dask[distributed]==2026.8.0"

python -m pytest "$@"
