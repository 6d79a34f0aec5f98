"""Second step of seq2seq preparation: BPE + ``fairseq-preprocess`` for the translation task.

``biobart-binarize-seq2seq --data-dir PREP -o DATA_BIN --bpe gpt2
--encoder-json bart/encoder.json --vocab-bpe bart/vocab.bpe --dict bart/dict.txt``

reads ``PREP/{train,valid,test}.{source,target}`` (written by ``biobart-prepare-seq2seq``;
missing splits are skipped) and writes ``DATA_BIN/{split}.source-target.{source,target}.{bin,idx}``
and ``dict.{source,target}.txt`` -- the pretrained model's dictionary on both sides, as BART's
summarization recipe does.  Lines are encoded as they are, without a leading space and
without ``<s>`` (fairseq's BART-CNN convention; the translation task adds ``</s>``).
``--bpe sentencepiece`` trains a small sentencepiece model on the training source+target
instead (tests, models trained from scratch).

``DATA_BIN/stats.json`` says per split how many sources and targets are longer than the model's
positions (``--max-source-positions``/``--max-target-positions``, counted as fairseq reads a
binarized line: BPE tokens + ``</s>``; see :mod:`biobart_fairseq.data.seq2seq_lengths`), and a
split with such examples is named on stderr: ``--truncate-source`` cuts those sources, fairseq
skips those targets in training.
"""

import argparse
import json
import os
import shutil
import sys
import time

from .. import errors
from ..data import bpe as B
from ..data import seq2seq_lengths as L
from ..data.atomic import run_staged

PROG = "biobart-binarize-seq2seq"
SPLITS = ("train", "valid", "test")


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG,
        description="Apply a BPE to {train,valid,test}.{source,target} and binarize them with fairseq-preprocess "
        "for --task translation / biomed_translation.",
    )
    p.add_argument("--data-dir", required=True, help="output folder of biobart-prepare-seq2seq")
    p.add_argument("-o", "--out-dir", required=True, help="destination folder for the binarized data")
    p.add_argument("--bpe", choices=["gpt2", "sentencepiece"], default="gpt2",
                   help="gpt2 = BART/BioBART's byte-level BPE from local files (default); sentencepiece = train one")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for BPE and fairseq-preprocess (default: all cores)")
    B.add_gpt2_arguments(p.add_argument_group("gpt2 (BART / BioBART vocabulary, e.g. from biobart-convert hf-to-fairseq)"))
    g = p.add_argument_group("sentencepiece")
    B.add_sentencepiece_arguments(g)
    g = p.add_argument_group("model positions (what stats.json counts against)")
    g.add_argument("--max-source-positions", type=int, default=1024,
                   help="the model's source positions, as fairseq-train's flag (default: %(default)s, BART's); "
                        "longer sources are counted (--truncate-source cuts them)")
    g.add_argument("--max-target-positions", type=int, default=1024,
                   help="the model's target positions (default: %(default)s); longer targets are counted "
                        "(fairseq skips them in training)")
    p.add_argument("--keep-bpe-text", action="store_true", help="keep the BPE-encoded text in OUT/bpe-text/")
    return p.parse_args(argv)


def fail(msg):
    return errors.fail(PROG, msg)  # exit 2, one line (biobart_fairseq/errors.py)


def log(msg):
    print(f"[binarize-seq2seq] {msg}", file=sys.stderr)


def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    args = parse_args(argv)
    for flag in ("max_source_positions", "max_target_positions"):
        if getattr(args, flag) < 2:
            return fail(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be at least 2 (a token and </s>)")
    return run_staged(PROG, args, binarize, ("dict.source.txt", "bpe.json"))


def binarize(args):
    t0 = time.time()
    splits, problem = find_splits(args.data_dir)
    if problem:
        return fail(problem)
    out = os.path.abspath(args.out_dir)
    workers = max(1, args.workers or 1)
    try:
        with B.encoded_text_folder(out, keep=args.keep_bpe_text) as tmp:
            info = B.setup_from_args(args, out, spm_training_text(args, tmp, splits), workers, log=log)
            files = [(f"{split}.{side}", os.path.join(args.data_dir, f"{split}.{side}"),
                      os.path.join(tmp, f"{split}.{side}")) for split in splits for side in ("source", "target")]
            counts = B.encode_files(files, workers, info, counted=("train.source", "train.target"), log=log)
            write_stats(args, out, tmp, splits)
            dict_path = B.binarize_dictionary(info, counts, args.dict, tmp)
            B.preprocess_splits(out, dict_path, {split: os.path.join(tmp, split) for split in splits}, workers,
                                langs=("source", "target"))
    except (B.BpeError, B.PreprocessError) as e:
        return fail(str(e))
    log(f"wrote {args.final_out_dir} ({args.bpe}; splits: {', '.join(splits)}) in {time.time() - t0:.1f}s")
    return 0


def write_stats(args, out, encoded_dir, splits):
    """``OUT/stats.json``: examples and over-long sources/targets per split; one line per split
    that has some."""
    truncated, examples = L.count_splits(encoded_dir, splits, args.max_source_positions, args.max_target_positions)
    for split in splits:
        line = L.describe(split, truncated[split], examples[split])
        if line:
            log(line)
    stats = {"examples": examples, "truncated": truncated, "lengths": L.LENGTH_UNIT, "bpe": args.bpe}
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")


def find_splits(data_dir):
    """(the splits with both sides, in order; None) or ([], the message of an unusable folder)."""
    splits = []
    for split in SPLITS:
        have = [os.path.isfile(os.path.join(data_dir, f"{split}.{side}")) for side in ("source", "target")]
        if all(have):
            splits.append(split)
        elif any(have):
            return [], f"{data_dir}: {split}.source and {split}.target must both exist"
    if not splits:
        return [], f"{data_dir}: no {{train,valid,test}}.{{source,target}} files (run biobart-prepare-seq2seq first)"
    for split in splits:
        n = [_count_lines(os.path.join(data_dir, f"{split}.{side}")) for side in ("source", "target")]
        if n[0] != n[1]:
            return [], f"{data_dir}: {split}.source has {n[0]} lines but {split}.target has {n[1]}"
        if n[0] == 0:
            return [], f"{data_dir}/{split}.source: empty"
    return splits, None


def _count_lines(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def spm_training_text(args, tmp, splits):
    """The text a new sentencepiece model learns from: both sides of the training pairs, joined
    in ``tmp``; None when no model is trained (GPT-2, --spm-model, no train split)."""
    if args.bpe != "sentencepiece" or args.spm_model or "train" not in splits:
        return None
    joined = os.path.join(tmp, "spm-train.txt")
    with open(joined, "w", encoding="utf-8") as f:
        for side in ("source", "target"):
            with open(os.path.join(args.data_dir, f"train.{side}"), encoding="utf-8") as src:
                shutil.copyfileobj(src, f)
    return joined


if __name__ == "__main__":
    sys.exit(main())
