"""fairseq-train in this process, then one line with the peak memory.

    python benchmarks/train_probe.py DATA --task ... (any fairseq-train arguments)

fairseq logs target tokens/s (``wps``) but not peak memory; running the trainer in-process
lets ``torch.cuda.max_memory_allocated`` see the whole run (on a CPU: the process's peak
resident memory instead, labelled ``host``).  Single-device runs only (fairseq then trains in
the calling process).
"""

import atexit
import resource
import sys

import torch


def _report_peak():
    if torch.cuda.is_available() and "--cpu" not in sys.argv:
        print(f"PEAK_MEM_GIB {torch.cuda.max_memory_allocated() / 2**30:.2f} cuda", flush=True)
    else:  # ru_maxrss is in KiB on Linux
        print(f"PEAK_MEM_GIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} host", flush=True)


if __name__ == "__main__":
    from fairseq_cli.train import cli_main

    atexit.register(_report_peak)
    sys.argv = ["fairseq-train"] + sys.argv[1:]
    cli_main()
