"""PubMed/MEDLINE XML -> fairseq document-format text: the work behind ``biobart-prepare-pubmed``
(:mod:`biobart_fairseq.cli.prepare_pubmed` parses the command line, draws the bars and writes
the report).

Pipeline
--------
1. **Parse, one process per file** (``--workers``, a ``multiprocessing.Pool``).  Each worker
   streams its file with :class:`~biobart_fairseq.data.pubmed_xml.PubmedXMLReader`, splits
   the abstracts into sentences (:mod:`biobart_fairseq.data.sentences`) and writes a shard,
   ``OUT_DIR/.tmp/NNNNNN.*``, for input file number NNNNNN:

   * ``.txt``: the document (lines + ``\\n`` each) of every article with an abstract, in
     file order, as UTF-8 bytes, ready to be copied to the output unchanged;
   * ``.idx``: one entry per record (article, article without abstract, deleted PMID): the
     PMID as a number, the kind, the byte length of its document, and the first 8 bytes of
     the SHA-1 of the PMID (for the validation split);
   * ``.json``, written last: counts, errors and the identity of the input file (path, size,
     modification time) and of the splitter.  Its presence marks the shard complete.

   Only the shard's counts travel back through the pool's pipe, never the text.
2. **Resolve versions** (main process, shards in command-line order).  The command-line
   order is taken as chronological (baseline first, then updates), so a later version of a
   PMID replaces an earlier one, and a ``DeleteCitation`` removes the version read before it
   (from an earlier file, or earlier in the same file); a version read after the deletion is
   kept again.  A later version *without* an abstract also replaces an earlier one with an
   abstract, so the PMID is then not written.  Memory: the PMID and kind of every record in
   flat arrays, resolved by one stable sort (see ``benchmarks/prepare_throughput.py`` for the
   measured bytes per record); no text is held.
3. **Write** ``train.txt`` and ``valid.txt`` (fairseq's document format: one sentence per
   line, a blank line between documents, the title as the first line of its document) in
   input-file order, then position in the file, of each PMID's winning version, by copying
   byte ranges of the shards.  Next to them, ``train.pmids`` and ``valid.pmids`` give the
   PMID of each document, one per line in the same order.

Resuming
--------
An interrupted run (Ctrl-C, SIGKILL, a lost node) started again with the same ``-o`` keeps
every complete shard whose input file is unchanged and parses only the others; the output is
byte-identical to that of an uninterrupted run, because a shard depends only on its input
file and the splitter.  Outputs are written under ``*.partial`` names and renamed only when
complete.  ``.tmp`` is removed after a successful run.

Documents
---------
A document is the title followed by the abstract.  Each ``AbstractText`` part is split into
sentences on its own (a sentence never spans two sections); the ``Label`` of a structured
abstract is kept as plain words in front of the section's first sentence, upper/lower case as
NLM gives it: ``BACKGROUND: In patients with mild asthma, ...``.  Records without abstract
text are skipped and counted (``no_abstract``).  ``PubmedBookArticle`` records (NCBI
Bookshelf chapters, e.g. PDQ summaries) have a title and an abstract like journal articles and
are written the same way; they are counted separately (``book_articles``).

Validation split
----------------
``valid.txt`` holds the K documents whose PMIDs have the smallest SHA-1 digest (of the PMID in
decimal), so the split depends only on the set of surviving PMIDs: not on input order, file
boundaries or ``--workers``.  By default K = 5% of the documents, at least 1 and at most
1000 (none when there is a single document).

Errors
------
A missing, empty, truncated (``.gz``) or malformed file is reported on stderr as
``biobart-prepare-pubmed: skipped FILE:LINE: reason (record N, after PMID P)``, the line and
record where known (biobart_fairseq/errors.py).  Everything parsed
before the break, and every other file, is still written.  Bytes that are not valid UTF-8 are
replaced by U+FFFD and reported with their line and PMID; the file is read on.  All of it is
listed in ``OUT_DIR/report.json`` (``errors``).  Exit status: 0 all inputs clean; 3 some
inputs had errors but the output was written; 2 bad command line.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from array import array
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from .atomic import quiet_worker
from .pubmed_xml import Article, Deletion, PubmedXMLError, PubmedXMLReader
from .sentences import SPLITTERS, split_sentences

AUTO_VALID_FRACTION = 0.05
AUTO_VALID_MAX = 1000
# Bumped whenever the shard layout or the document text changes, so that a resumed run
# never mixes shards of two versions.
SHARD_FORMAT = 3

_WORKER_SLOT = 0  # progress-bar row of this worker process


# --------------------------------------------------------------------------------------------
# documents


def document_lines(article: Article, split: Callable[[str], List[str]] = split_sentences) -> List[str]:
    """The lines (title, then sentences) of ``article``'s document; [] without abstract text."""
    lines: List[str] = []
    for label, text in article.sections:
        sentences = split(text)
        if not sentences:
            continue
        if label:
            sentences[0] = f"{label}: {sentences[0]}"
        lines.extend(sentences)
    if not lines:
        return []
    return ([article.title] if article.title else []) + lines


