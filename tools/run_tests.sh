#!/usr/bin/env bash
# Install lrpcore with everything its test suite uses, build the documentation, then run the suite.
# Used by README's test command and by CI (.ci/run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# --root-user-action=ignore: CI runs as root; pip's advice about virtual environments is not for this machine
pip_install() { python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"; }

echo "installing lrpcore and the test dependencies (pip, quiet) ..."
# PyTorch first, pinned: 2.13.0 is a CPU wheel these machines already hold. An unpinned torch
# (pulled in by another package) would download several GB of CUDA packages.
pip_install torch==2.13.0
pip_install -e ".[test,eval,torch]"
# Keras 3 writes the files the Keras loader is tested on (torch backend; no TensorFlow needed).
pip_install keras==3.15.1
# Dask runs the distributed sweep tests on a real 2-worker LocalCluster (loopback only).
pip_install "dask[distributed]==2026.8.0"
# Sphinx and myst-nb build the documentation (docs/); pinned so that a new release cannot turn a new
# warning into a failed build.
pip_install sphinx==9.0.4 myst-nb==1.4.0
# What the two reference packages below need, installed normally: zennit needs torch, numpy, pillow and
# click; Quantus 0.6 (the evaluation cross-check) needs pandas, scikit-image and cachetools.
pip_install click pandas scikit-image cachetools
# captum, the second peer of the attribution baselines (tests/reference/test_baselines_reference.py);
# 0.9.0 keeps torch 2.13.0.
pip_install captum==0.9.0
# The references themselves, last and without their declared dependencies: zennit declares torchvision
# (which would pull a CUDA torch) and Quantus declares opencv-python (next to our headless OpenCV). Any
# later ordinary pip install would report those two as missing in red ("pip's dependency resolver ...");
# installed last, nothing reports them, and the suite does not need them.
pip_install --no-deps zennit==0.5.1 quantus==0.6.0

echo "building the documentation (sphinx-build -W: warnings are errors) ..."
python -m sphinx -W -q -b html docs docs/_build/html
echo "documentation in docs/_build/html"

python -m pytest "$@"
