#!/usr/bin/env bash
# The paper's Table 6 end to end: BART base continued-pretrained 40k updates with text infilling
# alone (TI) and with sentence permutation (TI+SP), from the same start and data
# (examples/pretrain/ablation_ti_sp.sh), then the table's seven fine-tunes for each arm:
# CovidDialog, MeQSum, MEDIQA-MAS; MedMentions, COMETA; ShARe13, CADEC.
#
#   DRY_RUN=1 DATA=data-bin/pubmed BART=checkpoints/bart-base bash examples/reproduce_table6.sh
#   NNODES=2 GPUS_PER_NODE=8 ... DATA=... BART=... bash examples/reproduce_table6.sh
#
# BART: facebook/bart-base converted by `biobart-convert hf-to-fairseq` (model.pt + BPE files);
# DATA: PubMed binarized with its BPE (biobart-binarize --bpe gpt2).  Pretraining settings
# (NNODES, GPUS_PER_NODE, MAX_TOKENS, PRECISION, ...) pass through to examples/pretrain/pretrain.sh.
# Table 6's "BART base" row is the bart-base run of examples/reproduce.sh (the same recipes).
# OUT (default runs/table6): fine-tunes in OUT/<arm>/<recipe>; last step biobart-tables OUT --tables 6.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_common.sh"

: "${DATA:?DATA: PubMed binarized with BART's BPE (biobart-binarize --bpe gpt2)}"
: "${BART:?BART: folder with BART base's model.pt and BPE files (biobart-convert hf-to-fairseq)}"
export DATA BART
OUT=${OUT:-runs/table6}
UPDATES=$(sed -n 's/^UPDATES=\([0-9]*\) .*/\1/p' "$REPO/examples/pretrain/ablation_ti_sp.sh")

[ "$DRY_RUN" = 1 ] && echo "plan (DRY_RUN=1: nothing is run) -- Table 6 from $BART, runs in $OUT"
for ARM in TI TI+SP; do
  row=$(tr 'A-Z' 'a-z' <<<"$ARM")   # ti | ti+sp: the rows of Table 6
  step "$("${TABLES[@]}" pretrain-hours base "$UPDATES")" "pretrain $ARM ($UPDATES updates)" \
    ARM="$ARM" bash "$HERE/examples/pretrain/ablation_ti_sp.sh"
  # the arm's weights as OUT/ARM/model.pt (the NER recipe reads BART/model.pt)
  [ "$DRY_RUN" = 1 ] || mkdir -p "$OUT/$ARM"
  step 0 "link $ARM weights" ln -sfn "$PWD/checkpoints/ablation-$ARM/checkpoint_last.pt" "$OUT/$ARM/model.pt"
  for ds in covid_dialog meqsum mediqa_mas medmentions cometa share13 cadec; do
    finetune "$ds" "$OUT/$ARM/model.pt" "$BART" "$row" base "$OUT/$ARM"
  done
done
finish "$OUT" 6
