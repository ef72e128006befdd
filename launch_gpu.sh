#!/usr/bin/env bash
# Launch zoejax-train on GPUs: one host with N GPUs (one process drives them all), several hosts under SLURM
# (srun, one task per node; jax.distributed reads SLURM's variables), or several hosts started by hand with an
# explicit coordinator. Run with --help for the flags; --dry-run prints the command and runs nothing.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: launch_gpu.sh --config CONFIG --workdir WORKDIR [mode] [options] [--config.KEY=VALUE ...]

Modes:
  (default)                     one host: one process uses every visible GPU
  --slurm --nodes N             several hosts under SLURM: srun, one task per node, ZOEJAX_DISTRIBUTED=1
                                (jax.distributed.initialize() takes the coordinator from SLURM)
  --coordinator ADDR:PORT --num-processes N --process-id I
                                several hosts by hand: run this on every host with its own --process-id
                                (0 on the host at ADDR); sets ZOEJAX_DISTRIBUTED=1, ZOEJAX_COORDINATOR,
                                ZOEJAX_NUM_PROCESSES, ZOEJAX_PROCESS_ID

Options:
  --config CONFIG         run config, e.g. configs/zoedepth_n.py (required)
  --workdir WORKDIR       checkpoints and logs; on several hosts a shared file system path (required)
  --gpus-per-node G       SLURM: GPUs per node (default 8)
  --python PYTHON         interpreter with zoejax installed (default .venv/bin/python)
  --dry-run               print the command, run nothing
  --config.KEY=VALUE      passed to zoejax-train unchanged (any number)
  -h, --help              this help
USAGE
}

CONFIG="" WORKDIR="" SLURM=0 NODES="" GPUS=8 COORD="" NPROC="" PID="" PY=".venv/bin/python" DRY=0
OVERRIDES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --config=*) CONFIG="${1#*=}"; shift ;;
    --workdir) WORKDIR="$2"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --slurm) SLURM=1; shift ;;
    --nodes) NODES="$2"; shift 2 ;;
    --nodes=*) NODES="${1#*=}"; shift ;;
    --gpus-per-node) GPUS="$2"; shift 2 ;;
    --gpus-per-node=*) GPUS="${1#*=}"; shift ;;
    --coordinator) COORD="$2"; shift 2 ;;
    --coordinator=*) COORD="${1#*=}"; shift ;;
    --num-processes) NPROC="$2"; shift 2 ;;
    --num-processes=*) NPROC="${1#*=}"; shift ;;
    --process-id) PID="$2"; shift 2 ;;
    --process-id=*) PID="${1#*=}"; shift ;;
    --python) PY="$2"; shift 2 ;;
    --python=*) PY="${1#*=}"; shift ;;
    --dry-run) DRY=1; shift ;;
    --config.*) OVERRIDES+=("$1"); shift ;;
    *) echo "launch_gpu.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "launch_gpu.sh: $*" >&2; exit 2; }
[[ -n "$CONFIG" && -n "$WORKDIR" ]] || die "--config and --workdir are required (see --help)"
if [[ -n "$COORD$NPROC$PID" ]]; then
  [[ $SLURM == 0 ]] || die "--slurm and --coordinator are exclusive"
  [[ -n "$COORD" && -n "$NPROC" && -n "$PID" ]] || die "--coordinator needs --num-processes and --process-id"
  [[ "$COORD" == *:* ]] || die "--coordinator must be ADDR:PORT, got $COORD"
  [[ "$NPROC" =~ ^[1-9][0-9]*$ && "$PID" =~ ^[0-9]+$ && "$PID" -lt "$NPROC" ]] \
    || die "need 0 <= --process-id < --num-processes, got $PID and $NPROC"
fi
[[ $SLURM == 0 || -n "$NODES" ]] || die "--slurm needs --nodes"

CMD=("$PY" -m zoejax.cli.train --config="$CONFIG" --workdir="$WORKDIR" ${OVERRIDES[@]+"${OVERRIDES[@]}"})
if [[ $SLURM == 1 ]]; then
  CMD=(srun --nodes="$NODES" --ntasks-per-node=1 --gpus-per-node="$GPUS" env ZOEJAX_DISTRIBUTED=1 "${CMD[@]}")
elif [[ -n "$COORD" ]]; then
  CMD=(env ZOEJAX_DISTRIBUTED=1 ZOEJAX_COORDINATOR="$COORD" ZOEJAX_NUM_PROCESSES="$NPROC" ZOEJAX_PROCESS_ID="$PID"
       "${CMD[@]}")
fi

if [[ $DRY == 1 ]]; then
  out="" q="'"
  for a in "${CMD[@]}"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="${out:+ }$a"; else out+="${out:+ }'${a//$q/$q\\$q$q}'"; fi
  done
  echo "$out"
else
  exec "${CMD[@]}"
fi
