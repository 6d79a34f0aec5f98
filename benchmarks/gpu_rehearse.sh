#!/usr/bin/env bash
# CPU rehearsal of the two GPU calls (docs/gpu.md), run here before spending GPU time:
#
#   heavy bash benchmarks/gpu_rehearse.sh          # FRESH=1 to rebuild the cached venv/install
#
# 1. a fresh virtualenv (.gpu_rehearse/venv, git-ignored, cached) with what the GPU machine has,
#    at its versions where the package index has them: numpy 2.x, transformers 5.x, sentencepiece,
#    safetensors and a current pip.  torch: the GPU machine has 2.11 + CUDA 13; the index offers
#    2.11 only as the CUDA build (with its nvidia-* packages, several GB), so the local 2.13 CPU
#    wheel stands in (TORCH_SPEC to change it).  Python is this machine's (3.11; the GPU's is 3.12).
# 2. the carried wheels for this Python (benchmarks/gpu_carry.sh into .gpu_rehearse/whl);
# 3. both calls, `gpu_pretrain.sh headline --cpu` and `rest --cpu`, exactly as on the GPU machine:
#    the wheels installed with --no-index --no-deps --target, antlr4 and fairseq built from their
#    sdists with --no-build-isolation (fairseq with CUDA_HOME unset), into .gpu_rehearse/prefix
#    (kept: a rerun reuses the build, as a warm GPU machine does);
# 4. fails unless every step exits 0, every figure is in each JSON, the output folder never held
#    more than 3 files nor anything below its top level (a watcher samples it every 0.1 s), and
#    each call finished inside its budget (the sum of its steps' CPU caps, the CPU counterpart of
#    the GPU call's 285 s).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
R=$REPO/.gpu_rehearse
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -n "${FRESH:-}" ] && rm -rf "$R"
mkdir -p "$R"
VPY=$R/venv/bin/python
fail=0

if [ ! -e "$R/venv/.ok" ]; then
  echo "== venv: python3 -m venv + $TORCH_SPEC numpy 2.x transformers 5.x sentencepiece safetensors"
  rm -rf "$R/venv" && python3 -m venv "$R/venv" && "$VPY" -m pip install -q -U pip &&
    "$VPY" -m pip install -q "$TORCH_SPEC" "numpy>=2,<3" sentencepiece safetensors "transformers>=5" &&
    touch "$R/venv/.ok" || { echo "FAIL: venv"; exit 1; }
fi
if [ ! -e "$R/whl/.ok" ]; then
  echo "== carried wheels for Python $("$VPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  WHL_DIR=$R/whl SKLEARN_DIR=$R/whl_sklearn PY_VERSION=$("$VPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])') NO_DATA=1 \
    bash benchmarks/gpu_carry.sh && touch "$R/whl/.ok" || { echo "FAIL: gpu_carry.sh"; exit 1; }
fi
"$VPY" -c "import sys, torch, numpy, transformers, pip; print('== rehearsal venv: python', sys.version.split()[0],
  'torch', torch.__version__, 'numpy', numpy.__version__, 'transformers', transformers.__version__, 'pip', pip.__version__)"
echo "   (GPU machine: python 3.12, torch 2.11 + CUDA 13; no CPU build of torch 2.11 on the index here)"
"$VPY" benchmarks/gpu_pretrain.py plan || fail=1

watch_out() {  # the largest number of entries $1 ever held, and whether anything lay below its top
  local out=$1 rec=$2 max=0 deep=0 n d
  while [ ! -e "$rec.stop" ]; do
    n=$(find "$out" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    d=$(find "$out" -mindepth 2 2>/dev/null | wc -l)
    [ "$n" -gt "$max" ] && max=$n
    [ "$d" -gt "$deep" ] && deep=$d
    echo "$max $deep" > "$rec"
    sleep 0.1
  done
}

for call in headline rest; do
  OUTDIR=$R/out-$call
  rm -rf "$OUTDIR" "$R/work-$call" "$R/watch-$call"*
  mkdir -p "$OUTDIR"
  watch_out "$OUTDIR" "$R/watch-$call" &
  watcher=$!
  t0=$(date +%s)
  OUT=$OUTDIR PYTHON3=$VPY GPU_PREFIX=$R/prefix WHL_DIR=$R/whl SKLEARN_DIR=$R/whl_sklearn SHARED=../shared/data \
    bash benchmarks/gpu_pretrain.sh "$call" --cpu --work "$R/work-$call" > "$R/$call.stdout" 2>&1
  rc=$?
  took=$(( $(date +%s) - t0 ))
  touch "$R/watch-$call.stop"
  wait "$watcher"
  sed 's/^/   | /' "$R/$call.stdout" | grep -E '^   \| (==|   )' | grep -v '^   |    (' || true
  read -r max deep < "$R/watch-$call"
  budget=$("$VPY" -c "import json; print(int(json.load(open('$OUTDIR/$call.json'))['budget_s']))" 2>/dev/null || echo 0)
  echo "== $call: rc $rc, ${took} s of its scaled budget ${budget} s; output folder held at most $max files," \
       "$deep below its top level: $(ls "$OUTDIR" | tr '\n' ' ')"
  [ "$rc" = 0 ] || { echo "FAIL: $call exited $rc"; fail=1; }
  [ "$took" -le "$budget" ] || { echo "FAIL: $call took ${took} s > ${budget} s"; fail=1; }
  [ "$max" -le 3 ] && [ "$deep" = 0 ] || { echo "FAIL: $call output folder held $max entries / $deep nested"; fail=1; }
  "$VPY" benchmarks/gpu_pretrain.py plan --check "$OUTDIR/$call.json" | sed "s/^/   $call figures: /" || {
    echo "FAIL: $call JSON lacks figures"; fail=1; }
  "$VPY" - "$OUTDIR/$call.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"   {'step':28s} {'CPU s':>6s} {'GPU exp. s':>10s}  source of the GPU estimate")
for name, _ in r["plan"]:
    s = r["steps"].get(name, {})
    print(f"   {name:28s} {s.get('seconds', 0):6.0f} {s.get('expected_gpu_s', 0):10.0f}  {s.get('expected_source', '')}")
total = sum(r["steps"].get(n, {}).get("expected_gpu_s", 0) for n, _ in r["plan"])
print(f"   {'GPU expected in all':28s} {'':6s} {total:10.0f}  (the GPU call's budget: 285 s)")
sys.exit(0 if total <= 285 else 1)
PY
  [ $? = 0 ] || { echo "FAIL: $call's GPU plan exceeds 285 s"; fail=1; }
done
[ "$fail" = 0 ] && echo "REHEARSAL PASSED" || echo "REHEARSAL FAILED"
exit "$fail"
