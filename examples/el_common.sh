# Shared by examples/el_*/run.sh (sourced after each recipe sets its variables):
# data preparation and one fine-tune + constrained-decoding + Recall@k run.
#
# SMALL=1: try the recipe in about a minute on CPU -- a tiny BART trained from scratch, a
# sentencepiece BPE learnt on the data, the first 48 mentions of each split (the whole KB),
# 30 updates, beam 2; OUT and SAVE_DIR get a "-small" suffix.  Same steps and output files as
# the paper's setting.  Without the KB file the dataset's own (concept, mention) pairs stand in.
# Re-running: SAVE_DIR/settings.txt records the settings; other settings stop the recipe unless
# RESUME=1 (continue from what is there) or FRESH=1 (move the old folder aside).

source "$(dirname "${BASH_SOURCE[0]}")/recipe_lib.sh"

# The settings every EL recipe shares, each overridable from the environment.  The recipe has set
# its own (DATASET, RAW, KB, LR, STEPS, and a BEAM/WARMUP/CONTEXT_WORDS of its own where it differs)
# before sourcing this file, so the defaults here fill in only what is still unset (or empty, for
# the ${X:-...} ones; CHECKPOINT and GPUS may be set empty on purpose).  They come before the SMALL=1
# block, which replaces some of them.
: "${DATASET:?DATASET: set by the recipe (examples/el_<dataset>/run.sh)}"
OUT=${OUT:-data/el_$DATASET}                    # canonical JSONL + model inputs (OUT/bin)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-base/model.pt}  # converted BART/BioBART weights; empty = from scratch
BPE_DIR=${BPE_DIR:-$(dirname "$CHECKPOINT")}    # encoder.json, vocab.bpe, dict.txt of that model
ARCH=${ARCH:-bart_base}                         # bart_base | bart_large
SAVE_DIR=${SAVE_DIR:-checkpoints/el_$DATASET}
GPUS=${GPUS-0}                                  # CUDA_VISIBLE_DEVICES; empty = CPU
WARMUP=${WARMUP:-500}                           # GenBioEL's warm-up updates
BEAM=${BEAM:-5}
CONTEXT_WORDS=${CONTEXT_WORDS:-384}             # words of context around a mention
# Also read here: STYLE, TYPO_FILE, EXTRA_TRAIN_ARGS, WORKERS (8), LOG_INTERVAL (100), PAPER_ROW;
# with SMALL=1, VOCAB_SIZE (1000) and LIMIT (48).

if [ "${SMALL:-0}" = 1 ]; then
  CHECKPOINT= GPUS= STYLE=raw TYPO_FILE= STEPS=30 WARMUP=3 LR=1e-3 BEAM=2 CONTEXT_WORDS=64
  ARCH=bart_base
  ARCH_ARGS="--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 --decoder-embed-dim 64
    --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --encoder-attention-heads 2 --decoder-attention-heads 2"
  OUT=$OUT-small SAVE_DIR=$SAVE_DIR-small
  if [ -n "${KB:-}" ] && [ ! -e "$KB" ]; then echo "SMALL=1: $KB not found; the dataset's own names stand in"; KB=; fi
  SMALL_PREP=(--bpe sentencepiece --vocab-size "${VOCAB_SIZE:-1000}" --limit "${LIMIT:-48}")
  if [ -z "${KB:-}" ]; then SMALL_PREP+=(--kb-from-data); fi
fi
recipe_on_failure "$(basename "$(dirname "$0")") recipe"
recipe_guard "$SAVE_DIR" "" RAW KB STYLE OUT CHECKPOINT ARCH LR STEPS WARMUP \
  CONTEXT_WORDS SMALL EXTRA_TRAIN_ARGS

PLUGIN=$(recipe_plugin_dir python)
DEVICE_FLAGS=()
[ -z "$GPUS" ] && DEVICE_FLAGS=(--cpu)
export CUDA_VISIBLE_DEVICES="$GPUS"

