#!/usr/bin/env bash
# healthcaremagic (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MedDialog-EN healthcaremagic dialogue .txt files (github.com/UCSD-AI4H/Medical-Dialogue-System)
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/healthcaremagic/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=healthcaremagic
TASK_TYPE=summarization
DATA_ROOT=${DATA_ROOT:-data/healthcaremagic}
INPUTS=${INPUTS:-$DATA_ROOT}
# Output length in Hugging Face tokens (generate max_length/min_length), GanjinZero/BioBART downstream_src/healthcaremagic_script.sh:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-30}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
