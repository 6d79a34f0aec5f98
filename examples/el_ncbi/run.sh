#!/usr/bin/env bash
# NCBI-disease: biobart-prepare-el -> fine-tune (biomed_entity_linking) -> trie-constrained
# decoding -> Recall@1/@5, with GenBioEL's hyper-parameters for this dataset (Yuan et al.
# 2022; docs/entity_linking.md): lr 3e-7, 20k steps, no warm-up; train = train+dev
# without composite mentions (BioSyn).  STYLE=genbioel prepares mentions and dictionary as
# BioSyn/GenBioEL did for Table 4 (abbreviations expanded, composites resolved, BioSyn's
# spelling fixes and normalisation, train/dev mentions added to the dictionary); STYLE=raw
# links the mentions as written.
# Common: Adam(W) wd 0.01, batch 8, label smoothing 0.1, clip-norm 0.1, polynomial decay
# to 1e-7, dropout 0.1, seed 0; decoding beam 5, lenpen 1.
# Data: the NCBI-disease release + MEDIC (../shared/data/ncbi_disease holds both).
#   CHECKPOINT=checkpoints/biobart-base/model.pt BPE_DIR=checkpoints/biobart-base GPUS=0 \
#   bash examples/el_ncbi/run.sh
# Every variable below can be overridden from the environment.
set -euo pipefail

RAW=${RAW:-../shared/data/ncbi_disease}                      # the published files (see "Data" above)
KB=${KB-$RAW/dictionary/medic_06Jul2012.txt}                          # knowledge base
STYLE=${STYLE:-genbioel}                        # genbioel (Table 4) | raw
TYPO_FILE=${TYPO_FILE-$RAW/dictionary/ncbi-spell-check.txt}   # BioSyn's spelling fixes (genbioel only)
[ "$STYLE" = genbioel ] || TYPO_FILE=
OUT=${OUT:-data/el_ncbi}                      # canonical JSONL + model inputs (OUT/bin)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-base/model.pt}  # converted BART/BioBART weights
BPE_DIR=${BPE_DIR:-$(dirname "$CHECKPOINT")}    # encoder.json, vocab.bpe, dict.txt of that model
ARCH=${ARCH:-bart_base}                         # bart_base | bart_large
SAVE_DIR=${SAVE_DIR:-checkpoints/el_ncbi}
GPUS=${GPUS-0}                                  # CUDA_VISIBLE_DEVICES; empty = CPU
LR=${LR:-3e-7}
STEPS=${STEPS:-20000}
WARMUP=${WARMUP:-0}
BEAM=${BEAM:-5}
CONTEXT_WORDS=${CONTEXT_WORDS:-384}

source "$(dirname "$0")/../el_common.sh"

prepare_el ncbi

run_fold "$OUT" "$SAVE_DIR"
write_results ncbi "$SAVE_DIR" "$SAVE_DIR/el_eval.json"
