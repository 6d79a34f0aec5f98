#!/usr/bin/env bash
# mediqa_ans (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: bioasq_abs2summ_training_data_with_question.json, medinfo_section2answer_validation_data_with_question.json (github.com/saverymax/qdriven-chiqa-summarization) + question_driven_answer_summarization_primary_dataset.json (MEDIQA-AnS, osf.io/fyg46)
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_ans/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=mediqa_ans
TASK_TYPE=summarization
DATA_ROOT=${DATA_ROOT:-data/mediqa_ans}
INPUTS=${INPUTS:-$DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-ans_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-128}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-20}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
