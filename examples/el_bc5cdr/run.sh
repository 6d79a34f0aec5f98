#!/usr/bin/env bash
# BC5CDR (chemicals + diseases, MeSH): biobart-prepare-el -> fine-tune (biomed_entity_linking) -> trie-constrained
# decoding -> Recall@1/@5, with GenBioEL's hyper-parameters for this dataset (Yuan et al.
# 2022; docs/entity_linking.md): lr 1e-5, 20k steps, 500 warm-up.  STYLE=genbioel reads the
# corpus as GenBioEL's script did for Table 4 (composites split, whole-mention abbreviations
# expanded, its name normalisation, a name of several ids kept for the one with fewest
# names); STYLE=raw links the mentions as written.
# Common: Adam(W) wd 0.01, batch 8, label smoothing 0.1, clip-norm 0.1, polynomial decay
# to 1e-7, dropout 0.1, seed 0; decoding beam 5, lenpen 1.
# Data: CDR_{Training,Development,Test}Set.PubTator.txt (BioCreative V CDR) and a MeSH
# dictionary as cui<TAB>name or BioSyn's cui||name lines.
#   CHECKPOINT=checkpoints/biobart-base/model.pt BPE_DIR=checkpoints/biobart-base GPUS=0 \
#   bash examples/el_bc5cdr/run.sh
# Every variable below can be overridden from the environment, and so can those all EL recipes share
# (CHECKPOINT, BPE_DIR, ARCH, GPUS, OUT, SAVE_DIR, WARMUP, BEAM, ...: see examples/el_common.sh).
set -euo pipefail

DATASET=bc5cdr     # biobart-prepare-el --dataset; also names OUT and SAVE_DIR (data/el_bc5cdr, ...)
RAW=${RAW:-data/raw/bc5cdr}                      # the published files (see "Data" above)
KB=${KB-data/raw/bc5cdr/mesh_dictionary.txt}                          # knowledge base
STYLE=${STYLE:-genbioel}                        # genbioel (Table 4) | raw
LR=${LR:-1e-5}
STEPS=${STEPS:-20000}

source "$(dirname "$0")/../el_common.sh"
el_run   # prepare, fine-tune, decode and score, results.json
