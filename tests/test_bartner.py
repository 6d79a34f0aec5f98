"""The bartner model, bartner_ner task and bartner_loss criterion together, on real sentences.

The tiny-model test trains with fairseq-train (through --user-dir) on 10 short real GENIA
sentences plus a real CADEC sentence with discontinuous entities, until greedy and beam
decoding reproduce every entity: model, criterion, targets and decoding fit together.
"""

import json
import os
import stat
import sys

import pytest
import torch

from conftest import REPO, SHARED_DATA, run
from biobart_fairseq.cli import prepare_ner
from biobart_fairseq.criterions import bartner_loss  # noqa: F401  (registers the criterion)
from biobart_fairseq.data import ner_formats
from biobart_fairseq.data.ner_targets import split_tuples
from biobart_fairseq.models import bartner  # noqa: F401  (registers the model)
from biobart_fairseq.tasks import bartner_ner  # noqa: F401  (registers the task)

GENIA = SHARED_DATA / "genia_nested_ner"
CADEC = SHARED_DATA / "cadec_discontinuous_sample"
TINY = ("--arch bartner_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2 "
        "--decoder-attention-heads 2").split()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    """A bartner_ner data folder: 10 short real GENIA sentences (with nesting) and a real
    CADEC sentence with discontinuous entities, as train and dev; sentencepiece BPE."""
    import sentencepiece as spm

    if not (GENIA / "dev.jsonlines").exists() or not (CADEC / "dev.txt").exists():
        pytest.skip(f"real NER data not found under {SHARED_DATA}")
    d = tmp_path_factory.mktemp("ner")
    genia = ner_formats.read(GENIA / "dev.jsonlines", "genia")
    with open(d / "text.txt", "w", encoding="utf-8") as f:
        for s in genia + ner_formats.read(CADEC / "dev.txt", "dai"):
            f.write(" ".join(s["tokens"]) + "\n")
    spm.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "spm"), vocab_size=1000,
                                   model_type="bpe", byte_fallback=True, minloglevel=2)
    sents = [s for s in genia if len(s["tokens"]) <= 22 and s["entities"]][:10]
    sents.append(ner_formats.read(CADEC / "dev.txt", "dai")[2])  # 11 ADR, 6 of them discontinuous
    assert any(len(e["spans"]) > 1 for s in sents for e in s["entities"])
    (d / "raw").mkdir()
    for split in ("train", "dev"):
        ner_formats.write(d / "raw" / f"{split}.jsonl", sents)
    out = d / "data"
    rc = prepare_ner.main(["--format", "jsonl", "--input", str(d / "raw" / "train.jsonl"), str(d / "raw" / "dev.jsonl"),
                           "-o", str(out), "--bpe", "sentencepiece", "--spm-model", str(d / "spm.model"), "--check"])
    assert rc == 0
    return out


def setup(data, *extra):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(data), "--task", "bartner_ner", "--criterion", "bartner_loss",
                                                "--cpu", *TINY, *extra])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    return task, task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def test_type_tokens_start_from_their_names(ner_data):
    task, model, _ = setup(ner_data)
    emb = model.decoder.embed_tokens.weight
    assert task.types == ["ADR", "DNA", "RNA", "cell_line", "protein"]  # ner.json, sorted
    i = task.types.index("cell_line")
    name_ids = task.encode_word("cell") + task.encode_word("line")
    assert task.type_name_ids[i] == name_ids and task.dictionary[task.type_token_ids[i]] == "<<cell_line>>"
    assert torch.allclose(emb[task.type_token_ids[i]], emb[name_ids].mean(0))

    # a plain BART checkpoint (no type rows, no pointer head) grows into this model, and the
    # type rows come from the checkpoint's own embeddings
    n_plain = len(task.dictionary) - len(task.types)
    assert min(task.type_token_ids) == n_plain  # type tokens are the last entries
    plain = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("pointer_head.")}
    loaded = torch.randn(n_plain, emb.size(1))
    for k in bartner.EMBED_KEYS:  # shared embeddings: one tensor under three names, as fairseq saves them
        plain[k] = loaded
    model.load_state_dict(plain)
    emb = model.decoder.embed_tokens.weight
    assert torch.equal(emb[:n_plain], loaded)
    assert torch.allclose(emb[task.type_token_ids[i]], loaded[name_ids].mean(0))


