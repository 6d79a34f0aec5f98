"""Pretraining throughput and precision checks for one accelerator, in two short calls.

Run through ``benchmarks/gpu_pretrain.sh CALL`` (docs/gpu.md gives the exact device commands):

    python3 benchmarks/gpu_pretrain.py headline        # on the GPU machine
    python3 benchmarks/gpu_pretrain.py rest
    python3 benchmarks/gpu_pretrain.py headline --cpu  # tiny sizes on the CPU (the rehearsal)

``headline``: install the carried wheels, build fairseq against the machine's torch, make the
data, then stock fairseq (``denoising`` + ``bart_base`` + ``cross_entropy`` + ``adam``) against
ours (``biomed_denoising`` + ``biobart_base`` + ``fused_cross_entropy`` + ``torch_adamw``), 512
tokens, the same ``--max-tokens`` and noise, in fp16 then bf16: target tokens/s (fairseq's
``wps``, median of the log intervals after the first), peak memory, the ratio; our runs also
report the loss (it must fall), NaNs and fp16 overflow skips.

``headline`` ends with the padding share of real batches.

``rest``: the same install and data (reused when the machine is still warm), Hugging Face BART-base (sdpa, bf16 autocast, fused AdamW) beside ours in bf16,
``bart_large`` ours, a MEDIQA-QS fine-tune and ``fairseq-generate --bf16`` (the model really in
bf16: the plugin's log line is checked), and ``benchmarks/el_decode.py`` on the device.

Every step runs under a hard time cap (its own, and never past the call's ``--budget-s``); a step
that would not fit is skipped and listed.  The moment a step ends its figures are merged into the
results JSON, and the output folder (``$OUT``, else ``--work``) is rewritten: exactly three files,
``CALL.json``, ``CALL.log`` (one line per measurement) and ``CALL-logs.tgz`` (each step's log), so a
time-out loses at most the step in flight.  ``--check`` lists the figures a results JSON lacks.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import datetime
import json
import platform
import random
import re
import signal
import statistics
import subprocess
import tarfile
from dataclasses import dataclass, field

REPO = Path(__file__).resolve().parents[1]
CALLS = ("headline", "rest")
RESERVE_S = 8  # kept back from the budget for writing the last outputs

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
# On the CPU, fairseq's FP16Optimizer needs CUDA (it keys its fp32 copy by torch.cuda.current_device()),
# so the rehearsal runs each precision through MemoryEfficientFP16Optimizer, which does not.
CPU_PRECISION = {"fp16": ["--fp16", "--memory-efficient-fp16"], "bf16": ["--bf16", "--memory-efficient-bf16"]}

# Where the expected GPU seconds come from (printed with the plan).
SIZES = {False: dict(tokens=512, max_tokens=32768, corpus_words=1_500_000, spm_vocab=8000, dict_size=50265,
                     workers=min(16, os.cpu_count() or 2), loader_workers=6, log_interval=10),
         True: dict(tokens=128, max_tokens=1024, corpus_words=40_000, spm_vocab=1000, dict_size=2000,
                    workers=2, loader_workers=0, log_interval=2)}
RATE = {"stock": (103e3, "stock fp16 103k tok/s (the stock_baseline.sh measurement, H100, 2026-11-24)"),
        "ours": (300e3, "ours at the goal, 300k tok/s (not yet measured)"),
        "large": (90e3, "ours' goal / 3.3 (bart_large's FLOPs per token over bart_base's)")}
START_S, START_SRC = 20.0, "+ 20 s fairseq start-up (assumed: imports, model, CUDA init, loader)"


@dataclass
class Step:
    name: str
    kind: str
    gpu_expected_s: float
    gpu_cap_s: float
    cpu_cap_s: float
    source: str
    params: dict = field(default_factory=dict)
    after: tuple = ()  # steps that must have succeeded first

    def needs(self, ctx):
        done = ctx["out"].results["steps"]
        bad = [a for a in self.after if done.get(a, {}).get("rc", 1) != 0]
        return f"needs {', '.join(bad)}" if bad else ""


def train_step(name, side, arch, precision, updates, rate_key, cpu_cap=90, log_interval=None):
    rate, src = RATE[rate_key]
    expected = START_S + updates * SIZES[False]["max_tokens"] / rate
    return Step(name, "train", expected, round(max(2 * expected, expected + 30)), cpu_cap,
                f"{updates} updates x 32768 tokens at {src} {START_SRC}",
                dict(side=side, arch=arch, precision=precision, updates=updates, log_interval=log_interval),
                ("build", "data"))


def plan(call, cpu):
    """The steps of one call, in the order they run (most important first)."""
    setup = [Step("install", "install", 10, 40, 120, "assumed: pip of ~15 local wheels and the antlr4 sdist"),
             Step("build", "build", 90, 150, 420, "'a minute or two' on the GPU machine; 90-110 s here "
                  "(the install notes)", after=("install",)),
             Step("data", "data", 40, 80, 150, "assumed: prepare-pubmed + sentencepiece + binarize, 16 workers",
                  after=("build",))]
    if call == "headline":
        runs = [train_step("stock_bart_base_fp16", "stock", "bart_base", "fp16", 30, "stock"),
                train_step("ours_bart_base_fp16", "ours", "biobart_base", "fp16", 100, "ours"),
                train_step("stock_bart_base_bf16", "stock", "bart_base", "bf16", 30, "stock"),
                train_step("ours_bart_base_bf16", "ours", "biobart_base", "bf16", 100, "ours"),
                Step("padding", "padding", 10, 30, 60, "assumed: one process reading 60 batches", after=("data",))]
        return setup + runs
    return setup + [
        Step("hf_bart_base_sdpa_bf16", "hf", 20, 45, 90, "25 steps x 32768 tokens at HF sdpa's 189k tok/s "
             "(stock_baseline.sh, H100) + 15 s import/model", after=("install",)),
        train_step("ours_bart_base_bf16_short", "ours", "biobart_base", "bf16", 40, "ours"),
        train_step("ours_bart_large_bf16", "ours", "biobart_large", "bf16", 15, "large", log_interval=5),
        Step("seq2seq_mediqa_qs", "seq2seq", 35, 80, 150, "assumed: prepare + binarize 10 s, 20 updates, "
             "generate of 100 questions (beam 5)", after=("build",)),
        Step("el_decode", "el", 40, 80, 150, "assumed: NCBI + tiny model 25 s, 60 mentions x 2 methods",
             after=("build",)),
    ]


def run_capped(cmd, log, deadline, env=None):
    """Run cmd with its output streamed into log; kill its whole process group at the deadline.
    Returns (returncode, output); 124 when it was killed."""
    full_env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    for k in [k for k, v in full_env.items() if v is None]:
        del full_env[k]
    with open(log, "a") as f:
        f.write(f"$ {' '.join(str(c) for c in cmd)}\n")
        f.flush()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = 124
            f.write("\n== killed at the step's time cap\n")
    return rc, Path(log).read_text(errors="replace")


def pythonpath(ctx):
    a = ctx["args"]
    if a.no_install:
        return str(REPO)
    return os.pathsep.join([str(Path(a.prefix) / "fsq"), str(Path(a.prefix) / "site"), str(REPO)])


def step_log(ctx, step):
    logs = Path(ctx["args"].work) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{step.name}.log"


# ---------------------------------------------------------------- install and build
def do_install(step, ctx, cap):
    a, deadline, log = ctx["args"], time.time() + cap, step_log(ctx, step)
    site = Path(a.prefix) / "site"
    if a.no_install:
        return {"rc": 0, "installed": "no: --no-install (this Python's fairseq)"}
    if (site / ".done").exists():
        return {"rc": 0, "reused": str(site)}
    wheels = sorted(Path(a.wheels).glob("*.whl"))
    antlr = sorted(Path(a.wheels).glob("antlr4*.tar.gz"))
    if not wheels or not antlr:
        return {"rc": 2, "error": f"no wheels or antlr4 sdist in {a.wheels}: run benchmarks/gpu_carry.sh"}
    shutil.rmtree(site, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--target", site]
    rc, _ = run_capped(pip + wheels, log, deadline)
    if rc == 0:
        # an sdist with --no-index needs --no-build-isolation (isolation would fetch setuptools);
        # the carried `wheel` and Cython are on PYTHONPATH for the build
        rc, _ = run_capped(pip + ["--no-build-isolation", *antlr], log, deadline, env={"PYTHONPATH": str(site)})
    rec = {"wheels": len(wheels) + len(antlr)}
    if rc == 0:
        rc, rec["scikit_learn"] = install_sklearn(a, pip, log, deadline)
    if rc == 0:
        (site / ".done").touch()
    return dict(rec, rc=rc)


def install_sklearn(a, pip, log, deadline):
    """fairseq imports every task module, and audio_classification imports scikit-learn: use the
    machine's, else the carried .whl_sklearn (scikit-learn and its dependencies; 42 MiB)."""
    rc, _ = run_capped([sys.executable, "-c", "import sklearn"], log, deadline)
    if rc == 0:
        return 0, "the machine's"
    wheels = sorted(Path(a.sklearn_wheels).glob("*.whl"))
    if not wheels:
        print(f"== install: scikit-learn is missing here and {a.sklearn_wheels} is not carried: "
              "rerun with it in carry (docs/gpu.md)", flush=True)
        return 2, f"missing, and no wheels in {a.sklearn_wheels}"
    rc, _ = run_capped(pip + wheels, log, deadline)
    return rc, f"carried ({len(wheels)} wheels)"


