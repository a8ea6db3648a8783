#!/usr/bin/env bash
# The GPU check of issue 14 in one command (benchmarks/gpu_check.py says what it runs):
#   bash benchmarks/gpu_check.sh [RESULTS] [--dry-run] [--budget SECONDS] [--only STEP,...]
#   bash benchmarks/gpu_check.sh --prepare    # on the CPU machine, before the device call
# Through the device tool: carry [".gpu-carry"], command: bash benchmarks/gpu_check.sh "$OUT"
# PYTHON picks the interpreter (default: python3, the one that holds PyTorch on the device).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python3}" "$here/gpu_check.py" "$@"
