#!/usr/bin/env bash
# BioBART + BARTNER on GENIA (nested NER, 5 coarse types), with BARTNER's GENIA settings
# (docs/ner.md): span targets, lr 2e-5, greedy decoding, max length 10 + 0.5 * source length,
# 30 epochs, batch 16, 1 % warm-up then linear decay, wd 0.01; test at the best dev epoch.
#
#   biobart-prepare-ner --format genia --input genia/{train,dev,test}.jsonlines -o data-ner/genia \
#       --target-type span --bpe gpt2 --encoder-json biobart/encoder.json --vocab-bpe biobart/vocab.bpe \
#       --dict biobart/dict.txt --check
#   DATA=data-ner/genia BART=biobart bash examples/ner_genia/run.sh [extra fairseq-train flags]
#
# Env: DATA (biobart-prepare-ner folder with train/dev/test.jsonl), BART (folder with model.pt,
# e.g. from biobart-convert hf-to-fairseq), SAVE_DIR, ARCH (bartner_base | bartner_large),
# EPOCHS, BATCH, SEED, STAGES ("train test"; "train" or "test" alone).
# Deviation from BARTNER: fairseq has no clip-by-value and no weight-decay exclusion for layer
# norms; we clip the gradient norm at 5 and decay every weight.
set -euo pipefail

TARGET_TYPE=${TARGET_TYPE:-span}   # BARTNER's GENIA choice; the paper's default elsewhere is word
LR=${LR:-2e-5}
BEAM=${BEAM:-1}
LEN_A=${LEN_A:-0.5}
HEAD_FLAGS=()

if [ "${SMALL:-0}" != 1 ]; then  # SMALL=1: ner_common.sh prepares a few dozen sentences of RAW itself
  DATA=${DATA:?DATA: data folder written by biobart-prepare-ner}
  BART=${BART:?BART: folder with the pretrained model.pt (BioBART or BART, fairseq format)}
fi
RAW=${RAW:-../shared/data/genia_nested_ner}  # SMALL=1 only: GENIA dev/test JSON lines
SMALL_FORMAT=genia
SAVE_DIR=${SAVE_DIR:-checkpoints/ner_genia}
ARCH=${ARCH:-bartner_base}
EPOCHS=${EPOCHS:-30}
BATCH=${BATCH:-16}
SEED=${SEED:-1}
STAGES=${STAGES:-train test}
PYTHON=${PYTHON:-python}

source "$(dirname "$0")/../ner_common.sh"   # fine-tune, then test at the best dev epoch
