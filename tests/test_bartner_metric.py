"""BARTNER's counting (``--metric bartner``), its target order, and the NER commands' bad input.

Sentence used throughout: words w0 (2 BPE), w1 (1), w2 (3), w3 (1), so source positions are
<s>=0, w0=1-2, w1=3, w2=4-6, w3=7, </s>=8; types ADR, Drug = indices 2, 3; pointer to
position j = index 4 + j.  Every expected count below is worked out by hand from BARTNER's
``model/metrics.py`` rules.
"""

import json

import pytest

from biobart_fairseq.cli import ner_score, prepare_ner
from biobart_fairseq.data import ner_formats
from biobart_fairseq.data.ner_formats import NerFormatError
from biobart_fairseq.data.ner_targets import WordPositions, decode_target, encode_entities
from biobart_fairseq.metrics.bartner_f1 import BartnerCounts, gold_tuples, predicted_tuples
from biobart_fairseq.metrics.entity_f1 import EntityCounts

WP = WordPositions([2, 1, 3, 1])
TYPES = ["ADR", "Drug"]
TI = {t: i for i, t in enumerate(TYPES)}


def ent(t, *spans):
    return {"type": t, "spans": [list(s) for s in spans]}


def both_counts(gold_ents, pred_seq, target_type):
    """(tp, pred, gold) by BARTNER's counting and by the entity-level metric, for one sentence."""
    b = BartnerCounts(TYPES)
    gold = gold_tuples(encode_entities(gold_ents, WP, TI, target_type), 2)
    b.add_sentence(gold, predicted_tuples(pred_seq, 2, target_type))
    e = EntityCounts()
    e.add_sentence(gold_ents, decode_target(pred_seq, WP, TYPES, target_type))
    r = b.result()
    return (r["tp"], r["pred"], r["gold"]), tuple(sum(c.values()) for c in (e.tp, e.pred, e.gold))


@pytest.mark.parametrize("case,gold,seq,target_type,bartner,entity", [
    # ADR w0+w2w3 pointed at w0's *second* BPE (6 instead of 5); Drug w1 right
    ("pointer inside a word", [ent("ADR", (0, 1), (2, 4)), ent("Drug", (1, 2))], [6, 8, 11, 2, 7, 3, 1], "word",
     (1, 2, 2), (2, 2, 2)),
    # ADR w2..w3 (span tuple 8, 11) predicted as two touching fragments w2 | w3
    ("touching fragments", [ent("ADR", (2, 4))], [8, 10, 11, 11, 2, 1], "span", (0, 1, 1), (1, 1, 1)),
    # ADR w0..w2 (span tuple 5, 10) predicted as the overlapping pairs w0..w1, w1..w2
    ("overlapping pairs", [ent("ADR", (0, 3))], [5, 7, 7, 10, 2, 1], "span", (0, 1, 1), (1, 1, 1)),
    # Drug w0 (bpe tuple 5, 6) predicted twice: through both BPEs, and through the second alone
    ("duplicate, other pointers", [ent("Drug", (0, 1))], [5, 6, 3, 6, 3, 1], "bpe", (1, 2, 1), (1, 1, 1)),
    # the very same tuple twice counts once in both
    ("exact duplicate", [ent("Drug", (1, 2))], [7, 3, 7, 3, 1], "word", (1, 1, 1), (1, 1, 1)),
    # no eos: BARTNER reads a row without eos up to its last index excluded, so (7, 3) is lost
    ("truncated without eos", [ent("Drug", (1, 2))], [7, 3], "word", (0, 0, 1), (1, 1, 1)),
    ("truncated inside a tuple", [ent("Drug", (1, 2))], [7, 3, 5, 8], "word", (1, 1, 1), (1, 1, 1)),
    # sos closes a tuple too: a predicted tuple that can never be right
    ("closed by sos", [ent("Drug", (1, 2))], [5, 0, 7, 3, 1], "word", (1, 2, 1), (1, 1, 1)),
    # pointers open at eos are dropped; decreasing pointers are not a tuple
    ("open at eos, decreasing", [ent("Drug", (1, 2))], [8, 5, 2, 7, 1], "word", (0, 0, 1), (0, 0, 1)),
])
def test_bartner_counting_by_hand(case, gold, seq, target_type, bartner, entity):
    got_bartner, got_entity = both_counts(gold, seq, target_type)
    assert got_bartner == bartner, case
    assert got_entity == entity, case


