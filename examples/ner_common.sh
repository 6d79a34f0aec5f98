# Shared by examples/ner_*/run.sh (sourced after each recipe sets its variables; the
# recipe's own arguments are passed on to fairseq-train): fine-tune BARTNER with the
# dataset's settings, keep the best dev-F1 checkpoint, then decode and score the test set.
# Dev ner_f1 and the test scores count as BARTNER's evaluation does (--eval-metric bartner and
# biobart-ner-score --metric bartner, the defaults); decoding lengths are BARTNER's generator's.

# locate the plugin without importing it (importing it imports fairseq: seconds)
PLUGIN=$("$PYTHON" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))')
N=$(grep -c . "$DATA/train.jsonl")
UPDATES=$(( (N + BATCH - 1) / BATCH * EPOCHS ))
WARMUP=$(( UPDATES / 100 > 0 ? UPDATES / 100 : 1 ))

if [[ " $STAGES " == *" train "* ]]; then
  fairseq-train "$DATA" --user-dir "$PLUGIN" --task bartner_ner --target-type "$TARGET_TYPE" \
    --arch "$ARCH" "${HEAD_FLAGS[@]}" --finetune-from-model "$BART/model.pt" --criterion bartner_loss \
    --optimizer adam --adam-betas '(0.9, 0.999)' --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 5 \
    --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" --total-num-update "$UPDATES" \
    --max-epoch "$EPOCHS" --batch-size "$BATCH" --required-batch-size-multiple 1 \
    --valid-subset dev --eval-beam "$BEAM" --max-len-a "$LEN_A" --max-len-b 10 \
    --best-checkpoint-metric ner_f1 --maximize-best-checkpoint-metric \
    --save-dir "$SAVE_DIR" --no-epoch-checkpoints --seed "$SEED" \
    --log-format simple --log-interval 50 \
    "$@"
fi
if [[ " $STAGES " == *" test "* ]]; then
  "$PYTHON" -m biobart_fairseq.cli.ner_score --checkpoint "$SAVE_DIR/checkpoint_best.pt" --data "$DATA" \
    --split test --beam "$BEAM" --max-len-a "$LEN_A" --max-len-b 10 \
    --pred-out "$SAVE_DIR/test.pred.jsonl" --output-json "$SAVE_DIR/test.scores.json"
fi
if [[ " $STAGES " == *" test "* ]]; then
  # SAVE_DIR/results.json in the paper's units (biobart-results; biobart-tables reads it); the dataset
  # key is the recipe's folder name without "ner_".  PAPER_ROW = the paper's row this run stands for
  # (bart-base, biobart-base, ...; default: from the model).
  NER_DATASET=${NER_DATASET:-$(basename "$(cd "$(dirname "$0")" && pwd)")}
  "$PYTHON" -m biobart_fairseq.cli.write_results --kind ner --dataset "${NER_DATASET#ner_}" --split test \
    --scores "$SAVE_DIR/test.scores.json" --model "$BART/model.pt" --checkpoint "$SAVE_DIR/checkpoint_best.pt" \
    ${PAPER_ROW:+--paper-row "$PAPER_ROW"} --decoding beam="$BEAM" max_len_a="$LEN_A" max_len_b=10 \
    --setting arch="$ARCH" target_type="$TARGET_TYPE" lr="$LR" epochs="$EPOCHS" batch="$BATCH" seed="$SEED" \
    --command="$(printf '%q ' bash "$0" "$@")" -o "$SAVE_DIR/results.json"
fi
