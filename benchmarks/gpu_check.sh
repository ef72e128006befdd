#!/usr/bin/env bash
# One GPU check on a machine with an NVIDIA GPU: installs jax[cuda12]==0.10.2 next to the project (its own venv,
# with the convert extra: the PyTorch reference the benchmarks compare against; pip picks torch's CUDA build),
# then runs the inference and train-step benchmarks in bf16 over a batch sweep (MFU against the GPU's bf16 peak:
# benchmarks/train_step.py's table of H100/H200/A100/L4/A10, or --peak-tflops), writing every table to one file.
#
#   benchmarks/gpu_check.sh                      # install, then run; tables in benchmarks/gpu_check-<date>.txt
#   benchmarks/gpu_check.sh --dry-run            # print the commands, run nothing
#   benchmarks/gpu_check.sh --batch-sizes 1,8,32 --peak-tflops 989 --out /tmp/gpu.txt --venv /tmp/venv-gpu
#
# Record the figures in benchmarks/RESULTS.md afterwards (dated section, GPU name from nvidia-smi).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-gpu"
OUT="$ROOT/benchmarks/gpu_check-$(date -u +%Y%m%d).txt"
BATCHES="1,2,4,8,16"
TRAIN_BATCHES="1,2,4,8"
PEAK=""
DRY=0

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --venv) VENV="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --batch-sizes) BATCHES="$2"; TRAIN_BATCHES="$2"; shift ;;
    --peak-tflops) PEAK="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PY="$VENV/bin/python"
PEAK_ARG=""
[[ -n "$PEAK" ]] && PEAK_ARG=" --peak-tflops $PEAK"
COMMANDS=(
  "python3 -m venv $VENV"
  "$PY -m pip install -q -r $ROOT/requirements.txt jax[cuda12]==0.10.2"
  "$PY -m pip install -q -e $ROOT[convert]"
  "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv"
  "$PY -c 'import jax; assert jax.default_backend() == \"gpu\", jax.devices(); print(jax.devices())'"
  "$PY $ROOT/benchmarks/inference.py --dtypes bf16 --batch-sizes $BATCHES"
  "$PY $ROOT/benchmarks/train_step.py --dtypes bf16 --batch-sizes $TRAIN_BATCHES --remat none,dots$PEAK_ARG"
)

if [[ $DRY -eq 1 ]]; then
  for c in "${COMMANDS[@]}"; do echo "$c"; done
  echo "# output: $OUT"
  exit 0
fi

command -v nvidia-smi >/dev/null || { echo "gpu_check.sh: no nvidia-smi: this needs a machine with an NVIDIA GPU" >&2; exit 1; }
: > "$OUT"
for c in "${COMMANDS[@]}"; do
  echo "\$ $c" | tee -a "$OUT"
  (cd "$ROOT" && eval "$c") 2>&1 | tee -a "$OUT"
done
echo "gpu_check: tables in $OUT"
