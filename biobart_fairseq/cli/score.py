"""biobart-score: ROUGE-1/2/L/Lsum, BLEU and BERTScore of a hypothesis file against references,
computed as in the BioBART paper (see :mod:`biobart_fairseq.metrics.generation`)."""

import argparse
import json
import logging
import os
import sys

from .. import errors
from ..data.seq2seq_readers import unescape_newlines
from ..errors import os_error


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="biobart-score",
        description="Score generated text line by line against references: ROUGE (rouge-score, Porter stemmer, "
        "F x 100), corpus BLEU (sacrebleu, 0-100) and BERTScore F1 (bert-score, 0-1 as in the paper). "
        "The BERTScore model is looked for first (local folder, Hugging Face cache, one download if the hub "
        "can be reached); when it is not available BERTScore is skipped with one line on stderr, or, with "
        "--require-bertscore, the command fails before scoring anything. ROUGE and BLEU are written to "
        "--output before BERTScore starts.",
    )
    p.add_argument("--hyp", required=True, help="hypotheses, one per line (e.g. de-BPE'd fairseq-generate output in test order)")
    p.add_argument("--ref", required=True, help="references, one per line (e.g. OUT/test.target of biobart-prepare-seq2seq)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bertscore-model", default="roberta-large",
                   help="hub name or local model folder for BERTScore (default: %(default)s, as in the paper; "
                   "offline, give a local folder)")
    g.add_argument("--no-bertscore", action="store_true", help="skip BERTScore (no model needed)")
    p.add_argument("--require-bertscore", action="store_true",
                   help="exit 2 before scoring anything if the BERTScore model is not available "
                   "(default: skip BERTScore with one line on stderr)")
    p.add_argument("--bertscore-layers", type=int, default=None,
                   help="layer whose embeddings BERTScore uses (default: bert-score's choice for hub names, the last "
                   "layer for local folders)")
    p.add_argument("--device", default=None, help="torch device for BERTScore (default: cuda if available)")
    p.add_argument("--no-unescape", action="store_true",
                   help="keep literal \\n in the text; by default the escapes written by biobart-prepare-seq2seq are "
                   "turned back into newlines (ROUGE-Lsum splits on them)")
    p.add_argument("--from-generate", action="store_true",
                   help="--hyp is fairseq-generate output: take its D-<id> lines (de-BPE'd), put them back in test order "
                   "and check that every id is there")
    p.add_argument("--write-hyp", metavar="PATH", help="with --from-generate: also write the ordered hypotheses here")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="also write the JSON here: ROUGE/BLEU as soon as they are computed, then again with "
                   "BERTScore (each write replaces the file whole, so it is never half-written)")
    args = p.parse_args(argv)
    if args.require_bertscore and args.no_bertscore:
        p.error("--require-bertscore contradicts --no-bertscore")
    return args


def _read(path, unescape):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise ValueError(os_error(e)) from None
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    if not lines:
        raise ValueError(f"{path}: empty file")
    return [unescape_newlines(x) if unescape else x for x in lines]


def read_generate_output(path, n_expected):
    """Hypotheses from fairseq-generate's ``D-<id>\t<score>\t<text>`` lines, in id (= test file)
    order.  fairseq sorts by length, so the order must be restored before scoring."""
    hyps = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("D-"):
                    head, _, rest = line.rstrip("\n").partition("\t")
                    _, _, text = rest.partition("\t")
                    hyps[int(head[2:])] = text
    except OSError as e:
        raise ValueError(os_error(e)) from None
    missing = [i for i in range(n_expected) if i not in hyps]
    if missing or len(hyps) != n_expected:
        raise ValueError(f"{path}: {len(hyps)} hypotheses (D- lines) for {n_expected} references; "
                         f"missing ids {missing[:10]}")
    return [hyps[i] for i in range(n_expected)]


def _write_json(path, scores):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(scores, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read_inputs(args):
    refs = _read(args.ref, not args.no_unescape)
    if args.from_generate:
        hyps = read_generate_output(args.hyp, len(refs))
        if args.write_hyp:
            with open(args.write_hyp, "w", encoding="utf-8") as f:
                f.write("".join(h + "\n" for h in hyps))
        hyps = [unescape_newlines(h) if not args.no_unescape else h for h in hyps]
    else:
        hyps = _read(args.hyp, not args.no_unescape)
    if len(hyps) != len(refs):
        raise ValueError(f"line counts differ: {args.hyp} has {len(hyps)} lines, {args.ref} has {len(refs)}")
    return hyps, refs


def _locate_model(args):
    """(folder, layer) of the BERTScore model, or None when it is skipped (said in one line)."""
    from ..metrics import generation as G

    if args.no_bertscore:
        return None
    try:
        return G.locate_bertscore_model(args.bertscore_model, args.bertscore_layers)
    except G.BertScoreUnavailable as e:
        if args.require_bertscore:
            raise ValueError(f"BERTScore model not available: {e}") from None
        print(f"biobart-score: BERTScore skipped: {e} (--no-bertscore silences this)", file=sys.stderr)
        return None


def _score(args):
    from ..metrics import generation as G

    hyps, refs = _read_inputs(args)
    located = _locate_model(args)
    scores = G.lexical_scores(hyps, refs)
    scores["scales"] = {k: v for k, v in G.SCALES.items() if k in scores}
    if args.output:
        _write_json(args.output, scores)
    if located:
        try:
            scores["bertscore_f1"] = G.bertscore(hyps, refs, *located, device=args.device)
        except Exception as e:  # a broken model folder or out of memory: ROUGE/BLEU stay written
            kept = f"; ROUGE/BLEU are in {args.output}" if args.output else ""
            raise ValueError(f"BERTScore with {located[0]} failed: {type(e).__name__}: {e}{kept}") from None
        scores["bertscore_model"] = args.bertscore_model
        scores["scales"]["bertscore_f1"] = G.SCALES["bertscore_f1"]
        if args.output:
            _write_json(args.output, scores)
    return hyps, scores


def main(argv=None):
    args = parse_args(argv)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # bert-score imports it; its debug log is noise
    try:
        hyps, scores = _score(args)
    except (ValueError, OSError) as e:
        return errors.fail("biobart-score", str(e))
    empty = sum(1 for h in hyps if not h.strip())
    if empty:
        print(f"biobart-score: warning: {empty} empty hypothesis line(s) in {args.hyp}", file=sys.stderr)
    if args.json:
        print(json.dumps(scores, sort_keys=True))
    else:
        names = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum"),
                 ("bleu", "BLEU"), ("bertscore_f1", "BERTScore-F1")]
        for key, name in names:
            if key in scores:
                print(f"{name:13s} {scores[key]:.4f}" if key == "bertscore_f1" else f"{name:13s} {scores[key]:.2f}")
        print(f"{'examples':13s} {scores['n']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
