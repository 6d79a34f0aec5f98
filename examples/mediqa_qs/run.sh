#!/usr/bin/env bash
# mediqa_qs (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MEDIQA2021 Task1 workbooks (github.com/abachaa/MEDIQA2021/Task1) + MeQSum xlsx for training
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/mediqa_qs/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=mediqa_qs
TASK_TYPE=summarization
DATA_ROOT=${DATA_ROOT:-../shared/data/mediqa2021_qs}
MEQSUM_XLSX=${MEQSUM_XLSX:-../shared/data/meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx}  # training set (train=PATH forces the role)
INPUTS=${INPUTS:-$MEQSUM_XLSX $DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/mediqa-qs_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-30}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