def test_bartner_result_fields_and_per_type():
    b = BartnerCounts(TYPES)
    # sentence 1: gold ADR (5,8,11,2) and Drug (7,3); predicted ADR right, Drug on w0 instead, a sos-closed tuple
    b.add_sentence([(5, 8, 11, 2), (7, 3)], predicted_tuples([5, 8, 11, 2, 5, 3, 8, 0, 1], 2, "word"))
    # sentence 2: no prediction, one gold entity cut by --max-source-positions
    b.add_sentence([(7, 3)], [], missed_gold=1)
    r = b.result()
    assert (r["tp"], r["pred"], r["gold"], r["fp"], r["fn"], r["truncated_gold"]) == (1, 3, 4, 2, 3, 1)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(1 / 4)
    assert r["f1"] == pytest.approx(2 / 7)
    assert r["per_type"]["ADR"]["f1"] == 1.0 and r["per_type"]["<sos>"]["pred"] == 1
    assert (r["per_type"]["Drug"]["tp"], r["per_type"]["Drug"]["pred"], r["per_type"]["Drug"]["gold"]) == (0, 1, 2)


def test_targets_in_bartner_order_with_duplicates():
    e1 = ent("ADR", (0, 1), (3, 4))  # w0 + w3: first start 0, last end 4
    e2 = ent("ADR", (0, 4))  # w0..w3: the same key (0, 4); pointers (5, 7, 8, 11) sort before (5, 11)
    # stable: file order on equal keys (sorting by pointers would put e2 first)
    assert encode_entities([e1, e2], WP, TI, "word") == [5, 11, 2, 5, 7, 8, 11, 2, 1]
    # same span, two types: file order, not type order
    assert encode_entities([ent("Drug", (1, 2)), ent("ADR", (1, 2))], WP, TI, "word") == [7, 3, 7, 2, 1]
    # an entity listed twice is emitted twice, as BARTNER's targets do
    assert encode_entities([ent("Drug", (1, 2))] * 2, WP, TI, "word") == [7, 3, 7, 3, 1]
    # later start goes after, whatever the list order; equal start: the shorter last end first
    assert encode_entities([ent("Drug", (2, 3)), ent("ADR", (0, 2)), ent("ADR", (0, 1))], WP, TI, "word") == \
        [5, 2, 5, 7, 2, 8, 3, 1]


# ---------------------------------------------------------------- readers

def test_dai_irregular_whitespace_rejected_with_file_and_line(tmp_path):
    for sentence, col in (("a b  c d", 4), ("a b\tc d", 4), ("a b c\u00a0d", 6)):
        path = tmp_path / "dev.txt"
        path.write_text("w x y z\n0,0 ADR\n\n" + sentence + "\n1,1 ADR\n\n", encoding="utf-8")
        with pytest.raises(NerFormatError, match=f"{path}:4: irregular whitespace at column {col}"):
            ner_formats.read(path, "dai")
    # leading and trailing spaces are stripped by BARTNER too: accepted
    path.write_text(" a b c \n0,2 ADR\n\n")
    assert ner_formats.read(path, "dai")[0]["tokens"] == ["a", "b", "c"]


def test_overlapping_and_touching_fragments_kept_and_counted(tmp_path):
    path = tmp_path / "dev.txt"
    path.write_text("a b c d e\n2,3,0,2 ADR|0,0,1,1 ADR|0,4 ADR\n\n")
    stats = {}
    sents = ner_formats.read(path, "dai", stats)
    # fragments sorted by start and kept as written (BARTNER's loader), not merged
    assert [e["spans"] for e in sents[0]["entities"]] == [[[0, 3], [2, 4]], [[0, 1], [1, 2]], [[0, 5]]]
    assert (stats["overlapping_fragments"], stats["touching_fragments"]) == (1, 1)
    # BARTNER's word target repeats the pointer of w2: such gold can never be predicted
    wp = WordPositions([1] * 5)
    assert encode_entities(sents[0]["entities"][:1], wp, {"ADR": 0}, "word") == [4, 5, 6, 6, 7, 2, 1]


@pytest.mark.parametrize("fmt,text", [
    ("dai", b"a b\n0,0 ADR\n\nc \xff d\n0,0 ADR\n\n"),
    ("genia", b'{"tokens": ["a"], "entity_mentions": []}\n\n{"tokens": ["\xe9"], "entity_mentions": []}\n'),
    ("jsonl", b'{"tokens": ["a"], "entities": []}\n\n{"tokens": ["\xe9t\xe9"], "entities": []}\n'),
])
def test_non_utf8_names_file_and_line(tmp_path, fmt, text):
    path = tmp_path / "in.txt"
    path.write_bytes(text)
    with pytest.raises(NerFormatError, match=f"{path}:[34]: not UTF-8"):
        ner_formats.read(path, fmt)


def test_missing_entities_key_and_empty_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"tokens": ["a"], "entities": []}\n\n{"tokens": ["a"], "entites": []}\n')
    with pytest.raises(NerFormatError, match=f"{path}:3: no 'entities' key \\(found 'entites': misspelt\\?\\)"):
        ner_formats.read_jsonl(path)
    for fmt in ("dai", "genia", "jsonl"):
        path.write_text("\n")
        with pytest.raises(NerFormatError, match=f"{path}: no sentences"):
            ner_formats.read(path, fmt)


# ---------------------------------------------------------------- commands

