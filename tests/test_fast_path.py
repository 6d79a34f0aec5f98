"""The fast training path (--arch biobart_*, --criterion fused_cross_entropy, --optimizer
torch_adamw) against stock fairseq BART, cross_entropy / label_smoothed_cross_entropy and adam,
with the same weights: logits, gradients, incremental decoding, beam search, losses on real
batches, checkpoints in both directions, and a few real training updates."""

import re

import pytest
import torch
from fairseq import checkpoint_utils, options
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
from fairseq.data import Dictionary
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.sequence_generator import SequenceGenerator
from fairseq.tasks.translation import TranslationTask

from biobart_fairseq.modules.linear_cross_entropy import linear_cross_entropy
from conftest import REPO, TINY_BART, run, tiny_train_cmd
from test_bartner import ner_data  # noqa: F401  (a fixture: real GENIA + CADEC sentences)

SMALL = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
         "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4",
         "--decoder-attention-heads", "4", "--dropout", "0", "--attention-dropout", "0"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny matrices: threads only add contention


def toy_dictionary(n=60):
    d = Dictionary()
    for i in range(n):
        d.add_symbol(f"w{i}")
    return d


def build(arch, dictionary, extra=SMALL):
    args = options.parse_args_and_arch(options.get_training_parser(),
                                       ["/nonexistent", "--task", "translation", "--arch", arch, *extra])
    return ARCH_MODEL_REGISTRY[arch].build_model(args, TranslationTask(args, dictionary, dictionary))


@pytest.fixture(scope="module")
def pair():
    """(dictionary, stock bart_base, biobart_base) with identical weights."""
    torch.manual_seed(0)
    d = toy_dictionary()
    stock, fast = build("bart_base", d), build("biobart_base", d)
    fast.load_state_dict(stock.state_dict())
    return d, stock, fast


def batch(d, bsz=4, src_len=11, tgt_len=8, seed=1):
    """Left-padded sources and right-padded targets of different lengths, as fairseq collates them."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, len(d), (bsz, src_len), generator=g)
    prev = torch.randint(4, len(d), (bsz, tgt_len), generator=g)
    for i in range(bsz):
        src[i, : 2 * i] = d.pad()
        if i:
            prev[i, tgt_len - i:] = d.pad()
    return src, src.ne(d.pad()).sum(1), prev


def parsed(arch, extra=()):
    return options.parse_args_and_arch(options.get_training_parser(),
                                       ["/nonexistent", "--task", "translation", "--arch", arch, *extra])


def test_same_parameter_names_shapes_and_hyperparameters():
    d = toy_dictionary()
    for stock_arch, fast_arch in (("bart_base", "biobart_base"), ("bart_large", "biobart_large")):
        a, b = vars(parsed(stock_arch)), vars(parsed(fast_arch))
        assert {k: v for k, v in a.items() if k != "arch"} == {k: v for k, v in b.items() if k != "arch"}
    # same hyper-parameters, so the same names and shapes at any size; checked on a small one
    stock, fast = build("bart_base", d), build("biobart_base", d)
    assert {k: v.shape for k, v in stock.state_dict().items()} == {k: v.shape for k, v in fast.state_dict().items()}
    assert len(fast.encoder.layers) == 2  # a size override still applies


def test_train_mode_logits_and_gradients_equal_stock(pair):
    d, stock, fast = pair
    src, lens, prev = batch(d)
    weights = torch.randn(prev.shape + (len(d),), generator=torch.Generator().manual_seed(3))
    grads = []
    for model in (stock, fast):
        model.train()
        model.zero_grad()
        logits, _ = model(src, lens, prev)
        (logits * weights).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        if model is stock:
            ref = logits.detach()
    assert (logits.detach() - ref).abs().max() <= 1e-5
    assert grads[0].keys() == grads[1].keys()
    worst = max((grads[0][n] - grads[1][n]).abs().max().item() for n in grads[0])
    assert worst <= 1e-5, worst


def test_incremental_decoding_equals_full_forward_and_stock(pair):
    d, stock, fast = pair
    src, lens, prev = batch(d)
    full = {}
    for name, model in (("stock", stock), ("fast", fast)):
        model.eval()
        with torch.no_grad():
            full[name], _ = model(src, lens, prev)
            enc = model.encoder(src, src_lengths=lens)
            state = {}
            steps = [model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)[0][:, -1]
                     for t in range(prev.size(1))]
        inc = torch.stack(steps, dim=1)
        keep = prev.ne(d.pad())
        assert (inc - full[name])[keep].abs().max() <= 1e-5, name
    assert (full["stock"] - full["fast"]).abs().max() <= 1e-5


def test_beam_search_same_hypotheses_and_scores(pair):
    """fairseq's SequenceGenerator with beam-shared cross-attention keys (set_beam_size)."""
    d, stock, fast = pair
    src, lens, _ = batch(d)
    sample = {"net_input": {"src_tokens": src, "src_lengths": lens}}
    outs = []
    for model in (stock, fast):
        model.eval()
        gen = SequenceGenerator([model], d, beam_size=3, max_len_b=9, min_len=2)
        with torch.no_grad():
            outs.append(gen.generate([model], sample))
        model.set_beam_size(1)  # the generator set beam-shared keys on the model; undo for the other tests
    for hyps_a, hyps_b in zip(*outs):
        assert [h["tokens"].tolist() for h in hyps_a] == [h["tokens"].tolist() for h in hyps_b]
        assert max(abs(a["score"].item() - b["score"].item()) for a, b in zip(hyps_a, hyps_b)) <= 1e-5


