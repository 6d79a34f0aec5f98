#!/usr/bin/env bash
# mediqa_ans (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: bioasq_abs2summ_training_data_with_question.json, medinfo_section2answer_validation_data_with_question.json (github.com/saverymax/qdriven-chiqa-summarization) + question_driven_answer_summarization_primary_dataset.json (MEDIQA-AnS, osf.io/fyg46)
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_ans/run.sh
# Variables (all overridable): see examples/seq2seq_common.sh; the main ones:
DATASET=mediqa_ans
TASK_TYPE=summarization
SIZE=${SIZE:-base}                                   # base | large (lr 5e-5 | 1e-5)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # converted BART/BioBART or biomed_denoising checkpoint
GPUS=${GPUS-0}                                       # CUDA_VISIBLE_DEVICES; empty = CPU
DATA_ROOT=${DATA_ROOT:-data/mediqa_ans}
INPUTS=${INPUTS:-$DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-ans_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-128}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-20}
export SIZE CHECKPOINT GPUS
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
