# Shared by examples/ner_*/run.sh (sourced after each recipe sets its variables; the
# recipe's own arguments are passed on to fairseq-train): fine-tune BARTNER with the
# dataset's settings, keep the best dev-F1 checkpoint, then decode and score the test set.
# Dev ner_f1 and the test scores count as BARTNER's evaluation does (--eval-metric bartner and
# biobart-ner-score --metric bartner, the defaults); decoding lengths are BARTNER's generator's.

#
# SMALL=1: try the recipe in about a minute on CPU -- the first ${LIMIT:-40} sentences of each split of
# RAW (a folder with train/dev/test files in the recipe's format; a missing split is taken from
# another, e.g. the 4-sentence CADEC sample serves all three), prepared into SAVE_DIR-small/data with
# a sentencepiece BPE learnt on them, a tiny BARTNER trained from scratch for 3 epochs; the same
# steps and output files as the paper's setting.  SAVE_DIR/settings.txt records the settings; other
# settings stop the recipe unless RESUME=1 (continue) or FRESH=1 (move the old folder aside).
source "$(dirname "${BASH_SOURCE[0]}")/recipe_lib.sh"

# The settings every NER recipe shares, each overridable from the environment.  The recipe has set
# its own (TARGET_TYPE, LR, BEAM, LEN_A, HEAD_FLAGS, RAW, SMALL_FORMAT) before sourcing this file;
# these come before the SMALL=1 block below, which replaces some of them.
if [ "${SMALL:-0}" != 1 ]; then  # SMALL=1 prepares a few dozen sentences of RAW itself (below)
  DATA=${DATA:?DATA: data folder written by biobart-prepare-ner}
  BART=${BART:?BART: folder with the pretrained model.pt (BioBART or BART, fairseq format)}
fi
NER_RECIPE=$(basename "$(cd "$(dirname "$0")" && pwd)")   # the recipe's folder: ner_<dataset>
SAVE_DIR=${SAVE_DIR:-checkpoints/$NER_RECIPE}
ARCH=${ARCH:-bartner_base}       # bartner_base | bartner_large
EPOCHS=${EPOCHS:-30}
BATCH=${BATCH:-16}
SEED=${SEED:-1}
STAGES=${STAGES:-train test}     # "train" or "test" alone runs one stage
PYTHON=${PYTHON:-python}
# Also read here: LOG_INTERVAL (50), NER_DATASET (results.json's dataset key), PAPER_ROW; with
# SMALL=1, LIMIT (40) and VOCAB_SIZE (400).

FINETUNE=(--finetune-from-model "${BART:-}/model.pt")
if [ "${SMALL:-0}" = 1 ]; then
  SAVE_DIR=$SAVE_DIR-small BART= FINETUNE=() EPOCHS=3 BATCH=8 LR=1e-3 BEAM=2
  DATA=$SAVE_DIR/data
  HEAD_FLAGS+=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 --decoder-embed-dim 64
    --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --encoder-attention-heads 2 --decoder-attention-heads 2)
fi
recipe_on_failure "$(basename "$(dirname "$0")") recipe"
recipe_guard "$SAVE_DIR" "$SAVE_DIR/checkpoint_last.pt" DATA BART ARCH TARGET_TYPE LR EPOCHS BATCH SEED SMALL
if [ "${SMALL:-0}" = 1 ] && [ ! -f "$DATA/ner.json" ]; then
  recipe_step "prepare (SMALL=1: the first ${LIMIT:-40} sentences of each split of ${RAW:?RAW: folder with the dataset})"
  small_split() {  # $1 = split: the first LIMIT sentences (JSON lines or blank-line separated blocks)
    local f
    f=$(find "$RAW" -maxdepth 1 -type f -name "$1.*" ! -name '*.id' | head -n 1)
    [ -n "$f" ] || f=$(find "$RAW" -maxdepth 1 -type f \( -name 'dev.*' -o -name 'train.*' -o -name 'test.*' \) ! -name '*.id' | sort | head -n 1)
    [ -n "$f" ] || { echo "no train/dev/test file in $RAW" >&2; return 2; }
    if [ "$SMALL_FORMAT" = dai ]; then awk -v n="${LIMIT:-40}" 'BEGIN { RS = ""; ORS = "\n\n" } NR <= n' "$f"
    else head -n "${LIMIT:-40}" "$f"; fi
  }
  mkdir -p "$SAVE_DIR/raw"
  for s in train dev test; do small_split $s > "$SAVE_DIR/raw/$s.txt"; done
  biobart-prepare-ner --format "$SMALL_FORMAT" --input "$SAVE_DIR"/raw/{train,dev,test}.txt -o "$DATA" \
    --target-type "$TARGET_TYPE" --bpe sentencepiece --vocab-size "${VOCAB_SIZE:-400}"
