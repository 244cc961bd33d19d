#!/usr/bin/env bash
# Every GPU figure the benchmark docs estimate, in one command: under 8 minutes on one H100/H200.
#
#   benchmarks/gpu_check.sh            on the GPU machine, from the checkout; writes $OUT/gpu_check.json
#                                      ($OUT unset: .moca/gpu_check/gpu_check.json) and prints the figures
#   benchmarks/gpu_check.sh --tiny     the same code with tiny models and sizes, on a CPU (what the tests run)
#   benchmarks/gpu_check.sh --pack     beforehand, where the project's venv is installed (make install): copy
#                                      the pure-Python packages a GPU image lacks into .gpu_deps/ (gitignored)
#
# Install step. The GPU machine needs no internet: the script runs under its own python3 and that python's
# CUDA build of torch (MOCA_GPU_PYTHON picks another interpreter); the project's pins are not installed there.
# It needs torch, numpy, timm, einops, pandas, pillow and pyyaml from the machine (the device image has them),
# moca from src/ (PYTHONPATH), and imagebind-unofficial's `imagebind`, segment-anything, iopath, ftfy and
# wcwidth from .gpu_deps/ (carry that folder with the checkout). On a machine with PyPI, instead:
#   pip install --no-deps imagebind-unofficial==0.1.1 segment-anything==1.0 iopath==0.1.10 ftfy==6.3.1 wcwidth
# What it measures: benchmarks/gpu_check.py's docstring; what the figures mean: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--pack" ]]; then
  exec "${MOCA_PACK_PYTHON:-.venv/bin/python}" benchmarks/gpu_check.py --pack .gpu_deps
fi

python=${MOCA_GPU_PYTHON:-python3}
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "gpu_check: '$python' cannot import torch; set MOCA_GPU_PYTHON to the interpreter with the GPU build" >&2
  exit 2
fi
export PYTHONPATH="$PWD/src:$PWD/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
out_dir=${OUT:-$PWD/.moca/gpu_check}
# Inside a device lease's 10-minute command limit, with room for the machine's start and the copy back.
exec timeout "${MOCA_GPU_CHECK_LIMIT_S:-470}" "$python" benchmarks/gpu_check.py --out "$out_dir/gpu_check.json" "$@"
