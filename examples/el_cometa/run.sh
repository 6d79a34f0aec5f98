#!/usr/bin/env bash
# COMETA (SNOMED CT, general ids): biobart-prepare-el -> fine-tune (biomed_entity_linking) -> trie-constrained
# decoding -> Recall@1/@5, with GenBioEL's hyper-parameters for this dataset (Yuan et al.
# 2022; docs/entity_linking.md): lr 1e-5, 40k steps, 500 warm-up; stratified_general split.
# Common: Adam(W) wd 0.01, batch 8, label smoothing 0.1, clip-norm 0.1, polynomial decay
# to 1e-7, dropout 0.1, seed 0; decoding beam 5, lenpen 1.
# Data: COMETA splits/stratified_general/{train,dev,test}.csv and a SNOMED CT dictionary
# as cui<TAB>name (COMETA's licence: request from the authors).
#   CHECKPOINT=checkpoints/biobart-base/model.pt BPE_DIR=checkpoints/biobart-base GPUS=0 \
#   bash examples/el_cometa/run.sh
# Every variable below can be overridden from the environment, and so can those all EL recipes share
# (CHECKPOINT, BPE_DIR, ARCH, GPUS, OUT, SAVE_DIR, WARMUP, BEAM, ...: see examples/el_common.sh).
set -euo pipefail

DATASET=cometa     # biobart-prepare-el --dataset; also names OUT and SAVE_DIR (data/el_cometa, ...)
RAW=${RAW:-data/raw/cometa/splits/stratified_general}                      # the published files (see "Data" above)
KB=${KB-data/raw/cometa/snomed_dictionary.tsv}                          # knowledge base
LR=${LR:-1e-5}
STEPS=${STEPS:-40000}

source "$(dirname "$0")/../el_common.sh"
el_run   # prepare, fine-tune, decode and score, results.json