fi

PLUGIN=$(recipe_plugin_dir "$PYTHON")
N=$(grep -c . "$DATA/train.jsonl")
UPDATES=$(( (N + BATCH - 1) / BATCH * EPOCHS ))
WARMUP=$(( UPDATES / 100 > 0 ? UPDATES / 100 : 1 ))

# Checkpoints: best (dev F1) and last while training; once training has ended, checkpoint_best.pt
# without optimizer state, nothing else (recipe_lib.sh recipe_finish_training; KEEP_LAST=1 keeps
# checkpoint_last.pt to train on).  A finished run is not trained again.
if [[ " $STAGES " == *" train "* ]] && ! recipe_training_done "$SAVE_DIR"; then
  recipe_step "fine-tune ($EPOCHS epochs, $UPDATES updates)" "$SAVE_DIR/train.log"
  mkdir -p "$SAVE_DIR"
  fairseq-train "$DATA" --user-dir "$PLUGIN" --task bartner_ner --target-type "$TARGET_TYPE" \
    --arch "$ARCH" "${HEAD_FLAGS[@]}" "${FINETUNE[@]}" --criterion bartner_loss \
    --optimizer adam --adam-betas '(0.9, 0.999)' --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 5 \
    --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" --total-num-update "$UPDATES" \
    --max-epoch "$EPOCHS" --batch-size "$BATCH" --required-batch-size-multiple 1 \
    --valid-subset dev --eval-beam "$BEAM" --max-len-a "$LEN_A" --max-len-b 10 \
    --best-checkpoint-metric ner_f1 --maximize-best-checkpoint-metric \
    --save-dir "$SAVE_DIR" --no-epoch-checkpoints --seed "$SEED" \
    --log-format simple --log-interval "${LOG_INTERVAL:-50}" \
    "$@" 2>&1 | tee "$SAVE_DIR/train.log"
  recipe_finish_training "$SAVE_DIR" checkpoint_best.pt
fi
if [[ " $STAGES " == *" test "* ]]; then
  recipe_step "decode and score the test set (beam $BEAM)"
  "$PYTHON" -m biobart_fairseq.cli.ner_score --checkpoint "$SAVE_DIR/checkpoint_best.pt" --data "$DATA" \
    --split test --beam "$BEAM" --max-len-a "$LEN_A" --max-len-b 10 \
    --pred-out "$SAVE_DIR/test.pred.jsonl" --output-json "$SAVE_DIR/test.scores.json"
fi
if [[ " $STAGES " == *" test "* ]]; then
  # SAVE_DIR/results.json in the paper's units (biobart-results; biobart-tables reads it); the dataset
  # key is the recipe's folder name without "ner_".  PAPER_ROW = the paper's row this run stands for
  # (bart-base, biobart-base, ...; default: from the model).
  NER_DATASET=${NER_DATASET:-$NER_RECIPE}
  "$PYTHON" -m biobart_fairseq.cli.write_results --kind ner --dataset "${NER_DATASET#ner_}" --split test \
    --scores "$SAVE_DIR/test.scores.json" --model "${BART:+$BART/model.pt}" --checkpoint "$SAVE_DIR/checkpoint_best.pt" \
    ${PAPER_ROW:+--paper-row "$PAPER_ROW"} --decoding beam="$BEAM" max_len_a="$LEN_A" max_len_b=10 \
    --setting arch="$ARCH" target_type="$TARGET_TYPE" lr="$LR" epochs="$EPOCHS" batch="$BATCH" seed="$SEED" \
    --command="$(printf '%q ' bash "$0" "$@")" -o "$SAVE_DIR/results.json"
fi
