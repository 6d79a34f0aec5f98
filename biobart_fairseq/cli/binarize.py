"""biobart-binarize: document-format text -> BPE -> fairseq binary data for pretraining.

Input is what ``biobart-prepare-pubmed`` writes: one sentence per line, a blank line
between documents.  Two BPEs:

* ``--bpe gpt2`` -- the byte-level BPE of BART and BioBART, from local ``encoder.json``,
  ``vocab.bpe`` and the model's ``dict.txt`` (e.g. those written by the HF converter).
  Sentences after the first of a document are encoded with a leading space, so a
  document's ids equal what the HF tokenizer gives for the same text on one line.
* ``--bpe sentencepiece`` -- trains a sentencepiece model on the training text (what the
  demo and tests use), or reuses ``--spm-model``.

Then ``fairseq-preprocess --only-source`` writes ``{train,valid}.{bin,idx}`` and
``dict.txt``.  With ``--shards N`` the documents go round-robin to ``OUT/shard0`` ...
``OUT/shard{N-1}`` instead, each a complete data folder, written by a streaming binarizer whose
memory does not grow with the corpus (see "sharded, streaming binarization" below);
``fairseq-train OUT/shard0:OUT/shard1:...`` then reads shard ``(epoch - 1) % N`` in epoch
``epoch``.  The output folder also gets the BPE files and ``bpe.json``, which the
``biomed_denoising`` task reads for whole-word masking and :func:`biobart_fairseq.from_pretrained`
for encoding text.  Blank lines are kept (they become document separators).
"""

import argparse
import os
import sys
import time

from .. import errors
from ..data import bpe
from ..data.atomic import run_staged
from ..data.bpe import BpeError, add_gpt2_arguments, add_sentencepiece_arguments
# Sharded, streaming binarization (--shards N) is library code: data/shards.py.
from ..data.shards import StreamingIndexedDataset, write_shards  # noqa: F401  (StreamingIndexedDataset: tests)

PROG = "biobart-binarize"


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG,
        description="Apply a BPE to document-format text (one sentence per line, blank line between "
        "documents) and binarize it with fairseq-preprocess --only-source for biomed_denoising.",
    )
    p.add_argument("--train", required=True, help="training text (e.g. OUT/train.txt from biobart-prepare-pubmed)")
    p.add_argument("--valid", help="validation text (e.g. OUT/valid.txt); skipped when absent or empty")
    p.add_argument("-o", "--out-dir", required=True, help="destination folder for the binarized data")
    p.add_argument("--bpe", choices=["sentencepiece", "gpt2"], default="sentencepiece", help="which BPE (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for BPE and fairseq-preprocess (default: all cores)")
    g = p.add_argument_group("sentencepiece")
    add_sentencepiece_arguments(g)
    g.add_argument("--spm-type", choices=["bpe", "unigram"], default="bpe", help="sentencepiece algorithm (default: %(default)s)")
    g.add_argument("--spm-max-sentences", type=int, default=5_000_000, help="sentences sampled to train it (default: %(default)s)")
    add_gpt2_arguments(p.add_argument_group("gpt2 (BART / BioBART vocabulary)"))
    p.add_argument("--keep-bpe-text", action="store_true", help="keep the intermediate BPE text in OUT/bpe-text/")
    p.add_argument("--shards", type=int, metavar="N",
                   help="write OUT/shard0 ... OUT/shard{N-1} (documents round-robin, each a complete fairseq data "
                   "folder with the same dictionary, valid split and bpe.json) for "
                   "fairseq-train OUT/shard0:OUT/shard1:..., which reads one shard per epoch in turn; "
                   "binarizes in constant memory. Without it, one folder via fairseq-preprocess.")
    return p.parse_args(argv)


def fail(msg):
    return errors.fail(PROG, msg)  # exit 2, one line (biobart_fairseq/errors.py)


def log(msg):
    print(f"[binarize] {msg}", file=sys.stderr)


def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    return run_staged(PROG, parse_args(argv), binarize, ("dict.txt", "bpe.json", "shard0"))


def binarize(args):
    problem = check_inputs(args)
    if problem:
        return fail(problem)
    t0 = time.time()
    out = os.path.abspath(args.out_dir)
    workers = max(1, args.workers or 1)
    splits = text_splits(args)
    try:
        with bpe.encoded_text_folder(out, keep=args.keep_bpe_text) as tmp:
            info = bpe.setup_from_args(args, out, args.train, workers, args.spm_type, args.spm_max_sentences, log=log)
            dict_path = encode(args, tmp, splits, workers, info)
            if args.shards:
                done, tail = write_sharded(args, out, tmp, splits, dict_path, workers, info)
            else:
                bpe.preprocess(out, dict_path, {split: os.path.join(tmp, split + ".bpe") for split, _ in splits},
                               workers)
                done, tail = f"wrote {args.final_out_dir} ({args.bpe})", ""
    except (BpeError, bpe.PreprocessError) as e:
        return fail(str(e))
    log(f"{done} in {time.time() - t0:.1f}s{tail}")
    return 0


def check_inputs(args):
    """The message for the first unusable input or flag, else None."""
    for path in [args.train] + ([args.valid] if args.valid else []):
        if not os.path.isfile(path):
            return errors.missing(path)
    if os.path.getsize(args.train) == 0:
        return f"{args.train}: empty training file"
    if args.shards is not None and args.shards < 1:
        return "--shards must be at least 1"
    return None


def text_splits(args):
    """[(split, text file)]: train, and valid unless it is empty (said on stderr)."""
    splits = [("train", args.train)]
    if args.valid and os.path.getsize(args.valid) > 0:
        splits.append(("valid", args.valid))
    elif args.valid:
        print(f"{PROG}: {args.valid} is empty; no valid split written", file=sys.stderr)
    return splits


def encode(args, tmp, splits, workers, info):
    """``tmp/{split}.bpe`` for each split; -> the dict.txt to binarize with."""
    lead = args.bpe == "gpt2"  # a document's later sentences get GPT-2's leading space
    files = [(split, path, os.path.join(tmp, split + ".bpe")) for split, path in splits]
    # only a new sentencepiece dictionary is ordered by counts; GPT-2's is the model's
    counted = ("train",) if args.bpe == "sentencepiece" else ()
    counts = bpe.encode_files(files, workers, info, lead, counted=counted, log=log)
    return bpe.binarize_dictionary(info, counts, args.dict, tmp)


def write_sharded(args, out, tmp, splits, dict_path, workers, info):
    """``--shards N``: OUT/shard0 ... (data/shards.py); -> the closing message's two parts."""
    shards = write_shards(out, tmp, splits, dict_path, args.shards, workers, info)
    shards = [os.path.join(args.final_out_dir, os.path.basename(s)) for s in shards]
    return f"wrote {len(shards)} shards", f"; train with fairseq-train {':'.join(shards)}"


if __name__ == "__main__":
    sys.exit(main())
