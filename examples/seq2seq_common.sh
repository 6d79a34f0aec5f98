#!/usr/bin/env bash
# Shared body of examples/<dataset>/run.sh: prepare -> binarize -> fine-tune -> generate -> score,
# with the paper's settings (§5.3): lr 5e-5 (base) / 1e-5 (large), 20 epochs for dialogue and 6 for
# summarization, validation every epoch keeping the best checkpoint; generation as BioBART's own
# fine-tuning scripts: beam 5, no length penalty, trigram blocking, per-dataset output lengths.
# The per-dataset run.sh sets DATASET, TASK_TYPE (dialogue|summarization), INPUTS and the output
# lengths MAX_TARGET_LEN/MIN_TARGET_LEN, then sources this file.  Every variable below can be
# overridden from the environment.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${DATASET:?set by run.sh}" "${TASK_TYPE:?set by run.sh}" "${INPUTS:?set by run.sh}"
: "${MAX_TARGET_LEN:?set by run.sh}" "${MIN_TARGET_LEN:?set by run.sh}"
source "$REPO/examples/recipe_lib.sh"

# --- SMALL=1: try the recipe in about a minute on CPU ---------------------------------------------
# A tiny BART trained from scratch, a sentencepiece BPE learnt on the data, the first 24 examples of
# each split, 4 epochs, beam 2, outputs of 1-24 tokens, no BERTScore; the same steps and output files
# as the paper's setting.
# Inputs that are not there are left out; with no training split (MEDIQA-MAS without MEDIQA-AnS)
# the validation split stands in for it.
if [ "${SMALL:-0}" = 1 ]; then
  CHECKPOINT= GPUS= BPE=sentencepiece
  VOCAB_SIZE=${VOCAB_SIZE:-400} EXTRA_PREP_ARGS=${EXTRA_PREP_ARGS:---limit 24} EPOCHS=${EPOCHS:-4}
  BATCH_SIZE=${BATCH_SIZE:-8} LR=${LR:-5e-3} BEAM=${BEAM:-2} BERTSCORE=${BERTSCORE:---no-bertscore}
  MAX_LEN_B=${MAX_LEN_B:-24} MIN_LEN=${MIN_LEN:-1}
  WORKERS=${WORKERS:-2} LOG_INTERVAL=${LOG_INTERVAL:-1} WORK=${WORK:-work/$DATASET-small}
  ARCH_ARGS=${ARCH_ARGS:---arch bart_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 \
--decoder-embed-dim 64 --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --encoder-attention-heads 2 \
--decoder-attention-heads 2}
  # shellcheck disable=SC2086
  INPUTS=$(recipe_existing_inputs $INPUTS)
fi

# --- what to fine-tune ---------------------------------------------------------------------------
SIZE=${SIZE:-base}                       # base | large
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # biobart-convert hf-to-fairseq OUT/model.pt, or a
                                         # biomed_denoising checkpoint; empty = train from scratch (tests only)
BPE=${BPE:-gpt2}                         # gpt2 (BART/BioBART vocabulary) | sentencepiece (from-scratch tests)
BPE_DIR=${BPE_DIR:-$(dirname "${CHECKPOINT:-.}")}  # holds encoder.json, vocab.bpe, dict.txt (written by biobart-convert)
ARCH_ARGS=${ARCH_ARGS:---arch bart_$SIZE}
# --- hardware ------------------------------------------------------------------------------------
GPUS=${GPUS-0}                           # CUDA_VISIBLE_DEVICES list, e.g. 0,1,2,3; empty = CPU
export SIZE CHECKPOINT GPUS              # in the steps' environment, as the recipes always exported them
if [ -n "$GPUS" ]; then PRECISION=${PRECISION---fp16}; else PRECISION=${PRECISION-}; fi  # --fp16 | --bf16 | ""
MAX_TOKENS=${MAX_TOKENS:-2048}           # per GPU per forward pass
MAX_POSITIONS=${MAX_POSITIONS:-1024}     # the model's positions (BART's 1024), both sides; longer sources are cut
                                         # (--truncate-source) and counted in data-bin/stats.json and results.json
