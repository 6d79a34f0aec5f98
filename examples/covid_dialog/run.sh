#!/usr/bin/env bash
# covid_dialog (dialogue): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: COVID-Dialogue-Dataset-English.txt from github.com/UCSD-AI4H/COVID-Dialogue
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/covid_dialog/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=covid_dialog
TASK_TYPE=dialogue
DATA_ROOT=${DATA_ROOT:-../shared/data/covid_dialog_english}
INPUTS=${INPUTS:-$DATA_ROOT/COVID-Dialogue-Dataset-English.txt}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/covid-dialogue_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-100}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
