#!/usr/bin/env bash
# covid_dialog (dialogue): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: COVID-Dialogue-Dataset-English.txt from github.com/UCSD-AI4H/COVID-Dialogue
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/covid_dialog/run.sh
# Variables (all overridable): see examples/seq2seq_common.sh; the main ones:
DATASET=covid_dialog
TASK_TYPE=dialogue
SIZE=${SIZE:-base}                                   # base | large (lr 5e-5 | 1e-5)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # converted BART/BioBART or biomed_denoising checkpoint
GPUS=${GPUS-0}                                       # CUDA_VISIBLE_DEVICES; empty = CPU
DATA_ROOT=${DATA_ROOT:-../shared/data/covid_dialog_english}
INPUTS=${INPUTS:-$DATA_ROOT/COVID-Dialogue-Dataset-English.txt}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/covid-dialogue_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-100}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
export SIZE CHECKPOINT GPUS
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