BATCH_SIZE=${BATCH_SIZE:-16}             # sentences per GPU per forward pass
UPDATE_FREQ=${UPDATE_FREQ:-1}
# --- paper settings --------------------------------------------------------------------------------
if [ "$SIZE" = large ]; then LR=${LR:-1e-5}; else LR=${LR:-5e-5}; fi
if [ "$TASK_TYPE" = dialogue ]; then EPOCHS=${EPOCHS:-20}; else EPOCHS=${EPOCHS:-6}; fi
BEAM=${BEAM:-5}
LENPEN=${LENPEN:-1.0}                    # 1.0 = no length penalty
# MAX/MIN_TARGET_LEN are Hugging Face generate()'s max_length/min_length (BioBART's
# --val_max/min_target_length), which count the decoder start </s>, the <s> a BART model emits
# first and the final </s>; fairseq's --max-len-b/--min-len count only the text (our targets carry
# no <s>; fairseq adds the </s>).  Same outputs: text <= MAX_TARGET_LEN-3, >= MIN_TARGET_LEN-2 tokens.
MAX_LEN_B=${MAX_LEN_B:-$((MAX_TARGET_LEN - 3))}
MIN_LEN=${MIN_LEN:-$((MIN_TARGET_LEN - 2))}
NO_REPEAT=${NO_REPEAT:-3}                # the released BioBART config.json; 0 = off (works on CPU too)
BERTSCORE=${BERTSCORE:---bertscore-model roberta-large}  # or --no-bertscore, or --bertscore-model /local/model
# --- where things go ---------------------------------------------------------------------------------
WORK=${WORK:-work/$DATASET-$SIZE}
PREP=$WORK/prep; BIN=$WORK/data-bin; SAVE=$WORK/checkpoints; OUT=$WORK/output
EXTRA_TRAIN_ARGS=${EXTRA_TRAIN_ARGS:-}   # e.g. "--max-update 20 --cpu" for a smoke run
EXTRA_PREP_ARGS=${EXTRA_PREP_ARGS:-}     # e.g. "--limit 40"
SEED=${SEED:-1}

export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
CPU_FLAG=()
if [ -n "$GPUS" ]; then export CUDA_VISIBLE_DEVICES=$GPUS; NGPU=$(awk -F, '{print NF}' <<<"$GPUS"); else NGPU=1; CPU_FLAG=(--cpu); fi
# A failure prints the recipe, the step and its log.  WORK/settings.txt records what WORK was built
# with: other settings stop the recipe (RESUME=1 continues from what is there, FRESH=1 starts over).
recipe_on_failure "$DATASET recipe"
recipe_guard "$WORK" "$SAVE/checkpoint_last.pt" DATASET INPUTS EXTRA_PREP_ARGS BPE VOCAB_SIZE CHECKPOINT SIZE \
  ARCH_ARGS LR EPOCHS BATCH_SIZE MAX_TOKENS UPDATE_FREQ NGPU SEED EXTRA_TRAIN_ARGS SMALL
mkdir -p "$WORK" "$OUT"

recipe_step "1/5 prepare $DATASET"
# exit status 3 = written, but bad records were skipped (listed above and in stats.json)
# shellcheck disable=SC2086
biobart-prepare-seq2seq --dataset "$DATASET" --input $INPUTS -o "$PREP" $EXTRA_PREP_ARGS || [ $? -eq 3 ]
if [ "${SMALL:-0}" = 1 ] && [ ! -s "$PREP/train.source" ] && [ -s "$PREP/valid.source" ]; then
  echo "SMALL=1: no training split here; the validation split stands in for it"
  cp "$PREP/valid.source" "$PREP/train.source" && cp "$PREP/valid.target" "$PREP/train.target"
fi
[ -s "$PREP/train.source" ] || { echo "no training data in $PREP: see docs/seq2seq.md for where it comes from" >&2; exit 2; }