def test_eval_mode_alignment_weights_equal_stock(pair):
    d, stock, fast = pair
    src, lens, prev = batch(d)
    attn = []
    for model in (stock, fast):
        model.eval()
        with torch.no_grad():
            attn.append(model(src, lens, prev)[1]["attn"][0])
    assert attn[1] is not None and (attn[0] - attn[1]).abs().max() <= 1e-6


def reference_loss(logits, target, eps, pad):
    """fairseq's own label_smoothed_nll_loss on fp32 log-softmax (its criteria's computation)."""
    lprobs = torch.log_softmax(logits.float(), dim=-1)
    return label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), target.view(-1), eps, ignore_index=pad)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_linear_cross_entropy_value_and_gradients(eps):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=g, requires_grad=True)
    weight = torch.randn(50, 16, generator=g, requires_grad=True)
    target = torch.randint(0, 50, (37,), generator=g)
    loss, nll = linear_cross_entropy(hidden, weight, target, eps, chunk_rows=8)  # 5 chunks, the last one short
    (2.5 * loss).backward()
    got = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    ref_loss, ref_nll = reference_loss(hidden @ weight.t(), target, eps, pad=-100)
    (2.5 * ref_loss).backward()
    assert abs(loss.item() - ref_loss.item()) <= 1e-4 and abs(nll.item() - ref_nll.item()) <= 1e-4
    assert (got[0] - hidden.grad).abs().max() <= 1e-5 and (got[1] - weight.grad).abs().max() <= 1e-5


def test_linear_cross_entropy_in_bfloat16_tracks_fp32_reference():
    """What a GPU bf16 run computes: bf16 matmuls, fp32 softmax."""
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(64, 32, generator=g).bfloat16().requires_grad_()
    weight = (0.2 * torch.randn(300, 32, generator=g)).bfloat16().requires_grad_()
    target = torch.randint(0, 300, (64,), generator=g)
    loss, _ = linear_cross_entropy(hidden, weight, target, 0.1, chunk_rows=16)
    loss.backward()
    h32, w32 = hidden.detach().float().requires_grad_(), weight.detach().float().requires_grad_()
    ref, _ = reference_loss(h32 @ w32.t(), target, 0.1, pad=-100)
    ref.backward()
    assert hidden.grad.dtype == torch.bfloat16 and weight.grad.dtype == torch.bfloat16
    assert abs(loss.item() - ref.item()) / ref.item() < 1e-2
    assert (hidden.grad.float() - h32.grad).abs().max() < 2e-2 * h32.grad.abs().max()
    assert (weight.grad.float() - w32.grad).abs().max() < 2e-2 * w32.grad.abs().max()


