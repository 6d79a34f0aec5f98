"""Start-up time of the biobart-* commands: light start vs importing the registered package.

    python benchmarks/cli_startup.py [--repeat 5]

For each command, the median wall time of ``biobart-<command> --help`` (the console script: the
launcher imports the command without registering the plugin) against two baselines measured in
the same run: a bare ``python -c pass`` and the same ``--help`` after ``import biobart_fairseq``
registers everything (what every command paid before the light start: torch + fairseq).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ["prepare-pubmed", "prepare-seq2seq", "prepare-el", "prepare-ner", "score", "ner-score",
            "tables", "results", "binarize", "fill-mask", "convert", "el-eval"]
MODULE = {"results": "write_results"}


def timed(cmd, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (median reported)")
    args = ap.parse_args()
    bin_dir = Path(sys.executable).parent
    bare = timed([sys.executable, "-c", "pass"], args.repeat)
    print(f"machine: {os.cpu_count()} CPU cores; python -c pass: {bare:.3f} s (median of {args.repeat})")
    print(f"{'command':<24} {'light --help':>12} {'registered':>11} {'speed-up':>9} {'over bare python':>17}")
    for command in COMMANDS:
        light = timed([str(bin_dir / f"biobart-{command}"), "--help"], args.repeat)
        module = MODULE.get(command, command.replace("-", "_"))
        heavy_code = (f"import sys, biobart_fairseq; from biobart_fairseq.cli import {module} as m; "
                      "sys.argv = ['x', '--help']; m.main()")
        heavy = timed([sys.executable, "-c", heavy_code], args.repeat)
        print(f"biobart-{command:<16} {light:>11.3f}s {heavy:>10.3f}s {heavy / light:>8.1f}x {light - bare:>+16.3f}s")


if __name__ == "__main__":
    main()
