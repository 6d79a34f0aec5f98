"""Real-size smoke: BART-base's vocabulary (a 50,265-entry GPT-2 byte-level BPE) and 1,024 positions,
with one narrow layer so that it stays cheap, through the seq2seq path a user takes:

HF BART folder -> ``biobart-convert hf-to-fairseq`` -> ``biobart-prepare-seq2seq`` (real MEDIQA 2021
MAS questions + answers, several longer than 1,024 tokens) -> ``biobart-binarize-seq2seq --bpe
gpt2`` -> 1 ``fairseq-train`` update (biomed_translation, as the recipes fine-tune) ->
``fairseq-generate`` -> ``biobart-convert fairseq-to-hf`` -> HF loads it and ``generate()`` gives
fairseq's outputs.  Size-dependent paths are all on it: the 50k dictionary files, the <mask> row
dropped by fine-tuning, 1,024 positions, truncation of over-long sources (counted in the test with
fairseq's own GPT-2 encoder and checked against stats.json and what the models are given).
"""

import json
import os
import re
import shutil

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from conftest import REPO, SHARED_DATA, run  # noqa: E402

transformers = pytest.importorskip("transformers")

from biobart_fairseq.cli import binarize_seq2seq, convert, prepare_seq2seq  # noqa: E402

MAS = SHARED_DATA / "mediqa2021_mas"
POSITIONS = 1024
NARROW = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
              encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=POSITIONS,
              # logits far apart: bart-base's 0.02 makes a 1-update model's 50k scores near ties that
              # float rounding (HF's attention vs fairseq's) may order either way
              init_std=0.5)
ARCH = ("--arch bart_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
        "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32 --encoder-attention-heads 2 "
        "--decoder-attention-heads 2").split()
GEN = ["--beam", "2", "--lenpen", "1.0", "--max-len-a", "0", "--max-len-b", "8", "--min-len", "2",
       "--no-repeat-ngram-size", "3"]

pytestmark = pytest.mark.usefixtures("one_thread")


def hf_bart_base_vocab(path, bpe):
    """A random HF BART with bart-base's vocabulary files (vocab.json = encoder.json, merges.txt)."""
    from transformers import BartConfig, BartForConditionalGeneration

    vocab = json.loads(open(bpe["encoder_json"], encoding="utf-8").read())
    torch.manual_seed(0)
    BartForConditionalGeneration(BartConfig(vocab_size=len(vocab), **NARROW)).save_pretrained(path)
    shutil.copyfile(bpe["encoder_json"], path / "vocab.json")
    shutil.copyfile(bpe["vocab_bpe"], path / "merges.txt")
    return len(vocab)


def fairseq_cmd(kind, data, *extra):
    return [kind, str(data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_translation",
            "--source-lang", "source", "--target-lang", "target", "--truncate-source",
            "--max-source-positions", str(POSITIONS), "--max-target-positions", str(POSITIONS),
            "--required-batch-size-multiple", "1", "--cpu", *extra]


@pytest.fixture(scope="module")
def real_size(gpt2_50k, tmp_path_factory):
    if not MAS.is_dir():
        pytest.skip(f"MEDIQA 2021 MAS not found at {MAS}")
    base = tmp_path_factory.mktemp("real_size")
    n_vocab = hf_bart_base_vocab(base / "hf", gpt2_50k)
    bart, prep, data, save = base / "bart", base / "prep", base / "data-bin", base / "checkpoints"
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(base / "hf"), "--out-dir", str(bart)]) == 0
    assert prepare_seq2seq.main(["--dataset", "mediqa_mas", "--input", str(MAS), "-o", str(prep),
                                 "--limit", "6"]) == 0
    for side in ("source", "target"):  # no MEDIQA-AnS here: validation stands in for training (as SMALL=1)
        shutil.copyfile(prep / f"valid.{side}", prep / f"train.{side}")
    assert binarize_seq2seq.main(["--data-dir", str(prep), "-o", str(data), "--bpe", "gpt2", "--workers", "1",
                                  "--encoder-json", str(bart / "encoder.json"), "--vocab-bpe", str(bart / "vocab.bpe"),
                                  "--dict", str(bart / "dict.txt")]) == 0
    res = run(fairseq_cmd(
        "fairseq-train", data, *ARCH, "--restore-file", str(bart / "model.pt"), "--reset-optimizer",
        "--reset-dataloader", "--reset-meters", "--layernorm-embedding", "--share-all-embeddings",
        "--share-decoder-input-output-embed", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing",
        "0.1", "--optimizer", "adam", "--lr", "5e-5", "--max-update", "1", "--batch-size", "6", "--max-tokens",
        "8192", "--disable-validation", "--save-dir", str(save), "--no-epoch-checkpoints", "--num-workers", "0",
        "--seed", "1", "--log-format", "simple", "--log-interval", "1"))
    assert res.returncode == 0, res.stdout[-3000:]
    assert "num_updates 1" in res.stdout, res.stdout[-2000:]
    gen = run(fairseq_cmd("fairseq-generate", data, "--path", str(save / "checkpoint_last.pt"), "--gen-subset",
                          "test", *GEN, "--batch-size", "6", "--bpe", "gpt2", "--gpt2-encoder-json",
                          str(data / "encoder.json"), "--gpt2-vocab-bpe", str(data / "vocab.bpe")))
    assert gen.returncode == 0, gen.stdout[-3000:]
    hf_out = base / "hf-finetuned"
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(save / "checkpoint_last.pt"), "--out-dir", str(hf_out),
                         "--beam", "2", "--max-len-b", "8", "--min-len", "2", "--no-repeat-ngram-size", "3"]) == 0
    return dict(base=base, prep=prep, data=data, hf=hf_out, n_vocab=n_vocab, generate=gen.stdout, bpe=gpt2_50k)