@pytest.fixture(scope="module")
def denoising_setup(pubmed_bin):
    """The biomed_denoising task on the real abstracts and one of its training batches."""
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(pubmed_bin), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_denoising",
        "--tokens-per-sample", "128", *TINY_BART, "--dropout", "0", "--attention-dropout", "0",
        "--criterion", "cross_entropy", "--seed", "3"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("valid")
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(8)])
    return cfg, task, sample


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_fused_criterion_equals_stock_on_real_batches(denoising_setup, eps):
    from fairseq.criterions.cross_entropy import CrossEntropyCriterion
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

    from biobart_fairseq.criterions.fused_cross_entropy import FusedCrossEntropyCriterion

    cfg, task, sample = denoising_setup
    assert sample["target"].eq(task.dictionary.pad()).any(), "the batch should contain padding"
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    stock = (CrossEntropyCriterion(task, False) if eps == 0
             else LabelSmoothedCrossEntropyCriterion(task, False, eps))
    results = []
    for crit in (stock, FusedCrossEntropyCriterion(task, False, eps, chunk_rows=100)):
        model.zero_grad()
        loss, size, log = crit(model, sample)
        loss.backward()
        results.append((loss.item(), log.get("nll_loss", log["loss"]).item(), size,
                        {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l0, n0, s0, g0), (l1, n1, s1, g1) = results
    assert s0 == s1 == sample["ntokens"]
    assert abs(l0 - l1) <= 1e-5 * abs(l0) and abs(n0 - n1) <= 1e-5 * abs(n0)
    assert max((g0[n] - g1[n]).abs().max().item() for n in g0) <= 1e-5


TRAIN_LOSS = re.compile(r"\| train_inner \| .*?loss=([0-9.]+).*?num_updates=(\d+)")


def test_real_updates_give_the_same_losses_and_checkpoints_load_both_ways(pubmed_bin, tmp_path):
    """10 CPU updates of stock (bart_base + cross_entropy + adam) and of the fast path
    (biobart_base + fused_cross_entropy + torch_adamw) from the same seed; then the fast run's
    checkpoint continues as stock bart_base, and its weights give the same outputs in either."""
    common = ["--dropout", "0", "--attention-dropout", "0", "--disable-validation", "--no-epoch-checkpoints",
              "--adam-eps", "1e-6"]
    logs = {}
    for name, swap in (("stock", []), ("fast", ["--arch", "biobart_base", "--criterion", "fused_cross_entropy",
                                                 "--optimizer", "torch_adamw"])):
        res = run(tiny_train_cmd(pubmed_bin, tmp_path / name, *common, *swap, max_update=10))
        assert res.returncode == 0, res.stdout[-3000:]
        logs[name] = {int(u): float(l) for l, u in TRAIN_LOSS.findall(res.stdout)}
    assert sorted(logs["stock"]) == sorted(logs["fast"]) == list(range(1, 11))
    assert max(abs(logs["stock"][u] - logs["fast"][u]) for u in logs["stock"]) <= 0.02, logs
    assert logs["fast"][10] < logs["fast"][1]

    # (a stock checkpoint in biobart_base: test_hf_weights_run_on_biobart_and_convert_back)
    for src_name, arch in (("fast", "bart_base"),):
        ckpt = tmp_path / src_name / "checkpoint_last.pt"
        res = run(tiny_train_cmd(pubmed_bin, tmp_path / f"{src_name}_as_{arch}", *common, "--arch", arch,
                                 "--restore-file", str(ckpt), "--reset-optimizer", "--reset-dataloader",
                                 "--reset-meters", "--reset-lr-scheduler", max_update=3))
        assert res.returncode == 0, res.stdout[-3000:]
        assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt", res.stdout)
        first = {int(u): float(l) for l, u in TRAIN_LOSS.findall(res.stdout)}[1]
        # the same first batch as the fresh run's update 1, now with the trained weights
        assert first < logs[src_name][1] - 0.05, (first, logs[src_name])

    # the fast run's weights give the same outputs under either architecture
    path = str(tmp_path / "fast" / "checkpoint_last.pt")
    state = checkpoint_utils.load_checkpoint_to_cpu(path)
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([path])
    fast = models[0].eval()
    assert type(fast).__name__ == "BioBartModel"
    stock_args = state["cfg"]["model"]
    stock_args.arch = "bart_base"
    stock = ARCH_MODEL_REGISTRY["bart_base"].build_model(stock_args, task)
    stock.load_state_dict(state["model"])
    stock.eval()
    src, lens, prev = batch(task.dictionary, src_len=20, tgt_len=12)
    with torch.no_grad():
        assert (fast(src, lens, prev)[0] - stock(src, lens, prev)[0]).abs().max() <= 1e-5


FAKE_LAUNCHER = """#!{python}
# Stands in for torchrun: parses the fairseq-train command it was given with fairseq's parser.
import json, sys
args = sys.argv[1:]
args = args[next(i for i, a in enumerate(args) if a.endswith("fairseq-train")) + 1:]
from fairseq import options
import biobart_fairseq
p = options.parse_args_and_arch(options.get_training_parser(), args)
print(json.dumps({{"arch": p.arch, "criterion": p.criterion, "optimizer": p.optimizer, "lr": p.lr,
                   "betas": p.adam_betas, "wd": p.weight_decay}}))
"""


def test_pretrain_recipe_uses_the_fast_path_and_switches_back(tmp_path, pubmed_bin):
    import os
    import stat
    import sys

    launcher = tmp_path / "bin" / "torchrun"
    launcher.parent.mkdir()
    launcher.write_text(FAKE_LAUNCHER.format(python=sys.executable))
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    got = {}
    for fast in ("1", "0"):
        env = {"PATH": f"{launcher.parent}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
               "DATA": str(pubmed_bin), "BART": str(tmp_path), "GPUS_PER_NODE": "8", "FAST": fast, "ARCH": "bart_large"}
        res = run(["bash", str(REPO / "examples/pretrain/pretrain.sh")], env=env)
        assert res.returncode == 0, res.stdout[-2000:]
        got[fast] = __import__("json").loads(res.stdout.strip().splitlines()[-1])
    assert (got["1"]["arch"], got["1"]["criterion"], got["1"]["optimizer"]) == ("biobart_large", "fused_cross_entropy", "torch_adamw")
    assert (got["0"]["arch"], got["0"]["criterion"], got["0"]["optimizer"]) == ("bart_large", "cross_entropy", "adam")
    # the optimisation settings are the paper's on both paths
    for g in got.values():
        assert g["lr"] == [1e-4] and g["wd"] == 0.01 and eval(g["betas"]) == (0.9, 0.98)


def test_hf_weights_run_on_biobart_and_convert_back(tmp_path):
    """A Hugging Face BART converted with biobart-convert runs as --arch biobart_base with HF's
    logits, fine-tunes 2 updates on that arch, and the fine-tuned checkpoint converts
    fairseq -> HF -> fairseq bit for bit."""
    from test_convert import MERGE_TEXT, SHAPES, denoising_finetune, make_hf_model

    from biobart_fairseq.cli import convert
    from biobart_fairseq.convert.hf_bart import dims_from_hf_config, fairseq_arch_args

    hf_dir, out = tmp_path / "hf", tmp_path / "fs"
    hf_model, _ = make_hf_model(str(hf_dir), *SHAPES["d32_mask_safetensors"])
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf_dir), "--out-dir", str(out)]) == 0
    arch = fairseq_arch_args(dims_from_hf_config(__import__("json").loads((hf_dir / "config.json").read_text())))
    arch[arch.index("--arch") + 1] = "biobart_base"

    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(out / "model.pt")],
                                                                      arg_overrides={"data": str(out)})
    ours = ARCH_MODEL_REGISTRY["biobart_base"].build_model(cfg.model, task)
    ours.load_state_dict(models[0].state_dict())  # strict: every name and shape matches
    ours.eval()
    # right padding: HF counts positions from the first column, fairseq from the first non-pad token
    ids = torch.tensor([[0, 40, 41, 42, 43, 2], [0, 44, 45, 2, 1, 1]])
    hf_model.eval()
    with torch.no_grad():
        src_lens = ids.ne(1).sum(1)
        prev = torch.tensor([[2, 0, 40, 41], [2, 0, 44, 45]])
        ref = hf_model(input_ids=ids, attention_mask=ids.ne(1), decoder_input_ids=prev).logits
        got, _ = ours(ids, src_lens, prev)
    assert (got - ref).abs().max() <= 1e-4

    data, save = denoising_finetune(tmp_path, out, MERGE_TEXT * 2, arch)
    hf2, out2 = tmp_path / "hf2", tmp_path / "fs2"
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(save / "checkpoint_last.pt"), "--data-dir", str(data),
                         "--out-dir", str(hf2)]) == 0
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf2), "--out-dir", str(out2)]) == 0
    a = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(out2 / "model.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_linear_cross_entropy_fp16_applies_the_loss_scale_before_the_cast():
    """fp16 (recompute path): gradients equal the fp32 reference scaled by the loss scale, and
    probabilities far below fp16's smallest subnormal still contribute once scaled, as in
    stock fairseq where the scaled gradient of the fp32 log-softmax is cast to fp16."""
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(24, 16, generator=g)
    weight = 0.1 * torch.randn(400, 16, generator=g)
    hidden[:, 0] = 1.0
    weight[7] = 0.0
    weight[7, 0] = -12.0  # token 7: probability ~1.5e-8 in every row, below half of fp16's smallest subnormal
    target = torch.randint(0, 400, (24,), generator=g)
    target[target == 7] = 8
    h16, w16 = hidden.half().requires_grad_(), weight.half().requires_grad_()
    loss, _ = linear_cross_entropy(h16, w16, target, 0.0, chunk_rows=10)
    (loss * 2.0**10).backward()  # what FP16Optimizer does with its loss scale
    h32, w32 = h16.detach().float().requires_grad_(), w16.detach().float().requires_grad_()
    ref, _ = reference_loss(h32 @ w32.t(), target, 0.0, pad=-100)
    (ref * 2.0**10).backward()
    assert h16.grad.dtype == torch.float16 and torch.isfinite(h16.grad).all() and torch.isfinite(w16.grad).all()
    assert (h16.grad.float() - h32.grad).abs().max() <= 1e-2 * h32.grad.abs().max()
    assert (w16.grad.float() - w32.grad).abs().max() <= 1e-2 * w32.grad.abs().max()
    p7 = torch.softmax(h32.detach() @ w32.detach().t(), -1)[:, 7]
    assert p7.max() < 2.9e-8 and (p7 * 2.0**10).min() > 1e-5
    row7 = w32.grad[7]
    assert row7.abs().max() > 0 and (w16.grad[7].float() - row7).abs().max() <= 0.05 * row7.abs().max()


def test_bartner_runs_on_the_sdpa_layers(ner_data):
    """BARTNER (--sdpa-attention) with the stock model's weights: the same pointer scores in
    training mode, the same greedy and beam outputs from its incremental decoder."""
    from test_bartner_decode import real_sentences, train_briefly

    from biobart_fairseq.data.ner_dataset import NerDataset
    from test_bartner import setup

    task, stock, _ = setup(ner_data, "--dropout", "0", "--pointer-dropout", "0")
    _, fast, _ = setup(ner_data, "--dropout", "0", "--pointer-dropout", "0", "--sdpa-attention")
    assert type(fast.decoder.layers[0].self_attn).__name__ == "SdpaMultiheadAttention"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine
    train_briefly(task, stock, steps=10)  # a model whose outputs are not all alike
    fast.load_state_dict(stock.state_dict())
    examples = task.encode(real_sentences(task)[:12])
    ds = NerDataset(examples, task.dictionary.pad())
    sample = ds.collater([ds[i] for i in range(len(ds))])
    net = sample["net_input"]
    stock.train(), fast.train()
    a, b = stock(**net)[0], fast(**net)[0]
    finite = torch.isfinite(a)
    assert torch.equal(finite, torch.isfinite(b)) and (a[finite] - b[finite]).abs().max() <= 1e-4
    stock.eval(), fast.eval()
    for beam in (1, 2):
        outs = [m.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                           target_type="word", beam=beam, max_len_a=0.6, max_len_b=10) for m in (stock, fast)]
        assert outs[0] == outs[1], beam
    torch.set_num_threads(threads)
