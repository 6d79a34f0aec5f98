"""biobart-fill-mask: fill the <mask> in sentences with a trained biomed_denoising model."""

import argparse
import os
import sys

from .. import errors


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="biobart-fill-mask",
        description="Print the top-k fillings of the <mask> token(s) in each sentence, using a "
        "checkpoint trained with --task biomed_denoising (or any BART denoising checkpoint).",
    )
    p.add_argument("sentences", nargs="+", help="sentences containing <mask>, e.g. 'Aspirin inhibits <mask> aggregation.'")
    p.add_argument("--checkpoint", required=True, help="path to the checkpoint file (e.g. ckpt/checkpoint_best.pt)")
    p.add_argument("--data", required=True, help="binarized data folder with dict.txt and bpe.json (from biobart-binarize)")
    p.add_argument("--topk", type=int, default=3, help="fillings to print per sentence (default: %(default)s)")
    p.add_argument("--beam", type=int, default=None, help="beam size (default: topk)")
    p.add_argument(
        "--full", action="store_true",
        help="print whole hypotheses; by default each is cut to as many sentences as its input has "
        "(a model pretrained on whole abstracts tends to go on writing the abstract)",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    bad = [s for s in args.sentences if "<mask>" not in s]
    if bad:
        return errors.fail("biobart-fill-mask", f"no <mask> in: {bad[0]!r}")
    from biobart_fairseq import from_pretrained

    try:
        hub = from_pretrained(
            os.path.dirname(os.path.abspath(args.checkpoint)), os.path.basename(args.checkpoint), data_dir=args.data
        )
    except (FileNotFoundError, ValueError) as e:
        return errors.fail("biobart-fill-mask", str(e))
    from biobart_fairseq.data.sentences import split_sentences

    results = hub.fill_mask(args.sentences, topk=args.topk, beam=args.beam or max(args.topk, 1))
    for sentence, fills in zip(args.sentences, results):
        print(sentence)
        n = len(split_sentences(sentence))
        for text, score in fills:
            if not args.full:
                text = " ".join(split_sentences(text)[:n])
            print(f"  {float(score):8.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
