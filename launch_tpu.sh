#!/usr/bin/env bash
# Launch zoejax-train on a Cloud TPU VM or pod slice: create (or reuse) it, install this checkout on every
# worker, and run the same training command on all workers with ZOEJAX_DISTRIBUTED=1 (jax.distributed
# finds the coordinator itself on Cloud TPU). Run with --help for the flags; --dry-run prints the commands.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: launch_tpu.sh --name NAME --zone ZONE --config CONFIG --workdir WORKDIR [options] [--config.KEY=VALUE ...]

Creates or reuses the TPU VM NAME, copies this checkout (git HEAD) to every worker, installs it in
~/zoejax/.venv (jax[tpu]), then runs on all workers at once:
  ZOEJAX_DISTRIBUTED=1 .venv/bin/python -m zoejax.cli.train --config CONFIG --workdir WORKDIR [overrides]

Options:
  --name NAME               TPU VM / pod slice name (required)
  --zone ZONE               e.g. us-central2-b (required)
  --config CONFIG           run config, e.g. configs/zoedepth_n.py or configs/zoedepth_nk.py:beit_l384 (required)
  --workdir WORKDIR         checkpoints and logs; use gs://bucket/path on pods (required)
  --accelerator-type TYPE   e.g. v4-8, v4-32, v5litepod-16, v5p-64, v6e-16 (default v4-8)
  --version VERSION         TPU VM runtime image (default tpu-ubuntu2204-base)
  --project PROJECT         GCP project (default: gcloud's configured project)
  --create                  always create the VM (fails if it exists)
  --no-create               never create: the VM must exist
                            (default: create it only if `gcloud ... describe` does not find it)
  --skip-install            do not copy/install the project (already done on this VM)
  --dry-run                 print the commands, run nothing
  --config.KEY=VALUE        passed to zoejax-train unchanged (any number)
  -h, --help                this help
USAGE
}

NAME="" ZONE="" CONFIG="" WORKDIR="" ACCEL="v4-8" VERSION="tpu-ubuntu2204-base" PROJECT="" CREATE="auto"
INSTALL=1 DRY=0
OVERRIDES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --name) NAME="$2"; shift 2 ;;
    --name=*) NAME="${1#*=}"; shift ;;
    --zone) ZONE="$2"; shift 2 ;;
    --zone=*) ZONE="${1#*=}"; shift ;;
    --accelerator-type) ACCEL="$2"; shift 2 ;;
    --accelerator-type=*) ACCEL="${1#*=}"; shift ;;
    --version) VERSION="$2"; shift 2 ;;
    --version=*) VERSION="${1#*=}"; shift ;;
    --project) PROJECT="$2"; shift 2 ;;
    --project=*) PROJECT="${1#*=}"; shift ;;
    --config) CONFIG="$2"; shift 2 ;;
    --config=*) CONFIG="${1#*=}"; shift ;;
    --workdir) WORKDIR="$2"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --create) CREATE="yes"; shift ;;
    --no-create) CREATE="no"; shift ;;
    --skip-install) INSTALL=0; shift ;;
    --dry-run) DRY=1; shift ;;
    --config.*) OVERRIDES+=("$1"); shift ;;
    *) echo "launch_tpu.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for required in NAME ZONE CONFIG WORKDIR; do
  if [[ -z "${!required}" ]]; then
    echo "launch_tpu.sh: --$(echo "$required" | tr '[:upper:]' '[:lower:]') is required (see --help)" >&2
    exit 2
  fi
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARBALL="${TMPDIR:-/tmp}/zoejax-src-${NAME}.tar.gz"
WHERE=(--zone="$ZONE")
[[ -n "$PROJECT" ]] && WHERE+=(--project="$PROJECT")

# Shell-quote words: plain words as they are, others in single quotes (copy-pasteable output).
quote() {
  local out="" a q="'"
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="${out:+ }$a"; else out+="${out:+ }'${a//$q/$q\\$q$q}'"; fi
  done
  printf '%s' "$out"
}

run() {  # run (or with --dry-run print) one command given as words
  if [[ $DRY == 1 ]]; then quote "$@"; echo; else "$@"; fi
}

create_cmd=(gcloud compute tpus tpu-vm create "$NAME" "${WHERE[@]}" --accelerator-type="$ACCEL" --version="$VERSION")
describe_cmd=(gcloud compute tpus tpu-vm describe "$NAME" "${WHERE[@]}")
case "$CREATE" in
  yes) run "${create_cmd[@]}" ;;
  auto)
    if [[ $DRY == 1 ]]; then
      echo "$(quote "${describe_cmd[@]}") >/dev/null 2>&1 || $(quote "${create_cmd[@]}")"
    elif ! "${describe_cmd[@]}" >/dev/null 2>&1; then
      "${create_cmd[@]}"
    fi ;;
  no) ;;
esac

SSH=(gcloud compute tpus tpu-vm ssh "$NAME" "${WHERE[@]}" --worker=all)
if [[ $INSTALL == 1 ]]; then
  run git -C "$HERE" archive --format=tar.gz -o "$TARBALL" HEAD
  run gcloud compute tpus tpu-vm scp "$TARBALL" "$NAME":zoejax-src.tar.gz "${WHERE[@]}" --worker=all
  install='rm -rf ~/zoejax && mkdir -p ~/zoejax && tar xzf ~/zoejax-src.tar.gz -C ~/zoejax && cd ~/zoejax'
  install+=' && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt "jax[tpu]==0.10.2"'
  install+=' && .venv/bin/pip install -q --no-deps -e .'
  run "${SSH[@]}" --command="$install"
fi
train="cd ~/zoejax && ZOEJAX_DISTRIBUTED=1 .venv/bin/python -m zoejax.cli.train $(quote --config="$CONFIG" --workdir="$WORKDIR" ${OVERRIDES[@]+"${OVERRIDES[@]}"})"
run "${SSH[@]}" --command="$train"
