# Shared by examples/reproduce.sh and examples/reproduce_table6.sh (sourced): one step per recipe,
# printed with its GPU-hour estimate and, unless DRY_RUN=1, run.  A recipe that fails is reported
# and the others still run (a reproduction takes days; one missing dataset should not stop it).
#
# GPU-hours: the training sequences of a run (Table 1 train size x epochs, or steps x batch 8 for
# entity linking) at the throughput the paper's own pretraining implies (§5.1: 120k updates x 2560
# sequences of 512 tokens on 16 A100s in 100 h for base, 168 h for large).  Decoding and validation
# are not counted: read the figures as lower bounds.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$REPO; [ "$REPO" = "$PWD" ] && HERE=.   # printed commands stay short when run from the checkout
DRY_RUN=${DRY_RUN:-0}
GPUS=${GPUS-0}
NER_DATA=${NER_DATA:-data-ner}            # NER_DATA/<dataset>: biobart-prepare-ner output (see examples/ner_*/run.sh)
TABLES=(python "$REPO/biobart_fairseq/paper_tables.py")   # run as a file: no fairseq import for a few numbers
TOTAL_HOURS=0
UNKNOWN_HOURS=()
FAILED=()

gpu_hours() {  # $1 = training sequences, $2 = base|large -> GPU-hours
  awk -v n="$1" -v r="$("${TABLES[@]}" rate "$2")" 'BEGIN { printf "%.2f", n / r }'
}

step() {  # $1 = GPU-hours or "?", $2 = label, then the command (VAR=value ... program args)
  local hours=$1 label=$2 cmd
  shift 2
  cmd=$(printf '%q ' "$@")
  printf '%-30s %9s GPU-h  %s\n' "$label" "$hours" "${cmd% }"
  if [ "$hours" = "?" ]; then UNKNOWN_HOURS+=("$label"); else
    TOTAL_HOURS=$(awk -v a="$TOTAL_HOURS" -v b="$hours" 'BEGIN { printf "%.2f", a + b }'); fi
  [ "$DRY_RUN" = 1 ] && return 0
  env "$@" || FAILED+=("$label")
}

finetune() {  # $1 = dataset key, $2 = checkpoint, $3 = folder with the BPE files, $4 = paper row, $5 = base|large, $6 = out dir
  local ds=$1 ckpt=$2 bpe=$3 row=$4 size=$5 out=$6 n steps folds=1 epochs=6
  case "$ds" in
    covid_dialog|icliniq|healthcaremagic|mediqa_qs|mediqa_mas|mediqa_ans|meqsum)
      [ "$ds" = covid_dialog ] && epochs=20   # §5.3: 20 epochs for dialogue, 6 for summarization
      n=$("${TABLES[@]}" train-size "$ds")
      step "$(gpu_hours $((n * epochs)) "$size")" "$ds ($row)" SIZE="$size" CHECKPOINT="$ckpt" BPE_DIR="$bpe" \
        GPUS="$GPUS" WORK="$out/$ds" PAPER_ROW="$row" bash "$HERE/examples/$ds/run.sh" ;;
    medmentions|bc5cdr|ncbi|cometa|askapatient)
      steps=$(sed -n 's/^STEPS=\${STEPS:-\([0-9]*\)}.*/\1/p' "$REPO/examples/el_$ds/run.sh")
      [ "$ds" = askapatient ] && folds=10
      step "$(gpu_hours $((steps * 8 * folds)) "$size")" "el_$ds ($row)" CHECKPOINT="$ckpt" BPE_DIR="$bpe" \
        ARCH="bart_$size" GPUS="$GPUS" OUT="$out/el_$ds/data" SAVE_DIR="$out/el_$ds" PAPER_ROW="$row" \
        bash "$HERE/examples/el_$ds/run.sh" ;;
    share13|share14|cadec|genia)
      # Table 1 counts entities, not sentences: the estimate needs the prepared data
      if [ -f "$NER_DATA/$ds/train.jsonl" ]; then n=$(grep -c . "$NER_DATA/$ds/train.jsonl"); n=$(gpu_hours $((n * 30)) "$size"); else n="?"; fi
      step "$n" "ner_$ds ($row)" DATA="$NER_DATA/$ds" BART="$(dirname "$ckpt")" ARCH="bartner_$size" \
        CUDA_VISIBLE_DEVICES="$GPUS" SAVE_DIR="$out/ner_$ds" PAPER_ROW="$row" bash "$HERE/examples/ner_$ds/run.sh" ;;
    *) echo "unknown dataset $ds" >&2; return 2 ;;
  esac
}

finish() {  # $1 = folder with the runs, then the tables to show
  local out=$1
  shift
  step 0 "tables" biobart-tables "$out" --tables "$@" -o "$out/tables.md" --plot "$out/tables.png"
  echo "total: $TOTAL_HOURS GPU-hours (A100 40GB, training only)${UNKNOWN_HOURS[*]:+; not estimated: ${UNKNOWN_HOURS[*]}}"
  if [ "${#FAILED[@]}" -gt 0 ]; then echo "failed: ${FAILED[*]}" >&2; return 1; fi
}
