#!/usr/bin/env bash
# One question (or dialogue history) in, one generated summary (or reply) out, with a model
# fine-tuned by one of the examples/<dataset>/run.sh recipes: a thin call of biobart-generate,
# which decodes as the recipe decoded its test set (the settings of WORK/checkpoints/results.json).
#   WORK=work/meqsum-base bash examples/ask.sh "I have had a cough for 3 weeks. Should I get an x-ray?"
# BEAM, LENPEN, MIN_LEN, MAX_LEN_B, NO_REPEAT override the recipe's settings; GPU=1 decodes on CUDA.
# Many questions at once: biobart-generate FILE --model WORK (see biobart-generate --help).
set -euo pipefail

WORK=${WORK:?WORK: the work folder of the recipe run, holding data-bin and checkpoints}
QUESTION=${1:?usage: examples/ask.sh "QUESTION"}
ARGS=()
[ -n "${BEAM:-}" ] && ARGS+=(--beam "$BEAM")
[ -n "${LENPEN:-}" ] && ARGS+=(--lenpen "$LENPEN")
[ -n "${MIN_LEN:-}" ] && ARGS+=(--min-len "$MIN_LEN")
[ -n "${MAX_LEN_B:-}" ] && ARGS+=(--max-len-b "$MAX_LEN_B")
[ -n "${NO_REPEAT:-}" ] && ARGS+=(--no-repeat-ngram-size "$NO_REPEAT")
[ "${GPU:-0}" = 1 ] && ARGS+=(--gpu)
# --output-format lines: the answer on one line, a line break in it written as \n (as hyp.txt)
exec biobart-generate --model "$WORK" --text "$QUESTION" --output-format lines --quiet "${ARGS[@]}"
