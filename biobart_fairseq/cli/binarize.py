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
import collections
import multiprocessing
import os
import shutil
import struct
import sys
import time

import numpy as np
from tqdm import tqdm

from .. import errors
from ..data import bpe
from ..data.atomic import quiet_worker, run_staged

# The BPE itself (files, bpe.json, the multi-process encoder, sentencepiece, fairseq-preprocess)
# is data/bpe.py's; these names stay importable from here.
from ..data.bpe import (  # noqa: F401
    CHUNK,
    BpeError,
    add_gpt2_arguments,
    add_sentencepiece_arguments,
    bounded_imap,
    encode_file,
    missing_gpt2_arguments,
    train_sentencepiece,
    write_spm_dict,
)


# --- sharded, streaming binarization (--shards N) ------------------------------------------
#
# Peak memory does not grow with the corpus: the text is read in chunks of CHUNK lines with at
# most 4 x workers chunks in flight (bounded_imap), workers turn BPE pieces into ids, and the
# main process appends each document's ids to its shard's .bin and the item sizes to a side
# file, from which the .idx is assembled in fixed-size blocks at the end.  (fairseq-preprocess,
# used without --shards, keeps every item's size and pointer in Python lists: ~70 bytes per
# line, tens of GB for all of PubMed's sentence lines.)

_IDS = None  # (symbol -> id, unk, eos) of this worker process
_IDX_MAGIC = b"MMIDIDX\x00\x00"  # fairseq.data.indexed_dataset.MMapIndexedDataset.Index
_IDX_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.uint32): 9, np.dtype(np.int64): 5}
_IDX_BLOCK = 1 << 18  # items per block when assembling the index (~7 MB of temporaries)


def _init_ids(dict_path):
    global _IDS
    from fairseq.data import Dictionary

    d = Dictionary.load(dict_path)
    _IDS = (d.indices, d.unk(), d.eos())


def _ids_chunk(lines):
    """Ids of BPE-text lines as fairseq's Dictionary.encode_line gives them (whitespace
    tokens, unknown symbols -> <unk>, </s> appended): (all ids concatenated, size per line)."""
    indices, unk, eos = _IDS
    flat, sizes = [], np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        ids = [indices.get(token, unk) for token in line.split()]
        ids.append(eos)
        flat.extend(ids)
        sizes[i] = len(ids)
    return np.array(flat, dtype=np.int64), sizes, sum(len(line.encode("utf-8")) for line in lines)


class StreamingIndexedDataset:
    """fairseq's mmap indexed dataset (PREFIX.bin + PREFIX.idx, read by
    ``fairseq.data.MMapIndexedDataset``) written item by item in constant memory.

    .idx layout: magic, version 1 (<Q), dtype code (<B), item count (<Q), sizes (<i4 each),
    byte offsets of the items in .bin (<i8 each).  Ids are stored as uint16 when the
    vocabulary fits (fairseq's ``best_fitting_int_dtype``), else uint32."""

    def __init__(self, prefix, vocab_size):
        from fairseq.data.indexed_dataset import best_fitting_int_dtype

        self.prefix = prefix
        self.dtype = np.dtype(best_fitting_int_dtype(vocab_size))
        self.items = 0
        self._data = open(prefix + ".bin", "wb")
        self._sizes = open(prefix + ".sizes.tmp", "wb")

    def add_items(self, ids, sizes):
        """Append items given as their ids concatenated and the size of each."""
        self._data.write(ids.astype(self.dtype).tobytes())
        self._sizes.write(sizes.astype("<i4").tobytes())
        self.items += len(sizes)

    def close(self):
        self._data.close()
        self._sizes.close()
        header = _IDX_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", _IDX_DTYPE_CODES[self.dtype])
        with open(self.prefix + ".idx", "wb") as index, open(self.prefix + ".sizes.tmp", "rb") as sizes:
            index.write(header + struct.pack("<Q", self.items))
            shutil.copyfileobj(sizes, index)
            sizes.seek(0)
            offset = 0
            while True:
                block = np.frombuffer(sizes.read(4 * _IDX_BLOCK), dtype="<i4").astype(np.int64)
                if not len(block):
                    break
                ends = offset + np.cumsum(block * self.dtype.itemsize)
                index.write((ends - block * self.dtype.itemsize).astype("<i8").tobytes())
                offset = int(ends[-1])
        os.remove(self.prefix + ".sizes.tmp")


class _DocumentRouter:
    """Sends whole documents (runs of non-blank lines) round-robin to the shards, with one
    separator item (just </s>, what a blank line becomes) between documents of a shard."""

    def __init__(self, writers, eos):
        self.writers = writers
        self.separator = (np.array([eos], dtype=np.int64), np.array([1], dtype=np.int64))
        self.documents = 0
        self.in_document = False
        self.has_items = [False] * len(writers)

    def add(self, ids, sizes):
        ends = np.cumsum(sizes)
        starts = ends - sizes
        blank = sizes == 1  # a non-blank line has at least one token plus </s>
        line = 0
        for stop in list(np.flatnonzero(blank)) + [len(sizes)]:
            if stop > line:
                self._write(ids[starts[line] : ends[stop - 1]], sizes[line:stop])
            if stop < len(sizes) and self.in_document:
                self.documents += 1
                self.in_document = False
            line = stop + 1

    def _write(self, ids, sizes):
        shard = self.documents % len(self.writers)
        if not self.in_document and self.has_items[shard]:
            self.writers[shard].add_items(*self.separator)
        self.writers[shard].add_items(ids, sizes)
        self.has_items[shard] = True
        self.in_document = True


