"""``biobart-prepare-pubmed``: PubMed/MEDLINE XML -> fairseq document-format text.

::

    biobart-prepare-pubmed pubmed25n0001.xml.gz ... pubmed25n1400.xml.gz -o corpus/ --workers 16

The command line, the progress bars, the messages, ``report.json`` and the exit status; the
pipeline (parse into per-file shards, resolve versions, write) and the shard format are in
:mod:`biobart_fairseq.data.pubmed_prepare`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from tqdm import tqdm

from biobart_fairseq import errors as E
from biobart_fairseq.data.atomic import interrupted
from biobart_fairseq.data.pubmed_prepare import AUTO_VALID_MAX, file_identity, resolve_and_write, run_workers
from biobart_fairseq.data.sentences import SPLITTERS

PROG = "biobart-prepare-pubmed"
EXIT_OK = E.EXIT_OK
EXIT_INPUT_ERRORS = E.EXIT_BAD_RECORDS  # some inputs or records were skipped (biobart_fairseq/errors.py)

DESCRIPTION = (
    "Turn PubMed/MEDLINE XML files (PubmedArticleSet, as in the annual baseline and the "
    "daily update files) into fairseq document-format text for BART denoising "
    "pretraining: one sentence per line, a blank line between documents, each document "
    "the title followed by the abstract. Writes OUT_DIR/train.txt and OUT_DIR/valid.txt, "
    "the PMIDs of their documents (one per line, same order) to train.pmids and "
    "valid.pmids, and counts and errors to OUT_DIR/report.json."
)
EPILOG = (
    "Input order matters: give the files in chronological order (baseline, then updates).\n"
    "A later version of a PMID replaces an earlier one; a DeleteCitation removes the\n"
    "versions read before it. Articles without an abstract are skipped and counted.\n"
    "Structured-abstract labels are kept as 'LABEL: ' before the section's first sentence.\n"
    "PubmedBookArticle records are written like articles and counted as book_articles.\n"
    "\n"
    "Resuming: run the same command again after an interruption; files whose shard in\n"
    "OUT_DIR/.tmp is complete and whose input is unchanged are not parsed again, and the\n"
    "output is byte-identical to an uninterrupted run.\n"
    "\n"
    "exit status:\n"
    f"  {EXIT_OK}  every input was read without error\n"
    f"  {EXIT_INPUT_ERRORS}  some inputs had errors (missing, empty, truncated, malformed,\n"
    "     invalid UTF-8); each is named on stderr as 'skipped FILE:LINE: reason' and in\n"
    "     report.json, and everything readable, including the records before a break,\n"
    "     was written\n"
    "  2  bad command line, or no input usable at all"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="PubMed XML files, plain (.xml) or gzipped (.xml.gz; detected from the content), "
                        "in chronological order.")
    parser.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUT_DIR",
                        help="Directory for the outputs (created if missing; existing outputs are replaced "
                        "only once the new ones are complete). Per-file shards go to OUT_DIR/.tmp while running "
                        "and are reused by a resumed run.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="Number of files parsed in parallel, one process per file (default: the number "
                        "of CPUs, %(default)s here). The output does not depend on it.")
    parser.add_argument("--valid-docs", type=int, default=None, metavar="K",
                        help="Number of documents held out in valid.txt: those whose PMID has the smallest "
                        "SHA-1, so the split is independent of input order and --workers. Default: 5%% of the "
                        f"documents, at least 1 and at most {AUTO_VALID_MAX}. 0 gives an empty valid.txt.")
    parser.add_argument("--splitter", choices=sorted(SPLITTERS), default="rules",
                        help="Sentence splitter: 'rules' (default; boundary F1 0.996 on GENIA's hand-split "
                        "abstracts) or 'pysbd' (pysbd with biomedical fixes: F1 0.985, >100x slower). See "
                        "biobart_fairseq/data/sentences.py and benchmarks/sentence_split.py.")
    parser.add_argument("--no-progress", action="store_true",
                        help="Do not draw progress bars (they are drawn on stderr only when it is a terminal "
                        "anyway).")
    return parser


def _say(message: str) -> None:
    tqdm.write(f"{PROG}: {message}", file=sys.stderr)


def _parse_all(args, shard_dir: Path) -> List[dict]:
    """Step 1 with a bar over all input bytes (files, articles, MB/s); results in input order."""
    sizes = [file_identity(path, args.splitter)["size"] or 0 for path in args.inputs]
    results: List[dict] = []
    bar = tqdm(total=sum(sizes), unit="B", unit_scale=True, desc="PubMed XML", file=sys.stderr,
               disable=None if not args.no_progress else True, position=0)
    with bar:
        articles = 0
        for result in run_workers(args.inputs, shard_dir, args.workers, not args.no_progress, args.splitter):
            results.append(result)  # errors are reported at the end, in input order (bad_records)
            articles += result["articles"] + result["book_articles"]
            bar.set_postfix_str(f"files {len(results)}/{len(sizes)}, articles {articles:,}", refresh=False)
            bar.update(sizes[result["index"]])
    results.sort(key=lambda result: result["index"])
    resumed = sum(result["resumed"] for result in results)
    if resumed:
        _say(f"resumed: {resumed} of {len(results)} files had complete shards from an earlier run")
    return results


def bad_records(results: List[dict]) -> E.BadRecords:
    """Every input's errors in the one form ``FILE:LINE: reason (record N, after PMID P)``."""
    records = E.BadRecords(PROG)
    for result in results:
        for error in result["errors"]:
            record = f" ({error['record']})" if error["record"] else ""
            records.add(error["file"], error.get("line"), error["message"] + record)
    return records