# --------------------------------------------------------------------------------------------
# PMIDs as numbers

_ABSTRACT, _NO_ABSTRACT, _DELETION = 0, 1, 2
_KIND_CODES = {"A": _ABSTRACT, "N": _NO_ABSTRACT, "D": _DELETION}


def _numeric_pmid(pmid: str) -> Optional[int]:
    """The PMID as an int64 when that loses nothing (decimal, no leading zero), else None."""
    if pmid.isdigit() and len(pmid) < 19 and (pmid[0] != "0" or pmid == "0") and pmid.isascii():
        return int(pmid)
    return None


class _PmidCodes:
    """PMID string -> int64 code: the number itself (PMIDs are decimal numbers); anything
    else gets a negative code of its own, so it still takes part in version resolution."""

    def __init__(self):
        self.other: Dict[str, int] = {}
        self.other_names: List[str] = []

    def __call__(self, pmid: str) -> int:
        number = _numeric_pmid(pmid)
        if number is not None:
            return number
        code = self.other.get(pmid)
        if code is None:
            self.other_names.append(pmid)
            code = self.other[pmid] = -len(self.other_names)
        return code

    def text(self, code: int) -> str:
        return str(code) if code >= 0 else self.other_names[-code - 1]


def _sha1(pmid: str) -> bytes:
    return hashlib.sha1(pmid.encode("utf-8")).digest()


def _sha1_prefix(pmid: str) -> int:
    """The first 8 bytes of the PMID's SHA-1 as an unsigned number (orders like the digest)."""
    return int.from_bytes(_sha1(pmid)[:8], "big")


# --------------------------------------------------------------------------------------------
# step 1: one worker per file, one shard per file


def _init_worker(slots) -> None:
    global _WORKER_SLOT
    _WORKER_SLOT = slots.get()


def _error(path: str, line: Optional[int], record: Optional[str], message: str) -> dict:
    """One error of a file: its line (None: the whole file), the record, what went wrong."""
    return {"file": path, "line": line, "record": record, "message": message}


def file_identity(path: str, splitter: str) -> dict:
    """What a shard depends on; a resumed run reuses a shard only if this is unchanged."""
    try:
        stat = os.stat(path)
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size = mtime = None
    return {"input": os.path.abspath(path), "size": size, "mtime_ns": mtime, "splitter": splitter,
            "format": SHARD_FORMAT}


class _ShardWriter:
    """Collects one file's records: document bytes to ``.txt``, per-record arrays to ``.idx``."""

    def __init__(self, text_handle):
        self.text = text_handle
        # array typecodes matching _INDEX_LAYOUT (native byte order: little-endian on x86/ARM)
        self.codes, self.kinds, self.lengths, self.hashes = array("q"), array("b"), array("q"), array("Q")
        self.pmids = _PmidCodes()  # this shard's codes: PMIDs that are not numbers get -1, -2, ...

    @property
    def other_pmids(self) -> List[str]:
        return self.pmids.other_names

    def add(self, kind: int, pmid: str, document: bytes = b"") -> None:
        self.codes.append(self.pmids(pmid))
        self.kinds.append(kind)
        self.lengths.append(len(document))
        self.hashes.append(_sha1_prefix(pmid) if kind == _ABSTRACT else 0)
        if document:
            self.text.write(document)

    def save(self, path: str) -> None:
        """The arrays back to back after their length (see :func:`_load_shard`): raw
        little-endian numbers load in one read each, much faster than ``.npz``."""
        with open(path, "wb") as handle:
            handle.write(len(self.codes).to_bytes(8, "little"))
            for name, _ in _INDEX_LAYOUT:
                handle.write(getattr(self, name).tobytes())


