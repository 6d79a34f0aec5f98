"""``biobart-prepare-pubmed``: PubMed/MEDLINE XML -> fairseq document-format text.

::

    biobart-prepare-pubmed pubmed25n0001.xml.gz ... pubmed25n1400.xml.gz -o corpus/ --workers 16

Pipeline
--------
1. **Parse, one process per file** (``--workers``, a ``multiprocessing.Pool``).  Each worker
   streams its file with :class:`~biobart_fairseq.data.pubmed_xml.PubmedXMLReader`, splits
   the abstracts into sentences (:func:`~biobart_fairseq.data.sentences.split_sentences`) and
   writes every record to a shard ``OUT_DIR/.tmp/NNNNNN.tsv``, one line per record in file
   order::

       A<TAB>pmid<TAB>["title", "sentence", ...]   article with an abstract (JSON list)
       N<TAB>pmid                                   article without an abstract
       D<TAB>pmid                                   PMID listed in a DeleteCitation

   Only the shard path and a few counts travel back through the pool's pipe, never the text.
2. **Resolve versions** (main process, shards in command-line order).  The command-line
   order is taken as chronological (baseline first, then updates), so a later version of a
   PMID replaces an earlier one, and a ``DeleteCitation`` removes the version read before it
   (from an earlier file, or earlier in the same file); a version read after the deletion is
   kept again.  A later version *without* an abstract also replaces an earlier one with an
   abstract, so the PMID is then not written.  Memory: the PMID and kind of every record in
   flat arrays, resolved by one stable sort — ~32 bytes per record at the peak, against
   ~144 per PMID for a Python dict (~40 M records for a full baseline plus updates).
3. **Write** ``train.txt`` and ``valid.txt`` (fairseq's document format: one sentence per
   line, a blank line between documents, the title as the first line of its document) in
   input-file order, then position in the file, of each PMID's winning version.  Next to
   them, ``train.pmids`` and ``valid.pmids`` give the PMID of each document, one per line in
   the same order, so a document can be traced back to its citation.

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
A missing, empty, truncated (``.gz``) or malformed file is reported on stderr with the file
name and, where known, the record (record number and last good PMID).  Everything parsed
before the break, and every other file, is still written.  Bytes that are not valid UTF-8 are
replaced by U+FFFD and reported with their line and PMID; the file is read on.  All of it is
listed in ``OUT_DIR/report.json`` (``errors``).  Exit status: 0 all inputs clean; 3 some
inputs had errors but the output was written; 2 bad command line.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import multiprocessing
import os
import shutil
import sys
from array import array
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from biobart_fairseq.data.pubmed_xml import Article, Deletion, PubmedXMLError, PubmedXMLReader
from biobart_fairseq.data.sentences import split_sentences

PROG = "biobart-prepare-pubmed"
EXIT_OK = 0
EXIT_INPUT_ERRORS = 3
AUTO_VALID_FRACTION = 0.05
AUTO_VALID_MAX = 1000

_WORKER_SLOT = 0  # progress-bar row of this worker process


# --------------------------------------------------------------------------------------------
# documents


def document_lines(article: Article) -> List[str]:
    """The lines (title, then sentences) of ``article``'s document; [] without abstract text."""
    lines: List[str] = []
    for label, text in article.sections:
        sentences = split_sentences(text)
        if not sentences:
            continue
        if label:
            sentences[0] = f"{label}: {sentences[0]}"
        lines.extend(sentences)
    if not lines:
        return []
    return ([article.title] if article.title else []) + lines


# --------------------------------------------------------------------------------------------
# step 1: one worker per file


def _init_worker(slots) -> None:
    global _WORKER_SLOT
    _WORKER_SLOT = slots.get()


def _error(path: str, record: Optional[str], message: str) -> Dict[str, Optional[str]]:
    return {"file": path, "record": record, "message": message}


def process_file(task: Tuple[int, str, str, bool]) -> dict:
    """Parse one input file into a shard; return the shard path, counts and errors."""
    index, path, shard_dir, show_progress = task
    shard = os.path.join(shard_dir, f"{index:06d}.tsv")
    counts = {"articles": 0, "book_articles": 0, "no_abstract": 0, "delete_citations": 0}
    errors: List[dict] = []
    try:
        size: Optional[int] = os.path.getsize(path)
    except OSError:
        size = None
    bar = tqdm(
        total=size,
        desc=os.path.basename(path),
        unit="B",
        unit_scale=True,
        position=_WORKER_SLOT,
        # Bars of parallel workers share the screen; finished ones make room for the next file.
        leave=False,
        # None = automatic: no bar when stderr is not a terminal (logs, CI).
        disable=None if show_progress else True,
        file=sys.stderr,
    )
    reader = PubmedXMLReader(path, progress=bar.update)
    with bar, open(shard, "w", encoding="utf-8", newline="\n") as out:
        try:
            for item in reader:
                if isinstance(item, Deletion):
                    for pmid in item.pmids:
                        out.write(f"D\t{pmid}\n")
                    counts["delete_citations"] += len(item.pmids)
                    continue
                counts["book_articles" if item.book else "articles"] += 1
                if not item.pmid:
                    errors.append(_error(path, f"record {item.index}", "record without PMID skipped"))
                    continue
                lines = document_lines(item)
                if lines:
                    out.write(f"A\t{item.pmid}\t{json.dumps(lines, ensure_ascii=False)}\n")
                else:
                    counts["no_abstract"] += 1
                    out.write(f"N\t{item.pmid}\n")
        except PubmedXMLError as failure:
            errors.append(_error(path, failure.record, failure.message))
        errors.extend(_error(path, issue.record, issue.message) for issue in reader.issues)
    return {"file": path, "shard": shard, "records": reader.records, **counts, "errors": errors}