def _write_report(results: List[dict], merged: dict, out_dir: Path, records: E.BadRecords) -> dict:
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
        "bad_records": records.to_json(),
        "per_file": [
            {key: result[key] for key in ("file", "records") + count_keys} | {"errors": len(result["errors"])}
            for result in results
        ],
    }
    report_path = out_dir / "report.json"
    partial = report_path.with_name(report_path.name + ".partial")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, report_path)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outputs are only ever replaced whole; finished shards stay for a resume
        return interrupted(PROG, "outputs left as they were; run the same command again to resume")


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    out_dir: Path = args.output_dir
    shard_dir = out_dir / ".tmp"
    shard_dir.mkdir(parents=True, exist_ok=True)  # kept from an interrupted run: resumed
    results = _parse_all(args, shard_dir)
    merged = resolve_and_write(results, out_dir, shard_dir, args.valid_docs)
    records = bad_records(results)
    report = _write_report(results, merged, out_dir, records)
    shutil.rmtree(shard_dir, ignore_errors=True)
    return _summary(report, out_dir, records)


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.valid_docs is not None and args.valid_docs < 0:
        parser.error("--valid-docs must be 0 or more")
    return args


def _summary(report: dict, out_dir: Path, records: E.BadRecords) -> int:
    """The closing message; -> exit status (biobart_fairseq/errors.py)."""
    _say(
        f"{report['written']} documents written to {out_dir} (train {report['train']}, valid "
        f"{report['valid']}); {report['articles']} articles + {report['book_articles']} book "
        f"articles read from {report['files']} files, {report['no_abstract']} without abstract, "
        f"{report['duplicates']} superseded, {report['deleted']} deleted"
    )
    if report["written"] and not report["train"]:
        _say("warning: every document went to valid.txt; lower --valid-docs")
    if report["errors"] and not report["written"] and report["files_with_errors"] == report["files"]:
        # no input was usable: exit 2, each file's error in the one-line form of unusable input
        for error in records.to_json():
            E.fail(PROG, error)
        return E.EXIT_UNUSABLE
    records.report(out_dir / "report.json")
    return records.status()


if __name__ == "__main__":
    sys.exit(main())