def _read_file(reader: PubmedXMLReader, shard: _ShardWriter, split, counts: dict, errors: list) -> None:
    path = reader.path
    try:
        for item in reader:
            if isinstance(item, Deletion):
                for pmid in item.pmids:
                    shard.add(_DELETION, pmid)
                counts["delete_citations"] += len(item.pmids)
                continue
            counts["book_articles" if item.book else "articles"] += 1
            if not item.pmid:
                errors.append(_error(path, item.line, f"record {item.index}", "record without PMID skipped"))
                continue
            lines = document_lines(item, split)
            if lines:
                shard.add(_ABSTRACT, item.pmid, ("\n".join(lines) + "\n").encode("utf-8"))
            else:
                counts["no_abstract"] += 1
                shard.add(_NO_ABSTRACT, item.pmid)
    except PubmedXMLError as failure:
        errors.append(_error(path, failure.line, failure.record, failure.message))
    errors.extend(_error(path, issue.line, issue.record, issue.message) for issue in reader.issues)


def process_file(task: Tuple[int, str, str, bool, str]) -> dict:
    """Parse one input file into its shard (module docstring, step 1); return its summary.

    Every shard file is written under a ``.partial`` name and renamed when complete, the
    ``.json`` last, so a shard whose ``.json`` exists is whole."""
    index, path, shard_dir, show_progress, splitter = task
    base = os.path.join(shard_dir, f"{index:06d}")
    identity = file_identity(path, splitter)
    counts = {"articles": 0, "book_articles": 0, "no_abstract": 0, "delete_citations": 0}
    errors: List[dict] = []
    bar = tqdm(
        total=identity["size"],
        desc=os.path.basename(path),
        unit="B",
        unit_scale=True,
        position=_WORKER_SLOT + 1,  # row 0 is the main process's bar over all files
        leave=False,
        # None = automatic: no bar when stderr is not a terminal (logs, CI).
        disable=None if show_progress else True,
        file=sys.stderr,
    )
    reader = PubmedXMLReader(path, progress=bar.update)
    with bar, open(base + ".txt.partial", "wb") as text:
        shard = _ShardWriter(text)
        _read_file(reader, shard, SPLITTERS[splitter], counts, errors)
    shard.save(base + ".idx.partial")
    result = {**identity, "file": path, "records": reader.records, **counts, "errors": errors,
              "other_pmids": shard.other_pmids}
    os.replace(base + ".txt.partial", base + ".txt")
    os.replace(base + ".idx.partial", base + ".idx")
    with open(base + ".json.partial", "w", encoding="utf-8") as handle:
        json.dump(result, handle, ensure_ascii=False)
    os.replace(base + ".json.partial", base + ".json")
    return {**result, "index": index, "resumed": False}


def _finished_shard(index: int, path: str, shard_dir: Path, splitter: str) -> Optional[dict]:
    """The summary of a complete shard of an earlier run of the same file, else None."""
    summary = shard_dir / f"{index:06d}.json"
    try:
        result = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    identity = file_identity(path, splitter)
    if any(result.get(key) != value for key, value in identity.items()) or identity["size"] is None:
        return None
    if not all((shard_dir / f"{index:06d}.{ext}").is_file() for ext in ("txt", "idx")):
        return None
    return {**result, "file": path, "index": index, "resumed": True}


def run_workers(paths: Sequence[str], shard_dir: Path, workers: int, show_progress: bool,
                 splitter: str = "rules") -> Iterator[dict]:
    """Summaries of the shards of ``paths`` as they complete (any order); finished shards of
    an earlier run are reused, the others are parsed by ``workers`` processes."""
    tasks = []
    for index, path in enumerate(paths):
        done = _finished_shard(index, path, shard_dir, splitter)
        if done is not None:
            yield done
        else:
            tasks.append((index, path, str(shard_dir), show_progress, splitter))
    workers = max(1, min(workers, len(tasks)))
    if len(tasks) == 0:
        return
    if workers == 1:
        yield from map(process_file, tasks)
        return
    slots = multiprocessing.Queue()
    for slot in range(workers):
        slots.put(slot)
    # Largest files first, so that one big file does not start last and run alone.
    tasks.sort(key=lambda task: -(file_identity(task[1], splitter)["size"] or 0))
    with multiprocessing.Pool(workers, initializer=quiet_worker, initargs=(_init_worker, slots)) as pool:
        yield from pool.imap_unordered(process_file, tasks, chunksize=1)


