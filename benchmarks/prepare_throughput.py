"""Throughput and memory of ``biobart-prepare-pubmed``.

Input is the real PubMed sample in ``../shared/data/pubmed_xml`` (four exports, 3.9 MB).
That is too little to time a multi-process run, so the files are replicated into a temporary
directory (``--copies`` times each) with every PMID shifted by a per-copy offset, so the copies
are distinct articles and the whole pipeline (parse, sentence-split, de-duplicate, write) does
the work it would do on that many real files.  All runs use the same input; a run's figure is
input bytes over the wall time of ``main()`` (the interpreter start is not counted) and over
the CPU time of the process and its workers.  "MB per CPU-second" is the per-core throughput,
and unlike wall time it does not drop when other programs share the cores; the 1 -> N worker
scaling needs idle cores, so the load average is printed next to it.

Runs, in one process, on the same files:

* ``rules``: the pipeline as shipped, ``--workers 1`` and ``--workers N``, and with the
  same files gzipped (MB still counted as XML bytes, decompression included);
* ``pysbd``: the same with ``--splitter pysbd`` (pysbd + fixes, the splitter used before);
* ``reader only``: :class:`PubmedXMLReader` over the files, no splitting or writing (the
  ceiling the rest is measured against).

Memory: version resolution keeps flat arrays for every record of the run; their peak is
measured with ``tracemalloc`` on ``--memory-records`` synthetic records (PMIDs with 10 %
repeats and 1 % deletions) and projected to 36 M PMIDs (a baseline plus its updates).
Workers hold one file's per-record arrays, not text, so their memory does not grow with the
corpus; their peak RSS is printed too::

    python benchmarks/prepare_throughput.py [--copies 8] [--workers N] [--memory-records 2000000]
"""

import argparse
import gzip
import os
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from biobart_fairseq.cli import prepare_pubmed
from biobart_fairseq.data import pubmed_prepare
from biobart_fairseq.data.pubmed_xml import PubmedXMLReader

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/pubmed_xml"
PMID = re.compile(rb"(<PMID[^>]*>)(\d+)(</PMID>)")
FULL_SCALE_PMIDS = 36_000_000


def replicate(sources, target: Path, copies: int):
    """Write ``copies`` copies of each source, PMIDs offset by 10**9 * copy number."""
    paths = []
    for copy in range(copies):
        offset = copy * 10**9

        def shift(match, offset=offset):
            return match.group(1) + str(int(match.group(2)) + offset).encode() + match.group(3)

        for source in sources:
            path = target / f"copy{copy:02d}_{source.name}"
            path.write_bytes(PMID.sub(shift, source.read_bytes()))
            paths.append(path)
    return paths


