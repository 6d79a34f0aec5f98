"""biobart-convert: HF BART <-> fairseq, on tiny random models with a real byte-level BPE.

The HF models are built here (random weights, several shapes) with a byte-level vocabulary
whose merges are learnt from biomedical sentences, so every test runs offline.
"""

import collections
import json
import os

import pytest

# the Rust tokenizer's thread pool and torch's OpenMP threads fight on small machines
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from conftest import REPO, SHARED_DATA, run

transformers = pytest.importorskip("transformers")
from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer  # noqa: E402

from biobart_fairseq import from_pretrained  # noqa: E402
from biobart_fairseq.cli import convert  # noqa: E402
from biobart_fairseq.convert.hf_bart import dims_from_hf_config, fairseq_arch_args  # noqa: E402

NCBI = SHARED_DATA / "ncbi_disease" / "test" / "NCBItestset_corpus.txt"
MERGE_TEXT = [
    "Mutations in the BRCA1 gene increase the risk of breast and ovarian cancer.",
    "The patients were treated with tamoxifen and the tumour response was assessed.",
    "Hereditary nonpolyposis colorectal cancer is caused by mismatch repair deficiency.",
    "Expression of the protein was reduced in patients with the disease.",
    "A missense mutation in exon 11 was identified in the affected family members.",
]
SHAPES = {
    # name: (d_model, enc layers, dec layers, heads, ffn, <mask> id, weights file, activation)
    # <mask> id: "last" (facebook/bart-*, BioBART), None (no <mask>), or "first" = id 4, the
    # layout of Hugging Face's tokenizer-training recipe (special_tokens=["<s>", "<pad>",
    # "</s>", "<unk>", "<mask>"]), where every byte symbol and merge comes after <mask>.
    "d32_mask_safetensors": (32, 2, 1, 4, 64, "last", "safetensors", "gelu"),
    "d16_nomask_bin": (16, 1, 2, 2, 48, None, "bin", "relu"),
    "d16_mask_id4_safetensors": (16, 1, 1, 2, 32, "first", "safetensors", "gelu"),
}


def learn_vocab(n_merges=150, with_mask="last"):
    """(vocab, merges): GPT-2 style byte-level BPE learnt from MERGE_TEXT, HF BART id layout
    with ``<mask>`` last (``with_mask="last"``), at id 4 (``"first"``) or absent (``None``)."""
    import regex
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    b2u = bytes_to_unicode()
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    words = collections.Counter()
    for line in MERGE_TEXT:
        for w in pat.findall(line):
            words[tuple(b2u[b] for b in w.encode("utf-8"))] += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    if with_mask == "first":
        vocab["<mask>"] = 4
    for ch in b2u.values():
        vocab[ch] = len(vocab)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab.setdefault(a + b, len(vocab))
        new = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == (a, b):
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    if with_mask == "last":
        vocab["<mask>"] = len(vocab)
    return vocab, merges


def make_hf_model(path, d, enc, dec, heads, ffn, with_mask, fmt, act, seed=0):
    vocab, merges = learn_vocab(with_mask=with_mask)
    cfg = BartConfig(
        vocab_size=len(vocab), d_model=d, encoder_layers=enc, decoder_layers=dec,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn,
        max_position_embeddings=512, activation_function=act, dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.1, scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        # non-trivial layer norms and biases, so a mis-mapped tensor shows in the outputs
        for p in model.parameters():
            p.normal_(0, 0.3)
    os.makedirs(path, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(path)  # safetensors: tied copies are stored once
    else:
        cfg.save_pretrained(path)  # an old-style .bin with every tied copy, like published BART
        torch.save(model.state_dict(), os.path.join(path, "pytorch_model.bin"))
    with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return model, vocab


@pytest.fixture(scope="module", params=list(SHAPES))
def converted(request, tmp_path_factory):
    """(hf_model, vocab, hf_dir, out_dir) for each shape, converted with the CLI."""
    base = tmp_path_factory.mktemp(request.param)
    hf_dir, out = base / "hf", base / "fs"
    model, vocab = make_hf_model(str(hf_dir), *SHAPES[request.param])
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf_dir), "--out-dir", str(out)]) == 0
    return model, vocab, hf_dir, out


