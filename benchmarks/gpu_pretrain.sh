#!/usr/bin/env bash
# Every GPU figure of the pretraining-speed issue in one call (benchmarks/gpu_pretrain.py says
# what is measured).  On a bare GPU machine with this checkout as the working directory:
#
#   bash benchmarks/gpu_carry.sh            # HERE, first: wheels + data into git-ignored folders
#   bash benchmarks/gpu_pretrain.sh         # THERE (the device tool: carry .whl and .gpu_data)
#   bash benchmarks/gpu_pretrain.sh --cpu   # anywhere with `make install` done: tiny sizes, a dry run
#
# On the GPU machine it installs the carried wheels into a temporary folder, builds fairseq
# against the machine's own torch, then runs the Python script.  Output: the JSON under
# benchmarks/results/ and, when $OUT is set (the device tool), a copy of it and every log in $OUT,
# rewritten after every step.  BUDGET_S (default 480) bounds the whole call: steps that would not
# fit are skipped and listed as skipped, most important first.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [ "${1:-}" = --cpu ]; then
  PY=${PYTHON:-$REPO/.venv/bin/python}
  PATH=$(dirname "$PY"):$PATH exec "$PY" benchmarks/gpu_pretrain.py --cpu "${@:2}"
fi

T=$(mktemp -d)
LOG=${OUT:-$T}
t0=$(date +%s)
ls .whl/fairseq_fixed-0.12.3.1.tar.gz >/dev/null || { echo "no .whl/: run benchmarks/gpu_carry.sh first and carry .whl" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --target "$T/site" .whl/*.whl .whl/antlr4*.tar.gz \
  > "$LOG/install.log" 2>&1 || { tail -20 "$LOG/install.log"; exit 1; }
export PYTHONPATH=$T/site:$REPO
env -u CUDA_HOME MAX_JOBS=16 python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$T/fsq" \
  .whl/fairseq_fixed-0.12.3.1.tar.gz > "$LOG/fairseq-build.log" 2>&1 || { grep -iE "error" "$LOG/fairseq-build.log" | head -20; exit 1; }
export PYTHONPATH=$T/fsq:$T/site:$REPO
echo "== install + fairseq build: $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, fairseq, biobart_fairseq; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'fairseq', fairseq.__version__)" \
  || exit 1

# The shared datasets travel as .gpu_data (a copy made by gpu_carry.sh, never committed); code
# that looks for ../shared/data (benchmarks/el_decode.py) finds them through a link.
SHARED=../shared/data
if [ ! -d "$SHARED" ] && [ -d .gpu_data ]; then
  mkdir -p ../shared && ln -sfn "$REPO/.gpu_data" ../shared/data
fi
python3 benchmarks/gpu_pretrain.py --shared "$SHARED" --work "$T/work" --budget-s $(( ${BUDGET_S:-480} - ($(date +%s) - t0) )) "$@" 2>&1 | tee "$LOG/gpu_pretrain.log"
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
  cp benchmarks/results/gpu-*.json "$OUT/" 2>/dev/null
  mkdir -p "$OUT/logs" && cp "$T"/work/*.log "$OUT/logs/" 2>/dev/null
fi
echo "== total: $(( $(date +%s) - t0 )) s, rc $rc"
exit "$rc"
