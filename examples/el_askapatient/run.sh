#!/usr/bin/env bash
# AskAPatient (10 folds): biobart-prepare-el -> fine-tune (biomed_entity_linking) -> trie-constrained
# decoding -> Recall@1/@5, with GenBioEL's hyper-parameters for this dataset (Yuan et al.
# 2022; docs/entity_linking.md): lr 5e-6, 30k steps per fold, 500 warm-up;
# R@1/R@5 averaged over the 10 folds.
# Common: Adam(W) wd 0.01, batch 8, label smoothing 0.1, clip-norm 0.1, polynomial decay
# to 1e-7, dropout 0.1, seed 0; decoding beam 5, lenpen 1.
# Data: AskAPatient.fold-<i>.{train,validation,test}.txt (Limsopatham & Collier 2016);
# without KB the concept labels of the folds are the KB.
#   CHECKPOINT=checkpoints/biobart-base/model.pt BPE_DIR=checkpoints/biobart-base GPUS=0 \
#   bash examples/el_askapatient/run.sh
# Every variable below can be overridden from the environment.
set -euo pipefail

RAW=${RAW:-data/raw/askapatient}                      # the published files (see "Data" above)
KB=${KB-}                          # knowledge base (empty: the labels of the fold files)
OUT=${OUT:-data/el_askapatient}                      # canonical JSONL + model inputs (OUT/bin)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-base/model.pt}  # converted BART/BioBART weights
BPE_DIR=${BPE_DIR:-$(dirname "$CHECKPOINT")}    # encoder.json, vocab.bpe, dict.txt of that model
ARCH=${ARCH:-bart_base}                         # bart_base | bart_large
SAVE_DIR=${SAVE_DIR:-checkpoints/el_askapatient}
GPUS=${GPUS-0}                                  # CUDA_VISIBLE_DEVICES; empty = CPU
LR=${LR:-5e-6}
STEPS=${STEPS:-30000}
WARMUP=${WARMUP:-500}
BEAM=${BEAM:-5}
CONTEXT_WORDS=${CONTEXT_WORDS:-384}

PLUGIN=$(python -c 'import biobart_fairseq, os; print(os.path.dirname(biobart_fairseq.__file__))')
DEVICE_FLAGS=()
[ -z "$GPUS" ] && DEVICE_FLAGS=(--cpu)
export CUDA_VISIBLE_DEVICES="$GPUS"

biobart-prepare-el --dataset askapatient --input "$RAW" ${KB:+--kb "$KB"} -o "$OUT" \
  --bpe gpt2 --encoder-json "$BPE_DIR/encoder.json" --vocab-bpe "$BPE_DIR/vocab.bpe" --dict "$BPE_DIR/dict.txt" \
  --max-context-words "$CONTEXT_WORDS" --workers 8 || [ $? -eq 3 ]   # 3 = written, some bad records skipped

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
    --disable-validation --log-format simple --log-interval 100 "${DEVICE_FLAGS[@]}"
  biobart-el-eval "$data" --path "$save/checkpoint_last.pt" --split test --beam "$BEAM" --batch-size 64 \
    ${GPUS:+--gpu} -o "$save/test_predictions.jsonl" --results "$save/results.json"
}

for i in $(seq 0 9); do
  run_fold "$OUT/fold$i" "$SAVE_DIR/fold$i"
done
biobart-el-eval --average "$SAVE_DIR"/fold*/results.json | tee "$SAVE_DIR/results_mean.json"
