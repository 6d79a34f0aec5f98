"""``biobart-ner-score``: micro precision / recall / F1 (and per type) of NER predictions, as JSON.

::

    biobart-ner-score --checkpoint ckpt/checkpoint_best.pt --data data-ner/genia --split test \\
        --beam 4 --max-len-a 0.5 --pred-out ckpt/test.pred.jsonl
    biobart-ner-score --gold data-ner/genia/test.jsonl --pred ckpt/test.pred.jsonl
    biobart-ner-score --metric entity --gold gold.jsonl --pred other_system.jsonl

Both files are canonical NER JSONL (``biobart-prepare-ner`` output), aligned line by line.
``--metric`` chooses how predictions count:

* ``bartner`` (default; use it to compare with the paper): exactly as BARTNER's evaluation,
  on the decoder's index sequences: predicted tuples (pointers + type) against the gold
  target's tuples, as sets per sentence.  It needs the sequences that ``--checkpoint`` writes
  in each prediction's ``bartner`` field, and the data folder (``--data``, default: the gold
  file's folder) to build the gold targets with the same BPE;
* ``entity``: same type and same words (all fragments); works on any canonical predictions.

An entity predicted twice in a sentence counts once in both.  With ``--checkpoint`` the
predictions are made first: the ``bartner_ner`` model decodes ``DATA/SPLIT.jsonl`` (greedy, or
beam search with ``--beam``) through the one decoding path (``BartNerTask.decode_examples``, as
``biobart-tag``), with a progress bar in sentences (``--quiet``: none), writes them to
``--pred-out`` and scores that file; the JSON output then has the measured rate (``speed``).

Exit status: 0 scored, 2 bad input (the message names the file and line) or a checkpoint that
is not a ``bartner_ner`` model.
"""

import argparse
import json
import os
import sys

from .. import errors, progress
from ..data.ner_formats import NerFormatError, atomic_write_text, format_jsonl, read_jsonl
from ..data.ner_targets import TARGET_TYPES
from ..metrics.entity_f1 import score


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog="biobart-ner-score", description="Entity-level micro P/R/F1 of NER predictions.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gold", help="gold canonical JSONL (default with --checkpoint: DATA/SPLIT.jsonl)")
    p.add_argument("--pred", help="predicted canonical JSONL, one line per gold line")
    p.add_argument("--metric", choices=("bartner", "entity"), default="bartner",
                   help="bartner = BARTNER's counting of the decoder's index tuples (default; compare with the "
                        "paper; needs predictions written by --checkpoint); entity = same type and same words")
    p.add_argument("--output-json", help="also write the scores to this file")
    g = p.add_argument_group("predict first (bartner_ner checkpoint)")
    g.add_argument("--checkpoint", help="checkpoint of a bartner_ner model to decode with")
    g.add_argument("--data", help="data folder (biobart-prepare-ner output; default: the checkpoint's, or without "
                                  "--checkpoint the gold file's folder); --metric bartner builds gold targets from it")
    g.add_argument("--split", default="test", help="split to decode: DATA/SPLIT.jsonl (default: %(default)s)")
    g.add_argument("--pred-out", help="where the predictions go (default: next to the checkpoint, SPLIT.pred.jsonl)")
    g.add_argument("--beam", type=int, default=1, help="beam size (default: %(default)s = greedy)")
    g.add_argument("--max-len-a", type=float, help="a hypothesis, sos and eos counted, has at most max_len_b + int(a * source length) indices, "
                        "the last a forced eos, as BARTNER's generator (default: the task's)")
    g.add_argument("--max-len-b", type=int, help="see --max-len-a (default: the task's)")
    g.add_argument("--batch-size", type=int, default=32, help="sentences per decoding batch (default: %(default)s)")
    g.add_argument("--cpu", action="store_true", help="decode on CPU even when CUDA is available")
    progress.add_argument(g)
    return p.parse_args(argv)


def fail(msg):
    return errors.fail("biobart-ner-score", msg)  # exit 2, one line (biobart_fairseq/errors.py)


def predict(args):
    """Decode DATA/SPLIT.jsonl with the checkpoint; returns (gold path, pred path, task, speed)."""
    import torch

    from ..inference.tagger import load_bartner

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    model, task = load_bartner(args.checkpoint, args.data, device)
    data = args.data or task.cfg.data
    gold = args.gold or os.path.join(data, f"{args.split}.jsonl")
    if not os.path.isfile(gold):
        raise NerFormatError(f"{gold}: no such file (split {args.split!r})")
    sentences = read_jsonl(gold)
    with progress.bar(total=len(sentences), desc="ner-score", unit="sentence", quiet=args.quiet) as bar:
        preds = task.predict(model, sentences, beam=args.beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                             batch_size=args.batch_size, progress=bar)
    out = args.pred_out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), f"{args.split}.pred.jsonl")
    atomic_write_text(out, format_jsonl(preds))
    speed = bar.summary()
    print(f"[ner-score] wrote {len(preds)} predictions to {out} ({speed['items_per_s']} sentences/s)", file=sys.stderr)
    return gold, out, task, speed


