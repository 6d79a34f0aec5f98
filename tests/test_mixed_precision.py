"""fp16 and bf16 training of the fast path (--arch biobart_base, --criterion fused_cross_entropy,
--optimizer torch_adamw) end to end through fairseq's Trainer and its FP16Optimizer /
MemoryEfficientFP16Optimizer on the real PubMed batches, against the same run in fp32; fairseq's
dynamic loss scaling on an overflow we provoke; and fairseq-generate --bf16 really in bf16.

A stand-in for the CUDA device (the `cpu_stands_in_for_cuda` fixture).  fairseq's fp16 code runs
on CPU tensors except in two places that ask CUDA for something this CPU-only torch cannot give:
``FP16Optimizer.build_fp32_params`` keys its flat fp32 copy by ``torch.cuda.current_device()``
(only a dict key: the copy itself is made with ``params[0].new(...)``, on the parameters' device;
the gradients are later gathered by ``p.device.index`` under the same key), and
``Trainer.train_step``'s overflow branch makes its zero gradient norm with
``torch.tensor(0.0).cuda()``.  The fixture makes ``current_device()`` return the parameters'
device index (``None``: ``torch.device("cpu").index``) and ``Tensor.cuda()`` return the tensor
unchanged, for these tests only; every other line is
fairseq's and the plugin's own code, on the CPU.
"""

import copy

import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer
from fairseq.trainer import Trainer

from biobart_fairseq import compat
from biobart_fairseq.optim.torch_adamw import AdamWFp32State
from conftest import REPO, TINY_BART

pytestmark = pytest.mark.usefixtures("one_thread")

UPDATES = 6
# Largest per-update difference from the fp32 run of the mean loss (base 2, per target token, as
# fairseq logs it, to 3 decimals; it starts near log2(len(dict)) = 10).  fp16 keeps 11 significant
# bits (relative rounding 2^-11 ~ 5e-4 per operation), bf16 8 bits (2^-8 ~ 4e-3); over these six
# updates the differences measured 0.001 (fp16, both optimizers) and 0.002 (bf16).  The bounds
# (10x and 15x those) stay well below the ~0.2 the loss falls by over the same updates, so a
# precision path that did not train (or trained differently) fails.
TOLERANCE = {"fp16": 0.01, "bf16": 0.03}
PRECISIONS = {
    "fp32": [],
    "fp16": ["--fp16"],
    "fp16_memory_efficient": ["--fp16", "--memory-efficient-fp16"],
    "bf16": ["--bf16"],
    "bf16_memory_efficient": ["--bf16", "--memory-efficient-bf16"],
}