def binarize_shards(bpe_path, dict_path, prefixes, workers):
    """Binarize a BPE-text file into one dataset per prefix, documents round-robin."""
    from fairseq.data import Dictionary

    d = Dictionary.load(dict_path)
    writers = [StreamingIndexedDataset(prefix, len(d)) for prefix in prefixes]
    router = _DocumentRouter(writers, d.eos())
    with multiprocessing.get_context("fork").Pool(workers, quiet_worker, (_init_ids, dict_path)) as pool, tqdm(
        total=os.path.getsize(bpe_path), unit="B", unit_scale=True, file=sys.stderr,
        desc=f"binarize {os.path.basename(bpe_path)}",
    ) as bar:
        for ids, sizes, nbytes in bounded_imap(pool, _ids_chunk, _line_chunks(bpe_path), 4 * workers):
            router.add(ids, sizes)
            bar.update(nbytes)
    for writer in writers:
        writer.close()
    return router.documents + router.in_document


def _line_chunks(path):
    with open(path, encoding="utf-8") as f:
        chunk = []
        for line in f:
            chunk.append(line)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def write_shards(out, tmp, splits, dict_path, n_shards, workers, bpe_info):
    """OUT/shard0 ... shardN-1, each a fairseq data folder: train documents round-robin, the
    whole valid split, the same dict.txt, BPE files and bpe.json.  Returns the shard folders."""
    from fairseq.data import Dictionary

    shards = [os.path.join(out, f"shard{k}") for k in range(n_shards)]
    for shard in shards:
        os.makedirs(shard, exist_ok=True)
        Dictionary.load(dict_path).save(os.path.join(shard, "dict.txt"))  # as fairseq-preprocess does
        bpe.copy(bpe_info, shard)
    documents = binarize_shards(os.path.join(tmp, "train.bpe"), dict_path,
                                [os.path.join(shard, "train") for shard in shards], workers)
    print(f"[binarize] train: {documents} documents round-robin into {n_shards} shards", file=sys.stderr)
    if len(splits) > 1:
        # fairseq validates on the valid split of the first data path; every shard gets the same one.
        binarize_shards(os.path.join(tmp, "valid.bpe"), dict_path, [os.path.join(shards[0], "valid")], workers)
        for shard in shards[1:]:
            for ext in (".bin", ".idx"):
                shutil.copyfile(os.path.join(shards[0], "valid" + ext), os.path.join(shard, "valid" + ext))
    return shards


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="biobart-binarize",
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
    return errors.fail("biobart-binarize", msg)  # exit 2, one line (biobart_fairseq/errors.py)


def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    return run_staged("biobart-binarize", parse_args(argv), binarize, ("dict.txt", "bpe.json", "shard0"))


def binarize(args):
    for path in [args.train] + ([args.valid] if args.valid else []):
        if not os.path.isfile(path):
            return fail(f"{path}: no such file")
    if os.path.getsize(args.train) == 0:
        return fail(f"{args.train}: empty training file")
    if args.shards is not None and args.shards < 1:
        return fail("--shards must be at least 1")
    out = os.path.abspath(args.out_dir)
    tmp = os.path.join(out, "bpe-text")
    os.makedirs(tmp, exist_ok=True)
    workers = max(1, args.workers or 1)
    t0 = time.time()

    splits = [("train", args.train)]
    if args.valid and os.path.getsize(args.valid) > 0:
        splits.append(("valid", args.valid))
    elif args.valid:
        print(f"biobart-binarize: {args.valid} is empty; no valid split written", file=sys.stderr)

    counts = collections.Counter()
    try:
        bpe_info = bpe.setup_from_args(args, out, args.train, workers, args.spm_type, args.spm_max_sentences,
                                       log=lambda m: print(f"[binarize] {m}", file=sys.stderr))
    except BpeError as e:
        return fail(str(e))
    lead = args.bpe == "gpt2"  # a document's later sentences get GPT-2's leading space

    for split, path in splits:
        n = encode_file(path, os.path.join(tmp, split + ".bpe"), workers, bpe_info, lead,
                        counts if split == "train" else None)
        print(f"[binarize] {split}: {n} lines encoded", file=sys.stderr)

    if args.bpe == "sentencepiece":
        dict_path = os.path.join(tmp, "dict.txt")
        write_spm_dict(bpe_info["model"], counts, dict_path)
    else:
        dict_path = args.dict
    if args.shards:
        shards = write_shards(out, tmp, splits, dict_path, args.shards, workers, bpe_info)
        if not args.keep_bpe_text:
            shutil.rmtree(tmp)
        shards = [os.path.join(args.final_out_dir, os.path.basename(s)) for s in shards]
        print(f"[binarize] wrote {len(shards)} shards in {time.time() - t0:.1f}s; train with "
              f"fairseq-train {':'.join(shards)}", file=sys.stderr)
        return 0

    prefixes = {split: os.path.join(tmp, split + ".bpe") for split, _ in splits}
    try:
        bpe.preprocess(out, dict_path, prefixes, workers)
    except bpe.PreprocessError as e:
        return fail(str(e))

    if not args.keep_bpe_text:
        shutil.rmtree(tmp)
    print(f"[binarize] wrote {args.final_out_dir} ({args.bpe}) in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