# --------------------------------------------------------------------------------------------
# step 2 and 3: resolve versions, write


def _winning_records(codes: np.ndarray, kinds: np.ndarray) -> Tuple[np.ndarray, int, int]:
    """Step 2 on whole arrays (one entry per shard record, in reading order).

    A stable sort groups each PMID's records in reading order; a record "leaves the PMID
    present" unless it is a deletion.  A version read while the PMID is present replaces it
    (a duplicate); a deletion read while it is present deletes it; the last record of each
    PMID decides, and only an article with an abstract is written.
    Returns (mask of the records to write, duplicates, deletions that removed something)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    sorted_kinds = kinds[order]
    same_as_previous = np.zeros(len(codes), dtype=bool)
    same_as_previous[1:] = sorted_codes[1:] == sorted_codes[:-1]
    del sorted_codes
    present = sorted_kinds != _DELETION
    was_present = np.zeros(len(codes), dtype=bool)
    was_present[1:] = present[:-1]
    was_present &= same_as_previous
    duplicates = int(np.count_nonzero(present & was_present))
    deleted = int(np.count_nonzero(~present & was_present))
    last_of_pmid = np.ones(len(codes), dtype=bool)
    last_of_pmid[:-1] = ~same_as_previous[1:]
    write = np.zeros(len(codes), dtype=bool)
    write[order[last_of_pmid & (sorted_kinds == _ABSTRACT)]] = True
    return write, duplicates, deleted


def auto_valid_size(documents: int) -> int:
    """Default size of the validation split (see the module docstring)."""
    if documents < 2:
        return 0
    return min(AUTO_VALID_MAX, max(1, round(AUTO_VALID_FRACTION * documents)))


# The per-record arrays of a shard's ``.idx`` file, in file order (after the record count).
_INDEX_LAYOUT = (("codes", np.dtype("<i8")), ("lengths", np.dtype("<i8")), ("hashes", np.dtype("<u8")),
                 ("kinds", np.dtype("i1")))


def _load_shard(shard_dir: Path, index: int, keys: Sequence[str]) -> List[np.ndarray]:
    path = shard_dir / f"{index:06d}.idx"
    with open(path, "rb") as handle:
        count = int.from_bytes(handle.read(8), "little")
    arrays, offset = {}, 8
    for name, dtype in _INDEX_LAYOUT:
        if name in keys:
            arrays[name] = np.fromfile(path, dtype=dtype, count=count, offset=offset)
        offset += count * dtype.itemsize
    return [arrays[key] for key in keys]


def _run_wide(shard_codes: np.ndarray, other_pmids: List[str], to_code: _PmidCodes) -> np.ndarray:
    """``shard_codes`` with the shard's own codes of non-numeric PMIDs (-1, -2, ... into
    ``other_pmids``) replaced, in place, by run-wide ones."""
    if other_pmids:
        local = shard_codes < 0
        remap = np.array([to_code(pmid) for pmid in other_pmids], dtype=np.int64)
        shard_codes[local] = remap[-shard_codes[local] - 1]
    return shard_codes


def _global_codes(results: List[dict], shard_dir: Path, to_code: _PmidCodes) -> Tuple[np.ndarray, np.ndarray]:
    """All shards' codes (run-wide, :func:`_run_wide`) and kinds in reading order."""
    codes, kinds = [], []
    for result in results:
        shard_codes, shard_kinds = _load_shard(shard_dir, result["index"], ("codes", "kinds"))
        codes.append(_run_wide(shard_codes, result["other_pmids"], to_code))
        kinds.append(shard_kinds)
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    return np.concatenate(codes), np.concatenate(kinds)