@pytest.fixture
def cpu_stands_in_for_cuda(monkeypatch):
    """See the module docstring: the two CUDA calls in fairseq's fp16 path, answered on the CPU."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: torch.device("cpu").index)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)


def make_cfg(data, flags):
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_denoising", *TINY_BART,
        "--arch", "biobart_base", "--criterion", "fused_cross_entropy", "--optimizer", "torch_adamw",
        "--lr", "3e-3", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-6", "--clip-norm", "1.0",
        "--tokens-per-sample", "128", "--max-tokens", "1024", "--dropout", "0", "--attention-dropout", "0",
        "--cpu", "--seed", "1", "--fp16-init-scale", "128", *flags])
    cfg = convert_namespace_to_omegaconf(args)
    compat.undo_bf16_implied_tpu(cfg, argv=[])  # what the plugin does in fairseq-train's call_main
    return cfg


@pytest.fixture(scope="module")
def batches(pubmed_bin):
    """The same UPDATES real training batches for every run."""
    cfg = make_cfg(pubmed_bin, [])
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=1024, seed=1).next_epoch_itr(shuffle=False)
    return [next(itr) for _ in range(UPDATES)]


def trainer_for(data, flags):
    cfg = make_cfg(data, flags)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    return Trainer(cfg, task, model, task.build_criterion(cfg.criterion))


def train(trainer, batches):
    losses = []
    for sample in batches:
        log = trainer.train_step([copy.deepcopy(sample)])
        losses.append(float(log["loss"]))
    return losses


@pytest.fixture(scope="module")
def fp32_losses(pubmed_bin, batches):
    return train(trainer_for(pubmed_bin, []), batches)


@pytest.mark.parametrize("precision", ["fp16", "fp16_memory_efficient", "bf16", "bf16_memory_efficient"])
def test_half_precision_training_tracks_fp32(precision, pubmed_bin, batches, fp32_losses, cpu_stands_in_for_cuda):
    trainer = trainer_for(pubmed_bin, PRECISIONS[precision])
    dtype = torch.float16 if precision.startswith("fp16") else torch.bfloat16
    wrapper = MemoryEfficientFP16Optimizer if precision.endswith("efficient") else FP16Optimizer
    losses = train(trainer, batches)
    opt = trainer.optimizer
    assert type(opt) is wrapper
    assert {p.dtype for p in trainer.model.parameters()} == {dtype}
    if wrapper is FP16Optimizer:  # an fp32 master copy (fp16: one flat tensor; bf16: one per parameter)
        inner = opt.fp32_optimizer.optimizer
        masters = list(opt.fp32_params.values()) if isinstance(opt.fp32_params, dict) else opt.fp32_params
        assert len(masters) == (1 if dtype == torch.float16 else len(list(trainer.model.parameters())))
        assert type(inner) is torch.optim.AdamW and {t.dtype for t in masters} == {torch.float32}
    else:  # the fp16/bf16 parameters themselves, fp32 moments
        inner = opt.wrapped_optimizer.optimizer
        assert type(inner) is AdamWFp32State
        assert {s["exp_avg_sq"].dtype for s in inner.state.values()} == {torch.float32}
    assert (opt.scaler is None) == (dtype == torch.bfloat16)  # bf16 needs no loss scale
    assert trainer.get_num_updates() == UPDATES  # no overflow skipped any of them
    worst = max(abs(a - b) for a, b in zip(losses, fp32_losses))
    print(precision, "largest difference from fp32", worst)
    assert worst <= TOLERANCE[precision[:4]], (losses, fp32_losses)
    assert losses[-1] < losses[0] - 0.1 and fp32_losses[-1] < fp32_losses[0] - 0.1


@pytest.mark.parametrize("precision", ["fp16", "fp16_memory_efficient"])
def test_overflow_halves_the_scale_and_skips_the_update(precision, pubmed_bin, batches, cpu_stands_in_for_cuda):
    trainer = trainer_for(pubmed_bin, PRECISIONS[precision])
    train(trainer, batches[:2])
    scaler = trainer.optimizer.scaler
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    # a loss scale of 2^40 makes the fp16 gradients infinite: fairseq must detect it
    scaler.loss_scale = 2.0**40
    assert trainer.train_step([copy.deepcopy(batches[2])]) is None  # nothing to log: skipped
    assert scaler.loss_scale == 2.0**39
    assert trainer.get_num_updates() == 2
    assert all(torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    if precision == "fp16":  # the fp32 master copy is untouched too, and still equals the model
        flat = torch.cat([p.detach().float().view(-1) for p in trainer.model.parameters()])
        (master,) = trainer.optimizer.fp32_params.values()
        assert torch.equal(master.data.half().float(), flat)
    scaler.loss_scale = 128.0  # a workable scale again: the next update goes through
    assert trainer.train_step([copy.deepcopy(batches[3])]) is not None
    assert trainer.get_num_updates() == 3
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())


def test_fp32_state_adamw_equals_torch_adamw_rounded():
    """AdamWFp32State on bf16 parameters = torch's AdamW on fp32 copies, rounded to bf16 after each
    step (the reference is re-rounded too, so the two follow the same trajectory)."""
    g = torch.Generator().manual_seed(0)
    p32 = torch.randn(50, generator=g)
    p_half = p32.bfloat16().requires_grad_()
    ref = p_half.detach().float().requires_grad_()
    ours = AdamWFp32State([p_half], lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    theirs = torch.optim.AdamW([ref], lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    for _ in range(5):
        grad = 1e-3 * torch.randn(50, generator=g)  # small: their squares underflow in fp16
        p_half.grad, ref.grad = grad.bfloat16(), grad.bfloat16().float()
        ours.step()
        theirs.step()
        with torch.no_grad():
            ref.copy_(ref.bfloat16().float())
        assert torch.equal(p_half.detach().float(), ref.detach())
    assert not torch.equal(p_half.detach().float(), p32.bfloat16().float())  # it moved


def test_generate_bf16_runs_the_model_in_bf16(pubmed_bin, batches, tmp_path, capsys):
    """fairseq-generate --bf16 (in this process, so a forward hook can watch it): every linear
    layer of the biobart model computes in bf16; without --bf16 in fp32.  A training config
    (the hub's case: no --path) never casts."""
    from fairseq_cli import generate

    trainer = trainer_for(pubmed_bin, [])
    train(trainer, batches[:2])
    ckpt = tmp_path / "checkpoint.pt"
    trainer.consolidate_optimizer()  # what fairseq-train does before saving
    trainer.save_checkpoint(str(ckpt), {})
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(o.dtype) if isinstance(m, torch.nn.Linear) else None)
    dtypes = {}
    try:
        for flags in (["--bf16"], []):
            seen.clear()
            args = options.parse_args_and_arch(options.get_generation_parser(), [
                str(pubmed_bin), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_denoising",
                "--tokens-per-sample", "128", "--path", str(ckpt), "--gen-subset", "valid", "--beam", "2",
                "--max-len-b", "8", "--batch-size", "4", "--cpu", *flags])
            generate.main(args)
            dtypes[tuple(flags)] = set(seen)
            assert len(seen) > 100 and capsys.readouterr().out.count("\nH-") > 0
    finally:
        hook.remove()
    assert dtypes[("--bf16",)] == {torch.bfloat16} and dtypes[()] == {torch.float32}
    cfg = make_cfg(pubmed_bin, ["--bf16"])  # a training config: common_eval.path is None
    assert not compat.cast_for_bf16_inference(trainer.model, cfg)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
