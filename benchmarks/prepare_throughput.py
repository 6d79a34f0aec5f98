"""Throughput of ``biobart-prepare-pubmed``: MB of XML per second, 1 worker vs all workers.

Input is the real PubMed sample in ``../shared/data/pubmed_xml`` (four exports, about 4 MB).
That is too little to time a multi-process run, so the files are replicated into a temporary
directory (``--copies`` times each) with every PMID shifted by a per-copy offset, so the copies
are distinct articles and the whole pipeline (parse, sentence-split, de-duplicate, write) does
the work it would do on that many real files.  Both runs use the same input; the figure
reported is input bytes / wall time of ``main()`` (the interpreter start is not counted)::

    python benchmarks/prepare_throughput.py [--copies 4] [--workers N]
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from biobart_fairseq.cli.prepare_pubmed import main as prepare

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/pubmed_xml"
PMID = re.compile(rb"(<PMID[^>]*>)(\d+)(</PMID>)")


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


def timed_run(paths, out: Path, workers: int) -> float:
    start = time.perf_counter()
    code = prepare([str(p) for p in paths] + ["-o", str(out), "--workers", str(workers), "--no-progress"])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"prepare exited with {code}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of each sample file (default 4)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="workers of the parallel run (default: all CPUs)"
    )
    args = parser.parse_args()
    sources = sorted(SAMPLE.glob("*.xml"))
    if not sources:
        print(f"no PubMed XML sample found in {SAMPLE}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = replicate(sources, tmp, args.copies)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"input: {len(sources)} sample files from {SAMPLE} replicated x{args.copies} "
            f"(PMIDs offset per copy) = {len(paths)} files, {megabytes:.1f} MB"
        )
        results = {}
        for workers in (1, args.workers):
            seconds = timed_run(paths, tmp / f"out{workers}", workers)
            results[workers] = seconds
            print(f"--workers {workers:<3d} {seconds:6.2f} s  {megabytes / seconds:6.2f} MB/s")
        same = all(
            (tmp / "out1" / name).read_bytes() == (tmp / f"out{args.workers}" / name).read_bytes()
            for name in ("train.txt", "valid.txt")
        )
        print(
            f"speed-up with {args.workers} workers: x{results[1] / results[args.workers]:.2f} "
            f"(os.cpu_count() = {os.cpu_count()}); identical output: {same}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
