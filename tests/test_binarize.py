"""biobart-binarize: both BPEs, blank document separators kept, text recoverable."""

import json

import pytest
from fairseq.data import Dictionary, data_utils
from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode, get_encoder

from biobart_fairseq.cli import binarize

DOCS = [
    ["Aspirin inhibits platelet aggregation.", "The cell count fell."],
    ["Cell death was measured.", "It rose in 2 of 5 cell lines.", "Cells were fixed."],
]


def write_docs(path, docs):
    path.write_text("".join("\n".join(d) + "\n\n" for d in docs), encoding="utf-8")


def read_lines(out, split):
    d = Dictionary.load(str(out / "dict.txt"))
    ds = data_utils.load_indexed_dataset(str(out / split), d, "mmap")
    return d, [ds[i].tolist() for i in range(len(ds))]


def tiny_gpt2_files(tmp_path):
    """A real byte-level BPE (all 256 byte symbols plus a few merges) in GPT-2's file format."""
    symbols = list(bytes_to_unicode().values())
    merges = [("Ġ", "c"), ("Ġc", "e"), ("Ġce", "l"), ("Ġcel", "l"), ("C", "e"), ("Ce", "l"), ("Cel", "l")]
    vocab = symbols + ["".join(m) for m in merges]
    (tmp_path / "encoder.json").write_text(json.dumps({s: i for i, s in enumerate(vocab)}))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (tmp_path / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(len(vocab))))
    return tmp_path / "encoder.json", tmp_path / "vocab.bpe", tmp_path / "dict.txt"


def test_gpt2_documents_decode_back_with_spaces_between_sentences(tmp_path):
    enc_json, vocab_bpe, dict_txt = tiny_gpt2_files(tmp_path)
    write_docs(tmp_path / "train.txt", DOCS)
    write_docs(tmp_path / "valid.txt", DOCS[:1])
    out = tmp_path / "bin"
    assert binarize.main(["--train", str(tmp_path / "train.txt"), "--valid", str(tmp_path / "valid.txt"),
                          "-o", str(out), "--bpe", "gpt2", "--encoder-json", str(enc_json),
                          "--vocab-bpe", str(vocab_bpe), "--dict", str(dict_txt), "--workers", "2"]) == 0
    assert json.loads((out / "bpe.json").read_text())["type"] == "gpt2"
    assert (out / "encoder.json").exists() and (out / "vocab.bpe").exists()
    d, lines = read_lines(out, "train")
    encoder = get_encoder(str(enc_json), str(vocab_bpe))
    decoded = [encoder.decode([int(d[t]) for t in line[:-1]]) for line in lines]
    # one line per sentence, an empty line (just </s>) after each document
    assert decoded == ["Aspirin inhibits platelet aggregation.", " The cell count fell.", "",
                       "Cell death was measured.", " It rose in 2 of 5 cell lines.", " Cells were fixed.", ""]
    # the merges were applied: " cell" is one token, "Cell" at a document start too
    assert encoder.encoder["Ġcell"] in [int(d[t]) for t in lines[1][:-1]]
    assert encoder.encoder["Cell"] in [int(d[t]) for t in lines[3][:-1]]
    # a document on one line encodes to the same ids as its sentence lines joined
    joined = encoder.encode(" ".join(DOCS[1]))
    assert joined == sum(([int(d[t]) for t in line[:-1]] for line in lines[3:6]), [])


def test_sentencepiece_training_and_round_trip(tmp_path, pubmed_text):
    out = tmp_path / "bin"
    assert binarize.main(["--train", str(pubmed_text / "train.txt"), "--valid", str(pubmed_text / "valid.txt"),
                          "-o", str(out), "--vocab-size", "500", "--workers", "2"]) == 0
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    d, lines = read_lines(out, "valid")
    text = (pubmed_text / "valid.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(text)
    for line, original in zip(lines, text):
        pieces = [d[t] for t in line[:-1]]
        assert d.unk() not in line
        assert sp.decode_pieces(pieces) == " ".join(original.split())
    assert sum(1 for line in lines if len(line) == 1) == sum(1 for t in text if not t.strip())


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert binarize.main(["--train", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")]) == 2
    assert "nope.txt: no such file" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("A sentence.\n")
    assert binarize.main(["--train", str(tmp_path / "t.txt"), "-o", str(tmp_path / "o"), "--bpe", "gpt2"]) == 2
    assert "--encoder-json" in capsys.readouterr().err


def test_seq2seq_gpt2_pairs_decode_back(tmp_path):
    """binarize_seq2seq with GPT-2 files: every source/target line decodes to its text and
    the dictionary is the given one on both sides (no `<s>`, one `</s>`)."""
    from biobart_fairseq.cli import binarize_seq2seq

    enc_json, vocab_bpe, dict_txt = tiny_gpt2_files(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    pairs = {"train": [("Cell death was measured.", "Cell death."), ("The cell count fell.", "Cells fell.")],
             "valid": [("Aspirin inhibits platelets.", "Aspirin.")], "test": [("It rose in 2 cell lines.", "Rose.")]}
    for split, rows in pairs.items():
        (raw / f"{split}.source").write_text("".join(s + "\n" for s, _ in rows))
        (raw / f"{split}.target").write_text("".join(t + "\n" for _, t in rows))
    out = tmp_path / "bin"
    assert binarize_seq2seq.main(["--data-dir", str(raw), "-o", str(out), "--bpe", "gpt2", "--encoder-json",
                                  str(enc_json), "--vocab-bpe", str(vocab_bpe), "--dict", str(dict_txt),
                                  "--workers", "1"]) == 0
    encoder = get_encoder(str(enc_json), str(vocab_bpe))
    for split, rows in pairs.items():
        for side, col in (("source", 0), ("target", 1)):
            d = Dictionary.load(str(out / f"dict.{side}.txt"))
            assert [d[i] for i in range(d.nspecial, len(d))] == [str(i) for i in range(len(encoder.encoder))]
            ds = data_utils.load_indexed_dataset(str(out / f"{split}.source-target.{side}"), d, "mmap")
            got = [encoder.decode([int(d[t]) for t in ds[i][:-1].tolist()]) for i in range(len(ds))]
            assert got == [r[col] for r in rows]
            assert all(ds[i][-1] == d.eos() and d.bos() not in ds[i].tolist() for i in range(len(ds)))
