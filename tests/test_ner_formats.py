"""NER readers/writers and BARTNER targets: real GENIA and CADEC files, round trips, bad input."""

import json
import sys

import pytest

from conftest import SHARED_DATA, run
from biobart_fairseq.cli import prepare_ner
from biobart_fairseq.data import ner_formats
from biobart_fairseq.data.ner_formats import NerFormatError
from biobart_fairseq.data.ner_targets import WordPositions, decode_target, encode_entities, split_tuples

GENIA = SHARED_DATA / "genia_nested_ner"
CADEC = SHARED_DATA / "cadec_discontinuous_sample"


def require(path):
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    """A small sentencepiece model trained on the GENIA dev sentences (byte fallback: no unk)."""
    import sentencepiece as spm

    require(GENIA / "dev.jsonlines")
    d = tmp_path_factory.mktemp("spm")
    with open(d / "text.txt", "w", encoding="utf-8") as f:
        for line in open(GENIA / "dev.jsonlines", encoding="utf-8"):
            f.write(" ".join(json.loads(line)["tokens"]) + "\n")
    spm.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "spm"), vocab_size=1000,
                                   model_type="bpe", byte_fallback=True, minloglevel=2)
    return d / "spm.model"


# ---------------------------------------------------------------- real files

def test_genia_counts_match_source_md():
    require(GENIA)
    for split, n_sent, n_ent, protein, dna in (("dev", 1765, 4714, 2466, 1161), ("test", 1732, 5119, 2900, 1132)):
        sents = ner_formats.read(GENIA / f"{split}.jsonlines", "genia")
        ents = [e for s in sents for e in s["entities"]]
        assert (len(sents), len(ents)) == (n_sent, n_ent)
        assert sum(e["type"] == "protein" for e in ents) == protein and sum(e["type"] == "DNA" for e in ents) == dna
    # nesting is kept: "phytohemagglutinin" (protein) inside a cell_line mention of sentence 2
    s = ner_formats.read(GENIA / "dev.jsonlines", "genia")[1]
    assert {"type": "protein", "spans": [[13, 14]]} in s["entities"]
    assert {"type": "cell_line", "spans": [[13, 21]]} in s["entities"]
    assert s["sent_id"] == "MEDLINE:93061407-1"


def test_cadec_sample_discontinuous_entities():
    sents = ner_formats.read(require(CADEC / "dev.txt"), "dai")
    ents = [e for s in sents for e in s["entities"]]
    assert len(sents) == 4 and len(ents) == 25
    assert sum(e["type"] == "ADR" for e in ents) == 22 and sum(e["type"] == "Drug" for e in ents) == 3
    assert sum(len(e["spans"]) > 1 for e in ents) == 6
    # "11,11,15,15 ADR": tingling ... hands (inclusive ends -> [start, end))
    assert sents[2]["entities"][2] == {"type": "ADR", "spans": [[11, 12], [15, 16]]}
    assert sents[2]["tokens"][11] == "tingling" and sents[2]["tokens"][15] == "hands"


def test_writers_round_trip_real_files(tmp_path):
    cadec = ner_formats.read(require(CADEC / "dev.txt"), "dai")
    ner_formats.write(tmp_path / "c.txt", cadec, "dai")
    assert (tmp_path / "c.txt").read_text() == (CADEC / "dev.txt").read_text()
    genia = ner_formats.read(require(GENIA / "dev.jsonlines"), "genia")[:200]
    ner_formats.write(tmp_path / "g.jsonlines", genia, "genia")
    assert ner_formats.read(tmp_path / "g.jsonlines", "genia") == genia
    ner_formats.write(tmp_path / "c.jsonl", cadec, "jsonl")
    assert ner_formats.read(tmp_path / "c.jsonl", "jsonl") == cadec
    with pytest.raises(NerFormatError, match="discontinuous"):
        ner_formats.write(tmp_path / "x.jsonlines", cadec, "genia")
    assert not (tmp_path / "x.jsonlines").exists() and not list(tmp_path.glob(".*part"))


