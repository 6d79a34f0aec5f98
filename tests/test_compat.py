"""Each workaround in biobart_fairseq.compat, shown to be needed (the stock path fails)
and shown to work (the same thing succeeds with the plugin)."""

import sys
from types import SimpleNamespace

from biobart_fairseq import compat
from conftest import REPO, TINY_BART, run

PLUGIN = str(REPO / "biobart_fairseq")

LOAD_CHECKPOINT = """
import os, sys
os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # as if the user never set it
{prelude}
from fairseq import checkpoint_utils
state = checkpoint_utils.load_checkpoint_to_cpu(sys.argv[1])
print("LOADED", state["cfg"]["task"]["_name"])
"""


def test_weights_only_workaround(tiny_run):
    ckpt = str(tiny_run[0] / "checkpoint_last.pt")  # a real fairseq checkpoint
    stock = run([sys.executable, "-c", LOAD_CHECKPOINT.format(prelude=""), ckpt])
    assert stock.returncode != 0 and "Weights only load failed" in stock.stdout
    fixed = run([sys.executable, "-c", LOAD_CHECKPOINT.format(prelude="import biobart_fairseq"), ckpt])
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert "LOADED biomed_denoising" in fixed.stdout


def bf16_train(data, save_dir, user_dir):
    cmd = ["fairseq-train", str(data), "--task", "biomed_denoising" if user_dir else "denoising",
           *TINY_BART, "--memory-efficient-bf16", "--cpu", "--max-update", "2", "--max-tokens", "1024",
           "--optimizer", "adam", "--lr", "1e-4", "--criterion", "cross_entropy", "--tokens-per-sample", "128",
           "--save-dir", str(save_dir), "--no-epoch-checkpoints", "--disable-validation", "--num-workers", "0"]
    if user_dir:
        cmd += ["--user-dir", PLUGIN]
    return run(cmd)


def test_bf16_no_longer_requires_a_tpu(pubmed_bin, tmp_path):
    stock = bf16_train(pubmed_bin, tmp_path / "stock", user_dir=False)
    assert stock.returncode != 0 and "xla_device" in stock.stdout
    fixed = bf16_train(pubmed_bin, tmp_path / "fixed", user_dir=True)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert "running bf16 on CPU instead of TPU" in fixed.stdout
    import torch

    state = torch.load(tmp_path / "fixed" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    common = state["cfg"]["common"]
    assert common["bf16"] and common["memory_efficient_bf16"] and not common["tpu"]
    assert state["optimizer_history"][-1]["num_updates"] == 2


def _cfg(bf16=True, tpu=True):
    common = SimpleNamespace(bf16=bf16, memory_efficient_bf16=False, tpu=tpu, cpu=False)
    return SimpleNamespace(common=common, distributed_training=SimpleNamespace(tpu=tpu),
                           optimizer=SimpleNamespace(tpu=tpu))


def test_bf16_fix_leaves_real_tpu_requests_alone():
    cfg = _cfg()
    assert compat.undo_bf16_implied_tpu(cfg, argv=["fairseq-train", "--bf16"])
    assert not cfg.common.tpu and not cfg.distributed_training.tpu and not cfg.optimizer.tpu
    cfg = _cfg()
    assert not compat.undo_bf16_implied_tpu(cfg, argv=["fairseq-train", "--bf16", "--tpu"])
    assert cfg.common.tpu
    cfg = _cfg(bf16=False)
    assert not compat.undo_bf16_implied_tpu(cfg, argv=["fairseq-train", "--tpu"])
    assert cfg.common.tpu


def test_fp16_and_bf16_flags_parse_with_the_plugin(pubmed_bin):
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    for flag in ("--fp16", "--bf16"):
        args = options.parse_args_and_arch(
            options.get_training_parser(),
            [str(pubmed_bin), "--task", "biomed_denoising", "--user-dir", PLUGIN, *TINY_BART, flag],
        )
        cfg = convert_namespace_to_omegaconf(args)
        if flag == "--bf16":
            assert cfg.common.tpu  # what fairseq does ...
            assert compat.undo_bf16_implied_tpu(cfg, argv=[flag]) and not cfg.common.tpu  # ... and our fix
        else:
            assert cfg.common.fp16 and not cfg.common.tpu
