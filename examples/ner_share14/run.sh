#!/usr/bin/env bash
# BioBART + BARTNER on ShARe14 (discontinuous disorders, MIMIC-II notes; PhysioNet credentials needed),
# with BARTNER's settings (docs/ner.md): word targets, lr 1e-5 (BARTNER's default), beam 4, max length 10 + 0.6 * source length,
# 30 epochs, batch 16, 1 % warm-up then linear decay, wd 0.01; test at the best dev epoch.
#
#   biobart-prepare-ner --format dai --input share14/{train,dev,test}.txt -o data-ner/share14 \
#       --target-type word --bpe gpt2 --encoder-json biobart/encoder.json --vocab-bpe biobart/vocab.bpe \
#       --dict biobart/dict.txt --check
#   DATA=data-ner/share14 BART=biobart bash examples/ner_share14/run.sh [extra fairseq-train flags]
#
# Env: DATA (biobart-prepare-ner folder with train/dev/test.jsonl), BART (folder with model.pt,
# e.g. from biobart-convert hf-to-fairseq), SAVE_DIR, ARCH (bartner_base | bartner_large),
# EPOCHS, BATCH, SEED, STAGES ("train test"; "train" or "test" alone): shared by the NER recipes,
# defaults in examples/ner_common.sh.  Below: this dataset's own (TARGET_TYPE, LR, BEAM, LEN_A, RAW
# overridable too).
# Deviation from BARTNER: fairseq has no clip-by-value and no weight-decay exclusion for layer
# norms; we clip the gradient norm at 5 and decay every weight.
set -euo pipefail

TARGET_TYPE=${TARGET_TYPE:-word}
LR=${LR:-1e-5}
BEAM=${BEAM:-4}
LEN_A=${LEN_A:-0.6}
HEAD_FLAGS=()
RAW=${RAW:-}  # SMALL=1 only: ShARe/CLEF 2014 in Dai et al.'s format (PhysioNet, not held here)
SMALL_FORMAT=dai

source "$(dirname "$0")/../ner_common.sh"   # fine-tune, then test at the best dev epoch
