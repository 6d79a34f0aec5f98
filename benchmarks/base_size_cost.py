"""What seq2seq fine-tuning costs at BART-base size on this machine's CPU: peak RSS and seconds per
update per recipe kind, and the size of a checkpoint with and without optimizer state.

    python benchmarks/base_size_cost.py [--updates 2] [--kinds questions,dialogue,documents] [--threads N]

The model is fairseq's ``bart_base`` (6+6 layers, 768 wide, 1,024 positions) over a 50,265-symbol
dictionary (BART's: 50,260 GPT-2 ids + fairseq's 4 specials + ``<mask>``; synthetic symbols, as
only the size matters), trained as the recipes train it (examples/seq2seq_common.sh): the
translation task, label-smoothed cross-entropy, Adam, fp32 on CPU, one batch of the recipes'
``--max-tokens 2048 --batch-size 16`` per update, through fairseq's own ``Trainer`` (its
train_step and save_checkpoint).  Batch shapes per kind, each 2,048 source tokens as fairseq's
batching fills them:

* ``questions`` (MeQSum, MEDIQA-QS, iCliniq, HealthCareMagic): 16 x 128 source, 16 x 32 target;
* ``dialogue`` (CovidDialog): 4 x 512 source, 4 x 100 target;
* ``documents`` (MEDIQA-MAS, MEDIQA-AnS: sources cut at 1,024): 2 x 1,024 source, 2 x 128 target.

Each kind runs in its own process (its own peak RSS); the first update is not timed (it allocates
Adam's moments).  The checkpoint is the one fairseq writes after these updates, then stripped by
biobart_fairseq.checkpoints.strip_optimizer_state as the recipes do once training ends.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

KINDS = {
    "questions": (16, 128, 32, "MeQSum, MEDIQA-QS, iCliniq, HealthCareMagic"),
    "dialogue": (4, 512, 100, "CovidDialog"),
    "documents": (2, 1024, 128, "MEDIQA-MAS, MEDIQA-AnS"),
}
VOCAB = 50265


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    import torch

    return (f"{model}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} thread(s); "
            f"Python {platform.python_version()}")


def build(folder, threads):
    """(trainer, task) for bart_base over a 50,265-symbol dictionary, as the recipes train it."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    torch.set_num_threads(threads)
    with open(os.path.join(folder, "dict.source.txt"), "w") as f:
        f.writelines(f"{i} 1\n" for i in range(4, VOCAB - 1))  # ids 4..50263; the task adds nothing, we add <mask>
    os.symlink("dict.source.txt", os.path.join(folder, "dict.target.txt"))
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        folder, "--task", "translation", "--source-lang", "source", "--target-lang", "target", "--arch", "bart_base",
        "--share-all-embeddings", "--share-decoder-input-output-embed", "--layernorm-embedding",
        "--max-source-positions", "1024", "--max-target-positions", "1024", "--criterion",
        "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--dropout", "0.1", "--attention-dropout", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.999)", "--adam-eps", "1e-08", "--weight-decay", "0.01",
        "--clip-norm", "0.1", "--lr", "5e-5", "--lr-scheduler", "polynomial_decay", "--total-num-update", "100",
        "--warmup-updates", "6", "--max-tokens", "2048", "--cpu", "--save-dir", folder, "--num-workers", "0"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    for d in {id(task.src_dict): task.src_dict, id(task.tgt_dict): task.tgt_dict}.values():
        d.add_symbol("<mask>")  # BART's dictionary: 50,265 rows
    assert len(task.src_dict) == VOCAB, len(task.src_dict)
    model = task.build_model(cfg.model)
    return Trainer(cfg, task, model, task.build_criterion(cfg.criterion)), task


def batch(task, bsz, src_len, tgt_len, seed):
    """A padded-free training batch of random in-vocabulary tokens (ending in </s>)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    d = task.src_dict
    src = torch.randint(d.nspecial, len(d) - 1, (bsz, src_len), generator=g)
    tgt = torch.randint(d.nspecial, len(d) - 1, (bsz, tgt_len), generator=g)
    src[:, -1] = tgt[:, -1] = d.eos()
    prev = torch.cat([tgt[:, -1:], tgt[:, :-1]], dim=1)  # </s> first: fairseq's input feeding
    return {"id": torch.arange(bsz), "nsentences": bsz, "ntokens": bsz * tgt_len, "target": tgt,
            "net_input": {"src_tokens": src, "src_lengths": torch.full((bsz,), src_len), "prev_output_tokens": prev}}


def one(kind, updates, threads, save):
    """Run ``updates`` updates of one kind in this process; print its figures as one JSON line."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import biobart_fairseq  # noqa: F401  (registers the plugin; compat workarounds)
    from biobart_fairseq.checkpoints import strip_optimizer_state

    bsz, src_len, tgt_len, _ = KINDS[kind]
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        trainer, task = build(folder, threads)
        params = sum(p.numel() for p in trainer.model.parameters())
        built = time.perf_counter() - t0
        seconds = []
        for i in range(updates):
            t = time.perf_counter()
            trainer.train_step([batch(task, bsz, src_len, tgt_len, i)])
            seconds.append(time.perf_counter() - t)
        out = {"kind": kind, "params": params, "build_s": round(built, 1), "update_s": [round(s, 1) for s in seconds],
               "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
        if save:
            path = os.path.join(folder, "checkpoint_last.pt")
            trainer.consolidate_optimizer()  # what fairseq's checkpoint_utils.save_checkpoint calls first
            trainer.save_checkpoint(path, {"train_iterator": {"epoch": 1}, "previous_training_time": 0})
            full, stripped = strip_optimizer_state(path, os.path.join(folder, "stripped.pt"))
            out.update(checkpoint_bytes=full, stripped_bytes=stripped)
    print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=2, help="updates per kind; the first is not timed (default: 2)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds (default: all)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)),
                   help="torch threads (default: OMP_NUM_THREADS, else 1)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one kind in this process
    p.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        return one(a.one, a.updates, a.threads, a.save)
    import torch

    torch.set_num_threads(a.threads)
    print(f"machine: {machine()}")
    rows = []
    for i, kind in enumerate(a.kinds.split(",")):
        cmd = [sys.executable, os.path.abspath(__file__), "--one", kind, "--updates", str(a.updates),
               "--threads", str(a.threads)] + (["--save"] if i == 0 else [])
        res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        if res.returncode != 0:
            sys.exit(f"{kind}: failed\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    report(rows)


def report(rows):
    params = rows[0]["params"]
    print(f"bart_base, {VOCAB:,} symbols, 1,024 positions: {params:,} parameters = {params * 4 / 1e9:.3f} GB in fp32")
    print(f"{'kind':<10} {'batch (src x tgt)':<20} {'s/update':>9} {'peak RSS GiB':>13}  recipes")
    for r in rows:
        bsz, s, t, recipes = KINDS[r["kind"]]
        timed = r["update_s"][1:] or r["update_s"]
        print(f"{r['kind']:<10} {f'{bsz} x {s} / {bsz} x {t}':<20} {sum(timed) / len(timed):>9.1f} "
              f"{r['peak_rss_gib']:>13.2f}  {recipes}")
    first = rows[0]
    if "checkpoint_bytes" in first:
        print(f"checkpoint after training (fairseq, with Adam state): {first['checkpoint_bytes'] / 1e9:.3f} GB; "
              f"without optimizer state: {first['stripped_bytes'] / 1e9:.3f} GB")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
