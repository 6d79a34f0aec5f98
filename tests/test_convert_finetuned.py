"""biobart-convert fairseq-to-hf on a fine-tuned seq2seq checkpoint: HF generate() = fairseq-generate.

The model is fine-tuned as the recipes do (examples/seq2seq_common.sh): a BART in HF format (tiny,
random, with a byte-level BPE learnt from biomedical text) -> ``biobart-convert hf-to-fairseq`` ->
``biobart-prepare-seq2seq --dataset mediqa_qs`` on the real MeQSum / MEDIQA 2021 files (24 per
split) -> ``biobart-binarize-seq2seq --bpe gpt2`` -> ``fairseq-train --task biomed_translation``
-> ``fairseq-generate`` with a recipe's flags.  The export is then decoded by HF alone, with the
settings it wrote (generation_config.json), from the raw test questions through the exported
tokenizer, and must give fairseq's token ids and detokenised strings on every test input.
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

MEQSUM = SHARED_DATA / "meqsum" / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"
MEDIQA_QS = SHARED_DATA / "mediqa2021_qs"
TINY = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256)
ARCH = ("--arch bart_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2 "
        "--decoder-attention-heads 2").split()
# a recipe's decoding, as its results.json records it (beam 5 -> 3, lengths of MEDIQA-QS's SMALL=1 order)
DECODING = {"beam": 3, "lenpen": 1.0, "max_len_b": 48, "min_len": 3, "no_repeat_ngram_size": 3}

pytestmark = pytest.mark.usefixtures("one_thread")


def hf_bart(path):
    """A random HF BART (its default initialisation) with a byte-level BPE vocabulary."""
    from test_convert import learn_vocab
    from transformers import BartConfig, BartForConditionalGeneration

    vocab, merges = learn_vocab(n_merges=150, with_mask="last")
    torch.manual_seed(0)
    model = BartForConditionalGeneration(BartConfig(vocab_size=len(vocab), **TINY))
    model.save_pretrained(path)
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def fairseq_train(data, converted, save):
    res = run([
        "fairseq-train", str(data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_translation",
        "--source-lang", "source", "--target-lang", "target", *ARCH,
        "--restore-file", str(converted / "model.pt"), "--reset-optimizer", "--reset-dataloader", "--reset-meters",
        "--truncate-source", "--layernorm-embedding", "--share-all-embeddings", "--share-decoder-input-output-embed",
        "--max-source-positions", "256", "--max-target-positions", "256", "--required-batch-size-multiple", "1",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--dropout", "0.1",
        "--optimizer", "adam", "--lr", "3e-3", "--max-update", "150", "--batch-size", "8",
        "--disable-validation", "--save-dir", str(save), "--no-epoch-checkpoints", "--cpu", "--num-workers", "0",
        "--seed", "1", "--log-format", "simple", "--log-interval", "30",
    ])
    assert res.returncode == 0, res.stdout[-3000:]


def fairseq_generate(data, checkpoint):
    """{test id: (source text, hypothesis symbols, detokenised hypothesis)} from fairseq-generate
    with the recipe's flags (S- lines are detokenised, H- lines dictionary symbols)."""
    d = DECODING
    res = run([
        "fairseq-generate", str(data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_translation",
        "--source-lang", "source", "--target-lang", "target", "--path", str(checkpoint), "--gen-subset", "test",
        "--truncate-source", "--max-source-positions", "256", "--max-target-positions", "256",
        "--beam", str(d["beam"]), "--lenpen", str(d["lenpen"]), "--max-len-a", "0", "--max-len-b", str(d["max_len_b"]),
        "--min-len", str(d["min_len"]), "--no-repeat-ngram-size", str(d["no_repeat_ngram_size"]),
        "--required-batch-size-multiple", "1", "--batch-size", "8", "--bpe", "gpt2",
        "--gpt2-encoder-json", str(data / "encoder.json"), "--gpt2-vocab-bpe", str(data / "vocab.bpe"), "--cpu",
    ])
    assert res.returncode == 0, res.stdout[-3000:]
    out = {}
    for kind, i, rest in re.findall(r"^([SHD])-(\d+)\t(.*)$", res.stdout, re.M):
        out.setdefault(int(i), {})[kind] = rest.split("\t")[-1]
    return {i: (v["S"], v["H"].split(), v["D"]) for i, v in out.items()}


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    if not (MEQSUM.is_file() and MEDIQA_QS.is_dir()):
        pytest.skip(f"MeQSum / MEDIQA 2021 QS not found under {SHARED_DATA}")
    base = tmp_path_factory.mktemp("finetuned")
    hf_bart(base / "hf")
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(base / "hf"), "--out-dir", str(base / "bart")]) == 0
    prep, data, save = base / "prep", base / "data-bin", base / "checkpoints"
    assert prepare_seq2seq.main(["--dataset", "mediqa_qs", "--input", str(MEQSUM), str(MEDIQA_QS), "-o", str(prep),
                                 "--limit", "24"]) == 0
    bart = base / "bart"
    assert binarize_seq2seq.main(["--data-dir", str(prep), "-o", str(data), "--bpe", "gpt2", "--workers", "1",
                                  "--encoder-json", str(bart / "encoder.json"), "--vocab-bpe", str(bart / "vocab.bpe"),
                                  "--dict", str(bart / "dict.txt")]) == 0
    fairseq_train(data, bart, save)
    # what the recipe's write_results step records next to the checkpoint (only 'decoding' is read)
    (save / "results.json").write_text(json.dumps({"decoding": dict(DECODING, max_len_a=0)}))
    generated = fairseq_generate(data, save / "checkpoint_last.pt")
    # no --data-dir: the data folder recorded in the checkpoint; no decoding flags: results.json's
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(save / "checkpoint_last.pt"),
                         "--out-dir", str(base / "hf-finetuned")]) == 0
    return base, generated