BUILD_CFG = "[build_ext]\nparallel = {jobs}\n"  # setuptools builds the extensions side by side


def do_build(step, ctx, cap):
    a, deadline, log = ctx["args"], time.time() + cap, step_log(ctx, step)
    fsq, site = Path(a.prefix) / "fsq", Path(a.prefix) / "site"
    rec = {}
    if a.no_install:
        rec["built"] = "no: --no-install"
    elif (fsq / ".built").exists():
        rec["reused"] = str(fsq)
    else:
        shutil.rmtree(fsq, ignore_errors=True)
        sdist = sorted(Path(a.wheels).glob("fairseq_fixed-*.tar.gz"))
        if not sdist:
            return {"rc": 2, "error": f"no fairseq_fixed sdist in {a.wheels}"}
        jobs = str(min(16, os.cpu_count() or 2))
        cfg = Path(a.work) / "build_ext.cfg"
        cfg.write_text(BUILD_CFG.format(jobs=jobs))
        # no CUDA_HOME: fairseq's optional CUDA kernels are not needed and would double the build
        env = {"CUDA_HOME": None, "MAX_JOBS": jobs, "PYTHONPATH": str(site), "DIST_EXTRA_CONFIG": str(cfg)}
        t0 = time.time()
        rc, _ = run_capped([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                            "--no-build-isolation", "--target", fsq, sdist[-1]], log, deadline, env=env)
        rec["build_s"] = round(time.time() - t0, 1)
        if rc != 0:
            return dict(rec, rc=rc)
        (fsq / ".built").touch()
    probe = ("import numpy, torch, fairseq, biobart_fairseq, fairseq.data.data_utils_fast; "
             "print('VERSIONS', fairseq.__version__, torch.__version__, numpy.__version__)")
    rc, out = run_capped([sys.executable, "-c", probe], log, deadline, env={"PYTHONPATH": pythonpath(ctx)})
    m = re.search(r"VERSIONS (\S+) (\S+) (\S+)", out)
    if rc == 0 and m:
        ctx["out"].results.update(fairseq=m.group(1), numpy=m.group(3))
    return dict(rec, rc=rc if m else 1)