def test_decoder_inputs_and_masked_scores(ner_data):
    task, model, criterion = setup(ner_data)
    ds = (task.load_dataset("train"), task.datasets["train"])[1]
    sample = ds.collater([ds[i] for i in range(4)])
    net = sample["net_input"]
    src, lengths = net["src_tokens"], net["src_lengths"]
    off = len(task.types) + 2
    ids = model.decoder_ids(torch.tensor([[0, 1, 2, off + 3, -1]]).expand(1, -1), src[:1])
    assert ids.tolist() == [[task.dictionary.bos(), task.dictionary.eos(), task.type_token_ids[0], src[0, 3].item(),
                             task.dictionary.pad()]]
    model.eval()
    logits, _ = model(**net)
    assert logits.shape[-1] == off + src.size(1)
    assert torch.isinf(logits[..., 0]).all() and torch.isinf(logits[..., off]).all()  # sos, <s>
    for b in range(4):
        assert torch.isinf(logits[b, :, off + lengths[b] - 1:]).all()  # </s> and padding
        assert torch.isfinite(logits[b, :, off + 1: off + lengths[b] - 1]).all()
    loss, n, log = criterion(model, sample)
    assert n == int((sample["target"] >= 0).sum()) and torch.isfinite(loss)


@pytest.mark.parametrize("target_type", ["word", "span", "bpe"])
def test_decoding_emits_only_well_formed_targets(ner_data, target_type):
    """An untrained model still decodes only valid indices: every tuple is kept by BARTNER's
    scan, pointers sit on the right word boundaries, and nothing points outside the words."""
    task, model, _ = setup(ner_data, "--target-type", target_type)
    task.load_dataset("train")
    ds = task.datasets["train"]
    sample = ds.collater([ds[i] for i in (0, 1, 2, len(ds) - 1)])  # the last: CADEC, 53 words
    net = sample["net_input"]
    model.eval()
    for beam in (1, 3):
        seqs = model.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                              target_type=target_type, beam=beam, max_len_a=0.3)
        for seq, ex in zip(seqs, sample["ner_examples"]):
            body = seq[:-1] if seq and seq[-1] == 1 else seq
            assert 1 not in body and 0 not in body
            tuples = split_tuples(seq, len(task.types), target_type)
            closed = sum(len(p) + 1 for p, _ in tuples)
            assert all(i >= len(task.types) + 2 for i in body[closed:])  # only an unfinished tuple cut by the limit
            wp = ex["wp"]
            for ptrs, _ in tuples:
                if target_type == "word":
                    assert set(ptrs) <= set(wp.first)
                elif target_type == "span":
                    assert set(ptrs[::2]) <= set(wp.first) and set(ptrs[1::2]) <= set(wp.last)
                else:
                    assert set(ptrs) <= set(wp.word_of)
    # a tight length limit (BARTNER: 3 indices with sos, the last a forced eos): every sentence still
    # gets its best hypothesis, eos-ended within 2 indices
    seqs = model.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                          target_type=target_type, beam=2, max_len_a=0, max_len_b=3)
    assert all(seq and seq[-1] == 1 and len(seq) <= 2 for seq in seqs), seqs


