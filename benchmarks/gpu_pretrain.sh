#!/usr/bin/env bash
# The GPU figures of the pretraining-speed work in two short calls (docs/gpu.md; what each step
# measures: benchmarks/gpu_pretrain.py).
#
# HERE, once:   bash benchmarks/gpu_carry.sh      # wheels + sdists -> .whl/, shared data -> .gpu_data/
#               bash benchmarks/gpu_rehearse.sh   # both calls on the CPU with the GPU side's install
# THERE (the device tool's `run`), one call each, headline first:
#   command:    bash benchmarks/gpu_pretrain.sh headline
#   command:    bash benchmarks/gpu_pretrain.sh rest
#   carry:      [".whl", ".gpu_data"]            (both git-ignored; ~25 MiB together)
#   timeout_s:  300 for each call.  The call's own budget is 285 s (--budget-s) including the
#               install and the fairseq build; every step has a hard cap inside it, so the call
#               ends before the tool's limit and a killed step loses only itself.
# A warm machine keeps the install and the data in /tmp/biobart-gpu (GPU_PREFIX), so `rest`
# after `headline` skips the ~90 s build; a fresh machine rebuilds.
#
# What comes back ($OUT, the device tool's folder): exactly three files, rewritten after every
# step -- CALL.json (every figure), CALL.log (one line per measurement), CALL-logs.tgz (the
# per-step logs).  Commit the JSONs as benchmarks/results/gpu-CALL-<card>-<date>.json.
#
# Anywhere else:  bash benchmarks/gpu_pretrain.sh headline --cpu   # tiny sizes (the rehearsal runs this)
#                 bash benchmarks/gpu_pretrain.sh plan            # both plans: expected GPU s, caps, sources
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 HF_HUB_OFFLINE=1
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${PYTHON3:-python3}
# the shared datasets travel as .gpu_data (a copy made by gpu_carry.sh, never committed)
SHARED=${SHARED:-../shared/data}
[ -d "$SHARED" ] || SHARED=$REPO/.gpu_data
if [ -n "${OUT:-}" ] && [ "${1:-}" != plan ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1
fi
# an outer cap a little above the script's own budget (285 s on the GPU): nothing outlives the call
case " $* " in *" --cpu "*|*" plan "*) CAP=${CALL_TIMEOUT_S:-3600} ;; *) CAP=${CALL_TIMEOUT_S:-295} ;; esac
exec timeout -k 5 "$CAP" "$PY" benchmarks/gpu_pretrain.py "$@" --shared "$SHARED" \
  --wheels "${WHL_DIR:-$REPO/.whl}" --sklearn-wheels "${SKLEARN_DIR:-$REPO/.whl_sklearn}"