# ---------------------------------------------------------------- data
def do_data(step, ctx, cap):
    a, deadline, log = ctx["args"], time.time() + cap, step_log(ctx, step)
    size = SIZES[a.cpu]
    data = Path(a.prefix) / f"data-{'cpu' if a.cpu else 'gpu'}"
    ctx["data_dir"] = data / "data-bin"
    if (data / "data.json").exists():
        return dict(json.loads((data / "data.json").read_text()), rc=0, reused=str(data))
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    xmls = sorted((Path(a.shared) / "pubmed_xml").glob("*.xml*"))
    source = "shared/data/pubmed_xml (real PubMed)"
    if not xmls:
        xmls, source = sorted((REPO / "examples/data/pubmed_sample").glob("sample_*.xml*")), "examples/data/pubmed_sample"
    env, py = {"PYTHONPATH": pythonpath(ctx)}, sys.executable
    rc, _ = run_capped([py, "-m", "biobart_fairseq.cli.prepare_pubmed", *xmls, "-o", data / "corpus", "--workers",
                        size["workers"], "--valid-docs", "20", "--no-progress"], log, deadline, env)
    if rc not in (0, 3):
        return {"rc": rc, "error": "prepare-pubmed failed"}
    rec = write_corpus(data, size["corpus_words"])
    rc, _ = run_capped([py, "-m", "biobart_fairseq.cli.binarize", "--train", data / "big.txt", "--valid",
                        data / "corpus/valid.txt", "-o", ctx["data_dir"], "--bpe", "sentencepiece", "--vocab-size",
                        size["spm_vocab"], "--spm-max-sentences", "50000", "--workers", size["workers"]],
                       log, deadline, env)
    if rc != 0:
        return {"rc": rc, "error": "binarize failed"}
    rec.update(pubmed_source=source, dictionary=pad_dictionary(ctx["data_dir"] / "dict.txt", size["dict_size"]))
    (data / "big.txt").unlink()
    (data / "data.json").write_text(json.dumps(rec))
    return dict(rec, rc=0)


def write_corpus(data, corpus_words):
    """The real abstracts plus filler documents made of their sentences in random order."""
    docs = [d.split("\n") for d in (data / "corpus/train.txt").read_text().strip().split("\n\n") if d.strip()]
    real_words = sum(len(s.split()) for d in docs for s in d)
    sentences = [s for d in docs for s in d]
    rng, filler, words = random.Random(0), [], real_words
    while words < corpus_words:
        doc = [rng.choice(sentences) for _ in range(rng.randint(6, 14))]
        filler.append(doc)
        words += sum(len(s.split()) for s in doc)
    with open(data / "big.txt", "w") as f:
        for d in docs + filler:
            f.write("\n".join(d) + "\n\n")
    return {"real_documents": len(docs), "real_words": real_words, "filler_documents": len(filler), "words": words}


