"""The pretraining recipes: the paper-scale one passes fairseq's own argument parser with
the paper's numbers, and the tiny CPU one trains."""

import json
import os
import stat

from conftest import REPO, run

FAKE_TORCHRUN = """#!{python}
# Stands in for torchrun: checks the fairseq-train command it was given, runs nothing.
import json, sys
args = sys.argv[1:]
launcher = args[: args.index(next(a for a in args if a.endswith("fairseq-train")))]
train_args = args[len(launcher) + 1:]
from fairseq import options
import biobart_fairseq
parsed = options.parse_args_and_arch(options.get_training_parser(), train_args)
print(json.dumps({{"launcher": launcher, "task": parsed.task, "arch": parsed.arch, "lr": parsed.lr,
    "update_freq": parsed.update_freq, "max_tokens": parsed.max_tokens, "warmup": parsed.warmup_updates,
    "max_update": parsed.max_update, "world": parsed.distributed_world_size, "fp16": parsed.fp16,
    "bf16": parsed.bf16, "mask": parsed.mask, "lam": parsed.poisson_lambda, "permute": parsed.permute_sentences,
    "tokens": parsed.tokens_per_sample, "finetune_from": parsed.finetune_from_model}}))
"""


def fake_launcher(tmp_path):
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "torchrun"
    script.write_text(FAKE_TORCHRUN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def test_paper_pretraining_recipe(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), NNODES="2", GPUS_PER_NODE="8", MAX_TOKENS="8192")
    res = run(["bash", str(REPO / "examples/pretrain/pretrain.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["launcher"][:6] == ["--nnodes", "2", "--node_rank", "0", "--nproc_per_node", "8"]
    assert got["world"] == 16 and got["task"] == "biomed_denoising" and got["arch"] == "bart_base"
    # 2560 sequences x 512 tokens per update = 16 GPUs x 8192 tokens x 10
    assert got["update_freq"] == [10] and got["max_tokens"] == 8192
    assert got["lr"] == [1e-4] and got["max_update"] == 120000 and got["warmup"] == 2400
    assert got["fp16"] and (got["mask"], got["lam"], got["permute"], got["tokens"]) == (0.3, 3.0, 0, 512)
    assert got["finetune_from"] == str(tmp_path / "model.pt")


def test_ablation_recipe_switches_sentence_permutation(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), GPUS_PER_NODE="8", ARM="TI+SP", PRECISION="--bf16")
    res = run(["bash", str(REPO / "examples/pretrain/ablation_ti_sp.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["permute"] == 1 and got["max_update"] == 40000 and got["warmup"] == 800 and got["bf16"]


def test_tiny_cpu_recipe_trains(tmp_path, pubmed_bin):
    res = run(["bash", str(REPO / "examples/pretrain/tiny_cpu.sh"), str(pubmed_bin), str(tmp_path / "ckpt"),
               "--log-interval", "1"], env={"UPDATES": "12"})
    assert res.returncode == 0, res.stdout[-3000:]
    assert "num_updates=12" in res.stdout
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_slurm_recipe_launches_one_task_per_gpu(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    (tmp_path / "bin" / "torchrun").rename(tmp_path / "bin" / "srun")  # the same checker, as srun
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), SLURM_NTASKS="32", SLURM_SUBMIT_DIR=str(REPO))
    res = run(["bash", str(REPO / "examples/pretrain/slurm.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["world"] == 32 and got["update_freq"] == [5] and got["launcher"] == []
