# Shared by examples/el_*/run.sh (sourced after each recipe sets its variables):
# data preparation and one fine-tune + constrained-decoding + Recall@k run.

PLUGIN=$(python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))')  # no import: registering takes seconds
DEVICE_FLAGS=()
[ -z "$GPUS" ] && DEVICE_FLAGS=(--cpu)
export CUDA_VISIBLE_DEVICES="$GPUS"

prepare_el() {  # $1 = dataset name for biobart-prepare-el; further arguments are passed on
  local dataset=$1
  shift
  # STYLE=genbioel (the NCBI and BC5CDR recipes): BioSyn/GenBioEL's preparation, as behind Table 4
  biobart-prepare-el --dataset "$dataset" --input "$RAW" ${KB:+--kb "$KB"} -o "$OUT" "$@" \
    ${STYLE:+--style "$STYLE"} ${TYPO_FILE:+--typo-file "$TYPO_FILE"} \
    --bpe gpt2 --encoder-json "$BPE_DIR/encoder.json" --vocab-bpe "$BPE_DIR/vocab.bpe" --dict "$BPE_DIR/dict.txt" \
    --max-context-words "$CONTEXT_WORDS" --workers 8 || [ $? -eq 3 ]   # 3 = written, some bad records skipped
}

run_fold() {  # $1 = folder with bin/ ; $2 = where checkpoints and results go
  local data=$1/bin save=$2
  fairseq-train "$data" --user-dir "$PLUGIN" --task biomed_entity_linking --arch "$ARCH" \
    --restore-file "$CHECKPOINT" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler \
    --share-all-embeddings --truncate-source --max-source-positions 1024 --max-target-positions 1024 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --optimizer adam --adam-betas '(0.9, 0.999)' --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 0.1 \
    --lr "$LR" --lr-scheduler polynomial_decay --end-learning-rate 1e-7 \
    --warmup-updates "$WARMUP" --total-num-update "$STEPS" --max-update "$STEPS" \
    --batch-size 8 --required-batch-size-multiple 1 --dropout 0.1 --attention-dropout 0.1 --seed 0 \
    --save-dir "$save" --no-epoch-checkpoints --save-interval-updates 5000 --keep-interval-updates 1 \
    --disable-validation --log-format simple --log-interval 100 "${DEVICE_FLAGS[@]}" ${EXTRA_TRAIN_ARGS:-}
  biobart-el-eval "$data" --path "$save/checkpoint_last.pt" --split test --beam "$BEAM" --batch-size 64 \
    ${GPUS:+--gpu} -o "$save/test_predictions.jsonl" --results "$save/el_eval.json"
}

write_results() {  # $1 = dataset key, $2 = SAVE_DIR, then biobart-el-eval results file(s): several = folds, averaged
  # SAVE_DIR/results.json in the paper's units (biobart-results; biobart-tables reads it).  PAPER_ROW =
  # the paper's row this run stands for (bart-base, biobart-base, ...; default: from the model).
  local dataset=$1 save=$2 ckpt=$2/checkpoint_last.pt
  shift 2
  [ $# -gt 1 ] && ckpt=""   # folds: each fold has its own checkpoint
  python -m biobart_fairseq.cli.write_results --kind el --dataset "$dataset" --split test --scores "$@" \
    --model "$CHECKPOINT" ${ckpt:+--checkpoint "$ckpt"} ${PAPER_ROW:+--paper-row "$PAPER_ROW"} \
    --decoding beam="$BEAM" --setting arch="$ARCH" lr="$LR" steps="$STEPS" warmup="$WARMUP" \
    context_words="$CONTEXT_WORDS" style="${STYLE:-raw}" gpus="$GPUS" "extra_train_args=${EXTRA_TRAIN_ARGS:-}" \
    --command="$(printf '%q ' bash "$0")" -o "$save/results.json"
  cat "$save/results.json"
}