@torch.no_grad()
def test_hf_generate_equals_fairseq_generate(finetuned):
    """Every test question, raw text -> exported tokenizer -> generate() with the exported settings:
    the binarized source ids (truncated to the 256 positions as --truncate-source does),
    fairseq-generate's output ids and detokenised output (with FairseqMaxLength, fairseq's rule at
    the length limit; HF's own forced </s> gives the same on every output shorter than the limit)."""
    from fairseq.data import Dictionary, data_utils
    from transformers import AutoTokenizer, BartForConditionalGeneration

    from biobart_fairseq.convert import FairseqMaxLength

    base, generated = finetuned
    hf_dir = base / "hf-finetuned"
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = BartForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    d = Dictionary.load(str(base / "data-bin" / "dict.target.txt"))
    binarized = data_utils.load_indexed_dataset(str(base / "data-bin" / "test.source-target.source"), d)
    questions = (base / "prep" / "test.source").read_text(encoding="utf-8").splitlines()
    assert sorted(generated) == list(range(24)) and len(questions) == 24
    lengths, stopped, truncated, plain = set(), 0, 0, 0
    for i, question in enumerate(questions):
        src_text, hyp_syms, detok = generated[i]
        ids = tok(question, truncation=True)["input_ids"]
        full = binarized[i].tolist()
        assert ids == (full[:255] + [d.eos()] if len(full) > 256 else full), i  # text </s>, no <s>
        assert tok.decode(ids[:-1]) == src_text  # what fairseq-generate decoded from
        truncated += len(full) > 256
        want = [d.index(s) for s in hyp_syms]
        # fairseq's end at the length limit (HF's forced </s> scores 0, fairseq's its log-probability)
        exact = model.generate(input_ids=torch.tensor([ids]), forced_eos_token_id=None,
                               logits_processor=[FairseqMaxLength(model.generation_config.max_length)])[0].tolist()
        text = _text(exact)
        assert exact[0] == 2 and text == want, (i, question)  # the decoder started from </s>, as fairseq's
        assert tok.decode(text) == detok
        if len(want) < DECODING["max_len_b"]:  # HF's own rule gives the same where no output is cut
            plain += _text(model.generate(input_ids=torch.tensor([ids]))[0].tolist()) == want
        lengths.add(len(text))
        stopped += len(text) < DECODING["max_len_b"]
    # the comparison covers outputs that ended by themselves and outputs the length limits shaped
    assert min(lengths) >= DECODING["min_len"] and max(lengths) <= DECODING["max_len_b"]
    assert len(lengths) > 1 and stopped > 0 and truncated > 0, (lengths, truncated)
    assert plain == stopped


def _text(out):
    """The text ids of an HF output: after the decoder start, up to the first </s>."""
    return out[1:out.index(2, 1)] if 2 in out[1:] else out[1:]