def biomedical_sentences(n=12):
    if not NCBI.is_file():
        pytest.skip(f"NCBI disease corpus not found at {NCBI}")
    out = []
    for line in NCBI.read_text(encoding="utf-8").splitlines():
        parts = line.split("|", 2)
        if len(parts) == 3 and parts[1] in ("t", "a"):
            out.append(parts[2][:300])
        if len(out) >= n:
            break
    return out + ["5 µm β-catenin in IL-6–treated cells (p < 0.05) — n=12."]


@torch.no_grad()
def test_hf_to_fairseq_outputs_equal(converted):
    """Encoder states and decoder logits match HF's on right-padded random batches."""
    hf, vocab, _, out = converted
    fs = from_pretrained(str(out), "model.pt").model  # the hub is already in eval mode
    V = len(vocab)
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([11, 7, 4])
    src = torch.full((3, 11), 1)
    prev = torch.full((3, 9), 1)
    for b, n in enumerate(lengths.tolist()):
        src[b, : n - 1] = torch.randint(4, V - 1, (n - 1,), generator=g)
        src[b, n - 1] = 2
        m = max(2, n - 2)
        prev[b, 0] = 2
        prev[b, 1:m] = torch.randint(4, V - 1, (m - 1,), generator=g)
    src_mask, prev_mask = src.ne(1), prev.ne(1)

    hf_out = hf(input_ids=src, attention_mask=src_mask.long(), decoder_input_ids=prev)
    fs_enc = fs.encoder(src, src_lengths=lengths)["encoder_out"][0].transpose(0, 1)
    fs_logits = fs(src, lengths, prev)[0]
    enc_diff = (fs_enc - hf_out.encoder_last_hidden_state)[src_mask].abs().max().item()
    logit_diff = (fs_logits[..., :V] - hf_out.logits)[prev_mask].abs().max().item()
    print(f"max abs diff: encoder {enc_diff:.2e}, logits {logit_diff:.2e}")
    assert enc_diff <= 1e-5 and logit_diff <= 1e-5


def test_tokenization_equal(converted):
    """HF's BartTokenizer and fairseq's gpt2 BPE + dict.txt give the same ids on real abstracts."""
    _, _, hf_dir, out = converted
    tok = BartTokenizer.from_pretrained(str(hf_dir))
    hub = from_pretrained(str(out), "model.pt")
    for text in biomedical_sentences():
        assert hub.encode(text).tolist() == tok(text)["input_ids"], text
        assert hub.decode(hub.encode(text)) == text


# the model's computation does not depend on where <mask> sits: the id-4 layout skips this slow one
@pytest.mark.parametrize("converted", ["d32_mask_safetensors", "d16_nomask_bin"], indirect=True)
@torch.no_grad()
def test_greedy_generation_equal(converted):
    """20 greedy tokens: HF generate vs a greedy loop over the fairseq model.

    Conventions aligned: both decoders start from </s> (HF decoder_start_token_id=2, fairseq
    prev_output_tokens) and the first token is forced to <s> (HF forced_bos_token_id=0, the
    prefix fairseq's BART hub forces).  forced_eos is off so neither side alters step 20.
    """
    hf, _, hf_dir, out = converted
    hub = from_pretrained(str(out), "model.pt")
    fs = hub.model
    for text in biomedical_sentences(3):
        src = hub.encode(text)[:40].unsqueeze(0)
        ref = hf.generate(
            input_ids=src, attention_mask=torch.ones_like(src), num_beams=1, do_sample=False, max_new_tokens=20,
            min_length=0, forced_bos_token_id=0, forced_eos_token_id=None, no_repeat_ngram_size=0,
            decoder_start_token_id=2, pad_token_id=1, eos_token_id=2,
        )[0].tolist()
        prev = [2, 0]
        while len(prev) < 21 and prev[-1] != 2 or len(prev) == 2:
            logits = fs(src, torch.tensor([src.shape[1]]), torch.tensor([prev]))[0][0, -1, : hf.config.vocab_size]
            prev.append(int(logits.argmax()))
            if len(prev) >= 21:
                break
        ref = ref[: ref.index(2, 1) + 1] if 2 in ref[1:] else ref
        assert prev == ref, text


