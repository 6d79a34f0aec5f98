"""biobart-binarize: both BPEs, blank document separators kept, text recoverable."""

import json
import re

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


def test_seq2seq_without_train_split_leaves_no_stand_in(tmp_path):
    """An evaluation-only folder: fairseq-preprocess needs a train split, the first split stands
    in for it (bpe.preprocess_splits) and its train files are removed afterwards."""
    from biobart_fairseq.cli import binarize_seq2seq

    enc_json, vocab_bpe, dict_txt = tiny_gpt2_files(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    for split in ("valid", "test"):
        (raw / f"{split}.source").write_text("Cell death was measured.\n")
        (raw / f"{split}.target").write_text("Cell death.\n")
    out = tmp_path / "bin"
    assert binarize_seq2seq.main(["--data-dir", str(raw), "-o", str(out), "--bpe", "gpt2", "--encoder-json",
                                  str(enc_json), "--vocab-bpe", str(vocab_bpe), "--dict", str(dict_txt),
                                  "--workers", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {f"{s}.source-target.{side}.{ext}" for s in ("valid", "test") for side in ("source", "target")
            for ext in ("bin", "idx")} <= names
    assert not any(n.startswith("train.") for n in names) and not (out / "bpe-text").exists()


# --- --shards N ---------------------------------------------------------------------------


def decoded_items(folder, split, encoder):
    d, lines = read_lines(folder, split)
    return [encoder.decode([int(d[t]) for t in line[:-1]]) for line in lines]


def test_shards_round_robin_documents_same_dictionary(tmp_path):
    enc_json, vocab_bpe, dict_txt = tiny_gpt2_files(tmp_path)
    docs = [[f"Cell {i} died.", f"The cell {i} fell.", "Cells were fixed."][: 1 + i % 3] for i in range(8)]
    write_docs(tmp_path / "train.txt", docs)
    write_docs(tmp_path / "valid.txt", docs[:2])
    out = tmp_path / "bin"
    assert binarize.main(["--train", str(tmp_path / "train.txt"), "--valid", str(tmp_path / "valid.txt"),
                          "-o", str(out), "--bpe", "gpt2", "--encoder-json", str(enc_json), "--vocab-bpe",
                          str(vocab_bpe), "--dict", str(dict_txt), "--workers", "2", "--shards", "3"]) == 0
    encoder = get_encoder(str(enc_json), str(vocab_bpe))
    for k in range(3):
        shard = out / f"shard{k}"
        # documents k, k+3, k+6 in order, later sentences with GPT-2's leading space, one
        # separator item (empty line) between documents and none after the last
        expected = []
        for doc in docs[k::3]:
            expected += ([""] if expected else []) + [doc[0]] + [" " + s for s in doc[1:]]
        assert decoded_items(shard, "train", encoder) == expected
        assert decoded_items(shard, "valid", encoder) == [docs[0][0], "", docs[1][0], " " + docs[1][1]]
        assert (shard / "dict.txt").read_bytes() == (out / "shard0" / "dict.txt").read_bytes()
        assert json.loads((shard / "bpe.json").read_text())["type"] == "gpt2"
        assert (shard / "encoder.json").exists() and (shard / "vocab.bpe").exists()
    # dict.txt is the given dictionary, as fairseq-preprocess would write it
    assert Dictionary.load(str(out / "shard1" / "dict.txt")).symbols == Dictionary.load(str(dict_txt)).symbols


def test_streaming_writer_equals_fairseq_builder(tmp_path):
    """The constant-memory writer produces the same .bin/.idx bytes as fairseq's own
    MMapIndexedDatasetBuilder, for a small and a large (uint32) vocabulary, across index blocks."""
    import numpy as np
    import torch
    from fairseq.data import indexed_dataset

    rng = np.random.default_rng(0)
    for vocab in (500, 70000):
        items = [rng.integers(0, vocab, size=rng.integers(1, 9)) for _ in range(2500)]
        ours = binarize.StreamingIndexedDataset(str(tmp_path / f"ours{vocab}"), vocab)
        for start in range(0, len(items), 700):
            chunk = items[start : start + 700]
            ours.add_items(np.concatenate(chunk), np.array([len(i) for i in chunk]))
        ours.close()
        theirs = indexed_dataset.make_builder(str(tmp_path / f"theirs{vocab}.bin"), "mmap", vocab_size=vocab)
        for item in items:
            theirs.add_item(torch.from_numpy(item))
        theirs.finalize(str(tmp_path / f"theirs{vocab}.idx"))
        for ext in ("bin", "idx"):
            assert (tmp_path / f"ours{vocab}.{ext}").read_bytes() == (tmp_path / f"theirs{vocab}.{ext}").read_bytes()
        assert not (tmp_path / f"ours{vocab}.sizes.tmp").exists()


def test_index_assembled_in_blocks(tmp_path, monkeypatch):
    """Pointers stay right when the index is assembled over several blocks."""
    import numpy as np
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    from biobart_fairseq.data import shards

    monkeypatch.setattr(shards, "_IDX_BLOCK", 3)
    writer = binarize.StreamingIndexedDataset(str(tmp_path / "d"), 100)
    sizes = np.array([2, 5, 1, 3, 4, 1, 2])
    writer.add_items(np.arange(sizes.sum()) % 100, sizes)
    writer.close()
    ds = MMapIndexedDataset(str(tmp_path / "d"))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    assert [ds[i].tolist() for i in range(len(ds))] == [list(range(s, s + n)) for s, n in zip(starts, sizes)]


def test_three_shards_rotate_by_epoch_in_biomed_denoising(tmp_path, pubmed_text, pubmed_bin):
    """fairseq-train DATA/shard0:shard1:shard2 with biomed_denoising reads a different shard
    in each epoch (tasks/biomed_denoising: path (epoch - 1) % 3) and trains across them."""
    from conftest import run, tiny_train_cmd
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    text = (pubmed_text / "train.txt").read_text(encoding="utf-8").split("\n\n")
    (tmp_path / "train.txt").write_text("\n\n".join(text[:12]) + "\n", encoding="utf-8")
    out = tmp_path / "bin"
    assert binarize.main(["--train", str(tmp_path / "train.txt"), "--valid", str(pubmed_text / "valid.txt"),
                          "-o", str(out), "--spm-model", str(pubmed_bin / "spm.model"), "--workers", "2",
                          "--shards", "3"]) == 0
    shards = [out / f"shard{k}" for k in range(3)]
    data = ":".join(str(s) for s in shards)
    res = run(tiny_train_cmd(data, tmp_path / "save", "--max-epoch", "3", "--no-save", "--disable-validation",
                             max_update=1000))
    assert res.returncode == 0, res.stdout[-3000:]
    loaded = re.findall(r"train: (\d+) (?:samples|blocks) from (\d+) lines \((.*)\)", res.stdout)
    # epochs 1, 2, 3 (fairseq also loads epoch 4's shard before it stops)
    assert [path for _, _, path in loaded[:3]] == [str(s / "train") for s in shards]
    for (_, lines, _), shard in zip(loaded, shards):
        assert int(lines) == len(MMapIndexedDataset(str(shard / "train")))  # 4 documents each
    assert "end of epoch 3" in res.stdout


def test_streaming_writer_memory_does_not_grow_with_items(tmp_path):
    """3 M items: holding their sizes and pointers (as fairseq's builder does, in lists) would
    take > 36 MB even as numpy arrays; the streaming writer stays under a fixed bound."""
    import tracemalloc

    import numpy as np

    writer = binarize.StreamingIndexedDataset(str(tmp_path / "big"), 1000)
    chunk_sizes = np.full(3000, 3)
    chunk_ids = np.arange(9000) % 1000
    tracemalloc.start()
    for _ in range(1000):
        writer.add_items(chunk_ids, chunk_sizes)
    writer.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert writer.items == 3_000_000
    assert peak < 12 * 2**20, peak
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    ds = MMapIndexedDataset(str(tmp_path / "big"))
    assert len(ds) == 3_000_000 and ds[2_999_999].tolist() == [997, 998, 999]
