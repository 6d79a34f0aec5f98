"""Documents/s of biobart-annotate on the shared PubMed sample, against the same work through the
two single-step commands (biobart-tag, then biobart-link on its output), measured in one run,
and a projection for all of PubMed.

    python benchmarks/annotate_throughput.py --ner checkpoints/ner_genia-small \\
        --link checkpoints/el_ncbi-small/checkpoint_last.pt [--max-docs 64] [--workers 1 2]

Models: any NER and linking checkpoints (the SMALL=1 recipes: ``SMALL=1 examples/ner_genia/run.sh``,
``SMALL=1 examples/el_ncbi/run.sh``).  Input: the first ``--max-docs`` documents of
../shared/data/pubmed_xml, written once as JSONL so that every measurement reads the same text.

Projection: PubMed has ~36 M abstracts; the time on C cores is 36 M / (rate of one process x
min(C, workers measured scaling)), i.e. the measured per-process rate times the number of
processes a 16-core machine runs (16 / threads per process), assuming linear scaling across
processes (each process decodes whole chunks independently; no shared state).  The GPU figure
is not projected from CPU rates: measure it with --device cuda on a GPU machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PUBMED = REPO.parent / "shared" / "data" / "pubmed_xml"
PUBMED_ABSTRACTS = 36e6


def sample(max_docs, path):
    sys.path.insert(0, str(REPO))
    from biobart_fairseq.inference import formats

    docs = []
    for f in sorted(PUBMED.glob("*.xml")):
        docs += [d for d in formats.read(f) if isinstance(d, formats.Document)]
    formats.write(docs[:max_docs], path, "jsonl")
    return min(len(docs), max_docs)


def timed(cmd):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if res.returncode not in (0, 3):
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout[-2000:]}")
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ner", required=True)
    p.add_argument("--link", required=True, help="linking checkpoint (links every entity)")
    p.add_argument("--max-docs", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = sample(args.max_docs, tmp / "docs.jsonl")
        print(f"machine: {os.cpu_count()} CPU cores; {n} PubMed documents; device {args.device}")
        # baseline: the single-step commands, each loading its model and writing its file
        t_tag = timed(["biobart-tag", str(tmp / "docs.jsonl"), "--model", args.ner, "-o", str(tmp / "tagged.jsonl"),
                       "--quiet"] + (["--gpu"] if args.device != "cpu" else []))
        t_link = timed(["biobart-link", str(tmp / "tagged.jsonl"), "--model", args.link, "-o",
                        str(tmp / "linked.jsonl"), "--quiet"])
        base = n / (t_tag + t_link)
        print(f"biobart-tag + biobart-link: {t_tag:.1f} s + {t_link:.1f} s = {base:.3f} documents/s")
        for w in args.workers:
            out = tmp / f"out{w}"
            t = timed(["biobart-annotate", str(tmp / "docs.jsonl"), "--ner", args.ner, "--link", args.link, "-o",
                       str(out), "--workers", str(w), "--device", args.device, "--chunk-size", "16", "--quiet"])
            rate = json.loads((out / "report.json").read_text())["speed"]["items_per_s"]
            print(f"biobart-annotate --workers {w}: {t:.1f} s wall = {n / t:.3f} documents/s "
                  f"(annotation alone {rate} documents/s), {n / t / base:.2f}x the two commands")
            per_process = (n / t) / w
            days = PUBMED_ABSTRACTS / (per_process * 16) / 86400
            print(f"  projection, all PubMed ({PUBMED_ABSTRACTS:.0f} abstracts) on 16 cores as 16 one-thread "
                  f"processes, linear scaling: {days:.1f} days")


if __name__ == "__main__":
    main()
