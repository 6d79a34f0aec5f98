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
# Every variable below can be overridden from the environment, and so can those all EL recipes share
# (CHECKPOINT, BPE_DIR, ARCH, GPUS, OUT, SAVE_DIR, WARMUP, BEAM, ...: see examples/el_common.sh).
set -euo pipefail

DATASET=ncbi     # biobart-prepare-el --dataset; also names OUT and SAVE_DIR (data/el_ncbi, ...)
RAW=${RAW:-../shared/data/ncbi_disease}                      # the published files (see "Data" above)
KB=${KB-$RAW/dictionary/medic_06Jul2012.txt}                          # knowledge base
STYLE=${STYLE:-genbioel}                        # genbioel (Table 4) | raw
TYPO_FILE=${TYPO_FILE-$RAW/dictionary/ncbi-spell-check.txt}   # BioSyn's spelling fixes (genbioel only)
[ "$STYLE" = genbioel ] || TYPO_FILE=
LR=${LR:-3e-7}
STEPS=${STEPS:-20000}
WARMUP=${WARMUP:-0}                             # no warm-up (the other recipes: 500)

source "$(dirname "$0")/../el_common.sh"
el_run   # prepare, fine-tune, decode and score, results.json
