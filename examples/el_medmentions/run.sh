#!/usr/bin/env bash
# MedMentions st21pv (UMLS): biobart-prepare-el -> fine-tune (biomed_entity_linking) -> trie-constrained
# decoding -> Recall@1/@5, with GenBioEL's hyper-parameters for this dataset (Yuan et al.
# 2022; docs/entity_linking.md): lr 1e-5, 100k steps, 500 warm-up, beam 16,
# 128-word context (davidkartchner/GenBioEL fork).
# Common: Adam(W) wd 0.01, batch 8, label smoothing 0.1, clip-norm 0.1, polynomial decay
# to 1e-7, dropout 0.1, seed 0; decoding beam 16, lenpen 1.
# Data: st21pv/data/corpus_pubtator.txt.gz + full/data/corpus_pubtator_pmids_*.txt
# (github.com/chanzuckerberg/MedMentions) and UMLS MRCONSO.RRF (licence needed).
#   CHECKPOINT=checkpoints/biobart-base/model.pt BPE_DIR=checkpoints/biobart-base GPUS=0 \
#   bash examples/el_medmentions/run.sh
# Every variable below can be overridden from the environment, and so can those all EL recipes share
# (CHECKPOINT, BPE_DIR, ARCH, GPUS, OUT, SAVE_DIR, WARMUP, BEAM, ...: see examples/el_common.sh).
set -euo pipefail

DATASET=medmentions     # biobart-prepare-el --dataset; also names OUT and SAVE_DIR (data/el_medmentions, ...)
RAW=${RAW:-data/raw/medmentions/st21pv/data/corpus_pubtator.txt.gz}                      # the published files (see "Data" above)
KB=${KB-data/raw/umls/MRCONSO.RRF}                          # knowledge base
LR=${LR:-1e-5}
STEPS=${STEPS:-100000}
BEAM=${BEAM:-16}                                # the fork's; the other recipes decode with 5
CONTEXT_WORDS=${CONTEXT_WORDS:-128}             # the fork's; the other recipes keep 384

source "$(dirname "$0")/../el_common.sh"
# prepare (with the corpus's own train/dev/test PMID lists), fine-tune, decode and score, results.json
el_run --split-pmids "${SPLIT_PMIDS:-../shared/data/medmentions_splits}"
