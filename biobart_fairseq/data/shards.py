"""Sharded, streaming binarization (``biobart-binarize --shards N``): documents round-robin into N
complete fairseq data folders, in memory that does not grow with the corpus.
"""

import multiprocessing
import os
import shutil
import struct
import sys

import numpy as np
from tqdm import tqdm

from . import bpe
from .atomic import quiet_worker
from .bpe import CHUNK, bounded_imap


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
