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
# Every variable below can be overridden from the environment.
set -euo pipefail

RAW=${RAW:-data/raw/medmentions/st21pv/data/corpus_pubtator.txt.gz}                      # the published files (see "Data" above)
KB=${KB-data/raw/umls/MRCONSO.RRF}                          # knowledge base
OUT=${OUT:-data/el_medmentions}                      # canonical JSONL + model inputs (OUT/bin)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-base/model.pt}  # converted BART/BioBART weights
BPE_DIR=${BPE_DIR:-$(dirname "$CHECKPOINT")}    # encoder.json, vocab.bpe, dict.txt of that model
ARCH=${ARCH:-bart_base}                         # bart_base | bart_large
SAVE_DIR=${SAVE_DIR:-checkpoints/el_medmentions}
GPUS=${GPUS-0}                                  # CUDA_VISIBLE_DEVICES; empty = CPU
LR=${LR:-1e-5}
STEPS=${STEPS:-100000}
WARMUP=${WARMUP:-500}
BEAM=${BEAM:-16}
CONTEXT_WORDS=${CONTEXT_WORDS:-128}

source "$(dirname "$0")/../el_common.sh"

prepare_el medmentions --split-pmids "${SPLIT_PMIDS:-../shared/data/medmentions_splits}"

run_fold "$OUT" "$SAVE_DIR"
write_results medmentions "$SAVE_DIR" "$SAVE_DIR/el_eval.json"