def cli(main, args, capsys):
    """Run a command's main in-process: an exception would fail the test (no traceback allowed)."""
    capsys.readouterr()
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.mark.parametrize("content,message", [
    (b"a b\n0,0 ADR\n\nc \xff d\n0,0 ADR\n\n", ":4: not UTF-8"),
    (b"", ": no sentences"),
    (b"a  b\n0,0 ADR\n\n", ":1: irregular whitespace"),
])
def test_prepare_ner_bad_input_exit_2_no_traceback(tmp_path, content, message, capsys):
    path = tmp_path / "dev.txt"
    path.write_bytes(content)
    rc, out = cli(prepare_ner.main, ["--format", "dai", "--input", str(path), "-o", str(tmp_path / "o")], capsys)
    assert rc == 2 and f"{path}{message}" in out, out
    assert not (tmp_path / "o").exists()


def test_ner_score_bad_input_names_file_line(tmp_path, capsys):
    gold = tmp_path / "g.jsonl"
    gold.write_text('{"tokens": ["a", "b"], "entities": []}\n\n{"tokens": ["c"], "entities": []}\n')
    pred = tmp_path / "p.jsonl"
    cases = [
        (b'{"tokens": ["a", "b"], "entities": []}\n\n\n{"tokens": ["c"], "entity": []}\n', "entity",
         f"{pred}:4: no 'entities' key"),
        (b'{"tokens": ["a", "b"], "entities": []}\n\n{"tokens": ["x"], "entities": []}\n', "entity",
         f"{pred}:3: tokens differ from {gold}:3"),
        (b'{"tokens": ["a", "b"], "entities": []}\n{"tokens": ["c"], "entities": []}\n', "bartner",
         f"{pred}:1: no 'bartner'"),
        (b'{"tokens": ["a", "b"], "entities": []}\n{"tokens": ["\xff"], "entities": []}\n', "entity",
         f"{pred}:2: not UTF-8"),
        (b"", "entity", f"{pred}: no sentences"),
    ]
    for content, metric, message in cases:
        pred.write_bytes(content)
        rc, out = cli(ner_score.main, ["--metric", metric, "--gold", str(gold), "--pred", str(pred)], capsys)
        assert rc == 2 and message in out, (message, out)


def test_ner_score_bartner_metric_from_files(tmp_path, capsys):
    """--metric bartner on a prediction file: gold targets built with the data folder's BPE."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path
    (d / "text.txt").write_text("muscle pain and aching joints after lipitor\n" * 20)
    spm.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "spm"), vocab_size=300,
                                   hard_vocab_limit=False, model_type="bpe", byte_fallback=True, minloglevel=2)
    raw = d / "test.jsonl"
    sent = {"tokens": "muscle pain and aching joints after lipitor".split(),
            "entities": [ent("ADR", (0, 2)), ent("ADR", (3, 5)), ent("Drug", (6, 7))]}
    raw.write_text(json.dumps(sent) + "\n")
    data = d / "data"
    assert prepare_ner.main(["--format", "jsonl", "--input", str(raw), "-o", str(data), "--bpe", "sentencepiece",
                             "--spm-model", str(d / "spm.model")]) == 0
    from biobart_fairseq.data.ner_dataset import folder_encoder

    types, encode = folder_encoder(str(data), "word")
    ex = encode([sent])[0]
    target = ex["target"].tolist()
    wp, off = ex["wp"], len(types) + 2
    # prediction: the gold target with the second ADR's first pointer moved inside w3's BPEs (if any), else dropped
    seq = list(target)
    inside = wp.first[3] + 1 if wp.last[3] > wp.first[3] else None
    i = seq.index(wp.first[3] + off)
    seq[i] = inside + off if inside is not None else wp.first[4] + off
    pred = dict(sent, bartner={"target_type": "word", "seq": seq})
    (d / "p.jsonl").write_text(json.dumps(pred) + "\n")
    capsys.readouterr()
    assert ner_score.main(["--gold", str(data / "test.jsonl"), "--pred", str(d / "p.jsonl")]) == 0
    r = json.loads(capsys.readouterr().out)
    # 3 gold tuples; the changed one is a wrong tuple (inside w3) or not a tuple at all (w4, w4: not increasing)
    assert r["metric"] == "bartner" and r["gold"] == 3 and r["tp"] == 2
    assert r["pred"] == (3 if inside is not None else 2)
    # issue 22: a target type outside word/span/bpe was a traceback (ValueError of entity_pointers
    # when the gold targets were built); now the one-line error with file and line
    for bad_type in ("foo", 3):
        (d / "p.jsonl").write_text(json.dumps(dict(sent, bartner={"target_type": bad_type, "seq": seq})) + "\n")
        rc, out = cli(ner_score.main, ["--gold", str(data / "test.jsonl"), "--pred", str(d / "p.jsonl")], capsys)
        assert rc == 2 and f"biobart-ner-score: error: {d / 'p.jsonl'}:1: 'bartner.target_type' is {bad_type!r}" in out, out
        assert "Traceback" not in out
