#!/usr/bin/env bash
# mediqa_mas (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MEDIQA2021 Task2 Validation/ Test/ (github.com/abachaa/MEDIQA2021/Task2) + MEDIQA-AnS json for training
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_mas/run.sh
# Variables (all overridable): see examples/seq2seq_common.sh; the main ones:
DATASET=mediqa_mas
TASK_TYPE=summarization
SIZE=${SIZE:-base}                                   # base | large (lr 5e-5 | 1e-5)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # converted BART/BioBART or biomed_denoising checkpoint
GPUS=${GPUS-0}                                       # CUDA_VISIBLE_DEVICES; empty = CPU
DATA_ROOT=${DATA_ROOT:-../shared/data/mediqa2021_mas}
ANS_JSON=${ANS_JSON:-data/mediqa_ans/question_driven_answer_summarization_primary_dataset.json}  # training set (MEDIQA-AnS)
INPUTS=${INPUTS:-$ANS_JSON $DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-mas_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-128}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-20}
export SIZE CHECKPOINT GPUS
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