def pad_dictionary(path, size):
    """Append fairseq-style ``madeupword`` fillers so the output layer is BART's width; returns len(dict)."""
    lines = path.read_text().splitlines()
    target = size - 4 - 1  # fairseq adds <s> <pad> </s> <unk>; the task adds <mask>
    with open(path, "a") as f:
        for i in range(max(0, target - len(lines))):
            f.write(f"madeupword{i:05d} 0\n")
    return max(target, len(lines)) + 5


# ---------------------------------------------------------------- training runs
def do_train(step, ctx, cap):
    a, p, size = ctx["args"], step.params, SIZES[ctx["args"].cpu]
    updates = p["updates"] if not a.cpu else max(4, p["updates"] // 12)
    prec = CPU_PRECISION[p["precision"]] if a.cpu else [f"--{p['precision']}"]
    cmd = [sys.executable, REPO / "benchmarks/train_probe.py", ctx["data_dir"], "--user-dir", PLUGIN,
           *(STOCK if p["side"] == "stock" else OURS), "--arch", p["arch"], *(TINY if a.cpu else []), *NOISE,
           "--tokens-per-sample", size["tokens"], "--sample-break-mode", "complete_doc",
           "--max-tokens", size["max_tokens"], "--required-batch-size-multiple", "8",
           "--dropout", "0.1", "--attention-dropout", "0.1", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-6",
           "--weight-decay", "0.01", "--clip-norm", "1.0", "--lr", "3e-3" if a.cpu else "3e-4",
           "--lr-scheduler", "polynomial_decay", "--warmup-updates", max(2, updates // 10),
           "--total-num-update", updates, "--max-update", updates, "--log-format", "simple",
           "--log-interval", p["log_interval"] or size["log_interval"] if not a.cpu else size["log_interval"], "--no-save", "--disable-validation",
           "--num-workers", size["loader_workers"], "--seed", "1", *prec, *(["--cpu"] if a.cpu else [])]
    rc, out = run_capped(cmd, step_log(ctx, step), time.time() + cap, {"PYTHONPATH": pythonpath(ctx)})
    rec = parse_train(out, rc)
    rec.update(side=p["side"], arch=p["arch"], precision=p["precision"], flags=prec, updates_asked=updates)
    return rec


def parse_train(out, rc):
    rows = [dict(KEY_VALUE.findall(line)) for line in INNER.findall(out)]
    rec = {"rc": rc, "intervals": len(rows)}
    if rows:
        wps = [float(r["wps"]) for r in rows[1:] if "wps" in r] or [float(rows[0].get("wps", 0))]
        losses = [r.get("loss", "nan") for r in rows]
        rec.update(tokens_per_s=statistics.median(wps), wps_per_interval=[float(r.get("wps", 0)) for r in rows],
                   loss_first=losses[0], loss_last=losses[-1], losses=losses,
                   nan=any(x in l for l in losses for x in ("nan", "inf")),
                   updates_done=int(rows[-1].get("num_updates", 0)), words_per_batch=float(rows[-1].get("wpb", 0)),
                   loss_scale_last=rows[-1].get("loss_scale"))
        try:
            rec["loss_falls"] = float(losses[-1]) < float(losses[0])
        except ValueError:
            rec["loss_falls"] = False
    rec["overflow_skips"] = len(re.findall(r"gradient overflow detected", out))
    m = re.search(r"PEAK_MEM_GIB ([0-9.]+) (\w+)", out)
    rec["peak_gib"], rec["peak_of"] = (float(m.group(1)), m.group(2)) if m else (None, None)
    if rc != 0:
        rec["error_tail"] = out[-1500:]
    return rec


def do_padding(step, ctx, cap):
    size = SIZES[ctx["args"].cpu]
    cmd = [sys.executable, Path(__file__).resolve(), "_padding", ctx["data_dir"], size["tokens"], size["max_tokens"]]
    rc, out = run_capped(cmd, step_log(ctx, step), time.time() + cap, {"PYTHONPATH": pythonpath(ctx)})
    m = re.search(r"^PADDING (\{.*\})$", out, re.M)
    return dict(json.loads(m.group(1)) if m else {"error_tail": out[-1500:]}, rc=rc if m else rc or 1)


def padding_probe(data_dir, tokens, max_tokens, batches=60):
    """Share of padding in real training batches (source and target), as fairseq builds them."""
    import numpy as np
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    T, M = int(tokens), int(max_tokens)
    args = options.parse_args_and_arch(options.get_training_parser(), [
        data_dir, "--user-dir", str(PLUGIN), "--task", "biomed_denoising", "--arch", "biobart_base",
        "--tokens-per-sample", str(T), "--sample-break-mode", "complete_doc", "--seed", "1", *NOISE])
    task = tasks.setup_task(convert_namespace_to_omegaconf(args).task)
    task.load_dataset("train")
    ds = task.dataset("train")
    itr = task.get_batch_iterator(ds, max_tokens=M, max_positions=(T, T), required_batch_size_multiple=8,
                                  seed=1).next_epoch_itr(shuffle=True)
    pad, counts = task.dictionary.pad(), np.zeros(5)
    for i, b in enumerate(itr):
        if i == batches:
            break
        s, t = b["net_input"]["src_tokens"], b["target"]
        counts += [int(s.ne(pad).sum()), s.numel(), int(t.ne(pad).sum()), t.numel(), 1]
    src, src_cells, tgt, tgt_cells, n = counts
    print("PADDING " + json.dumps({
        "batches": int(n), "samples": len(ds), "mean_sample_tokens": float(np.mean(ds.sizes)),
        "source_padding_share": round(1 - src / max(src_cells, 1), 4),
        "target_padding_share": round(1 - tgt / max(tgt_cells, 1), 4),
        "target_tokens_per_batch": round(tgt / max(n, 1), 1)}), flush=True)


# ---------------------------------------------------------------- Hugging Face baseline
HF_CODE = r"""
import sys, time, torch
from transformers import BartConfig, BartForConditionalGeneration
cpu, T, M = sys.argv[1] == 'cpu', int(sys.argv[2]), int(sys.argv[3])
dev = 'cpu' if cpu else 'cuda'
kw = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
          encoder_ffn_dim=64, decoder_ffn_dim=64) if cpu else dict(d_model=768, encoder_layers=6, decoder_layers=6,
          encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072)
cfg = BartConfig(vocab_size=50265, max_position_embeddings=1024, **kw)
cfg._attn_implementation = 'sdpa'
B = max(1, M // T)
m = BartForConditionalGeneration(cfg).to(dev).train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=not cpu)
src = torch.randint(4, 50000, (B, int(T * 0.75)), device=dev); tgt = torch.randint(4, 50000, (B, T), device=dev)
steps, warm = (4, 1) if cpu else (25, 5)
for i in range(steps):
    if i == warm:
        if not cpu: torch.cuda.synchronize()
        t = time.time()
    with torch.autocast(dev, dtype=torch.bfloat16):
        out = m(input_ids=src, labels=tgt)
    out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
if not cpu: torch.cuda.synchronize()
dt = (time.time() - t) / (steps - warm)
if cpu:
    import resource; peak, of = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 'host'
else:
    peak, of = torch.cuda.max_memory_allocated() / 2**30, 'cuda'
print(f"HF sdpa bf16autocast: {B * T / dt:.0f} target tok/s, peak {peak:.2f} GiB {of}, loss {out.loss.item():.3f}", flush=True)
"""


def do_hf(step, ctx, cap):
    size = SIZES[ctx["args"].cpu]
    cmd = [sys.executable, "-c", HF_CODE, "cpu" if ctx["args"].cpu else "cuda", size["tokens"], size["max_tokens"]]
    rc, out = run_capped(cmd, step_log(ctx, step), time.time() + cap, {"PYTHONPATH": pythonpath(ctx)})
    m = re.search(r"HF sdpa (\w+): ([0-9.]+) target tok/s, peak ([0-9.]+) GiB (\w+), loss ([0-9.a-z]+)", out)
    if not m:
        return {"rc": rc or 1, "error_tail": out[-1500:]}
    return {"rc": rc, "attention": "sdpa", "precision": m.group(1), "tokens_per_s": float(m.group(2)),
            "peak_gib": float(m.group(3)), "peak_of": m.group(4), "loss": m.group(5)}


# ---------------------------------------------------------------- seq2seq fine-tune + generate in bf16
def do_seq2seq(step, ctx, cap):
    a, deadline, log = ctx["args"], time.time() + cap, step_log(ctx, step)
    shared, work = Path(a.shared), Path(a.work) / "scratch" / "qs"
    meqsum, qs = shared / "meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx", shared / "mediqa2021_qs"
    if not (meqsum.is_file() and qs.is_dir()):
        return {"rc": 2, "error": f"{meqsum} or {qs} absent"}
    env, py = {"PYTHONPATH": pythonpath(ctx)}, sys.executable
    dev = ["--cpu"] if a.cpu else []
    rc, _ = run_capped([py, "-m", "biobart_fairseq.cli.prepare_seq2seq", "--dataset", "mediqa_qs", "--input",
                        f"train={meqsum}", qs, "-o", work / "prep", *(["--limit", "60"] if a.cpu else [])],
                       log, deadline, env)
    if rc in (0, 3):
        rc, _ = run_capped([py, "-m", "biobart_fairseq.cli.binarize_seq2seq", "--data-dir", work / "prep", "-o",
                            work / "bin", "--bpe", "sentencepiece", "--vocab-size", "1000", "--workers",
                            SIZES[a.cpu]["workers"]], log, deadline, env)
    if rc != 0:
        return {"rc": rc, "error": "prepare/binarize failed"}
    t0 = time.time()
    rc, out = run_capped([py, REPO / "benchmarks/train_probe.py", work / "bin", "--user-dir", PLUGIN,
                          "--task", "biomed_translation", "--source-lang", "source", "--target-lang", "target",
                          "--arch", "biobart_base", *(TINY if a.cpu else []), "--truncate-source",
                          "--share-all-embeddings", "--criterion", "fused_cross_entropy", "--label-smoothing", "0.1",
                          "--optimizer", "torch_adamw", "--lr", "1e-4", "--max-tokens", "4096", "--max-update",
                          "8" if a.cpu else "20", "--save-dir", work / "ckpt", "--no-epoch-checkpoints",
                          "--disable-validation", "--log-format", "simple", "--log-interval", "2", "--seed", "1",
                          *(["--memory-efficient-bf16"] if a.cpu else []), "--bf16", *dev], log, deadline, env)
    train = parse_train(out, rc)
    rec = {"train_rc": rc, "train_updates": train.get("updates_done"), "train_loss_first": train.get("loss_first"),
           "train_loss_last": train.get("loss_last"), "train_wall_s": round(time.time() - t0, 1)}
    if rc != 0:
        return dict(rec, rc=rc, error_tail=out[-1500:])
    return dict(rec, **generate_bf16(ctx, work, log, deadline, env, dev))


def generate_bf16(ctx, work, log, deadline, env, dev):
    """fairseq-generate --bf16 on the test split; the plugin logs when it runs the model in bf16."""
    t0 = time.time()
    rc, out = run_capped([sys.executable, "-m", "fairseq_cli.generate", work / "bin", "--user-dir", PLUGIN,
                          "--task", "biomed_translation", "--source-lang", "source", "--target-lang", "target",
                          "--path", work / "ckpt/checkpoint_last.pt", "--gen-subset", "test", "--beam", "5",
                          "--max-len-b", "27", "--min-len", "3", "--no-repeat-ngram-size", "3", "--batch-size", "32",
                          "--bpe", "sentencepiece", "--sentencepiece-model", work / "bin/spm.model", "--bf16", *dev],
                         log, deadline, env)
    m = re.search(r"Translated ([\d,]+) sentences .* in ([0-9.]+)s \(([0-9.]+) sentences/s", out)
    return {"rc": rc, "hypotheses": len(re.findall(r"^H-\d+\t", out, re.M)),
            "generate_in_bf16": "model in bfloat16 for generation" in out,
            "generate_wall_s": round(time.time() - t0, 1), "sentences_per_s": float(m.group(3)) if m else None,
            **({"error_tail": out[-1500:]} if rc != 0 else {})}


# ---------------------------------------------------------------- entity-linking decoding
EL_LINES = {"ours_mentions_per_s": r"ours \(.*?\):\s+([0-9.]+) mentions/s",
            "genbioel_mentions_per_s": r"GenBioEL-style \(.*?\):\s+([0-9.]+) mentions/s",
            "speedup_end_to_end": r"speed-up: ([0-9.]+)x end to end",
            "same_names_share": r"same \d+ names in the same order .*?: ([0-9.]+)% of mentions"}


def do_el(step, ctx, cap):
    a = ctx["args"]
    cmd = [sys.executable, REPO / "benchmarks/el_decode.py", "--device", "cpu" if a.cpu else "cuda",
           "--ncbi", Path(a.shared) / "ncbi_disease", "--mentions", "20" if a.cpu else "60"]
    rc, out = run_capped(cmd, step_log(ctx, step), time.time() + cap, {"PYTHONPATH": pythonpath(ctx)})
    rec = {"rc": rc}
    for key, pattern in EL_LINES.items():
        m = re.search(pattern, out)
        rec[key] = float(m.group(1)) if m else None
    if rc != 0 or None in rec.values():
        rec.update(rc=rc or 1, error_tail=out[-1500:])
    return rec


STEP_KINDS = {"install": do_install, "build": do_build, "data": do_data, "train": do_train, "padding": do_padding,
              "hf": do_hf, "seq2seq": do_seq2seq, "el": do_el}

# ---------------------------------------------------------------- outputs
FIGURES = {"install": [], "build": [], "data": ["words", "dictionary"],
           "train": ["tokens_per_s", "peak_gib", "loss_first", "loss_last", "nan", "updates_done", "overflow_skips"],
           "padding": ["source_padding_share", "target_padding_share"], "hf": ["tokens_per_s", "peak_gib"],
           "seq2seq": ["train_loss_last", "hypotheses", "sentences_per_s", "generate_in_bf16"],
           "el": list(EL_LINES)}
RATIOS = {"headline": {"ratio_fp16": ("ours_bart_base_fp16", "stock_bart_base_fp16"),
                       "ratio_bf16": ("ours_bart_base_bf16", "stock_bart_base_bf16")},
          "rest": {"ratio_ours_over_hf_bf16": ("ours_bart_base_bf16_short", "hf_bart_base_sdpa_bf16")}}


def missing_figures(text):
    """What a results JSON lacks: failed or skipped steps, absent figures, failed checks."""
    res = json.loads(text)
    missing = []
    for name, kind in res["plan"]:
        rec = res["steps"].get(name)
        if rec is None or "skipped" in rec or rec.get("rc") != 0:
            missing.append(f"{name}: {'not run' if rec is None else rec.get('skipped') or 'rc %s' % rec.get('rc')}")
            continue
        missing += [f"{name}: no {k}" for k in FIGURES[kind] if rec.get(k) is None]
        if kind == "train" and rec["side"] == "ours" and (rec["nan"] or not rec.get("loss_falls")):
            missing.append(f"{name}: loss check failed (nan {rec['nan']}, falls {rec.get('loss_falls')})")
        if kind == "train" and rec.get("updates_done") != rec.get("updates_asked"):
            missing.append(f"{name}: {rec.get('updates_done')} of {rec.get('updates_asked')} updates")
        if kind == "seq2seq" and not (rec["generate_in_bf16"] and rec["hypotheses"] > 0):
            missing.append(f"{name}: generation not in bf16 or no hypotheses")
    missing += [f"{r}: absent" for r in RATIOS[res["call"]] if res["ratios"].get(r) is None]
    return missing


class Outputs:
    """The results JSON, the summary log and the logs .tgz: rewritten after every step."""

    def __init__(self, args, start, budget):
        self.a, self.start = args, start
        self.steps_plan = plan(args.call, args.cpu)
        self.results = {"call": args.call, "mode": "cpu" if args.cpu else "gpu", "budget_s": budget,
                        "date": datetime.date.today().isoformat(), "python": platform.python_version(),
                        "plan": [(s.name, s.kind) for s in self.steps_plan], "steps": {}, "ratios": {},
                        "settings": {k: str(v) for k, v in vars(args).items()}, **machine(args.cpu)}
        self.lines = [f"{args.call} {self.results['mode']}: {self.results['card']}, torch {self.results['torch']} "
                      f"CUDA {self.results['cuda']}, budget {budget:.0f} s"]
        Path(args.out).mkdir(parents=True, exist_ok=True)
        self.write()

    def record(self, step, rec):
        rec = dict(rec, expected_gpu_s=round(step.gpu_expected_s), expected_source=step.source)
        self.results["steps"][step.name] = rec
        for ratio, (a, b) in RATIOS[self.a.call].items():
            ra, rb = self.results["steps"].get(a, {}), self.results["steps"].get(b, {})
            if ra.get("tokens_per_s") and rb.get("tokens_per_s"):
                self.results["ratios"][ratio] = round(ra["tokens_per_s"] / rb["tokens_per_s"], 3)
        self.lines.append(summary_line(step, rec, time.time() - self.start))
        print("== " + self.lines[-1], flush=True)
        self.write()

    def finish(self):
        self.results["elapsed_s"] = round(time.time() - self.start, 1)
        self.results["missing"] = missing_figures(json.dumps(self.results))
        self.lines.append(f"end: {self.results['elapsed_s']} s of {self.results['budget_s']:.0f}; "
                          f"ratios {json.dumps(self.results['ratios'])}; missing: {self.results['missing'] or 'none'}")
        print("== " + self.lines[-1], flush=True)
        self.write()

    def write(self):
        call, out, work = self.a.call, Path(self.a.out), Path(self.a.work)
        self.results["elapsed_s"] = round(time.time() - self.start, 1)
        text = json.dumps(self.results, indent=1) + "\n"
        tgz = work / f".{call}-logs.tgz"
        with tarfile.open(tgz, "w:gz") as tar:
            for log in sorted((work / "logs").glob("*.log")):
                tar.add(log, arcname=f"{call}-logs/{log.name}")
        # written in place (never a temporary file in $OUT: only these three files may be there)
        (out / f"{call}.json").write_text(text)
        (out / f"{call}.log").write_text("\n".join(self.lines) + "\n")
        shutil.copyfile(tgz, out / f"{call}-logs.tgz")
        card = re.sub(r"[^A-Za-z0-9]+", "-", self.results["card"]).strip("-").lower()
        copy = Path(self.a.results) / f"{self.results['mode']}-{call}-{card}-{self.results['date']}.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)


def summary_line(step, rec, elapsed):
    if "skipped" in rec:
        return f"{step.name}: SKIPPED ({rec['skipped']}) [{elapsed:.0f} s]"
    keys = [k for k in FIGURES[step.kind] + ["reused", "build_s", "loss_falls", "loss_scale_last", "generate_wall_s",
                                              "train_wall_s", "error"] if k in rec]
    figures = ", ".join(f"{k} {rec[k]}" for k in keys)
    return (f"{step.name}: rc {rec.get('rc')}, {rec.get('seconds')} s (cap {rec.get('cap_s')}, GPU expected "
            f"{step.gpu_expected_s:.0f}); {figures} [{elapsed:.0f} s]")


def machine(cpu):
    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not cpu else \
        f"CPU {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
    return {"card": card, "torch": torch.__version__, "cuda": torch.version.cuda}



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("call", choices=CALLS + ("plan",), help="which call to run (plan: print both plans and exit)")
    p.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU: rehearses every step")
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder with the shared datasets")
    p.add_argument("--wheels", default=str(REPO / ".whl"), help="the carried wheels and sdists (benchmarks/gpu_carry.sh)")
    p.add_argument("--sklearn-wheels", default=str(REPO / ".whl_sklearn"),
                   help="scikit-learn and its dependencies, installed only where the machine lacks scikit-learn")
    p.add_argument("--prefix", default=os.environ.get("GPU_PREFIX", "/tmp/biobart-gpu"),
                   help="where fairseq and the wheels are installed and the data made; reused by the next call "
                   "while it holds a finished install (env GPU_PREFIX)")
    p.add_argument("--no-install", action="store_true",
                   help="use this Python's own fairseq (a dev venv) instead of installing the carried wheels")
    p.add_argument("--work", default=None, help="scratch folder for per-step logs (default: a temporary one)")
    p.add_argument("--out", default=os.environ.get("OUT"),
                   help="folder for the three outputs (default: $OUT, the device tool's; else --work)")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results"),
                   help="a copy of the JSON goes here too (gpu-CALL-CARD-DATE.json)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="seconds this call may take from its start (default: 285 on a GPU, the sum of the CPU "
                   "caps with --cpu); each step's cap is cut to what is left")
    p.add_argument("--check", metavar="JSON", help="print the figures this results JSON lacks; exit 1 if any")
    args = p.parse_args(argv)
    args.work = args.work or tempfile.mkdtemp(prefix="gpu_pretrain.")
    args.out = args.out or args.work
    Path(args.work).mkdir(parents=True, exist_ok=True)
    return args


def print_plan(steps, cpu):
    total = sum(s.gpu_expected_s for s in steps)
    print(f"   {'step':28s} {'GPU exp. s':>10s} {'GPU cap s':>9s} {'CPU cap s':>9s}  source of the GPU estimate")
    for s in steps:
        print(f"   {s.name:28s} {s.gpu_expected_s:10.0f} {s.gpu_cap_s:9.0f} {s.cpu_cap_s:9.0f}  {s.source}")
    print(f"   {'total':28s} {total:10.0f} {sum(s.gpu_cap_s for s in steps):9.0f} "
          f"{sum(s.cpu_cap_s for s in steps):9.0f}")
    return total


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_padding"]:  # the padding step's own process (it imports fairseq)
        padding_probe(*argv[1:])
        return 0
    args = parse_args(argv)
    if args.check:
        missing = missing_figures(Path(args.check).read_text())
        print("\n".join(missing) if missing else "every figure present")
        return 1 if missing else 0
    if args.call == "plan":
        for call in CALLS:
            print(f"== {call}")
            print_plan(plan(call, cpu=False), cpu=False)
        return 0
    start = time.time()
    steps = plan(args.call, args.cpu)
    budget = args.budget_s or (sum(s.cpu_cap_s for s in steps) if args.cpu else 285.0)
    out = Outputs(args, start, budget)
    print(f"== {args.call}: {'CPU rehearsal (tiny sizes)' if args.cpu else 'GPU'}, budget {budget:.0f} s; "
          f"outputs in {args.out}", flush=True)
    print_plan(steps, args.cpu)
    ctx = {"args": args, "out": out}
    for step in steps:
        left = budget - (time.time() - start) - RESERVE_S
        cap = min(step.cpu_cap_s if args.cpu else step.gpu_cap_s, left)
        needs = step.needs(ctx)
        # a step that would not finish is skipped, leaving the time to the (cheaper) ones after it
        least = 10.0 if args.cpu else step.gpu_expected_s
        if needs:
            out.record(step, {"skipped": needs})
        elif cap < least:
            out.record(step, {"skipped": f"{left:.0f} s left of the budget, needs ~{least:.0f} s"})
        else:
            t0 = time.time()
            rec = STEP_KINDS[step.kind](step, ctx, cap)
            rec.update(seconds=round(time.time() - t0, 1), cap_s=round(cap, 1))
            out.record(step, rec)
    out.finish()
    shutil.rmtree(Path(args.work) / "scratch", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