def read_aligned(gold_path, pred_path):
    """Gold and predicted sentences, aligned line by line; NerFormatError names file and line."""
    gold_lines, pred_lines = [], []
    gold = read_jsonl(gold_path, line_numbers=gold_lines)
    pred = read_jsonl(pred_path, line_numbers=pred_lines)
    if len(gold) != len(pred):
        raise NerFormatError(f"{pred_path}: {len(pred)} sentences but {gold_path} has {len(gold)}; "
                             "the files must align line by line")
    for g, p, gl, pl in zip(gold, pred, gold_lines, pred_lines):
        if p["tokens"] != g["tokens"]:
            raise NerFormatError(f"{pred_path}:{pl}: tokens differ from {gold_path}:{gl}; the files must align")
    return gold, pred, pred_lines


def bartner_sequences(pred, pred_lines, pred_path):
    """(target type, index sequences) from the predictions' ``bartner`` fields."""
    seqs, kinds = [], set()
    for p, line in zip(pred, pred_lines):
        rec = p.get("bartner")
        if not (isinstance(rec, dict) and isinstance(rec.get("seq"), list) and "target_type" in rec):
            raise NerFormatError(f"{pred_path}:{line}: no 'bartner' {{'target_type', 'seq'}} record: BARTNER's "
                                 "counting needs the decoder's index sequence (written by --checkpoint); --metric entity scores "
                                 "entities alone")
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in rec["seq"]):
            raise NerFormatError(f"{pred_path}:{line}: 'bartner.seq' must be a list of non-negative integers")
        if rec["target_type"] not in TARGET_TYPES:  # entity_pointers would raise ValueError on it
            raise NerFormatError(f"{pred_path}:{line}: 'bartner.target_type' is {rec['target_type']!r}; "
                                 f"expected one of {', '.join(TARGET_TYPES)}")
        seqs.append(rec["seq"])
        kinds.add(rec["target_type"])
    if len(kinds) != 1:
        raise NerFormatError(f"{pred_path}: predictions of several target types {sorted(kinds)}")
    return kinds.pop(), seqs


def score_bartner(gold, gold_path, pred, pred_lines, pred_path, data, encoder=None):
    """BARTNER's counting; ``encoder`` = (types, sentences -> examples), else built from ``data``."""
    from ..metrics.bartner_f1 import BartnerCounts, gold_tuples, predicted_tuples

    target_type, seqs = bartner_sequences(pred, pred_lines, pred_path)
    if encoder is None:
        from ..data.ner_dataset import folder_encoder

        data = data or os.path.dirname(os.path.abspath(gold_path))
        for name in ("ner.json", "dict.txt", "bpe.json"):
            if not os.path.isfile(os.path.join(data, name)):
                raise NerFormatError(f"{os.path.join(data, name)}: not found; --metric bartner needs the data folder "
                                     "(--data) to build the gold targets")
        encoder = folder_encoder(data, target_type)
    types, encode = encoder
    unknown = sorted({e["type"] for s in gold for e in s["entities"]} - set(types))
    if unknown:
        raise NerFormatError(f"{gold_path}: entity types {unknown} are not in the data folder's ner.json {types}")
    counts = BartnerCounts(types)
    for ex, seq in zip(encode(gold), seqs):
        counts.add_sentence(gold_tuples(ex["target"], len(types)), predicted_tuples(seq, len(types), target_type),
                            ex["truncated_entities"])
    return {"metric": "bartner", "target_type": target_type, **counts.result()}


def run(args):
    encoder, speed = None, None
    if args.checkpoint:
        if not os.path.isfile(args.checkpoint):
            raise NerFormatError(f"{args.checkpoint}: no such checkpoint")
        gold_path, pred_path, task, speed = predict(args)
        encoder = (task.types, task.encode)
    else:
        if not (args.gold and args.pred):
            raise NerFormatError("give --gold and --pred, or --checkpoint to predict first")
        gold_path, pred_path = args.gold, args.pred
    for path in (gold_path, pred_path):
        if not os.path.isfile(path):
            raise NerFormatError(f"{path}: no such file")
    gold, pred, pred_lines = read_aligned(gold_path, pred_path)
    if args.metric == "entity":
        result = {"metric": "entity", **score(gold, pred)}
    else:
        result = score_bartner(gold, gold_path, pred, pred_lines, pred_path, args.data, encoder)
    if speed is not None:
        result["speed"] = speed  # the decoding's measured rate (issue 22: every decoding command reports it)
    return result


def main(argv=None):
    args = parse_args(argv)
    try:
        result = run(args)
    except (NerFormatError, errors.Unusable) as e:
        return fail(str(e))
    text = json.dumps(result, indent=2)
    if args.output_json:
        atomic_write_text(args.output_json, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