def _run_workers(paths: Sequence[str], shard_dir: Path, workers: int, show_progress: bool) -> Iterator[dict]:
    """Results of :func:`process_file`, in the order of ``paths`` whatever ``workers`` is."""
    tasks = [(i, p, str(shard_dir), show_progress) for i, p in enumerate(paths)]
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        yield from map(process_file, tasks)
        return
    slots = multiprocessing.Queue()
    for slot in range(workers):
        slots.put(slot)
    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(slots,)) as pool:
        # imap (not imap_unordered) hands results back in input order.
        yield from pool.imap(process_file, tasks, chunksize=1)


# --------------------------------------------------------------------------------------------
# step 2 and 3: resolve versions, write


_ABSTRACT, _NO_ABSTRACT, _DELETION = 0, 1, 2
_KIND_CODES = {"A": _ABSTRACT, "N": _NO_ABSTRACT, "D": _DELETION}


def _shard_records(shard: str) -> Iterator[Tuple[str, str, str]]:
    """(kind, pmid, rest) for each line of a shard."""
    with open(shard, encoding="utf-8") as handle:
        for line in handle:
            kind, pmid, *rest = line.rstrip("\n").split("\t", 2)
            yield kind, pmid, rest[0] if rest else ""


class _PmidCodes:
    """PMID string -> int64 code: the number itself (PMIDs are decimal numbers); anything
    else gets a negative code of its own, so it still takes part in version resolution."""

    def __init__(self):
        self.other: Dict[str, int] = {}
        self.other_names: List[str] = []

    def __call__(self, pmid: str) -> int:
        if pmid.isdigit() and len(pmid) < 19:
            return int(pmid)
        code = self.other.get(pmid)
        if code is None:
            self.other_names.append(pmid)
            code = self.other[pmid] = -len(self.other_names)
        return code

    def text(self, code: int) -> str:
        return str(code) if code >= 0 else self.other_names[-code - 1]


def _sha1(pmid: str) -> bytes:
    return hashlib.sha1(pmid.encode("utf-8")).digest()