def test_checkpoint_layout_and_vocab_files(converted):
    _, vocab, _, out = converted
    for f in ("model.pt", "dict.txt", "encoder.json", "vocab.bpe", "bpe.json"):
        assert (out / f).is_file(), f
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=False)
    assert {"model", "cfg", "optimizer_history", "extra_state", "last_optimizer_state"} <= set(state)
    model_cfg = state["cfg"]["model"]  # an argparse Namespace for BART, as fairseq itself saves it
    assert state["cfg"]["task"]["_name"] == "biomed_denoising" and getattr(model_cfg, "arch").startswith("bart")
    # <mask> lands where HF has it (or right after the vocabulary when HF has none)
    hub = from_pretrained(str(out), "model.pt")
    d = hub.task.source_dictionary
    assert d.index("<mask>") == vocab.get("<mask>", len(vocab))
    assert len(d) == hub.model.encoder.embed_tokens.weight.shape[0]


def test_fairseq_hf_fairseq_roundtrip(converted, tmp_path):
    """model.pt -> HF -> model.pt: same keys, identical tensors; the HF folder loads offline."""
    _, vocab, hf_dir, out = converted
    hf2, out2 = tmp_path / "hf2", tmp_path / "fs2"
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(out / "model.pt"), "--data-dir", str(out),
                         "--out-dir", str(hf2)]) == 0
    BartForConditionalGeneration.from_pretrained(str(hf2))
    tok2 = BartTokenizer.from_pretrained(str(hf2))
    tok = BartTokenizer.from_pretrained(str(hf_dir))
    text = biomedical_sentences(2)[1]
    assert tok2(text)["input_ids"] == tok(text)["input_ids"]
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf2), "--out-dir", str(out2)]) == 0
    a = torch.load(out / "model.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(out2 / "model.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (out / "dict.txt").read_text() == (out2 / "dict.txt").read_text()


def _train(cmd_extra, data, save, out, max_update=2):
    return run([
        "fairseq-train", str(data), *cmd_extra, "--restore-file", str(out / "model.pt"), "--reset-optimizer",
        "--reset-dataloader", "--reset-meters", "--optimizer", "adam", "--lr", "1e-4", "--criterion", "cross_entropy",
        "--max-update", str(max_update), "--cpu", "--num-workers", "0", "--max-tokens", "512",
        "--required-batch-size-multiple", "1", "--save-dir", str(save), "--no-epoch-checkpoints",
        "--log-format", "simple", "--log-interval", "1", "--no-progress-bar", "--seed", "3",
    ])


def denoising_finetune(base, out, sents, arch):
    """GPT-2-binarize 10 sentences as documents (one sentence per line, blank line between
    documents) with the converted vocabulary and fine-tune model.pt 2 updates on
    biomed_denoising with the given arch flags; -> (data folder, save dir)."""
    from biobart_fairseq.cli import binarize

    text = base / "train.txt"
    text.write_text("\n".join(sents[:4]) + "\n\n" + "\n".join(sents[4:8]) + "\n")
    (base / "valid.txt").write_text("\n".join(sents[8:10]) + "\n")
    data = base / "bin"
    assert binarize.main(["--train", str(text), "--valid", str(base / "valid.txt"), "-o", str(data), "--bpe", "gpt2",
                          "--encoder-json", str(out / "encoder.json"), "--vocab-bpe", str(out / "vocab.bpe"),
                          "--dict", str(out / "dict.txt"), "--workers", "1"]) == 0
    save = base / "ck_dn"
    res = _train(["--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_denoising", *arch,
                  "--tokens-per-sample", "64"], data, save, out)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "num_updates 2" in res.stdout.replace("num_updates=", "num_updates ") or "| num_updates 2" in res.stdout
    return data, save


def test_converted_checkpoint_fine_tunes(tmp_path_factory):
    """fairseq-train --restore-file model.pt works for biomed_denoising and for translation;
    the fairseq-trained checkpoint then survives fairseq -> HF -> fairseq bit for bit."""
    base = tmp_path_factory.mktemp("finetune")
    hf_dir, out = base / "hf", base / "fs"
    make_hf_model(str(hf_dir), *SHAPES["d32_mask_safetensors"])
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf_dir), "--out-dir", str(out)]) == 0
    arch = fairseq_arch_args(dims_from_hf_config(json.loads((hf_dir / "config.json").read_text())))
    sents = biomedical_sentences(12) if NCBI.is_file() else MERGE_TEXT * 2

    data, save = denoising_finetune(base, out, sents, arch)

    # translation: BART's loader drops the <mask> row for a dictionary without <mask>
    hub = from_pretrained(str(out), "model.pt")
    raw = base / "mt"
    raw.mkdir()
    for split, lines in (("train", sents[:8]), ("valid", sents[8:10])):
        enc = [hub.bpe.encode(s) for s in lines]
        (raw / f"{split}.src").write_text("\n".join(enc) + "\n")
        (raw / f"{split}.tgt").write_text("\n".join(reversed(enc)) + "\n")
    mt = base / "mt_bin"
    res = run(["fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", str(raw / "train"),
               "--validpref", str(raw / "valid"), "--destdir", str(mt), "--srcdict", str(out / "dict.txt"),
               "--tgtdict", str(out / "dict.txt"), "--workers", "1"])
    assert res.returncode == 0, res.stdout[-3000:]
    res = _train(["--task", "translation", "--source-lang", "src", "--target-lang", "tgt", *arch],
                 mt, base / "ck_mt", out)
    assert res.returncode == 0, res.stdout[-3000:]

    # a checkpoint written by fairseq-train itself: fairseq -> HF -> fairseq is exact
    hf2, out2 = base / "hf2", base / "fs2"
    assert convert.main(["fairseq-to-hf", "--checkpoint", str(save / "checkpoint_last.pt"), "--data-dir", str(data),
                         "--out-dir", str(hf2)]) == 0
    assert convert.main(["hf-to-fairseq", "--hf-dir", str(hf2), "--out-dir", str(out2)]) == 0
    a = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(out2 / "model.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- errors: one line, naming the file or key, exit status 2 --------------------------------
@pytest.fixture(scope="module")
def small_hf(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "hf"
    make_hf_model(str(path), 16, 1, 1, 2, 32, "last", "bin", "gelu")
    return path


def _fails(capsys, argv, needle):
    assert convert.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_error_missing_config(small_hf, tmp_path, capsys):
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(small_hf, hf)
    (hf / "config.json").unlink()
    _fails(capsys, ["hf-to-fairseq", "--hf-dir", str(hf), "--out-dir", str(tmp_path / "o")], "config.json")


def test_error_unknown_weight_key(small_hf, tmp_path, capsys):
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(small_hf, hf)
    sd = torch.load(hf / "pytorch_model.bin", weights_only=True)
    sd["model.encoder.layers.0.adapter.weight"] = torch.zeros(2)
    torch.save(sd, hf / "pytorch_model.bin")
    _fails(capsys, ["hf-to-fairseq", "--hf-dir", str(hf), "--out-dir", str(tmp_path / "o")],
           "encoder.layers.0.adapter.weight")
    assert not (tmp_path / "o" / "model.pt").exists()


@pytest.mark.parametrize("key,value", [("normalize_before", True), ("scale_embedding", True),
                                       ("add_final_layer_norm", True), ("model_type", "mbart")])
def test_error_unsupported_config(small_hf, tmp_path, capsys, key, value):
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(small_hf, hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg[key] = value
    (hf / "config.json").write_text(json.dumps(cfg))
    _fails(capsys, ["hf-to-fairseq", "--hf-dir", str(hf), "--out-dir", str(tmp_path / "o")], key)


def test_error_not_gpt2_vocabulary(small_hf, tmp_path, capsys):
    """A vocabulary that is not byte-level BPE (like BioBART-v2's) is refused, naming vocab.json."""
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(small_hf, hf)
    vocab = json.loads((hf / "vocab.json").read_text())
    vocab = {("\u2581" + t if len(t) > 1 and not t.startswith("<") else t): i for t, i in vocab.items()}
    (hf / "vocab.json").write_text(json.dumps(vocab))
    _fails(capsys, ["hf-to-fairseq", "--hf-dir", str(hf), "--out-dir", str(tmp_path / "o")], "vocab.json")


def test_error_untied_lm_head(small_hf, tmp_path, capsys):
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(small_hf, hf)
    sd = torch.load(hf / "pytorch_model.bin", weights_only=True)
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1
    torch.save(sd, hf / "pytorch_model.bin")
    _fails(capsys, ["hf-to-fairseq", "--hf-dir", str(hf), "--out-dir", str(tmp_path / "o")], "lm_head.weight")


def test_help_documents_every_flag():
    for sub, flags in (("hf-to-fairseq", ["--hf-dir", "--out-dir"]),
                       ("fairseq-to-hf", ["--checkpoint", "--data-dir", "--out-dir"])):
        res = run(["biobart-convert", sub, "--help"])
        assert res.returncode == 0
        for f in flags:
            assert f in res.stdout
