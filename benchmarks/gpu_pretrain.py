"""Pretraining throughput and precision checks for one accelerator, in one call.

Run through ``benchmarks/gpu_pretrain.sh`` (which installs fairseq on a bare GPU machine
first), or directly where fairseq and the plugin import:

    python benchmarks/gpu_pretrain.py            # on a GPU: every figure of the GPU issue
    python benchmarks/gpu_pretrain.py --cpu      # the same steps with tiny sizes (a dry run)

Steps (``--only`` picks some), each printing one summary line (``== name: ...``) and feeding one JSON record:

1. data: real PubMed abstracts (``biobart-prepare-pubmed``) plus filler documents made of
   their sentences in random order, sentencepiece-binarized; the dictionary is padded to
   BART's 50,265 entries so the output layer costs what BART's does;
2. the share of padding in real batches of these blocks (source and target), then
   throughput, ``bart_base``, 512-token samples, the same ``--max-tokens`` and noise for
   both: stock fairseq (``denoising`` + ``bart_base`` + ``cross_entropy`` + ``adam``) vs ours
   (``biomed_denoising`` + ``biobart_base`` + ``fused_cross_entropy`` + ``torch_adamw``), in
   fp16 and bf16: target tokens/s (fairseq's ``wps``, median over the log intervals after the
   first), peak memory, ratio; our runs are 200 updates long and also report the loss, NaNs
   and fp16 overflow skips;
3. ours with ``--compile-layers`` (torch.compile per layer): tokens/s and losses beside the
   uncompiled run;
4. ``bart_large`` tokens/s for ours;
5. Hugging Face BART-base (sdpa, bf16 autocast, fused AdamW) on random tokens of the same
   shape;
6. a seq2seq fine-tune (MEDIQA-QS: MeQSum train, MEDIQA 2021 test) and ``fairseq-generate``;
7. ``benchmarks/el_decode.py --device cuda`` (ours vs the GenBioEL-style loop).

Everything goes to ``benchmarks/results/<card>-<date>.json`` (card, versions, every figure)
and the logs to ``--work``.  Data comes from ``--shared`` (default ``../shared/data``; the
device script carries a copy) or, for PubMed, the project's own sample.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "biobart_fairseq"
NOISE = ["--mask", "0.3", "--mask-length", "span-poisson", "--poisson-lambda", "3.0", "--replace-length", "1",
         "--rotate", "0", "--insert", "0", "--permute-sentences", "0", "--mask-random", "0"]
TINY = ["--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
        "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2",
        "--decoder-attention-heads", "2"]
STOCK = ["--task", "denoising", "--criterion", "cross_entropy", "--optimizer", "adam"]
OURS = ["--task", "biomed_denoising", "--criterion", "fused_cross_entropy", "--optimizer", "torch_adamw"]
INNER = re.compile(r"train_inner \| (.*)$", re.M)
KEY_VALUE = re.compile(r"(\w+)=([^,\s]+)")


def sh(cmd, log, env=None, timeout=None):
    """Run cmd, tee its output to log; return (returncode, text)."""
    full_env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", **(env or {}))
    t0 = time.time()
    try:
        res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=full_env, timeout=timeout)
        out, rc = res.stdout, res.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), 124
    Path(log).write_text(out)
    if os.environ.get("OUT"):  # the device tool returns $OUT even after a time-out
        (Path(os.environ["OUT"]) / "logs").mkdir(parents=True, exist_ok=True)
        (Path(os.environ["OUT"]) / "logs" / Path(log).name).write_text(out[-200_000:])
    print(f"   ({Path(log).name}: rc {rc}, {time.time() - t0:.0f} s)", flush=True)
    return rc, out


class Bench:
    def __init__(self, args):
        self.a = args
        self.cpu = args.cpu
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.py = sys.executable
        self.results = {"steps": {}}

    # ---------------------------------------------------------------- 1. data
    def data(self):
        shared = Path(self.a.shared)
        xml_dir = shared / "pubmed_xml"
        xmls = sorted(xml_dir.glob("*.xml*")) if xml_dir.is_dir() else []
        source = "shared/data/pubmed_xml (real PubMed)"
        if not xmls:
            xmls = sorted((REPO / "examples/data/pubmed_sample").glob("sample_*.xml*"))
            source = "examples/data/pubmed_sample (written for this project)"
        corpus = self.work / "corpus"
        rc, _ = sh([self.py, "-m", "biobart_fairseq.cli.prepare_pubmed", *xmls, "-o", corpus, "--workers",
                    str(self.a.workers), "--valid-docs", "20"], self.work / "prepare.log")
        if rc not in (0, 3):
            raise SystemExit("prepare-pubmed failed; see prepare.log")
        docs = [d.split("\n") for d in (corpus / "train.txt").read_text().strip().split("\n\n") if d.strip()]
        real_words = sum(len(s.split()) for d in docs for s in d)
        sentences = [s for d in docs for s in d]
        rng = random.Random(0)
        filler, words = [], real_words
        while words < self.a.corpus_words:
            doc = [rng.choice(sentences) for _ in range(rng.randint(6, 14))]
            filler.append(doc)
            words += sum(len(s.split()) for s in doc)
        big = self.work / "big.txt"
        with open(big, "w") as f:
            for d in docs + filler:
                f.write("\n".join(d) + "\n\n")
        data = self.work / "data-bin"
        rc, _ = sh([self.py, "-m", "biobart_fairseq.cli.binarize", "--train", big, "--valid", corpus / "valid.txt",
                    "-o", data, "--bpe", "sentencepiece", "--vocab-size", str(self.a.spm_vocab),
                    "--spm-max-sentences", "50000", "--workers", str(self.a.workers)], self.work / "binarize.log")
        if rc != 0:
            raise SystemExit("binarize failed; see binarize.log")
        n_dict = self._pad_dictionary(data / "dict.txt", self.a.dict_size)
        self.data_dir = data
        self.results["data"] = {"pubmed_source": source, "real_documents": len(docs), "real_words": real_words,
                                "filler_documents": len(filler), "words": words, "dictionary": n_dict + 4 + 1}
        print(f"== data: {len(docs)} real + {len(filler)} filler documents, {words:,} words, "
              f"dictionary {n_dict + 5} entries (with specials and <mask>)", flush=True)

    @staticmethod
    def _pad_dictionary(path, size):
        """Append fairseq-style ``madeupword`` fillers so len(dict) = size (the output layer's width)."""
        lines = path.read_text().splitlines()
        target = size - 4 - 1  # fairseq adds <s> <pad> </s> <unk>; the task adds <mask>
        with open(path, "a") as f:
            for i in range(max(0, target - len(lines))):
                f.write(f"madeupword{i:05d} 0\n")
        return max(target, len(lines))

    def padding(self, batches=60):
        """Share of padding in real training batches (source and target), as fairseq builds them."""
        import numpy as np
        from fairseq import options, tasks
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf

        T, M = self.a.tokens_per_sample, self.a.max_tokens
        args = options.parse_args_and_arch(options.get_training_parser(), [
            str(self.data_dir), "--user-dir", str(PLUGIN), "--task", "biomed_denoising", "--arch", "biobart_base",
            "--tokens-per-sample", str(T), "--sample-break-mode", "complete_doc", "--seed", "1", *NOISE])
        task = tasks.setup_task(convert_namespace_to_omegaconf(args).task)
        task.load_dataset("train")
        ds = task.dataset("train")
        itr = task.get_batch_iterator(ds, max_tokens=M, max_positions=(T, T), required_batch_size_multiple=8,
                                      seed=1).next_epoch_itr(shuffle=True)
        pad = task.dictionary.pad()
        src = tgt = src_cells = tgt_cells = n = 0
        for i, b in enumerate(itr):
            if i == batches:
                break
            s, t = b["net_input"]["src_tokens"], b["target"]
            src += int(s.ne(pad).sum()); tgt += int(t.ne(pad).sum()); src_cells += s.numel(); tgt_cells += t.numel()
            n += 1
        rec = {"batches": n, "samples": len(ds), "mean_sample_tokens": float(np.mean(ds.sizes)),
               "source_padding_share": round(1 - src / max(src_cells, 1), 4),
               "target_padding_share": round(1 - tgt / max(tgt_cells, 1), 4),
               "target_tokens_per_batch": round(tgt / max(n, 1), 1)}
        self.results["steps"]["padding"] = rec
        print(f"== padding: {json.dumps(rec)}", flush=True)

    # ---------------------------------------------------------------- 2-4. training runs
    def train(self, name, side, arch, precision, updates, extra=()):
        sizes = TINY if self.cpu else []
        prec = [] if precision == "fp32" else [f"--{precision}"]
        cmd = [self.py, REPO / "benchmarks/train_probe.py", self.data_dir, "--user-dir", PLUGIN,
               *(STOCK if side == "stock" else OURS), "--arch", arch, *sizes, *NOISE,
               "--tokens-per-sample", str(self.a.tokens_per_sample), "--sample-break-mode", "complete_doc",
               "--max-tokens", str(self.a.max_tokens), "--update-freq", "1", "--required-batch-size-multiple", "8",
               "--dropout", "0.1", "--attention-dropout", "0.1", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-6",
               "--weight-decay", "0.01", "--clip-norm", "1.0", "--lr", "3e-4" if not self.cpu else "3e-3",
               "--lr-scheduler", "polynomial_decay", "--warmup-updates", str(max(2, updates // 10)),
               "--total-num-update", str(updates), "--max-update", str(updates), "--log-format", "simple",
               "--log-interval", str(self.a.log_interval), "--no-save", "--disable-validation",
               "--num-workers", str(self.a.loader_workers), "--seed", "1", *prec, *extra]
        if self.cpu:
            cmd.append("--cpu")
        rc, out = sh(cmd, self.work / f"{name}.log", timeout=self.a.run_timeout)
        rec = self._parse_train(out, rc)
        rec.update(side=side, arch=arch, precision=precision, updates_asked=updates, extra=list(extra))
        self.results["steps"][name] = rec
        print(f"== {name}: {rec.get('tokens_per_s', 0):,.0f} target tok/s, peak {rec.get('peak_gib')} GiB, "
              f"loss {rec.get('loss_first')} -> {rec.get('loss_last')}, nan {rec.get('nan')}, "
              f"overflows {rec.get('overflow_skips')}, rc {rc}", flush=True)
        return rec

    def _parse_train(self, out, rc):
        rows = []
        for line in INNER.findall(out):
            rows.append(dict(KEY_VALUE.findall(line)))
        rec = {"rc": rc, "intervals": len(rows)}
        if rows:
            wps = [float(r["wps"]) for r in rows[1:] if "wps" in r] or [float(rows[0].get("wps", 0))]
            losses = [r.get("loss", "nan") for r in rows]
            rec.update(tokens_per_s=statistics.median(wps), wps_per_interval=[float(r.get("wps", 0)) for r in rows],
                       loss_first=losses[0], loss_last=losses[-1], losses=losses,
                       nan=any("nan" in l or "inf" in l for l in losses), updates_done=int(rows[-1].get("num_updates", 0)),
                       words_per_batch=float(rows[-1].get("wpb", 0)), sentences_per_batch=float(rows[-1].get("bsz", 0)))
        rec["overflow_skips"] = len(re.findall(r"gradient overflow detected", out))
        m = re.search(r"PEAK_MEM_GIB ([0-9.]+)", out)
        rec["peak_gib"] = float(m.group(1)) if m else None
        if rc != 0:
            rec["error_tail"] = out[-1500:]
        return rec

    def throughput(self):
        precisions = ["fp32"] if self.cpu else ["bf16", "fp16"]
        base = "bart_base"
        for prec in precisions:
            stock = self.train(f"stock_{base}_{prec}", "stock", base, prec, self.a.stock_updates)
            ours = self.train(f"ours_{base}_{prec}", "ours", "bio" + base, prec, self.a.our_updates)
            if stock.get("tokens_per_s") and ours.get("tokens_per_s"):
                ratio = ours["tokens_per_s"] / stock["tokens_per_s"]
                self.results["steps"][f"ratio_{base}_{prec}"] = round(ratio, 2)
                print(f"== ratio ours/stock {base} {prec}: {ratio:.2f}x", flush=True)

    def compiled(self):
        prec = "fp32" if self.cpu else "bf16"
        updates = self.a.stock_updates
        self.train(f"ours_bart_base_{prec}_compiled", "ours", "biobart_base", prec, updates, ["--compile-layers"])
        self.train(f"ours_bart_base_{prec}_short", "ours", "biobart_base", prec, updates)

    def large(self):
        prec = "fp32" if self.cpu else "bf16"
        self.train(f"ours_bart_large_{prec}", "ours", "biobart_large", prec, self.a.large_updates)

    # ---------------------------------------------------------------- 5. Hugging Face baseline
    def hf(self):
        code = HF_CODE.format(cpu=self.cpu, tokens=self.a.tokens_per_sample, max_tokens=self.a.max_tokens)
        rc, out = sh([self.py, "-c", code], self.work / "hf.log", timeout=self.a.run_timeout)
        rec = {"rc": rc}
        for m in re.finditer(r"HF (\w+) ([\w]+): ([0-9.]+) target tok/s, peak ([0-9.]+) GiB", out):
            rec[m.group(1)] = {"precision": m.group(2), "tokens_per_s": float(m.group(3)), "peak_gib": float(m.group(4))}
        if rc != 0 or len(rec) == 1:
            rec["error_tail"] = out[-1500:]
        self.results["steps"]["hf_bart_base"] = rec
        print(f"== hf: {json.dumps({k: v for k, v in rec.items() if k != 'error_tail'})}", flush=True)

    # ---------------------------------------------------------------- 6. seq2seq fine-tune + generate
    def seq2seq(self):
        shared = Path(self.a.shared)
        meqsum = shared / "meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"
        qs = shared / "mediqa2021_qs"
        if not (meqsum.is_file() and qs.is_dir()):
            self.results["steps"]["seq2seq"] = {"skipped": f"{meqsum} or {qs} absent"}
            print("== seq2seq: skipped (data absent)", flush=True)
            return
        prep, data, save = self.work / "qs-prep", self.work / "qs-bin", self.work / "qs-ckpt"
        limit = ["--limit", "60"] if self.cpu else []
        rc, _ = sh([self.py, "-m", "biobart_fairseq.cli.prepare_seq2seq", "--dataset", "mediqa_qs", "--input",
                    f"train={meqsum}", qs, "-o", prep, *limit], self.work / "qs-prepare.log")
        rc2, _ = sh([self.py, "-m", "biobart_fairseq.cli.binarize_seq2seq", "--data-dir", prep, "-o", data,
                     "--bpe", "sentencepiece", "--vocab-size", "1000", "--workers", str(self.a.workers)],
                    self.work / "qs-binarize.log")
        prec = [] if self.cpu else ["--bf16"]
        dev = ["--cpu"] if self.cpu else []
        sizes = TINY if self.cpu else []
        updates = 10 if self.cpu else 60
        t0 = time.time()
        rc3, out = sh([self.py, REPO / "benchmarks/train_probe.py", data, "--user-dir", PLUGIN,
                       "--task", "biomed_translation", "--source-lang", "source", "--target-lang", "target",
                       "--arch", "biobart_base", *sizes, "--truncate-source", "--share-all-embeddings",
                       "--criterion", "fused_cross_entropy", "--label-smoothing", "0.1", "--optimizer", "torch_adamw",
                       "--lr", "1e-4", "--max-tokens", "4096", "--max-update", str(updates), "--save-dir", save,
                       "--no-epoch-checkpoints", "--disable-validation", "--log-format", "simple",
                       "--log-interval", "5", "--seed", "1", *prec, *dev], self.work / "qs-train.log",
                      timeout=self.a.run_timeout)
        train = self._parse_train(out, rc3)
        train_s = time.time() - t0
        t0 = time.time()
        rc4, gen = sh([self.py, "-m", "fairseq_cli.generate", data, "--user-dir", PLUGIN, "--task", "biomed_translation",
                       "--source-lang", "source", "--target-lang", "target", "--path", save / "checkpoint_last.pt",
                       "--gen-subset", "test", "--beam", "5", "--max-len-b", "27", "--min-len", "3",
                       "--no-repeat-ngram-size", "3", "--batch-size", "32", "--bpe", "sentencepiece",
                       "--sentencepiece-model", data / "spm.model", *dev, *([] if self.cpu else ["--bf16"])],
                      self.work / "qs-generate.log", timeout=self.a.run_timeout)
        hyps = len(re.findall(r"^H-\d+\t", gen, re.M))
        m = re.search(r"Translated ([\d,]+) sentences .* in ([0-9.]+)s \(([0-9.]+) sentences/s", gen)
        rec = {"rc": [rc, rc2, rc3, rc4], "train_updates": train.get("updates_done"), "loss_first": train.get("loss_first"),
               "loss_last": train.get("loss_last"), "train_wall_s": round(train_s, 1), "hypotheses": hyps,
               "generate_wall_s": round(time.time() - t0, 1), "sentences_per_s": float(m.group(3)) if m else None}
        self.results["steps"]["seq2seq_mediqa_qs"] = rec
        print(f"== seq2seq: {json.dumps(rec)}", flush=True)

    # ---------------------------------------------------------------- 7. entity-linking decoding
    def el_decode(self):
        ncbi = Path(self.a.shared) / "ncbi_disease"
        if not ncbi.is_dir():
            self.results["steps"]["el_decode"] = {"skipped": f"{ncbi} absent"}
            print("== el_decode: skipped (NCBI data absent)", flush=True)
            return
        cmd = [self.py, REPO / "benchmarks/el_decode.py", "--device", "cpu" if self.cpu else "cuda"]
        if self.cpu:
            cmd += ["--mentions", "40"]
        rc, out = sh(cmd, self.work / "el_decode.log", env={"BIOBART_SHARED_DATA": str(self.a.shared)},
                     timeout=self.a.run_timeout)
        tail = [l for l in out.strip().splitlines() if l.strip()][-12:]
        self.results["steps"]["el_decode"] = {"rc": rc, "summary": tail}
        print("== el_decode:\n" + "\n".join(tail), flush=True)

    # ---------------------------------------------------------------- report
    def environment(self):
        import torch

        card = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not self.cpu else \
            f"CPU {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
        try:
            import fairseq
            fv = fairseq.__version__
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            fv = f"not importable: {e}"
        self.results.update(card=card, torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
                            fairseq=fv, date=datetime.date.today().isoformat(), mode="cpu" if self.cpu else "gpu",
                            settings={k: v for k, v in vars(self.a).items()})
        print(f"== machine: {card}; torch {torch.__version__}, CUDA {torch.version.cuda}, fairseq {fv}", flush=True)

    def write(self):
        card = re.sub(r"[^A-Za-z0-9]+", "-", self.results["card"]).strip("-").lower()
        out = Path(self.a.results) / f"{'gpu' if not self.cpu else 'cpu'}-{card}-{self.results['date']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.results, indent=1) + "\n")
        if os.environ.get("OUT"):
            (Path(os.environ["OUT"]) / out.name).write_text(out.read_text())
        print(f"== wrote {out}", flush=True)


HF_CODE = r"""
import time, torch
from transformers import BartConfig, BartForConditionalGeneration
cpu = {cpu}
dev = 'cpu' if cpu else 'cuda'
kw = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
          encoder_ffn_dim=64, decoder_ffn_dim=64) if cpu else dict(d_model=768, encoder_layers=6, decoder_layers=6,
          encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072)
cfg = BartConfig(vocab_size=50265, max_position_embeddings=1024, **kw)
T = {tokens}
B = max(1, {max_tokens} // T)
for attn in ['sdpa', 'eager']:
    cfg._attn_implementation = attn
    m = BartForConditionalGeneration(cfg).to(dev).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=not cpu)
    src = torch.randint(4, 50000, (B, int(T * 0.75)), device=dev); tgt = torch.randint(4, 50000, (B, T), device=dev)
    steps, warm = (4, 1) if cpu else (25, 5)
    for i in range(steps):
        if i == warm:
            if not cpu: torch.cuda.synchronize()
            t = time.time()
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=not cpu):
            out = m(input_ids=src, labels=tgt)
        out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    if not cpu: torch.cuda.synchronize()
    dt = (time.time() - t) / (steps - warm)
    peak = torch.cuda.max_memory_allocated() / 2**30 if not cpu else 0.0
    print(f"HF {{attn}} {{'fp32' if cpu else 'bf16autocast'}}: {{B * T / dt:.0f}} target tok/s, peak {{peak:.1f}} GiB", flush=True)
    del m, opt
    if not cpu: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
"""


START = time.time()
# rough GPU wall time of each step (start-up included), for --budget-s
STEP_SECONDS = {"padding": 20, "throughput": 170, "hf": 30, "large": 45, "seq2seq": 60, "el_decode": 60,
                "compiled": 120}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU: checks that every step runs")
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder with the shared datasets")
    p.add_argument("--work", default=None, help="scratch folder for data and logs (default: a temporary one)")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results"), help="where the JSON goes")
    p.add_argument("--budget-s", type=float, default=float("inf"),
                   help="seconds this script may take (from its start); later steps that would not fit are skipped")
    p.add_argument("--only", default="data,padding,throughput,hf,large,seq2seq,el_decode,compiled",
                   help="comma-separated steps to run (data is always run)")
    args = p.parse_args(argv)
    big = not args.cpu
    defaults = dict(workers=min(16, os.cpu_count() or 2), corpus_words=3_000_000 if big else 60_000,
                    spm_vocab=8000 if big else 1000, dict_size=50265 if big else 2000,
                    tokens_per_sample=512 if big else 128, max_tokens=32768 if big else 1024,
                    stock_updates=30 if big else 6, our_updates=200 if big else 8, large_updates=30 if big else 4,
                    log_interval=10 if big else 2, loader_workers=6 if big else 0, run_timeout=150 if big else 600)
    for k, v in defaults.items():
        setattr(args, k, v)
    if args.work is None:
        import tempfile
        args.work = tempfile.mkdtemp(prefix="gpu_pretrain.")
    return args


def main(argv=None):
    args = parse_args(argv)
    bench = Bench(args)
    bench.environment()
    steps = [s.strip() for s in args.only.split(",")]
    bench.data()
    # in order of importance: a time-out on a GPU machine keeps the figures written so far,
    # and a step that would not finish inside --budget-s is skipped (and listed as skipped)
    for step in ("padding", "throughput", "hf", "large", "seq2seq", "el_decode", "compiled"):
        if step in steps:
            left = args.budget_s - (time.time() - START)
            if left < STEP_SECONDS[step]:
                bench.results["steps"][step + "_skipped"] = f"{left:.0f} s left of --budget-s, needs ~{STEP_SECONDS[step]}"
                print(f"== {step}: skipped, {left:.0f} s left", flush=True)
                continue
            try:
                getattr(bench, step)()
            except Exception as e:  # noqa: BLE001 - one failed step must not lose the others' figures
                bench.results["steps"][step + "_error"] = repr(e)
                print(f"== {step}: FAILED {e!r}", flush=True)
            bench.write()  # after every step: a time-out keeps what was measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