def _winning_records(codes: np.ndarray, kinds: np.ndarray) -> Tuple[np.ndarray, int, int]:
    """Step 2 on whole arrays (one entry per shard line, in reading order).

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


def resolve_and_write(results: List[dict], out_dir: Path, valid_docs: Optional[int]) -> dict:
    """Steps 2 and 3 of the module docstring; returns the counts for the report."""
    to_code = _PmidCodes()
    codes, kinds = array("q"), array("b")
    for result in results:
        for kind, pmid, _ in _shard_records(result["shard"]):
            codes.append(to_code(pmid))
            kinds.append(_KIND_CODES[kind])
    codes_np = np.frombuffer(codes, dtype=np.int64) if codes else np.zeros(0, np.int64)
    kinds_np = np.frombuffer(kinds, dtype=np.int8) if kinds else np.zeros(0, np.int8)
    write, duplicates, deleted = _winning_records(codes_np, kinds_np)

    documents = codes_np[write]
    k = auto_valid_size(len(documents)) if valid_docs is None else min(valid_docs, len(documents))
    valid = set(heapq.nsmallest(k, (int(c) for c in documents), key=lambda c: _sha1(to_code.text(c))))
    del documents, codes_np, kinds_np, codes, kinds

    written = {"train": 0, "valid": 0}
    paths = {f"{split}.{ext}": out_dir / f"{split}.{ext}" for split in written for ext in ("txt", "pmids")}
    partial = {name: path.with_name(path.name + ".partial") for name, path in paths.items()}
    handles = {name: open(partial[name], "w", encoding="utf-8", newline="\n") for name in paths}
    try:
        record = 0
        for result in results:
            for kind, pmid, payload in _shard_records(result["shard"]):
                record += 1
                if not write[record - 1]:
                    continue
                split = "valid" if to_code(pmid) in valid else "train"
                text = handles[f"{split}.txt"]
                if written[split]:
                    text.write("\n")  # blank line between documents
                text.write("\n".join(json.loads(payload)) + "\n")
                handles[f"{split}.pmids"].write(f"{pmid}\n")
                written[split] += 1
    finally:
        for handle in handles.values():
            handle.close()
    # Replace the outputs only once all are complete, so an interrupted run never leaves a
    # half-written train.txt in place of a good one.
    for name, path in paths.items():
        os.replace(partial[name], path)
    return {"duplicates": duplicates, "deleted": deleted, **written}


# --------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Turn PubMed/MEDLINE XML files (PubmedArticleSet, as in the annual baseline and the "
            "daily update files) into fairseq document-format text for BART denoising "
            "pretraining: one sentence per line, a blank line between documents, each document "
            "the title followed by the abstract. Writes OUT_DIR/train.txt and OUT_DIR/valid.txt, "
            "the PMIDs of their documents (one per line, same order) to train.pmids and "
            "valid.pmids, and counts and errors to OUT_DIR/report.json."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Input order matters: give the files in chronological order (baseline, then updates).\n"
            "A later version of a PMID replaces an earlier one; a DeleteCitation removes the\n"
            "versions read before it. Articles without an abstract are skipped and counted.\n"
            "Structured-abstract labels are kept as 'LABEL: ' before the section's first sentence.\n"
            "PubmedBookArticle records are written like articles and counted as book_articles.\n"
            "\n"
            "exit status:\n"
            f"  {EXIT_OK}  every input was read without error\n"
            f"  {EXIT_INPUT_ERRORS}  some inputs had errors (missing, empty, truncated, malformed,\n"
            "     invalid UTF-8); they are named on stderr and in report.json, and everything\n"
            "     readable, including the records before a break, was written\n"
            "  2  bad command line"
        ),
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="PubMed XML files, plain (.xml) or gzipped (.xml.gz; detected from the content), "
        "in chronological order.",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        required=True,
        type=Path,
        metavar="OUT_DIR",
        help="Directory for the outputs (created if missing; existing outputs are replaced "
        "only once the new ones are complete). Shards go to OUT_DIR/.tmp while running.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="Number of files parsed in parallel, one process per file (default: the number "
        "of CPUs, %(default)s here). The output does not depend on it.",
    )
    parser.add_argument(
        "--valid-docs",
        type=int,
        default=None,
        metavar="K",
        help="Number of documents held out in valid.txt: those whose PMID has the smallest "
        "SHA-1, so the split is independent of input order and --workers. Default: 5%% of the "
        f"documents, at least 1 and at most {AUTO_VALID_MAX}. 0 gives an empty valid.txt.",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="Do not draw the per-file progress bars (they are drawn on stderr only when it is "
        "a terminal anyway).",
    )
    return parser


def _say(message: str) -> None:
    tqdm.write(f"{PROG}: {message}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.valid_docs is not None and args.valid_docs < 0:
        parser.error("--valid-docs must be 0 or more")

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_dir = out_dir / ".tmp"
    shutil.rmtree(shard_dir, ignore_errors=True)  # leftovers of an interrupted run
    shard_dir.mkdir()
    try:
        results = []
        for result in _run_workers(args.inputs, shard_dir, args.workers, not args.no_progress):
            for error in result["errors"]:
                where = f" [{error['record']}]" if error["record"] else ""
                _say(f"error: {error['file']}{where}: {error['message']}")
            results.append(result)
        merged = resolve_and_write(results, out_dir, args.valid_docs)
    finally:
        shutil.rmtree(shard_dir, ignore_errors=True)

    errors = [error for result in results for error in result["errors"]]
    count_keys = ("articles", "book_articles", "no_abstract", "delete_citations")
    report = {
        "files": len(results),
        "files_with_errors": sum(1 for result in results if result["errors"]),
        **{key: sum(result[key] for result in results) for key in count_keys},
        "duplicates": merged["duplicates"],
        "deleted": merged["deleted"],
        "written": merged["train"] + merged["valid"],
        "train": merged["train"],
        "valid": merged["valid"],
        "errors": errors,
        "per_file": [
            {key: result[key] for key in ("file", "records") + count_keys} | {"errors": len(result["errors"])}
            for result in results
        ],
    }
    report_path = out_dir / "report.json"
    partial = report_path.with_name(report_path.name + ".partial")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, report_path)

    _say(
        f"{report['written']} documents written to {out_dir} (train {report['train']}, valid "
        f"{report['valid']}); {report['articles']} articles + {report['book_articles']} book "
        f"articles read from {report['files']} files, {report['no_abstract']} without abstract, "
        f"{report['duplicates']} superseded, {report['deleted']} deleted"
    )
    if report["written"] and not report["train"]:
        _say("warning: every document went to valid.txt; lower --valid-docs")
    if errors:
        _say(f"{len(errors)} error(s) in {report['files_with_errors']} file(s); see {report_path}")
        return EXIT_INPUT_ERRORS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