recipe_step "2/5 binarize ($BPE)"
if [ "$BPE" = gpt2 ]; then
  BPE_ARGS=(--bpe gpt2 --encoder-json "$BPE_DIR/encoder.json" --vocab-bpe "$BPE_DIR/vocab.bpe" --dict "$BPE_DIR/dict.txt")
else
  BPE_ARGS=(--bpe sentencepiece --vocab-size "${VOCAB_SIZE:-1000}")
fi
# data-bin/stats.json counts per split the sources/targets longer than MAX_POSITIONS (as fairseq reads them)
python -m biobart_fairseq.cli.binarize_seq2seq --data-dir "$PREP" -o "$BIN" "${BPE_ARGS[@]}" --workers "${WORKERS:-4}" \
  --max-source-positions "$MAX_POSITIONS" --max-target-positions "$MAX_POSITIONS"

recipe_step "3/5 fine-tune ($SIZE, lr $LR, $EPOCHS epochs)" "$WORK/train.log"
# from the pretrained CHECKPOINT, or on from WORK's own checkpoint_last.pt (announced by recipe_guard).
# Checkpoints: best and last while training (no epoch checkpoints); once training has ended, the one
# decoded with (BEST) without optimizer state, nothing else (examples/recipe_lib.sh recipe_finish_training;
# at base size 0.56 GB instead of 2 x 1.7 GB; KEEP_LAST=1 keeps checkpoint_last.pt to train on later).
RESTORE=()
if [ -n "$CHECKPOINT" ] && [ ! -f "$SAVE/checkpoint_last.pt" ]; then
  RESTORE=(--restore-file "$CHECKPOINT" --reset-optimizer --reset-dataloader --reset-meters)
fi
if [ -s "$PREP/valid.source" ]; then
  VALID=(--validate-interval 1 --best-checkpoint-metric loss); BEST=checkpoint_best.pt
else
  VALID=(--disable-validation); BEST=checkpoint_last.pt   # MeQSum has no validation split (Table 1)
