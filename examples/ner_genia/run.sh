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
# EPOCHS, BATCH, SEED, STAGES ("train test"; "train" or "test" alone): shared by the NER recipes,
# defaults in examples/ner_common.sh.  Below: this dataset's own (TARGET_TYPE, LR, BEAM, LEN_A, RAW
# overridable too).
# Deviation from BARTNER: fairseq has no clip-by-value and no weight-decay exclusion for layer
# norms; we clip the gradient norm at 5 and decay every weight.
set -euo pipefail

TARGET_TYPE=${TARGET_TYPE:-span}   # BARTNER's GENIA choice; the paper's default elsewhere is word
LR=${LR:-2e-5}
BEAM=${BEAM:-1}
LEN_A=${LEN_A:-0.5}
HEAD_FLAGS=()
RAW=${RAW:-../shared/data/genia_nested_ner}  # SMALL=1 only: GENIA dev/test JSON lines
SMALL_FORMAT=genia

source "$(dirname "$0")/../ner_common.sh"   # fine-tune, then test at the best dev epoch
