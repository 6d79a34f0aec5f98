#!/usr/bin/env bash
# BioBART continued pretraining with the paper's settings (§5.1): start from BART weights,
# text infilling only (30 % of words, Poisson(3) spans, one <mask> per span), 512-token
# inputs, 120k updates of 2560 sequences, lr 1e-4 with 2 % warm-up and linear decay, fp16.
#
# One node:      NNODES=1 GPUS_PER_NODE=8 bash examples/pretrain/pretrain.sh
# Several nodes: run the same command on every node with NODE_RANK=0..NNODES-1 and
#                MASTER_ADDR=<node 0's hostname> (torchrun rendezvous), or use slurm.sh
#                (LAUNCH=srun: one task per GPU, ranks from slurm's environment).
# Extra arguments are passed on to fairseq-train.
set -euo pipefail

# --finetune-from-model starts from BART the first time and from SAVE_DIR/checkpoint_last.pt
# after a preemption, so re-running this script resumes.
DATA=${DATA:-data-bin/pubmed}            # biobart-binarize --bpe gpt2 output (BART's dict.txt)
BART=${BART:-bart.base}                  # folder with model.pt (biobart-convert hf-to-fairseq, or fairseq's bart.base)
ARCH=${ARCH:-bart_base}                  # bart_base | bart_large
FAST=${FAST:-1}                          # 1: the plugin's fast path (same weights, see README); 0: stock fairseq
SAVE_DIR=${SAVE_DIR:-checkpoints/biobart-${ARCH#bart_}}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
MAX_TOKENS=${MAX_TOKENS:-8192}           # per GPU per forward pass; lower it if you run out of memory
PRECISION=${PRECISION:---fp16}           # --fp16 (paper) or --bf16 (A100/H100)
UPDATES=${UPDATES:-120000}
BATCH_SEQS=${BATCH_SEQS:-2560}           # sequences per update (paper)
TOKENS_PER_SAMPLE=512
LR=${LR:-1e-4}
LAUNCH=${LAUNCH:-torchrun}               # torchrun | srun

if [ "$LAUNCH" = srun ]; then
  WORLD=${SLURM_NTASKS:?LAUNCH=srun must run inside a slurm allocation}
  LAUNCHER=(srun "$(command -v fairseq-train)" --distributed-port "$MASTER_PORT")
else
  WORLD=$((NNODES * GPUS_PER_NODE))
  LAUNCHER=(torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS_PER_NODE"
            --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "$(command -v fairseq-train)")
fi
# effective batch = WORLD x MAX_TOKENS x UPDATE_FREQ >= 2560 x 512 tokens
UPDATE_FREQ=$(( (BATCH_SEQS * TOKENS_PER_SAMPLE + WORLD * MAX_TOKENS - 1) / (WORLD * MAX_TOKENS) ))
WARMUP=$((UPDATES * 2 / 100))
if [ "$FAST" = 1 ]; then
  # biobart_* = bart_* with SDPA attention; the criterion and optimizer compute what
  # cross_entropy and adam compute, without the vocabulary-sized fp32 tensor / Python loop.
  MODEL_ARGS=(--arch "bio$ARCH" --criterion fused_cross_entropy --optimizer torch_adamw)
else
  MODEL_ARGS=(--arch "$ARCH" --criterion cross_entropy --optimizer adam)
fi
PLUGIN=$(python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))')  # no import: registering takes seconds
echo "world size $WORLD, update-freq $UPDATE_FREQ: $((WORLD * MAX_TOKENS * UPDATE_FREQ)) tokens/update, warm-up $WARMUP"

"${LAUNCHER[@]}" "$DATA" \
  --distributed-world-size "$WORLD" --distributed-backend nccl --ddp-backend pytorch_ddp \
  --user-dir "$PLUGIN" --task biomed_denoising "${MODEL_ARGS[@]}" \
  --finetune-from-model "$BART/model.pt" \
  --tokens-per-sample $TOKENS_PER_SAMPLE --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" \
  --dropout 0.1 --attention-dropout 0.1 \
  --adam-betas '(0.9, 0.98)' --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0 \
  --lr "$LR" --lr-scheduler polynomial_decay --power 1 --end-learning-rate 0 \
  --warmup-updates "$WARMUP" --total-num-update "$UPDATES" --max-update "$UPDATES" \
  $PRECISION --num-workers 4 --seed 1 \
  --save-dir "$SAVE_DIR" --save-interval-updates 2000 --keep-interval-updates 5 --no-epoch-checkpoints \
  --validate-interval-updates 2000 \
  --tensorboard-logdir "$SAVE_DIR/tensorboard" --log-format simple --log-interval 100 \
  "$@"

# SAVE_DIR/results.json (biobart-results): what was run and its best validation loss.  Models
# fine-tuned from this run take their paper row from it: PAPER_ROW, else the folder name
# (biobart-base, ablation-TI, ...).  Written once, by node 0, after training finished.
if [ "$NODE_RANK" = 0 ] && [ -f "$SAVE_DIR/checkpoint_last.pt" ]; then
  python -m biobart_fairseq.cli.write_results --kind pretrain --dataset pubmed --split valid \
    --model "$BART/model.pt" --checkpoint "$SAVE_DIR/checkpoint_last.pt" ${PAPER_ROW:+--paper-row "$PAPER_ROW"} \
    --setting arch="$ARCH" updates="$UPDATES" lr="$LR" batch_seqs="$BATCH_SEQS" world="$WORLD" \
    update_freq="$UPDATE_FREQ" max_tokens="$MAX_TOKENS" precision="$PRECISION" "extra_args=$*" \
    --command="$(printf '%q ' bash "$0" "$@")" -o "$SAVE_DIR/results.json"
fi