def test_tiny_model_learns_real_entities_exactly(ner_data, tmp_path, capsys):
    save = tmp_path / "ckpt"
    cmd = ["fairseq-train", str(ner_data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "bartner_ner",
           "--target-type", "word", *TINY, "--dropout", "0", "--pointer-dropout", "0", "--criterion", "bartner_loss",
           "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "1e-2", "--lr-scheduler", "polynomial_decay",
           "--warmup-updates", "10", "--total-num-update", "80", "--max-update", "80", "--batch-size", "16",
           "--required-batch-size-multiple", "1", "--valid-subset", "dev", "--validate-interval", "40",
           "--save-interval", "80", "--max-len-a", "1.0", "--best-checkpoint-metric", "ner_f1",
           "--maximize-best-checkpoint-metric", "--no-epoch-checkpoints", "--cpu", "--num-workers", "0",
           "--seed", "1", "--save-dir", str(save), "--log-format", "simple", "--log-interval", "40", "--no-progress-bar"]
    n_gold = sum(len(s["entities"]) for s in ner_formats.read_jsonl(ner_data / "train.jsonl"))
    res = run(cmd, env={"OMP_NUM_THREADS": "1"})  # one thread: see one_thread
    assert res.returncode == 0, res.stdout[-3000:]
    valid = [line for line in res.stdout.splitlines() if "valid on 'dev'" in line]
    assert len(valid) == 2 and "| ner_f1 1 |" in valid[-1], "\n".join(valid)  # the task's own dev F1
    from biobart_fairseq.cli import ner_score

    for beam in ("1", "4"):  # greedy and beam search, through biobart-ner-score's predict-then-score mode
        rc = ner_score.main(["--checkpoint", str(save / "checkpoint_last.pt"), "--split", "train", "--beam", beam,
                             "--max-len-a", "1.0", "--pred-out", str(tmp_path / "pred.jsonl")])
        out = capsys.readouterr().out
        assert rc == 0, out
        scores = json.loads(out[out.index("{"):])
        assert scores["f1"] == 1.0 and scores["gold"] == n_gold, (beam, scores)
        pred = ner_formats.read_jsonl(tmp_path / "pred.jsonl")
        assert sum(len(e["spans"]) > 1 for s in pred for e in s["entities"]) == 6  # CADEC's discontinuous ADRs


FAKE_TRAIN = """#!/usr/bin/env bash
# Stands in for fairseq-train: records the recipe's arguments, one per line; trains nothing.
printf '%s\\n' "$@" > "$FAKE_ARGS"
"""


@pytest.mark.parametrize("dataset,target_type,lr,beam,len_a,mlp", [
    ("genia", "span", 2e-5, 1, 0.5, True), ("cadec", "word", 2e-5, 4, 1.6, True),
    ("share13", "word", 2e-5, 4, 0.6, False), ("share14", "word", 1e-5, 4, 0.6, True),
])
def test_recipes_have_bartner_settings(tmp_path, dataset, target_type, lr, beam, len_a, mlp):
    """Each recipe's fairseq-train command, parsed by fairseq's own parser, has BARTNER's settings."""
    from fairseq import options

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "fairseq-train"
    fake.write_text(FAKE_TRAIN)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"tokens": ["a"], "entities": []}\n' * 100)
    env = {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "DATA": str(data),
           "BART": str(tmp_path), "STAGES": "train", "SAVE_DIR": str(tmp_path / "save"), "PYTHON": sys.executable, "FAKE_ARGS": str(tmp_path / "args")}
    res = run(["bash", str(REPO / f"examples/ner_{dataset}/run.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    argv = (tmp_path / "args").read_text().splitlines()
    got = options.parse_args_and_arch(options.get_training_parser(), argv)
    assert (got.task, got.arch, got.criterion) == ("bartner_ner", "bartner_base", "bartner_loss")
    assert (got.target_type, got.lr, got.eval_beam, got.max_len_a) == (target_type, [lr], beam, len_a)
    assert got.no_pointer_mlp == (not mlp) and got.pointer_dropout == 0.3
    # 30 epochs of 100 sentences in batches of 16 = 7 x 30 updates, 1 % warm-up
    assert (got.max_epoch, got.batch_size, int(got.total_num_update), got.warmup_updates) == (30, 16, 210, 2)
    assert got.best_checkpoint_metric == "ner_f1" and got.maximize_best_checkpoint_metric
    assert got.finetune_from_model == str(tmp_path / "model.pt") and got.valid_subset == "dev"
    assert got.user_dir == str(REPO / "biobart_fairseq")