prepare_el() {  # $1 = dataset name for biobart-prepare-el; further arguments are passed on
  local dataset=$1
  shift
  # STYLE=genbioel (the NCBI and BC5CDR recipes): BioSyn/GenBioEL's preparation, as behind Table 4
  local bpe_args=(--bpe gpt2 --encoder-json "$BPE_DIR/encoder.json" --vocab-bpe "$BPE_DIR/vocab.bpe" --dict "$BPE_DIR/dict.txt")
  [ "${SMALL:-0}" = 1 ] && bpe_args=("${SMALL_PREP[@]}")
  recipe_step "prepare $dataset"
  biobart-prepare-el --dataset "$dataset" --input "$RAW" ${KB:+--kb "$KB"} -o "$OUT" "$@" \
    ${STYLE:+--style "$STYLE"} ${TYPO_FILE:+--typo-file "$TYPO_FILE"} "${bpe_args[@]}" \
    --max-context-words "$CONTEXT_WORDS" --workers "${WORKERS:-8}" || [ $? -eq 3 ]   # 3 = written, some bad records skipped
}

run_fold() {  # $1 = folder with bin/ ; $2 = where checkpoints and results go
  local data=$1/bin save=$2
  # from the pretrained CHECKPOINT, or on from the fold's own checkpoint_last.pt (a re-run resumes)
  local restore=(--restore-file "$CHECKPOINT" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler)
  if [ -z "$CHECKPOINT" ] || [ -f "$save/checkpoint_last.pt" ]; then restore=(); fi
  recipe_step "fine-tune ($STEPS updates)" "$save/train.log"
  mkdir -p "$save"
  # Checkpoints: last (and one interval copy) while training; once training has ended, checkpoint_last.pt
  # (the one decoded) without optimizer state, nothing else (recipe_lib.sh recipe_finish_training;
  # KEEP_LAST=1 keeps it whole to train on).  A finished fold is not trained again.
  if ! recipe_training_done "$save"; then
  if [ -f "$save/checkpoint_last.pt" ]; then echo "resuming from $save/checkpoint_last.pt (FRESH=1 starts over)"; fi
  # shellcheck disable=SC2086
  fairseq-train "$data" --user-dir "$PLUGIN" --task biomed_entity_linking --arch "$ARCH" ${ARCH_ARGS:-} "${restore[@]}" \
    --share-all-embeddings --truncate-source --max-source-positions 1024 --max-target-positions 1024 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --optimizer adam --adam-betas '(0.9, 0.999)' --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 0.1 \
    --lr "$LR" --lr-scheduler polynomial_decay --end-learning-rate 1e-7 \
    --warmup-updates "$WARMUP" --total-num-update "$STEPS" --max-update "$STEPS" \
    --batch-size 8 --required-batch-size-multiple 1 --dropout 0.1 --attention-dropout 0.1 --seed 0 \
    --save-dir "$save" --no-epoch-checkpoints --save-interval-updates 5000 --keep-interval-updates 1 \
    --disable-validation --log-format simple --log-interval "${LOG_INTERVAL:-100}" "${DEVICE_FLAGS[@]}" \
    ${EXTRA_TRAIN_ARGS:-} 2>&1 | tee "$save/train.log"
  recipe_finish_training "$save" checkpoint_last.pt
  fi
  recipe_step "decode and score (beam $BEAM)"
  biobart-el-eval "$data" --path "$save/checkpoint_last.pt" --split test --beam "$BEAM" --batch-size 64 \
    ${GPUS:+--gpu} -o "$save/test_predictions.jsonl" --results "$save/el_eval.json"
}

el_run() {  # the recipe of a dataset with one train/dev/test split; arguments go to biobart-prepare-el
  prepare_el "$DATASET" "$@"
  run_fold "$OUT" "$SAVE_DIR"
  write_results "$DATASET" "$SAVE_DIR" "$SAVE_DIR/el_eval.json"
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