def test_generation_config_written(finetuned):
    """What the folder tells HF: decoding from results.json, the decoder start and no forced <s>
    (the fine-tuning targets carry none), the length conversion of docs/seq2seq.md."""
    base, _ = finetuned
    gen = json.loads((base / "hf-finetuned" / "generation_config.json").read_text())
    assert gen["num_beams"] == 3 and gen["no_repeat_ngram_size"] == 3 and gen["early_stopping"] is True
    assert gen["decoder_start_token_id"] == 2 and gen.get("forced_bos_token_id") is None
    assert gen["forced_eos_token_id"] == 2 and gen["max_length"] == 50 and gen["min_length"] == 4


def test_forced_bos_changes_the_output(finetuned, tmp_path):
    """--forced-bos yes puts <s> after the decoder start (what a pretrained BART needs): on this
    model, trained without it, the outputs change, which is why the default follows the data."""
    from transformers import AutoTokenizer, BartForConditionalGeneration

    base, generated = finetuned
    out = tmp_path / "hf"
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(base / "checkpoints" / "checkpoint_last.pt"),
                         "--data-dir", str(base / "data-bin"), "--out-dir", str(out), "--forced-bos", "yes",
                         "--beam", "1"]) == 0
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["forced_bos_token_id"] == 0 and gen["num_beams"] == 1 and gen["min_length"] == 4
    tok = AutoTokenizer.from_pretrained(str(out))
    model = BartForConditionalGeneration.from_pretrained(str(out)).eval()
    question = (base / "prep" / "test.source").read_text(encoding="utf-8").splitlines()[0]
    with torch.no_grad():
        ids = model.generate(**tok(question, return_tensors="pt"))[0].tolist()
    assert ids[:2] == [2, 0]


# --- errors: one line naming the file, exit 2 -------------------------------------------------
def _fails(capsys, argv, needle):
    assert convert.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("biobart-convert: error: ") and needle in err, err


def test_error_no_dictionary(finetuned, tmp_path, capsys):
    base, _ = finetuned
    data = tmp_path / "data-bin"
    shutil.copytree(base / "data-bin", data)
    for f in ("dict.source.txt", "dict.target.txt"):
        (data / f).unlink()
    _fails(capsys, ["fairseq-to-hf", "--checkpoint", str(base / "checkpoints" / "checkpoint_last.pt"),
                    "--data-dir", str(data), "--out-dir", str(tmp_path / "o")],
           f"{data}: neither dict.txt nor dict.source.txt/dict.target.txt")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("task", ["entity_linking", "bartner_ner"])
def test_error_not_a_seq2seq_checkpoint(finetuned, tmp_path, capsys, task):
    """The same weights saved as another task's checkpoint: refused, naming file and task."""
    base, _ = finetuned
    state = torch.load(base / "checkpoints" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    state["cfg"]["task"]["_name"] = task
    ck = tmp_path / "other.pt"
    torch.save(state, ck)
    _fails(capsys, ["fairseq-to-hf", "--checkpoint", str(ck), "--data-dir", str(base / "data-bin"),
                    "--out-dir", str(tmp_path / "o")], f"{ck}: a --task {task} checkpoint")


def test_error_training_data_gone(finetuned, tmp_path, capsys):
    """No --data-dir and the recorded data folder moved away: says so and asks for --data-dir."""
    base, _ = finetuned
    state = torch.load(base / "checkpoints" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    state["cfg"]["task"]["data"] = str(tmp_path / "moved")
    ck = tmp_path / "ck.pt"
    torch.save(state, ck)
    _fails(capsys, ["fairseq-to-hf", "--checkpoint", str(ck), "--out-dir", str(tmp_path / "o")], "--data-dir")


def test_error_sentencepiece_vocabulary(finetuned, tmp_path, capsys):
    """A model binarized with a sentencepiece BPE (SMALL=1 recipes) has no HF BART tokenizer: refused."""
    base, _ = finetuned
    data = tmp_path / "data-bin"
    shutil.copytree(base / "data-bin", data)
    (data / "spm.model").write_bytes(b"")
    (data / "bpe.json").write_text(json.dumps({"type": "sentencepiece", "model": "spm.model"}))
    _fails(capsys, ["fairseq-to-hf", "--checkpoint", str(base / "checkpoints" / "checkpoint_last.pt"),
                    "--data-dir", str(data), "--out-dir", str(tmp_path / "o")], "a sentencepiece BPE")
