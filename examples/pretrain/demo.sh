#!/usr/bin/env bash
# `make demo`: the whole continued-pretraining pipeline on the small PubMed-style sample
# that ships in examples/data/pubmed_sample (written for this project; one record in
# sample_broken.xml is malformed on purpose to show how bad input is reported).
set -euo pipefail
# One torch thread: a 32-dimension model gains nothing from a second one, and on two cores the
# threads' hand-offs cost more than they bring (tests/conftest.py makes the same choice).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

SAMPLE=examples/data/pubmed_sample
OUT=${OUT:-demo-output}
UPDATES=${UPDATES:-600}
VOCAB=${VOCAB:-1000}

step() { printf '\n==== %s ====\n' "$*"; }
rm -rf "$OUT" && mkdir -p "$OUT"

step "1/5 PubMed XML -> one sentence per line (biobart-prepare-pubmed)"
echo "Three input files; one record in sample_broken.xml is malformed on purpose. Expect one"
echo "'skipped FILE:LINE: reason' line: the record is skipped, the rest is written, and the"
echo "command exits with 3 (= written, but some input had errors)."
echo
set +e
biobart-prepare-pubmed "$SAMPLE/sample_baseline.xml" "$SAMPLE/sample_broken.xml" "$SAMPLE/sample_update.xml.gz" \
  -o "$OUT/text" --valid-docs 4
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "prepare failed (exit $rc)"; exit "$rc"; fi
echo "(exit $rc, as expected: the malformed record above was reported and skipped)"
python - "$OUT/text/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print({k: v for k, v in r.items() if not isinstance(v, (list, dict))})
PY
head -n 4 "$OUT/text/train.txt"

step "2/5 sentencepiece BPE + fairseq-preprocess (biobart-binarize)"
biobart-binarize --train "$OUT/text/train.txt" --valid "$OUT/text/valid.txt" -o "$OUT/bin" \
  --bpe sentencepiece --vocab-size "$VOCAB"

step "3/5 tiny BART continued pretraining on CPU (biomed_denoising, $UPDATES updates)"
echo "fairseq-train's log, filtered: a 'train_inner' line every 20 updates (loss = bits per token on"
echo "the training batches), a 'valid on' line every 100 updates (loss on the 4 held-out abstracts);"
echo "step 4 sums them up."
UPDATES=$UPDATES bash examples/pretrain/tiny_cpu.sh "$OUT/bin" "$OUT/checkpoints" 2>&1 | tee "$OUT/train.log" \
  | grep -E "train_inner|valid on|done training" || true

step "4/5 did the loss fall?"
python - "$OUT/train.log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
losses = [float(x) for x in re.findall(r"train_inner .*? loss=([0-9.]+)", log)]
valid = [float(x) for x in re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", log)]
if len(losses) < 2:
    sys.exit("no training log found")
print(f"training loss (base 2):   first logged {losses[0]:.2f} -> last logged {losses[-1]:.2f}")
if valid:
    print(f"validation loss (base 2): first {valid[0]:.2f} -> last {valid[-1]:.2f}")
if not losses[-1] < losses[0]:
    sys.exit("the loss did not fall")
print("The training loss falls: the pipeline learns.")
if len(valid) > 1 and valid[-1] > valid[0]:
    print("The validation loss (4 held-out abstracts) rises meanwhile: 29 abstracts are far too few to")
    print("learn language in general, so the tiny model learns its training text by heart (overfits) and")
    print("gets worse on text it has not seen. That is expected here; pretraining on PubMed (millions of")
    print("abstracts, examples/pretrain/pretrain.sh) is what makes both fall.")
PY

step "5/5 fill-mask with the trained model (biobart-fill-mask)"
# Two training-set titles with their third word masked: a model this small, trained on a
# few dozen abstracts, can only have learnt them by heart -- enough to see it fill in text.
TITLES=$(awk 'NR == 1 || prev == "" { if (NF > 4) print } { prev = $0 }' "$OUT/text/train.txt" | head -n 2)
mapfile -t MASKED < <(printf '%s\n' "$TITLES" | awk '{ $3 = "<mask>"; print }')
printf 'original: %s\n' "$TITLES"
echo "How to read it: under each masked title, the model's top fillings (beam search), best first,"
echo "with their log-probability. The first should restore the masked word, learnt by heart. The"
echo "others are the beam's next-best outputs: one <mask> may stand for any number of words (text"
echo "infilling), so a model that memorised 29 abstracts also offers other memorised sentences."
echo "They are not alternatives with a meaning; they show what the model has stored, nothing more."
echo
biobart-fill-mask --checkpoint "$OUT/checkpoints/checkpoint_last.pt" --data "$OUT/bin" --topk 3 "${MASKED[@]}" 2>/dev/null

printf '\nDemo finished: outputs in %s/\n' "$OUT"
