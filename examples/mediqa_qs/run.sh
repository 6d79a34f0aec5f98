#!/usr/bin/env bash
# mediqa_qs (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MEDIQA2021 Task1 workbooks (github.com/abachaa/MEDIQA2021/Task1) + MeQSum xlsx for training
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_qs/run.sh
# Variables (all overridable): see examples/seq2seq_common.sh; the main ones:
DATASET=mediqa_qs
TASK_TYPE=summarization
SIZE=${SIZE:-base}                                   # base | large (lr 5e-5 | 1e-5)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # converted BART/BioBART or biomed_denoising checkpoint
GPUS=${GPUS-0}                                       # CUDA_VISIBLE_DEVICES; empty = CPU
DATA_ROOT=${DATA_ROOT:-../shared/data/mediqa2021_qs}
MEQSUM_XLSX=${MEQSUM_XLSX:-../shared/data/meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx}  # training set (train=PATH forces the role)
INPUTS=${INPUTS:-$MEQSUM_XLSX $DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-qs_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-30}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
export SIZE CHECKPOINT GPUS
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
