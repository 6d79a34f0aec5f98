#!/usr/bin/env bash
# One question (or dialogue history) in, one generated summary (or reply) out, with a model
# fine-tuned by one of the examples/<dataset>/run.sh recipes (fairseq-interactive).
#   WORK=work/meqsum-base bash examples/ask.sh "I have had a cough for 3 weeks. Should I get an x-ray?"
set -euo pipefail

WORK=${WORK:?WORK: the work folder of the recipe run, holding data-bin and checkpoints}
QUESTION=${1:?usage: examples/ask.sh "QUESTION"}
# Generation settings: those the recipe generated its test set with (its results.json), so the
# answer here is what the scores describe; BEAM, LENPEN, MIN_LEN, MAX_LEN_B, NO_REPEAT override.
RESULTS=$WORK/checkpoints/results.json
if [ -f "$RESULTS" ]; then
  read -r R_BEAM R_LENPEN R_MIN R_MAX R_NOREP < <(python - "$RESULTS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])).get("decoding", {})
print(*(d.get(k, v) for k, v in (("beam", 5), ("lenpen", 1), ("min_len", 1), ("max_len_b", 200),
                                  ("no_repeat_ngram_size", 3))))
PY
  )
else
  echo "ask.sh: $RESULTS not found; generating with beam 5, 1..200 tokens, trigram blocking" >&2
  R_BEAM=5 R_LENPEN=1 R_MIN=1 R_MAX=200 R_NOREP=3
fi
BEAM=${BEAM:-$R_BEAM}
LENPEN=${LENPEN:-$R_LENPEN}
MIN_LEN=${MIN_LEN:-$R_MIN}
MAX_LEN_B=${MAX_LEN_B:-$R_MAX}
NO_REPEAT=${NO_REPEAT:-$R_NOREP}

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
    --path "$CKPT" --beam "$BEAM" --lenpen "$LENPEN" --no-repeat-ngram-size "$NO_REPEAT" --max-len-a 0 --max-len-b "$MAX_LEN_B" \
    --min-len "$MIN_LEN" \
    --truncate-source "${BPE[@]}" "${CPU[@]}" 2>/dev/null | sed -n 's/^D-[0-9]*\t[^\t]*\t//p'
