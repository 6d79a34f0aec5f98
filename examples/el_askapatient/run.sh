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

source "$(dirname "$0")/../el_common.sh"

prepare_el askapatient

for i in $(seq 0 9); do
  run_fold "$OUT/fold$i" "$SAVE_DIR/fold$i"
done
write_results askapatient "$SAVE_DIR" "$SAVE_DIR"/fold*/el_eval.json   # the mean over the 10 folds
