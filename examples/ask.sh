#!/usr/bin/env bash
# One question (or dialogue history) in, one generated summary (or reply) out, with a model
# fine-tuned by one of the examples/<dataset>/run.sh recipes (fairseq-interactive).
#   WORK=work/meqsum-base bash examples/ask.sh "I have had a cough for 3 weeks. Should I get an x-ray?"
set -euo pipefail

WORK=${WORK:?WORK: the work folder of the recipe run, holding data-bin and checkpoints}
QUESTION=${1:?usage: examples/ask.sh "QUESTION"}
BEAM=${BEAM:-5}
NO_REPEAT=${NO_REPEAT:-3}
MAX_LEN_B=${MAX_LEN_B:-200}

BIN=$WORK/data-bin
CKPT=$WORK/checkpoints/checkpoint_best.pt
[ -f "$CKPT" ] || CKPT=$WORK/checkpoints/checkpoint_last.pt
if [ -f "$BIN/spm.model" ]; then
  BPE=(--bpe sentencepiece --sentencepiece-model "$BIN/spm.model")
else
  BPE=(--bpe gpt2 --gpt2-encoder-json "$BIN/encoder.json" --gpt2-vocab-bpe "$BIN/vocab.bpe")
fi
CPU=()
python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || CPU=(--cpu)
PLUGIN=$(python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))')

# Same escaping as biobart-prepare-seq2seq: one line per example, newlines written as \n.
ESCAPED=$(python -c 'import sys; print(sys.argv[1].replace("\\", "\\\\").replace("\n", "\\n"))' "$QUESTION")
printf '%s\n' "$ESCAPED" |
  fairseq-interactive "$BIN" --user-dir "$PLUGIN" --task biomed_translation --source-lang source --target-lang target \
    --path "$CKPT" --beam "$BEAM" --no-repeat-ngram-size "$NO_REPEAT" --max-len-b "$MAX_LEN_B" \
    --truncate-source "${BPE[@]}" "${CPU[@]}" 2>/dev/null | sed -n 's/^D-[0-9]*\t[^\t]*\t//p'
