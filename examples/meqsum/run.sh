#!/usr/bin/env bash
# meqsum (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx from github.com/abachaa/MeQSum
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/meqsum/run.sh
# Variables (all overridable): SIZE (base|large), CHECKPOINT (empty = from scratch), GPUS (empty = CPU)
# and the rest in examples/seq2seq_common.sh; this dataset's own:
DATASET=meqsum
TASK_TYPE=summarization
DATA_ROOT=${DATA_ROOT:-../shared/data/meqsum}
INPUTS=${INPUTS:-$DATA_ROOT/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx}
# Output length in Hugging Face tokens (generate max_length/min_length): BioBART has no MeQSum
# script; MEDIQA-QS's (downstream_src/mediqa-qs_script.sh), which trains on MeQSum:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-30}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