def cpu_seconds():
    """CPU time of this process, and of its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def timed(function):
    """(wall s, CPU s of this process, CPU s of workers, load average before)."""
    load = os.getloadavg()[0]
    wall, (own, children) = time.perf_counter(), cpu_seconds()
    function()
    own_after, children_after = cpu_seconds()
    return time.perf_counter() - wall, own_after - own, children_after - children, load


def prepare(paths, out: Path, workers: int, splitter: str):
    def run():
        code = prepare_pubmed.main(
            [str(p) for p in paths] + ["-o", str(out), "--workers", str(workers), "--no-progress",
                                       "--splitter", splitter]
        )
        if code != 0:
            raise SystemExit(f"prepare exited with {code}")

    return run


def read_only(paths):
    def run():
        for path in paths:
            for _ in PubmedXMLReader(path):
                pass

    return run


def resolution_bytes_per_record(records: int) -> float:
    """Peak bytes per record of step 2 (the arrays and one stable sort), by tracemalloc."""
    rng = np.random.default_rng(0)
    pmids = rng.permutation(records).astype(np.int64) + 1
    repeats = rng.choice(records, records // 10, replace=False)
    pmids[repeats] = pmids[rng.choice(records, len(repeats))]
    kinds = np.where(rng.random(records) < 0.01, pubmed_prepare._DELETION, pubmed_prepare._ABSTRACT).astype(np.int8)
    tracemalloc.start()
    codes = pmids.copy()  # what _global_codes hands over
    kinds_copy = kinds.copy()
    write, _, _ = pubmed_prepare._winning_records(codes, kinds_copy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=8, help="copies of each sample file (default 8)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="workers of the parallel run (default: all CPUs)"
    )
    parser.add_argument("--memory-records", type=int, default=2_000_000,
                        help="synthetic records for the memory measurement (default 2,000,000)")
    parser.add_argument("--skip-pysbd", action="store_true", help="leave out the (slow) pysbd baseline")
    args = parser.parse_args()
    sources = sorted(SAMPLE.glob("*.xml"))
    if not sources:
        print(f"no PubMed XML sample found in {SAMPLE}", file=sys.stderr)
        return 1
    print(f"machine: os.cpu_count() = {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = replicate(sources, tmp, args.copies)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        gzipped = []
        for path in paths:  # the same files gzipped, as NLM ships them (MB/s still counts XML)
            gzipped.append(path.with_name(path.name + ".gz"))
            gzipped[-1].write_bytes(gzip.compress(path.read_bytes(), compresslevel=6))
        print(
            f"input: {len(sources)} sample files from {SAMPLE} replicated x{args.copies} "
            f"(PMIDs offset per copy) = {len(paths)} files, {megabytes:.1f} MB of XML"
        )
        runs = [("reader only", 1, read_only(paths))]
        if not args.skip_pysbd:
            runs.append(("pysbd (before)", 1, prepare(paths, tmp / "pysbd", 1, "pysbd")))
        runs.append(("rules", 1, prepare(paths, tmp / "out1", 1, "rules")))
        runs.append(("rules, .xml.gz", 1, prepare(gzipped, tmp / "outgz", 1, "rules")))
        if args.workers > 1:
            runs.append(("rules", args.workers, prepare(paths, tmp / f"out{args.workers}", args.workers, "rules")))
        print(f"{'run':16s} {'workers':>7s} {'wall s':>7s} {'MB/s':>7s} {'CPU s':>7s} {'MB/CPU-s':>9s} {'load':>5s}")
        figures = {}
        for name, workers, run in runs:
            wall, own, children, load = timed(run)
            cpu = own + children
            figures[name, workers] = (wall, cpu, own, children)
            print(f"{name:16s} {workers:7d} {wall:7.2f} {megabytes / wall:7.2f} {cpu:7.2f} {megabytes / cpu:9.2f} {load:5.1f}")
        per_core = megabytes / figures["rules", 1][1]
        if ("pysbd (before)", 1) in figures:
            before = megabytes / figures["pysbd (before)", 1][1]
            print(f"per core: {per_core:.1f} MB/CPU-s, x{per_core / before:.1f} the pysbd pipeline ({before:.2f})")
        if args.workers > 1:
            wall1, wall_n = figures["rules", 1][0], figures["rules", args.workers][0]
            same = all(
                (tmp / "out1" / name).read_bytes() == (tmp / f"out{args.workers}" / name).read_bytes()
                for name in ("train.txt", "valid.txt", "train.pmids", "valid.pmids")
            )
            print(
                f"1 -> {args.workers} workers: x{wall1 / wall_n:.2f} wall-clock speed-up = "
                f"{wall1 / wall_n / args.workers:.2f} of linear; identical output: {same}"
            )
            # The same from CPU time, which other programs on the machine do not distort: the
            # main process's part is serial (dispatch, version resolution, writing), the
            # workers' part runs N-wide (files are handed out largest first).
            _, _, serial, parallel = figures["rules", args.workers]
            bound = (serial + parallel) / (serial + parallel / args.workers)
            print(
                f"  from CPU time: serial {serial:.2f} s + parallel {parallel:.2f} s -> at most "
                f"x{bound:.2f} on {args.workers} idle cores = {bound / args.workers:.2f} of linear"
            )
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: main process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
              f"largest worker {worker_rss:.0f} MiB (counting the imported libraries, shared after fork)")
    per_record = resolution_bytes_per_record(args.memory_records)
    print(
        f"version resolution: {per_record:.1f} bytes per record at the peak ({args.memory_records:,} records); "
        f"{FULL_SCALE_PMIDS / 1e6:.0f} M PMIDs -> {per_record * FULL_SCALE_PMIDS / 2**30:.2f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