def fairseq_lengths(real_size, split):
    """Positions of each source as fairseq reads it (GPT-2 ids + </s>), with fairseq's own encoder."""
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    enc = get_encoder(real_size["bpe"]["encoder_json"], real_size["bpe"]["vocab_bpe"])
    lines = (real_size["prep"] / f"{split}.source").read_text(encoding="utf-8").splitlines()
    return [len(enc.encode(line)) + 1 for line in lines]


def test_truncation_counted(real_size):
    """stats.json's over-length counts = those fairseq's encoder gives; some test sources are cut."""
    stats = json.loads((real_size["data"] / "stats.json").read_text())
    for split in ("train", "valid", "test"):
        lengths = fairseq_lengths(real_size, split)
        rec = stats["truncated"][split]
        assert rec["source"] == sum(n > POSITIONS for n in lengths) and rec["longest_source"] == max(lengths), split
    assert stats["truncated"]["test"]["source"] > 0


def test_dictionary_and_positions(real_size):
    """bart-base's 50,265 ids; fine-tuning's dictionary has no <mask>, so the exported model has one row
    fewer, and every token keeps its id; 1,024 positions on both sides."""
    from transformers import AutoConfig

    data = real_size["data"]
    assert real_size["n_vocab"] == 50265
    lines = (data / "dict.source.txt").read_text(encoding="utf-8").splitlines()
    assert (data / "dict.target.txt").read_text(encoding="utf-8").splitlines() == lines
    cfg = AutoConfig.from_pretrained(str(real_size["hf"]))
    assert cfg.vocab_size == len(lines) + 4 == 50264 and cfg.max_position_embeddings == POSITIONS
    vocab = json.loads((real_size["hf"] / "vocab.json").read_text(encoding="utf-8"))
    bart = json.loads(open(real_size["bpe"]["encoder_json"], encoding="utf-8").read())
    assert vocab == {t: i for t, i in bart.items() if t != "<mask>"}


@torch.no_grad()
def test_hf_generates_as_fairseq(real_size):
    """HF loads the export and, from the raw test sources (truncated by the tokenizer to 1,024 positions),
    generates fairseq-generate's outputs; the over-long sources are those fairseq cut."""
    from fairseq.data import Dictionary
    from transformers import AutoTokenizer, BartForConditionalGeneration

    from biobart_fairseq.convert import FairseqMaxLength

    d = Dictionary.load(str(real_size["data"] / "dict.target.txt"))
    tok = AutoTokenizer.from_pretrained(str(real_size["hf"]))
    model = BartForConditionalGeneration.from_pretrained(str(real_size["hf"])).eval()
    hyps = {int(i): h for i, h in re.findall(r"^H-(\d+)\t\S+\t(.*)$", real_size["generate"], re.M)}
    sources = {int(i): s for i, s in re.findall(r"^S-(\d+)\t(.*)$", real_size["generate"], re.M)}
    lengths = fairseq_lengths(real_size, "test")
    questions = (real_size["prep"] / "test.source").read_text(encoding="utf-8").splitlines()
    assert sorted(hyps) == list(range(len(questions)))
    for i, question in enumerate(questions):
        ids = tok(question, truncation=True)["input_ids"]
        assert len(ids) == min(lengths[i], POSITIONS) and ids[-1] == 2, i
        assert tok.decode(ids[:-1]) == sources[i]  # fairseq's (truncated) source
        # fairseq's end at the length limit (HF's forced </s> would score 0; the outputs here all reach it)
        out = model.generate(input_ids=torch.tensor([ids]), forced_eos_token_id=None,
                             logits_processor=[FairseqMaxLength(model.generation_config.max_length)])[0].tolist()
        text = out[1:out.index(2, 1)] if 2 in out[1:] else out[1:]
        assert text == [d.index(sym) for sym in hyps[i].split()], i
