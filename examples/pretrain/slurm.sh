#!/usr/bin/env bash
# The paper's pretraining run under slurm: one task per GPU; fairseq reads each task's rank
# and the world size from slurm's environment (--distributed-port).  Submit with
#   sbatch --nodes 2 --ntasks-per-node 8 --gpus-per-node 8 --cpus-per-task 8 examples/pretrain/slurm.sh
# Settings (DATA, BART, ARCH, SAVE_DIR, MAX_TOKENS, PRECISION, ...) as in pretrain.sh.
#SBATCH --job-name=biobart-pretrain
#SBATCH --time=7-00:00:00
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
LAUNCH=srun MASTER_PORT=${MASTER_PORT:-12355} exec bash examples/pretrain/pretrain.sh "$@"