def test_genia_fine_types_and_bartner_document_form(tmp_path):
    assert ner_formats.genia_coarse_type("G#DNA_domain_or_region") == "DNA"
    assert ner_formats.genia_coarse_type("G#protein_complex") == "protein"
    assert ner_formats.genia_coarse_type("G#RNA_molecule") == "RNA"
    assert ner_formats.genia_coarse_type("G#cell_line") == "cell_line"
    assert ner_formats.genia_coarse_type("G#lipid") is None
    doc = {"sentences": [["IL-2", "gene", "in", "T", "cells"], ["None", "."]],
           "ners": [[[0, 1, "G#DNA_domain_or_region"], [0, 0, "G#protein_molecule"], [3, 4, "G#cell_type"],
                     [3, 3, "G#lipid"]], []]}
    (tmp_path / "d.jsonlines").write_text(json.dumps(doc) + "\n")
    stats = {}
    sents = ner_formats.read(tmp_path / "d.jsonlines", "genia", stats)
    assert [s["entities"] for s in sents] == [
        [{"type": "DNA", "spans": [[0, 2]]}, {"type": "protein", "spans": [[0, 1]]},
         {"type": "cell_type", "spans": [[3, 5]]}], []]
    assert stats["dropped_types"] == 1


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("fmt,text,line,message", [
    ("dai", "a b c\n0,3 ADR\n\n", 2, "outside the sentence of 3 tokens"),
    ("dai", "a b c\n2,1 ADR\n\n", 2, "empty span"),
    ("dai", "a b c\n0,1\n\n", 2, "is not 'start,end"),
    ("dai", "a b c\n0,1,2 ADR\n\n", 2, "odd number of offsets"),
    ("dai", "a b c\n0,1 ADR\nextra line\n", 3, "expected a blank line"),
    ("dai", "a b c\n\n\n\n0,0 X\n\n", 4, "expected a sentence line"),
    ("jsonl", '{"tokens": ["a", "b"], "entities": []}\n{"tokens": ["a"], "entities": [{"type": "X", "spans": [[0, 2]]}]}\n',
     2, "outside the sentence of 1 tokens"),
    ("jsonl", '{"tokens": ["a", "b"], "entities": [{"type": "X", "spans": [[1, 1]]}]}\n', 1, "empty span"),
    ("jsonl", '{"tokens": ["a"], "entities": []}\nnot json\n', 2, "not valid JSON"),
    ("genia", '{"tokens": ["a"], "entity_mentions": []}\n{"words": ["a"]}\n', 2, "unknown GENIA line"),
    ("genia", '{"tokens": ["a", "b"], "entity_mentions": [{"start": 1, "end": 3, "entity_type": "DNA"}]}\n', 1,
     "outside the sentence"),
])
def test_bad_input_names_file_and_line(tmp_path, fmt, text, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(NerFormatError, match=message) as e:
        ner_formats.read(path, fmt)
    assert f"{path}:{line}:" in str(e.value)


def test_prepare_skips_bad_records_and_exits_3(tmp_path, capsys):
    """Five real GENIA lines with a corrupted one in the middle: the other four are written,
    the bad one is named FILE:LINE on stderr and counted in report.json, and the status is 3."""
    lines = require(GENIA / "test.jsonlines").read_text(encoding="utf-8").splitlines()[:4]
    broken = json.loads(lines[1])
    broken["entity_mentions"][0]["end"] = len(broken["tokens"]) + 5  # an entity past the sentence's end
    src = tmp_path / "test.jsonlines"
    src.write_text("\n".join([lines[0], lines[1][:40], json.dumps(broken), lines[2], lines[3]]) + "\n",
                   encoding="utf-8")
    out = tmp_path / "out"
    capsys.readouterr()
    assert prepare_ner.main(["--format", "genia", "--input", str(src), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    text = src.read_text(encoding="utf-8").splitlines()
    cut, past = text.index(lines[1][:40]) + 1, text.index(json.dumps(broken)) + 1  # file lines, found apart
    assert f"biobart-prepare-ner: skipped {src}:{cut}: not valid JSON" in err
    assert f"biobart-prepare-ner: skipped {src}:{past}: entity 0" in err and "outside the sentence" in err
    assert f"biobart-prepare-ner: 2 bad record(s) skipped (all in {out / 'report.json'})" in err
    written = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert [s["tokens"] for s in written] == [json.loads(line)["tokens"] for line in (lines[0], lines[2], lines[3])]
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["test"] == {"sentences": 3, "bad_records": 2}
    assert report["bad_records"][0].startswith(f"{src}:2: ") and report["bad_records"][1].startswith(f"{src}:3: ")


def test_prepare_exits_2_when_a_file_has_no_usable_sentence(tmp_path, capsys):
    """An input whose every record is bad is unusable: nothing is written, not even the good input."""
    good, bad = tmp_path / "train.txt", tmp_path / "dev.txt"
    good.write_text("a b c\n0,1 ADR\n\n")
    bad.write_text("a b c\n0,9 ADR\n\nd  e\n\n\n")
    out = tmp_path / "out"
    assert prepare_ner.main(["--format", "dai", "--input", str(good), str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: " in err and f"{bad}:4: irregular whitespace" in err
    assert f"error: {bad}: no usable sentence (2 bad record(s)" in err and not out.exists()


def test_dai_reader_skips_bad_blocks_and_reads_on(tmp_path):
    path = tmp_path / "dev.txt"
    path.write_text("a b\n0,0 X\n\n"        # 1-3 good
                    "c d\n0,5 X\n\n"        # 4-6 entity outside the sentence
                    "\n"                      # 7 stray blank line
                    "e f\n0,0 X\nextra\n\n"  # 8-11 no blank after the entity line
                    "g h\n\n\n"              # 12-14 good, no entity
                    "i  j\n1,1 X\n\n")       # 15-17 irregular whitespace
    bad = []
    sents = ner_formats.read(path, "dai", bad=bad)
    assert [s["tokens"] for s in sents] == [["a", "b"], ["g", "h"]]
    assert [b.split(": ")[0] for b in bad] == [f"{path}:{n}" for n in (5, 7, 10, 15)]
    with pytest.raises(NerFormatError, match=f"{path}:5:"):  # strict without a list
        ner_formats.read(path, "dai")


def test_cli_help():
    for mod, flags in (("prepare_ner", ("--format", "--input", "--target-type", "--check", "--bpe-dir", "--spm-model")),
                       ("ner_score", ("--gold", "--pred", "--checkpoint", "--beam", "--max-len-a", "--output-json"))):
        res = run([sys.executable, "-m", f"biobart_fairseq.cli.{mod}", "--help"])
        assert res.returncode == 0 and all(f in res.stdout for f in flags), res.stdout


# ---------------------------------------------------------------- targets

def test_targets_by_hand():
    # words: w0 (2 BPE), w1 (1), w2 (3), w3 (1): positions <s>=0, w0=1-2, w1=3, w2=4-6, w3=7, </s>=8
    wp = WordPositions([2, 1, 3, 1])
    types = ["ADR", "Drug"]  # type indices 2, 3; pointer to position j = 4 + j
    disc = {"type": "ADR", "spans": [[0, 1], [2, 4]]}  # w0 + w2 w3
    flat = {"type": "Drug", "spans": [[1, 2]]}
    ti = {t: i for i, t in enumerate(types)}
    assert encode_entities([flat, disc], wp, ti, "word") == [5, 8, 11, 2, 7, 3, 1]
    assert encode_entities([disc, flat], wp, ti, "span") == [5, 6, 8, 11, 2, 7, 7, 3, 1]
    assert encode_entities([disc], wp, ti, "bpe") == [5, 6, 8, 9, 10, 11, 2, 1]
    assert encode_entities([disc, dict(disc)], wp, ti, "word") == [5, 8, 11, 2, 5, 8, 11, 2, 1]  # BARTNER: twice
    for tt in ("word", "span", "bpe"):
        seq = encode_entities([disc, flat], wp, ti, tt)
        got = sorted(decode_target(seq, wp, types, tt), key=str)
        assert got == sorted([disc, flat], key=str)
    # BARTNER's scan: decreasing pointers, a type without pointers, odd span counts are dropped;
    # everything after eos is ignored; a pointer inside a word counts as that word
    assert split_tuples([8, 5, 2, 3, 7, 3, 1, 5, 2], 2, "word") == [((3,), 1)]
    assert split_tuples([5, 8, 11, 2, 7, 3], 2, "span") == []  # odd pointer counts
    assert split_tuples([5, 6, 8, 11, 2], 2, "span") == [((1, 2, 4, 7), 0)]
    assert decode_target([6, 2, 1], wp, types, "word") == [{"type": "ADR", "spans": [[0, 1]]}]
    assert decode_target([12, 2, 1], wp, types, "word") == []  # points at </s>: no word


@pytest.mark.parametrize("target_type", ["word", "span", "bpe"])
def test_round_trip_real_genia_and_cadec(tmp_path, spm_model, target_type, capsys):
    out = tmp_path / "genia"
    rc = prepare_ner.main(["--format", "genia", "--input", str(GENIA / "dev.jsonlines"), str(GENIA / "test.jsonlines"),
                           "-o", str(out), "--target-type", target_type, "--bpe", "sentencepiece",
                           "--spm-model", str(spm_model), "--check"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, report
    assert report["dev"]["round_trip"] == 4714 and report["test"]["round_trip"] == 5119
    assert all(report[s]["not_round_trip"] == report[s]["spurious"] == report[s]["duplicates"] == 0 for s in report)
    assert json.loads((out / "ner.json").read_text())["types"] == ["DNA", "RNA", "cell_line", "cell_type", "protein"]
    assert {p.name for p in out.iterdir()} >= {"dev.jsonl", "test.jsonl", "dict.txt", "bpe.json", "spm.model"}
    assert len(ner_formats.read_jsonl(out / "dev.jsonl")) == 1765

    rc = prepare_ner.main(["--format", "dai", "--input", str(CADEC / "dev.txt"), "-o", str(tmp_path / "cadec"),
                           "--target-type", target_type, "--bpe", "sentencepiece", "--spm-model", str(spm_model), "--check"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["dev"]["round_trip"] == 25 and report["dev"]["not_round_trip"] == 0


def test_check_counts_duplicates_apart(tmp_path, spm_model, capsys):
    src = tmp_path / "dev.jsonl"
    ent = {"type": "ADR", "spans": [[0, 1], [1, 2]]}  # touching fragments: the same words as [[0, 2]]
    src.write_text(json.dumps({"tokens": ["muscle", "pain", "."], "entities": [ent, {"type": "ADR", "spans": [[0, 2]]}]}) + "\n")
    rc = prepare_ner.main(["--format", "jsonl", "--input", str(src), "-o", str(tmp_path / "o"), "--bpe", "sentencepiece",
                           "--spm-model", str(spm_model), "--check"])
    report = json.loads(capsys.readouterr().out)["dev"]
    assert rc == 0 and (report["round_trip"], report["duplicates"], report["not_round_trip"]) == (1, 1, 0)


def tiny_gpt2_files(d):
    """A real byte-level BPE in GPT-2's file format: the 256 byte symbols plus a few merges."""
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    merges = [("Ġ", "c"), ("Ġc", "e"), ("Ġce", "l"), ("Ġcel", "l"), ("Ġcell", "s"), ("Ġ", "T")]
    vocab = symbols + ["".join(m) for m in merges]
    (d / "encoder.json").write_text(json.dumps({s: i for i, s in enumerate(vocab)}))
    (d / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (d / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(len(vocab))))
    return ["--bpe", "gpt2", "--encoder-json", str(d / "encoder.json"), "--vocab-bpe", str(d / "vocab.bpe"),
            "--dict", str(d / "dict.txt")]


def test_gpt2_words_get_a_leading_space_and_round_trip(tmp_path, capsys):
    """The production BPE path (BART's GPT-2 files): each word is encoded as " word"."""
    from fairseq.data import Dictionary

    from biobart_fairseq.data.ner_dataset import word_encoder
    from biobart_fairseq.data.word_starts import load_bpe_info
    from biobart_fairseq.hub import build_bpe

    flags = tiny_gpt2_files(tmp_path)
    out = tmp_path / "out"
    rc = prepare_ner.main(["--format", "dai", "--input", str(require(CADEC / "dev.txt")), "-o", str(out), "--check", *flags])
    report = json.loads(capsys.readouterr().out)["dev"]
    assert rc == 0 and report["round_trip"] == 25 and report["not_round_trip"] == 0
    assert json.loads((out / "bpe.json").read_text()) == {"type": "gpt2", "encoder_json": "encoder.json", "vocab_bpe": "vocab.bpe"}
    d = Dictionary.load(str(out / "dict.txt"))
    info = load_bpe_info(str(out / "bpe.json"))
    encode = word_encoder(build_bpe(info), "gpt2", d)
    enc = json.loads((tmp_path / "encoder.json").read_text())
    assert encode("cells") == [d.index(str(enc["Ġcells"]))]  # one token: the space is part of the word
    assert encode("T")[0] == d.index(str(enc["ĠT"]))

    # the same folder serves as --bpe-dir for another input (GENIA test, span targets)
    rc = prepare_ner.main(["--format", "genia", "--input", str(require(GENIA / "test.jsonlines")), "-o", str(tmp_path / "g"),
                           "--bpe-dir", str(out), "--target-type", "span", "--check"])
    report = json.loads(capsys.readouterr().out)["test"]
    assert rc == 0 and report["round_trip"] == 5119 and report["not_round_trip"] == 0
    assert (tmp_path / "g" / "encoder.json").read_text() == (tmp_path / "encoder.json").read_text()