fi
# shellcheck disable=SC2086
TRAIN_ARGS=("$BIN" --user-dir "$REPO/biobart_fairseq" --task biomed_translation \
  --source-lang source --target-lang target $ARCH_ARGS "${RESTORE[@]}" \
  --truncate-source --layernorm-embedding --share-all-embeddings --share-decoder-input-output-embed \
  --max-source-positions "$MAX_POSITIONS" --max-target-positions "$MAX_POSITIONS" --required-batch-size-multiple 1 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --dropout 0.1 --attention-dropout 0.1 \
  --weight-decay 0.01 --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-08 --clip-norm 0.1 \
  --lr-scheduler polynomial_decay --lr "$LR" \
  --max-epoch "$EPOCHS" --batch-size "$BATCH_SIZE" --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" \
  --skip-invalid-size-inputs-valid-test "${VALID[@]}" --save-dir "$SAVE" --no-epoch-checkpoints \
  --seed "$SEED" --log-format simple --log-interval "${LOG_INTERVAL:-10}" "${CPU_FLAG[@]}" $PRECISION $EXTRA_TRAIN_ARGS)
# The schedule from the batches fairseq will build (--max-tokens can make them smaller than
# BATCH_SIZE), so that the learning rate reaches its end on the last update, not before.
if ! recipe_training_done "$SAVE"; then
  TOTAL=$(python -m biobart_fairseq.schedule --gpus "$NGPU" -- "${TRAIN_ARGS[@]}")
  WARMUP=$(( TOTAL * 6 / 100 ))          # BART's summarization recipe: 500 of ~8k-20k updates
  echo "schedule: $TOTAL updates (from fairseq's own batches), $WARMUP of warm-up"
  fairseq-train "${TRAIN_ARGS[@]}" --total-num-update "$TOTAL" --warmup-updates "$WARMUP" 2>&1 | tee "$WORK/train.log"
  recipe_finish_training "$SAVE" "$BEST"
fi

recipe_step "4/5 generate (beam $BEAM, lenpen $LENPEN, $MIN_LEN..$MAX_LEN_B tokens, no-repeat $NO_REPEAT)"
if [ "$BPE" = gpt2 ]; then
  GEN_BPE=(--bpe gpt2 --gpt2-encoder-json "$BIN/encoder.json" --gpt2-vocab-bpe "$BIN/vocab.bpe")
else
  GEN_BPE=(--bpe sentencepiece --sentencepiece-model "$BIN/spm.model")
fi
# Progress: on a terminal (and QUIET not 1) fairseq's progress lines, about 20 of them: batches done /
# total and tokens/s; none in a log. Its log (stderr) is also kept in OUTPUT/generate.log, whose closing
# "Translated N sentences ... in S s (X sentences/s ...)" line puts the measured rate into results.json.
GEN_BATCHES=$(( ($(wc -l < "$PREP/test.source") + ${GEN_BATCH_SIZE:-32} - 1) / ${GEN_BATCH_SIZE:-32} ))
GEN_PROGRESS=(--log-format none)
if [ -t 2 ] && [ "${QUIET:-0}" != 1 ]; then
  GEN_PROGRESS=(--log-format simple --log-interval $(( GEN_BATCHES / 20 > 0 ? GEN_BATCHES / 20 : 1 )))
fi
fairseq-generate "$BIN" --user-dir "$REPO/biobart_fairseq" --task biomed_translation \
  --source-lang source --target-lang target --path "$SAVE/$BEST" --gen-subset test "${GEN_PROGRESS[@]}" \
  --truncate-source --max-source-positions "$MAX_POSITIONS" --max-target-positions "$MAX_POSITIONS" \
  --beam "$BEAM" --lenpen "$LENPEN" --max-len-a 0 --max-len-b "$MAX_LEN_B" --min-len "$MIN_LEN" \
  --no-repeat-ngram-size "$NO_REPEAT" --required-batch-size-multiple 1 \
  --batch-size "${GEN_BATCH_SIZE:-32}" "${GEN_BPE[@]}" "${CPU_FLAG[@]}" 2>&1 > "$OUT/generate.out" \
  | tee "$OUT/generate.log" >&2  # outputs to generate.out; the log (stderr) to the screen and generate.log
# (--required-batch-size-multiple 1: fairseq's default of 8 builds no batch for a test set of
# fewer than 8 examples and generate then fails with a ZeroDivisionError)
# A single question instead: WORK=$WORK bash examples/ask.sh "QUESTION"  (biobart-generate)

recipe_step "5/5 score"
# shellcheck disable=SC2086
biobart-score --hyp "$OUT/generate.out" --from-generate --write-hyp "$OUT/hyp.txt" --ref "$PREP/test.target" \
  $BERTSCORE -o "$OUT/scores.json"  # ROUGE/BLEU are written there before BERTScore starts

echo "== results.json"
# One record per run in the paper's units (biobart-results; biobart-tables reads it).  PAPER_ROW =
# the paper's row this run stands for (bart-base, biobart-base, ...; default: from the model).
# It carries fairseq-generate's measured rate (speed) and the truncation counts of data-bin/stats.json,
# and names the test split in one line when some of its sources were cut.
# As a module: the package starts light for biobart_fairseq.cli commands (no torch/fairseq import).
python -m biobart_fairseq.cli.write_results --kind seq2seq --dataset "$DATASET" --split test \
  --scores "$OUT/scores.json" --scorer-args="$BERTSCORE" --model "$CHECKPOINT" --checkpoint "$SAVE/$BEST" \
  ${PAPER_ROW:+--paper-row "$PAPER_ROW"} --decoding beam="$BEAM" lenpen="$LENPEN" max_len_b="$MAX_LEN_B" \
  min_len="${MIN_LEN:-1}" no_repeat_ngram_size="$NO_REPEAT" --setting size="$SIZE" lr="$LR" epochs="$EPOCHS" \
  batch_size="$BATCH_SIZE" update_freq="$UPDATE_FREQ" gpus="$GPUS" seed="$SEED" "extra_train_args=$EXTRA_TRAIN_ARGS" \
  --generate-log "$OUT/generate.log" --binarize-stats "$BIN/stats.json" \
  --command "$(printf '%q ' bash "$0" "$@")" -o "$SAVE/results.json"
