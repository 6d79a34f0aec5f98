#!/usr/bin/env bash
# Tiny BART continued pretraining on CPU with biomed_denoising (used by the demo and as
# a smoke test). Same task and noise as the paper's run, a model small enough for a laptop.
#   usage: examples/pretrain/tiny_cpu.sh DATA_BIN SAVE_DIR [extra fairseq-train flags]
set -euo pipefail

DATA=${1:?binarized data folder (from biobart-binarize)}
SAVE_DIR=${2:?where checkpoints go}
UPDATES=${UPDATES:-300}
LR=${LR:-2e-3}
SEED=${SEED:-1}
shift 2

PLUGIN=$(python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))')  # no import: registering takes seconds

fairseq-train "$DATA" --user-dir "$PLUGIN" --task biomed_denoising \
  --arch bart_base --encoder-layers 2 --decoder-layers 2 \
  --encoder-embed-dim 128 --decoder-embed-dim 128 \
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 \
  --encoder-attention-heads 4 --decoder-attention-heads 4 \
  --dropout 0.1 --attention-dropout 0.1 \
  --tokens-per-sample 256 --max-tokens 2048 --required-batch-size-multiple 1 \
  --criterion cross_entropy \
  --optimizer adam --adam-betas '(0.9, 0.98)' --weight-decay 0.01 --clip-norm 1.0 \
  --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates $((UPDATES / 20)) \
  --total-num-update "$UPDATES" --max-update "$UPDATES" \
  --cpu --num-workers 0 --seed "$SEED" \
  --save-dir "$SAVE_DIR" --no-epoch-checkpoints \
  --validate-interval 1000 --save-interval 1000 \
  --validate-interval-updates 100 --save-interval-updates 100 --keep-interval-updates 1 \
  --log-format simple --log-interval 20 --no-progress-bar \
  "$@"

# SAVE_DIR/results.json (biobart-results): what was run and its best validation loss; PAPER_ROW
# (e.g. biobart-base) is the row that models fine-tuned from this checkpoint stand for.
python -m biobart_fairseq.cli.write_results --kind pretrain --dataset pubmed --split valid \
  --checkpoint "$SAVE_DIR/checkpoint_last.pt" ${PAPER_ROW:+--paper-row "$PAPER_ROW"} \
  --setting updates="$UPDATES" lr="$LR" seed="$SEED" "extra_args=$*" \
  --command="$(printf '%q ' bash "$0" "$DATA" "$SAVE_DIR" "$@")" -o "$SAVE_DIR/results.json"
