#!/usr/bin/env bash
# The same run under slurm: one task per GPU; fairseq reads the rank and world size from
# slurm's environment when --distributed-port is given.  Submit with
#   sbatch --nodes 2 --ntasks-per-node 8 --gpus-per-node 8 --cpus-per-task 8 examples/pretrain/slurm.sh
#SBATCH --job-name=biobart-pretrain
#SBATCH --time=7-00:00:00
set -euo pipefail

DATA=${DATA:-data-bin/pubmed}
BART=${BART:-bart.base}
ARCH=${ARCH:-bart_base}
SAVE_DIR=${SAVE_DIR:-checkpoints/biobart-${ARCH#bart_}}
MAX_TOKENS=${MAX_TOKENS:-8192}
PRECISION=${PRECISION:---fp16}
UPDATES=${UPDATES:-120000}
PORT=${PORT:-12355}

WORLD=${SLURM_NTASKS:?run under sbatch/srun}
UPDATE_FREQ=$(( (2560 * 512 + WORLD * MAX_TOKENS - 1) / (WORLD * MAX_TOKENS) ))
PLUGIN=$(python -c 'import biobart_fairseq, os; print(os.path.dirname(biobart_fairseq.__file__))')

srun fairseq-train "$DATA" --distributed-port "$PORT" --distributed-world-size "$WORLD" \
  --user-dir "$PLUGIN" --task biomed_denoising --arch "$ARCH" \
  --finetune-from-model "$BART/model.pt" \
  --tokens-per-sample 512 --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" \
  --criterion cross_entropy --dropout 0.1 --attention-dropout 0.1 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0 \
  --lr 1e-4 --lr-scheduler polynomial_decay --power 1 --end-learning-rate 0 \
  --warmup-updates $((UPDATES * 2 / 100)) --total-num-update "$UPDATES" --max-update "$UPDATES" \
  $PRECISION --num-workers 4 --seed 1 \
  --save-dir "$SAVE_DIR" --save-interval-updates 2000 --keep-interval-updates 5 --no-epoch-checkpoints \
  --validate-interval-updates 2000 \
  --tensorboard-logdir "$SAVE_DIR/tensorboard" --log-format simple --log-interval 100 \
  "$@"
