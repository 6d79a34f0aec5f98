#!/usr/bin/env bash
# meqsum (summarization): prepare -> fine-tune -> generate -> score, paper settings (§5.3).
# Data: MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx from github.com/abachaa/MeQSum
#   SIZE=base|large CHECKPOINT=path/model.pt GPUS=0,1 bash examples/meqsum/run.sh
# Variables (all overridable): see examples/seq2seq_common.sh; the main ones:
DATASET=meqsum
TASK_TYPE=summarization
SIZE=${SIZE:-base}                                   # base | large (lr 5e-5 | 1e-5)
CHECKPOINT=${CHECKPOINT-checkpoints/biobart-$SIZE/model.pt}  # converted BART/BioBART or biomed_denoising checkpoint
GPUS=${GPUS-0}                                       # CUDA_VISIBLE_DEVICES; empty = CPU
DATA_ROOT=${DATA_ROOT:-../shared/data/meqsum}
INPUTS=${INPUTS:-$DATA_ROOT/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx}
# Output length in Hugging Face tokens (generate max_length/min_length): BioBART has no MeQSum
# script; MEDIQA-QS's (downstream_src/mediqa-qs_script.sh), which trains on MeQSum:
MAX_TARGET_LEN=${MAX_TARGET_LEN:-30}
MIN_TARGET_LEN=${MIN_TARGET_LEN:-5}
export SIZE CHECKPOINT GPUS
source "$(dirname "${BASH_SOURCE[0]}")/../seq2seq_common.sh"
