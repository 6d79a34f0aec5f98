"""Speed of the GPT-2 BPE at BART's vocabulary size (50,265 entries, tests/bpe50k.py) against
fairseq's own encoder (``fairseq.data.encoders.gpt2_bpe_utils``) in the same run.

Text: MEDIQA-QS as the recipe prepares it (``biobart-prepare-seq2seq --dataset mediqa_qs`` on
the MeQSum workbook + MEDIQA 2021 Task 1 valid/test) and the PubMed sample through
``biobart-prepare-pubmed`` (``../shared/data``).  Figures:

* engine: MB of text per CPU-second of fairseq's ``Encoder.encode`` and of data/bpe.py's
  ``GPT2Encoder.encode_line`` (cold cache: a fresh encoder) on the same lines, one process;
* commands: wall time and MB per CPU-second (process + children) of ``biobart-binarize-seq2seq``
  (MEDIQA-QS) and ``biobart-binarize --bpe gpt2`` (PubMed text), against ONE process running
  fairseq's encoder over the same lines (interpreter start and imports included on both sides);
* PubMed pipeline: the BPE stage (``bpe.encode_files``, one worker) per CPU-second, in MB of
  text and in MB of the XML the text came from, vs the XML stage (``biobart-prepare-pubmed
  --workers 1``) per CPU-second of XML.

    python benchmarks/bpe_throughput.py [--workers N]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
DATA = REPO.parent / "shared" / "data"
BASELINE = """import sys, time
from fairseq.data.encoders.gpt2_bpe_utils import get_encoder
enc = get_encoder(sys.argv[1], sys.argv[2])
with open(sys.argv[3], "w") as out:
    for path in sys.argv[4:]:
        for line in open(path, encoding="utf-8"):
            out.write(" ".join(map(str, enc.encode(line.rstrip("\\n")))) + "\\n")
"""


def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn):
    t, c = time.perf_counter(), cpu()
    fn()
    return time.perf_counter() - t, cpu() - c


def command(cmd):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", PYTHONWARNINGS="ignore")
    res = [None]

    def go():
        res[0] = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    wall, cpus = timed(go)
    if res[0].returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{res[0].stdout[-2000:]}")
    return wall, cpus


def engine_rates(files, paths):
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    from biobart_fairseq.data import bpe

    lines = [" ".join(line.split()) for p in paths for line in open(p, encoding="utf-8")]
    mb = sum(len(line.encode()) + 1 for line in lines) / 1e6
    ref = get_encoder(files["encoder_json"], files["vocab_bpe"])
    _, c_ref = timed(lambda: [ref.encode(line) for line in lines])
    fast = bpe.GPT2Encoder(files["encoder_json"], files["vocab_bpe"])
    _, c_fast = timed(lambda: [fast.encode_line(line) for line in lines])
    return mb, mb / c_ref, mb / c_fast


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=os.cpu_count())
    args = p.parse_args()
    import bpe50k

    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; workers {args.workers}")
    tmp = Path(tempfile.mkdtemp(prefix="bpe_bench_"))
    files = bpe50k.build(tmp / "bpe")
    gpt2 = ["--bpe", "gpt2", "--encoder-json", files["encoder_json"], "--vocab-bpe", files["vocab_bpe"],
            "--dict", files["dict_txt"]]
    py = sys.executable
    command(["biobart-prepare-seq2seq", "--dataset", "mediqa_qs", "--input",
             str(DATA / "meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"), str(DATA / "mediqa2021_qs"),
             "-o", str(tmp / "qs")])
    qs = [tmp / "qs" / f"{s}.{side}" for s in ("train", "valid", "test") for side in ("source", "target")]
    xml = sorted((DATA / "pubmed_xml").glob("*.xml"))
    xml_mb = sum(f.stat().st_size for f in xml) / 1e6
    from biobart_fairseq.cli import prepare_pubmed

    _, xml_cpu = timed(lambda: prepare_pubmed.main([*map(str, xml), "-o", str(tmp / "pm"), "--workers", "1"]))
    pm = [tmp / "pm" / "train.txt"]

    for name, paths in (("MEDIQA-QS", qs), ("PubMed text", pm)):
        mb, r_ref, r_fast = engine_rates(files, paths)
        print(f"engine, {name} ({mb:.2f} MB): fairseq {r_ref:.2f} MB/CPU-s, ours {r_fast:.2f} MB/CPU-s "
              f"(x{r_fast / r_ref:.1f}, cold cache)")

    base_qs = command([py, "-c", BASELINE, files["encoder_json"], files["vocab_bpe"], str(tmp / "b1"), *map(str, qs)])
    qs_mb = sum(f.stat().st_size for f in qs) / 1e6
    for w in sorted({1, args.workers}):
        run = command(["biobart-binarize-seq2seq", "--data-dir", str(tmp / "qs"),
                       "-o", str(tmp / f"qs-bin{w}"), *gpt2, "--workers", str(w)])
        print(f"biobart-binarize-seq2seq MEDIQA-QS ({qs_mb:.2f} MB), {w} worker(s): {run[0]:.1f} s wall, "
              f"{qs_mb / run[1]:.2f} MB/CPU-s; one fairseq-encoder process: {base_qs[0]:.1f} s wall, "
              f"{qs_mb / base_qs[1]:.2f} MB/CPU-s -> x{run[0] / base_qs[0]:.2f} the wall time")
    pm_mb = pm[0].stat().st_size / 1e6
    base_pm = command([py, "-c", BASELINE, files["encoder_json"], files["vocab_bpe"], str(tmp / "b2"), str(pm[0])])
    run = command(["biobart-binarize", "--train", str(pm[0]), "-o", str(tmp / "pm-bin"),
                   *gpt2, "--workers", str(args.workers)])
    print(f"biobart-binarize --bpe gpt2 PubMed ({pm_mb:.2f} MB), {args.workers} worker(s): {run[0]:.1f} s wall, "
          f"{pm_mb / run[1]:.2f} MB/CPU-s; one fairseq-encoder process: {base_pm[0]:.1f} s, "
          f"{pm_mb / base_pm[1]:.2f} MB/CPU-s -> x{run[0] / base_pm[0]:.2f} the wall time")
    pipeline_stages(files, pm, xml_mb, xml_cpu, pm_mb, tmp)


def pipeline_stages(files, pm, xml_mb, xml_cpu, pm_mb, tmp, copies=8):
    """BPE stage per CPU-second, the BPE load not counted (once per worker per run): the text once
    (every word new to the cache) and ``copies`` times (the cache a long run has)."""
    from biobart_fairseq.data import bpe

    info = {"type": "gpt2", **files}
    text = pm[0].read_text(encoding="utf-8")
    (tmp / "pm-copies.txt").write_text(text * copies, encoding="utf-8")
    for label, path, n in (("once, cold cache", pm[0], 1), (f"x{copies}, warm cache", tmp / "pm-copies.txt", copies)):
        with bpe.EncoderPool(1, info) as pool:
            _, c = timed(lambda: bpe.encode_file(str(path), str(tmp / "pm.bpe"), 1, info, True, pool=pool))
        print(f"PubMed pipeline, BPE stage (text {label}): {n * pm_mb / c:.1f} MB text/CPU-s = {n * xml_mb / c:.1f} "
              f"MB XML/CPU-s vs XML stage {xml_mb / xml_cpu:.1f} MB XML/CPU-s (x{n * xml_cpu / c:.2f})")


if __name__ == "__main__":
    main()
