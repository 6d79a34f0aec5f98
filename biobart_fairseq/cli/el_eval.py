"""biobart-el-eval: decode an entity-linking split with the KB trie and report Recall@1/@5.

    biobart-el-eval DATA --path ckpt/checkpoint_best.pt --split test --beam 5 -o preds.jsonl
    biobart-el-eval --average fold*/results.json          # AskAPatient: mean over folds

Decoding: batched beam search with GenBioEL's semantics (a finished name keeps its beam
slot; a mention is done when all slots have finished), each sample's ``<mention> is``
forced, the synonym constrained to KB names (``DATA/trie.npz``), names ranked by the
synonym's score.  Each ranked name maps to its CUIs through ``DATA/kb_names.tsv`` (by token
ids, no detokenisation); a mention is a hit at k when a gold CUI (any, for composite
mentions) is among the CUIs of the top-k names.  Every output is checked to be a KB name;
the count of those that are not (0 by construction) is reported.
"""

import argparse
import json
import os
import sys

from .. import errors, progress
from ..decoding import el_decode as D
from ..decoding.el_decode import load, read_kb_names  # noqa: F401  (el_eval.load etc.: used by benchmarks)
from ..metrics.recall_at_k import average_folds, recall_at_k

PROG = "biobart-el-eval"


def read_meta(path):
    """Gold of each sample (``<split>.meta.jsonl``); errors name the file line."""
    from ..data.el_formats import read_lines

    out = []
    for lineno, line in read_lines(path):
        if line.strip():
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e})")
            if not isinstance(rec, dict) or not isinstance(rec.get("cuis"), list):
                raise ValueError(f"{path}:{lineno}: a sample record needs a \"cuis\" list")
            out.append(rec)
    return out


def build_generator(task, models, beam=5, lenpen=1.0, split=None):
    """The task's generator; with ``split``, its length limit is the longest prefix of that
    split + the longest KB name (no name cut, no step wasted), else fairseq's default."""
    return D.build_generator(task, models, beam, lenpen, task.max_output_length(split) if split is not None else None)


def decode(task, models, split, beam=5, batch_size=32, max_tokens=None, lenpen=1.0, progress=None):
    """-> list (dataset order) of ranked hypotheses ``[(name_token_ids, score), ...]``."""
    if split not in task.datasets:
        task.load_dataset(split)
    return D.decode(task, models, task.dataset(split), beam, batch_size, max_tokens, lenpen, progress)


def score(ranked, meta, kb_names, ks=(1, 5)):
    """-> (metrics dict, prediction records)."""
    ranked_cuis, gold, records, not_in_kb, total = [], [], [], 0, 0
    for i, (hyps, m) in enumerate(zip(ranked, meta)):
        found = D.named(hyps, kb_names)
        names, cuis = [n for n, _, _ in found], [c for _, c, _ in found]
        total += len(found)
        not_in_kb += names.count(None)
        ranked_cuis.append(cuis)
        gold.append(m["cuis"])
        records.append({"id": i, "doc_id": m.get("doc_id"), "mention": m.get("mention"), "gold": m["cuis"],
                        "names": names, "cuis": cuis, "scores": [sc for _, sc in hyps or []]})
    res = recall_at_k(ranked_cuis, gold, ks)
    res["outputs"] = total
    res["outputs_not_in_kb"] = not_in_kb
    return res, records


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", help="folder written by biobart-prepare-el --bpe (OUT/bin)")
    p.add_argument("--path", help="model checkpoint (fairseq .pt)")
    p.add_argument("--split", default="test", help="fairseq split to decode: test or valid (default: %(default)s)")
    p.add_argument("--beam", type=int, default=5, help="beam size = names ranked per mention (default: %(default)s)")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty of the synonym score (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="mentions per batch (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=None, help="or: source tokens per batch")
    p.add_argument("--gpu", action="store_true", help="decode on CUDA when available (default: CPU)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's choice; 1 is much faster for small models on a busy machine)")
    p.add_argument("-o", "--predictions", help="write the ranked names and CUIs of every mention here (JSONL)")
    p.add_argument("--results", help="write the metrics here (JSON; default DATA/results.<split>.json)")
    progress.add_argument(p)
    p.add_argument("--average", nargs="+", metavar="RESULTS_JSON",
                   help="only average these results files (e.g. AskAPatient's 10 folds) and print the mean")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.average:
        return average(args.average)
    if not args.data or not args.path:
        return errors.fail(PROG, "DATA and --path are required (or --average)")
    for f in (args.path, os.path.join(args.data, "kb_names.tsv"), os.path.join(args.data, f"{args.split}.meta.jsonl")):
        if not os.path.isfile(f):
            return errors.fail(PROG, errors.missing(f))
    from ..data.el_formats import UnusableInput

    try:  # read the small inputs first: a bad one stops before the model is loaded
        meta = read_meta(os.path.join(args.data, f"{args.split}.meta.jsonl"))
        kb_names = read_kb_names(os.path.join(args.data, "kb_names.tsv"))
    except (ValueError, UnusableInput) as e:
        return errors.fail(PROG, str(e))
    loaded = load_checked(args)
    if isinstance(loaded, str):
        return errors.fail(PROG, loaded)
    evaluate(args, *loaded, meta, kb_names)
    return 0


def average(paths):
    """``--average``: print the mean of results files (e.g. AskAPatient's 10 folds)."""
    results = []
    for f in paths:
        try:
            with open(f, encoding="utf-8") as fh:
                results.append(json.load(fh))
        except (OSError, ValueError) as e:  # missing, not UTF-8, not JSON
            return errors.fail(PROG, f"{f}: {e}")
    print(json.dumps(average_folds(results)))
    return 0


def load_checked(args):
    """-> (models, task) of ``--path``, or the reason it is no entity-linking model for DATA."""
    if args.threads > 0:
        import torch  # here, not at the top: --help and argument errors start without it

        torch.set_num_threads(args.threads)
    try:
        models, task = load(args.data, args.path, cpu=not args.gpu)
    except errors.Unusable as e:  # not a checkpoint, or one of another task
        return str(e)
    except RuntimeError as e:  # e.g. a dialogue model: its embeddings do not fit this folder's dictionary
        if "size mismatch" not in str(e) and "state_dict" not in str(e):
            raise
        return (f"{args.path}: not a model for {args.data} (its weights do not fit this folder's "
                "dictionary; give a checkpoint fine-tuned on it with --task biomed_entity_linking)")
    if type(task).__name__ != "EntityLinkingTask":
        return (f"{args.path}: trained with --task {task.cfg._name if hasattr(task.cfg, '_name') else '?'}, "
                "not biomed_entity_linking")
    return models, task


def evaluate(args, models, task, meta, kb_names):
    """Decode the split, score it, write the results (and ``--predictions``) and print them."""
    task.load_dataset(args.split)
    with progress.bar(len(task.dataset(args.split)), f"el-eval {args.split}", "mention", args.quiet) as bar:
        ranked = decode(task, models, args.split, args.beam, args.batch_size, args.max_tokens, args.lenpen, bar)
    res, records = score(ranked, meta, kb_names)
    speed = bar.summary()
    res["mentions_per_s"] = speed["items_per_s"] or 0.0
    res["speed"] = speed
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(args.results or os.path.join(args.data, f"results.{args.split}.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
