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
# Every variable below can be overridden from the environment, and so can those all EL recipes share
# (CHECKPOINT, BPE_DIR, ARCH, GPUS, OUT, SAVE_DIR, WARMUP, BEAM, ...: see examples/el_common.sh).
set -euo pipefail

DATASET=askapatient     # biobart-prepare-el --dataset; also names OUT and SAVE_DIR (data/el_askapatient, ...)
RAW=${RAW:-data/raw/askapatient}                      # the published files (see "Data" above)
KB=${KB-}                          # knowledge base (empty: the labels of the fold files)
LR=${LR:-5e-6}
STEPS=${STEPS:-30000}

source "$(dirname "$0")/../el_common.sh"

prepare_el "$DATASET"

for i in $(seq 0 9); do
  run_fold "$OUT/fold$i" "$SAVE_DIR/fold$i"
done
write_results "$DATASET" "$SAVE_DIR" "$SAVE_DIR"/fold*/el_eval.json   # the mean over the 10 folds
