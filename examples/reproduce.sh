#!/usr/bin/env bash
# The paper's Tables 2-5 for one starting model: the 16 downstream recipes with the paper's
# settings (7 dialogue/summarization, 5 entity linking, 4 NER), then biobart-tables beside the paper.
#
#   DRY_RUN=1 bash examples/reproduce.sh checkpoints/biobart-base   # the plan: commands, GPU-hours
#   GPUS=0 bash examples/reproduce.sh checkpoints/biobart-base       # run it (days on one GPU)
#
# MODEL: a folder written by `biobart-convert hf-to-fairseq` (model.pt, dict.txt, encoder.json,
# vocab.bpe).  Its name is the paper row its runs fill (bart-base, biobart-base, bart-large,
# biobart-large); PAPER_ROW overrides it; base or large follows from the row.
# Env: OUT (default runs/<row>; one folder per recipe, each with its results.json), GPUS,
# DATASETS (default: all 16 keys below), NER_DATA (NER_DATA/<dataset> = biobart-prepare-ner output).
# The data of the other recipes is found where each recipe's header says (DATA_ROOT, RAW, ...).
# Every recipe writes SAVE_DIR/results.json; the last step is
#   biobart-tables OUT --tables 2 3 4 5 -o OUT/tables.md --plot OUT/tables.png
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_common.sh"

MODEL=${1:?usage: [DRY_RUN=1] examples/reproduce.sh MODEL_DIR}
MODEL=${MODEL%/}
ROW=${PAPER_ROW:-$(basename "$MODEL" | tr 'A-Z_.' 'a-z--')}
case "$ROW" in
  bart-base|biobart-base|bart-large|biobart-large) ;;
  *) echo "reproduce.sh: $MODEL: '$ROW' is not a row of Tables 2-5 (bart-base, biobart-base, bart-large," \
          "biobart-large); name the folder so or set PAPER_ROW" >&2; exit 2 ;;
esac
SIZE=${ROW##*-}
OUT=${OUT:-runs/$ROW}
DATASETS=${DATASETS:-covid_dialog icliniq healthcaremagic mediqa_qs mediqa_mas mediqa_ans meqsum \
medmentions bc5cdr ncbi cometa askapatient share13 share14 cadec genia}

[ "$DRY_RUN" = 1 ] && echo "plan (DRY_RUN=1: nothing is run) -- $ROW from $MODEL, runs in $OUT"
for ds in $DATASETS; do
  finetune "$ds" "$MODEL/model.pt" "$MODEL" "$ROW" "$SIZE" "$OUT"
done
finish "$OUT" 2 3 4 5