def _valid_codes(results: List[dict], shard_dir: Path, write: np.ndarray, to_code: _PmidCodes,
                 k: int) -> set:
    """Codes of the ``k`` written documents with the smallest SHA-1 of their PMID: the 8-byte
    prefixes stored by the workers select the candidates, full digests settle ties."""
    if k <= 0:
        return set()
    prefixes, codes = [], []
    start = 0
    for result in results:
        shard_hashes, shard_codes = _load_shard(shard_dir, result["index"], ("hashes", "codes"))
        mask = write[start : start + len(shard_codes)]
        start += len(shard_codes)
        prefixes.append(shard_hashes[mask])
        codes.append(_run_wide(shard_codes[mask], result["other_pmids"], to_code))
    prefixes_all, codes_all = np.concatenate(prefixes), np.concatenate(codes)
    kth = np.partition(prefixes_all, k - 1)[k - 1]
    candidates = codes_all[prefixes_all <= kth].tolist()
    return set(sorted(candidates, key=lambda code: _sha1(to_code.text(code)))[:k])


def resolve_and_write(results: List[dict], out_dir: Path, shard_dir: Path, valid_docs: Optional[int]) -> dict:
    """Steps 2 and 3 of the module docstring; ``results`` in input order.  Returns counts."""
    to_code = _PmidCodes()
    codes, kinds = _global_codes(results, shard_dir, to_code)
    write, duplicates, deleted = _winning_records(codes, kinds)
    del kinds
    documents = int(np.count_nonzero(write))
    k = auto_valid_size(documents) if valid_docs is None else min(valid_docs, documents)
    valid = _valid_codes(results, shard_dir, write, to_code, k)
    written = _write_splits(results, out_dir, shard_dir, write, codes, valid, to_code)
    return {"duplicates": duplicates, "deleted": deleted, **written}


def _write_splits(results: List[dict], out_dir: Path, shard_dir: Path, write: np.ndarray, codes: np.ndarray,
                  valid: set, to_code: _PmidCodes) -> Dict[str, int]:
    """Step 3: train/valid ``.txt`` and ``.pmids``, shard by shard; -> documents per split."""
    written = {"train": 0, "valid": 0}
    paths = {f"{split}.{ext}": out_dir / f"{split}.{ext}" for split in written for ext in ("txt", "pmids")}
    partial = {name: path.with_name(path.name + ".partial") for name, path in paths.items()}
    handles = {name: open(partial[name], "wb") for name in paths}
    try:
        start = 0
        for result in results:
            shard_lengths, = _load_shard(shard_dir, result["index"], ("lengths",))
            end = start + len(shard_lengths)
            _copy_documents(shard_dir / f"{result['index']:06d}.txt", shard_lengths, write[start:end],
                            codes[start:end], valid, to_code, handles, written)
            start = end
    finally:
        for handle in handles.values():
            handle.close()
    # Replace the outputs only once all are complete, so an interrupted run never leaves a
    # half-written train.txt in place of a good one.
    for name, path in paths.items():
        os.replace(partial[name], path)
    return written


def _copy_documents(text_path: Path, lengths: np.ndarray, write: np.ndarray, codes: np.ndarray,
                    valid: set, to_code: _PmidCodes, handles: dict, written: dict) -> None:
    """Copy the winning documents of one shard to train/valid (step 3) as byte ranges, joined
    by the blank line between documents.  This runs in the main process while the workers
    are idle, so it avoids per-document Python work beyond one slice; one shard's text (one
    input file's abstracts) is read at a time."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    chosen = np.flatnonzero(write)
    if not len(chosen):
        return
    data = memoryview(text_path.read_bytes())
    chosen_codes = codes[chosen].tolist()
    in_valid = np.array([code in valid for code in chosen_codes], dtype=bool) if valid else np.zeros(len(chosen), bool)
    for split, rows in (("train", np.flatnonzero(~in_valid)), ("valid", np.flatnonzero(in_valid))):
        if not len(rows):
            continue
        documents = [data[start:end] for start, end in zip(starts[chosen[rows]].tolist(), ends[chosen[rows]].tolist())]
        if written[split]:
            handles[f"{split}.txt"].write(b"\n")  # blank line between documents
        handles[f"{split}.txt"].write(b"\n".join(documents))
        pmids = "".join(to_code.text(chosen_codes[row]) + "\n" for row in rows.tolist())
        handles[f"{split}.pmids"].write(pmids.encode("utf-8"))
        written[split] += len(rows)
