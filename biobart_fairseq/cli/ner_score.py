"""``biobart-ner-score``: entity-level micro precision / recall / F1 (and per type) as JSON.

::

    biobart-ner-score --gold data-ner/genia/test.jsonl --pred test.pred.jsonl
    biobart-ner-score --checkpoint ckpt/checkpoint_best.pt --data data-ner/genia --split test \\
        --beam 4 --max-len-a 0.5 --pred-out ckpt/test.pred.jsonl

Both files are canonical NER JSONL (``biobart-prepare-ner`` output), aligned line by line.
An entity matches only with the same type and the same words; an entity predicted twice in
a sentence counts once (BARTNER).  With ``--checkpoint`` the predictions are made first:
the ``bartner_ner`` model decodes ``DATA/SPLIT.jsonl`` (greedy, or beam search with
``--beam``), writes them to ``--pred-out`` and scores them against that file.

Exit status: 0 scored, 2 bad input (file and line named).
"""

import argparse
import json
import os
import sys

from ..data.ner_formats import NerFormatError, atomic_write_text, format_jsonl, read_jsonl
from ..metrics.entity_f1 import score


def parse_args(argv):
    p = argparse.ArgumentParser(prog="biobart-ner-score", description="Entity-level micro P/R/F1 of NER predictions.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gold", help="gold canonical JSONL (default with --checkpoint: DATA/SPLIT.jsonl)")
    p.add_argument("--pred", help="predicted canonical JSONL, one line per gold line")
    p.add_argument("--output-json", help="also write the scores to this file")
    g = p.add_argument_group("predict first (bartner_ner checkpoint)")
    g.add_argument("--checkpoint", help="checkpoint of a bartner_ner model to decode with")
    g.add_argument("--data", help="its data folder (biobart-prepare-ner output; default: the checkpoint's)")
    g.add_argument("--split", default="test", help="split to decode: DATA/SPLIT.jsonl (default: %(default)s)")
    g.add_argument("--pred-out", help="where the predictions go (default: next to the checkpoint, SPLIT.pred.jsonl)")
    g.add_argument("--beam", type=int, default=1, help="beam size (default: %(default)s = greedy)")
    g.add_argument("--max-len-a", type=float, help="at most max_len_b + a * source length indices (default: the task's)")
    g.add_argument("--max-len-b", type=int, help="see --max-len-a (default: the task's)")
    g.add_argument("--batch-size", type=int, default=32, help="sentences per decoding batch (default: %(default)s)")
    g.add_argument("--cpu", action="store_true", help="decode on CPU even when CUDA is available")
    return p.parse_args(argv)


def fail(msg):
    print(f"biobart-ner-score: error: {msg}", file=sys.stderr)
    return 2


def predict(args):
    """Decode DATA/SPLIT.jsonl with the checkpoint; returns (gold path, pred path)."""
    import torch
    from fairseq import checkpoint_utils

    from .. import compat  # noqa: F401  (weights_only workaround for fairseq checkpoints)
    from ..tasks import bartner_ner  # noqa: F401  (registers task, model, criterion)
    from ..models import bartner  # noqa: F401

    overrides = {"data": os.path.abspath(args.data)} if args.data else {}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([args.checkpoint], arg_overrides=overrides)
    model = models[0]
    if torch.cuda.is_available() and not args.cpu:
        model = model.cuda()
    data = args.data or cfg.task.data
    gold = args.gold or os.path.join(data, f"{args.split}.jsonl")
    sentences = read_jsonl(gold)
    preds = task.predict(model, sentences, beam=args.beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                         batch_size=args.batch_size)
    out = args.pred_out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), f"{args.split}.pred.jsonl")
    atomic_write_text(out, format_jsonl(preds))
    print(f"[ner-score] wrote {len(preds)} predictions to {out}", file=sys.stderr)
    return gold, out


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.checkpoint:
            if not os.path.isfile(args.checkpoint):
                return fail(f"{args.checkpoint}: no such checkpoint")
            gold_path, pred_path = predict(args)
        else:
            if not (args.gold and args.pred):
                return fail("give --gold and --pred, or --checkpoint to predict first")
            gold_path, pred_path = args.gold, args.pred
        for path in (gold_path, pred_path):
            if not os.path.isfile(path):
                return fail(f"{path}: no such file")
        gold, pred = read_jsonl(gold_path), read_jsonl(pred_path)
    except NerFormatError as e:
        return fail(str(e))
    if len(gold) != len(pred):
        return fail(f"{pred_path}: {len(pred)} sentences but {gold_path} has {len(gold)}; the files must align line by line")
    for n, (g, p) in enumerate(zip(gold, pred), 1):
        if p["tokens"] != g["tokens"]:
            return fail(f"{pred_path}: sentence {n}: tokens differ from {gold_path} sentence {n}; the files must align")
    result = score(gold, pred)
    text = json.dumps(result, indent=2)
    if args.output_json:
        atomic_write_text(args.output_json, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
