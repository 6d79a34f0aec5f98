#!/usr/bin/env bash
# The paper's pretraining ablation (Table 6): text infilling alone (TI) vs. text infilling
# plus sentence permutation (TI+SP), BART-base, 40k updates, otherwise the same settings.
set -euo pipefail
ARM=${ARM:-TI}   # TI | TI+SP
case "$ARM" in
  TI) PERMUTE=0 ;;
  TI+SP) PERMUTE=1 ;;
  *) echo "ARM must be TI or TI+SP" >&2; exit 2 ;;
esac
UPDATES=40000 ARCH=bart_base SAVE_DIR=checkpoints/ablation-$ARM \
  bash "$(dirname "$0")/pretrain.sh" --permute-sentences "$PERMUTE"
