#!/usr/bin/env bash
# mediqa_mas (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MEDIQA2021 Task2 Validation/ Test/ (github.com/abachaa/MEDIQA2021/Task2) + MEDIQA-AnS json for training
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_mas/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=mediqa_mas
TASK_TYPE=summarization
DATA_ROOT=${DATA_ROOT:-../shared/data/mediqa2021_mas}
ANS_JSON=${ANS_JSON:-data/mediqa_ans/question_driven_answer_summarization_primary_dataset.json}  # training set (MEDIQA-AnS)
INPUTS=${INPUTS:-$ANS_JSON $DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-mas_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-128}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-20}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
