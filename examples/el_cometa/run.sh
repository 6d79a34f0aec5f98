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
# Every variable below can be overridden from the environment.
set -euo pipefail

RAW=${RAW:-data/raw/cometa/splits/stratified_general}                      # the published files (see "Data" above)
KB=${KB-data/raw/cometa/snomed_dictionary.tsv}                          # knowledge base
OUT=${OUT:-data/el_cometa}                      # canonical JSONL + model inputs (OUT/bin)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-base/model.pt}  # converted BART/BioBART weights
BPE_DIR=${BPE_DIR:-$(dirname "$CHECKPOINT")}    # encoder.json, vocab.bpe, dict.txt of that model
ARCH=${ARCH:-bart_base}                         # bart_base | bart_large
SAVE_DIR=${SAVE_DIR:-checkpoints/el_cometa}
GPUS=${GPUS-0}                                  # CUDA_VISIBLE_DEVICES; empty = CPU
LR=${LR:-1e-5}
STEPS=${STEPS:-40000}
WARMUP=${WARMUP:-500}
BEAM=${BEAM:-5}
CONTEXT_WORDS=${CONTEXT_WORDS:-384}

source "$(dirname "$0")/../el_common.sh"

prepare_el cometa

run_fold "$OUT" "$SAVE_DIR"
write_results cometa "$SAVE_DIR" "$SAVE_DIR/el_eval.json"
