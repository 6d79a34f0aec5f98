"""biobart-prepare-seq2seq on the real files we hold (CovidDialog, MEDIQA-QS/MAS validation and
test) and on hand-written samples in the published formats for the others (tests/data/seq2seq)."""

import json
import zipfile
from pathlib import Path

import pytest

from biobart_fairseq.cli import prepare_seq2seq
from biobart_fairseq.data import seq2seq_readers as R
from biobart_fairseq.data.xlsx import read_xlsx, read_xlsx_records, write_xlsx

from conftest import SHARED_DATA

SAMPLES = Path(__file__).resolve().parent / "data" / "seq2seq"
COVID = SHARED_DATA / "covid_dialog_english"
QS = SHARED_DATA / "mediqa2021_qs"
MAS = SHARED_DATA / "mediqa2021_mas"
MAS_VALID_ANSWERS = MAS / "Validation" / "MEDIQA2021_Task2_ValidationSet_Answers.xlsx"


def need(path):
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path


def prepare(tmp_path, dataset, *inputs, extra=()):
    out = tmp_path / dataset
    rc = prepare_seq2seq.main(["--dataset", dataset, "--input", *map(str, inputs), "-o", str(out), *extra])
    stats = json.loads((out / "stats.json").read_text())
    return rc, out, stats


def lines(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def assert_parallel(out, split, n):
    src, tgt = lines(out / f"{split}.source"), lines(out / f"{split}.target")
    assert len(src) == len(tgt) == n
    assert all(s.strip() and t.strip() for s, t in zip(src, tgt))
    assert not any("  " in x or x != x.strip() for x in src + tgt)  # whitespace normalised


# --- real data: counts must equal Table 1 -----------------------------------------------------------
def test_covid_dialog_real_counts_match_table1(tmp_path):
    rc, out, stats = prepare(tmp_path, "covid_dialog", need(COVID / "COVID-Dialogue-Dataset-English.txt"))
    assert rc == 0
    assert stats["counts"] == {"train": 490, "valid": 63, "test": 61} == stats["table1"]
    assert stats["filtered"] == {"same speaker twice in a row (dropped as upstream)": 1}
    for split, n in stats["counts"].items():
        assert_parallel(out, split, n)
    # source = dialogue history ending with a patient turn; target = the doctor's reply
    src, tgt = lines(out / "train.source"), lines(out / "train.target")
    assert all(s.startswith("Patient: ") for s in src)
    last_speaker = [[x for x in R.unescape_newlines(s).split("\n") if x.startswith(("Patient: ", "Doctor: "))][-1] for s in src]
    assert all(x.startswith("Patient: ") for x in last_speaker)
    assert not any(t.startswith(("Doctor:", "Patient:")) for t in tgt)
    multi = [s for s in src if "\\nDoctor: " in s]  # later turns carry the whole history, newline-escaped
    assert multi and all(R.unescape_newlines(s).count("\n") >= 2 for s in multi)


def test_mediqa_qs_real_valid_test_counts(tmp_path):
    rc, out, stats = prepare(tmp_path, "mediqa_qs", need(QS))
    assert rc == 0
    assert stats["counts"] == {"valid": 50, "test": 100}
    assert stats["missing_splits"] == ["train"]  # MeQSum is a separate download
    assert_parallel(out, "valid", 50)
    assert lines(out / "valid.target")[0] == "Should I leave a meniscus tear untreated if it does not cause problems?"


def test_mediqa_qs_trains_on_meqsum(tmp_path):
    need(QS)
    meqsum = tmp_path / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"
    write_xlsx(meqsum, [["File", "CHQ", "Summary"]] + [[f"{i}.txt", f"SUBJECT: q{i}\nMESSAGE: my question {i}", f"What is {i}?"] for i in range(12)])
    rc, out, stats = prepare(tmp_path, "mediqa_qs", meqsum, QS)
    assert rc == 0 and stats["counts"] == {"train": 12, "valid": 50, "test": 100}
    assert lines(out / "train.source")[3] == "SUBJECT: q3\\nMESSAGE: my question 3"


def test_mediqa_mas_real_counts_and_sources(tmp_path):
    rc, out, stats = prepare(tmp_path, "mediqa_mas", need(MAS))
    assert rc == 0
    assert stats["counts"] == {"valid": 50, "test": 80}
    for split, n in stats["counts"].items():
        assert_parallel(out, split, n)
    # every validation answer ends up in some source: 192 answers over 50 questions
    n_answer_parts = sum(R.unescape_newlines(s).count("\n") for s in lines(out / "valid.source"))
    assert n_answer_parts == 192
    _, answers = read_xlsx_records(MAS / "Test" / "MEDIQA2021_Task2_MAS_TestSet_Answers.xlsx")
    assert len(answers) == 303
    test_src = [R.unescape_newlines(s) for s in lines(out / "test.source")]
    by_qid = dict(zip([ln.split("||")[0] for ln in (MAS / "Test" / "MEDIQA2021_Task2_MAS_TestSet_shortQuestions.txt").read_text().splitlines() if ln.strip()], test_src))
    for a in answers:  # every answer, in its question's source
        assert R.clean_text(a["Answer"])[:60] in by_qid[a["question_id"]], a["answer_id"]
    assert lines(out / "test.source")[0].startswith("Is there gene therapy for persistent cough?\\nThe best way")


def test_mediqa_mas_strict_ooxml_answers_are_read():
    """The validation workbook is Strict OOXML: openpyxl/pandas see no sheet, we see 192 answers."""
    path = need(MAS_VALID_ANSWERS)
    with zipfile.ZipFile(path) as zf:
        assert b'conformance="strict"' in zf.read("xl/workbook.xml")
        assert b"purl.oclc.org/ooxml/spreadsheetml/main" in zf.read("xl/worksheets/sheet1.xml")
    header, records = read_xlsx_records(path)
    assert header == ["QuestionID", "AnswerID", "Answer"]
    assert len(records) == 192 and len({r["QuestionID"] for r in records}) == 50
    assert all(r["Answer"].strip() for r in records)
    assert records[0]["AnswerID"] == "3_Answer8" and records[0]["Answer"].startswith('You may feel a "pop"')
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return
    wb = openpyxl.load_workbook(path)
    assert not wb.worksheets  # the common reader loads it empty: why we read it ourselves


def test_xlsx_strict_and_transitional_round_trip(tmp_path):
    rows = [["a", "b & <c>"], ["1", "x\ny"], ["", "z"]]
    for flavour in ("strict", "transitional"):
        write_xlsx(tmp_path / f"{flavour}.xlsx", rows, flavour=flavour)
        got = read_xlsx(tmp_path / f"{flavour}.xlsx")
        assert got == rows


def test_mediqa_mas_train_from_mediqa_ans_sample(tmp_path):
    need(MAS)
    ans = SAMPLES / "mediqa_ans" / "question_driven_answer_summarization_primary_dataset.json"
    rc, out, stats = prepare(tmp_path, "mediqa_mas", ans, MAS)
    # 3 answers x (section, page) = 6, minus the answer without a page: reported, not silent
    assert rc == 3 and stats["counts"]["train"] == 5 and stats["skipped"] == 1
    assert stats["bad_records"] == [f'{ans}:question "1" answer "1_Answer2": missing question or article']


# --- hand-written samples (datasets we do not hold) --------------------------------------------------
def test_meqsum_sample_split_and_bad_row(tmp_path):
    path = tmp_path / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"
    rows = [["File", "CHQ", "Summary"]] + [[f"{i}.txt", f"question {i}", f"summary {i}"] for i in range(1001)]
    rows[8][2] = "   "  # an empty summary on spreadsheet row 9 (row 1 is the header)
    write_xlsx(path, rows)
    rc, out, stats = prepare(tmp_path, "meqsum", path)
    assert rc == 3
    assert stats["counts"] == {"train": 500, "test": 500}  # Table 1: 500 / - / 500
    assert stats["bad_records"] == [f"{path}:row 9: empty target"]  # a spreadsheet: its row, not a line
    assert not (out / "valid.source").exists()


def test_icliniq_sample(tmp_path, capsys):
    rc, out, stats = prepare(tmp_path, "icliniq", SAMPLES / "icliniq")
    assert rc == 3 and stats["skipped"] == 1
    path = SAMPLES / "icliniq" / "icliniq_sample.txt"
    line = path.read_text(encoding="utf-8").splitlines().index("id=11") + 1  # the dialogue's id= line
    assert stats["bad_records"] == [f"{path}:{line}: dialogue id=11: no Dialogue section"]
    err = capsys.readouterr().err
    assert f"biobart-prepare-seq2seq: skipped {path}:{line}: dialogue id=11: no Dialogue section\n" in err
    assert f"biobart-prepare-seq2seq: 1 bad record(s) skipped (all in {out / 'stats.json'})" in err
    assert sum(stats["counts"].values()) == 10
    tgts = sum((lines(out / f"{s}.target") for s in R.SPLITS), [])
    assert all(t.startswith("What causes ") for t in tgts)  # "Q. " removed
    srcs = sum((lines(out / f"{s}.source") for s in R.SPLITS), [])
    assert all(s.startswith("Patient: Hello doctor,\\nI have had") and "\\nDoctor: " in s for s in srcs)


def test_healthcaremagic_sample_folder(tmp_path):
    rc, out, stats = prepare(tmp_path, "healthcaremagic", SAMPLES / "healthcaremagic", extra=["--newlines", "space"])
    assert rc == 3 and stats["skipped"] == 1 and stats["bad_records"][0].endswith(": empty target")
    assert stats["counts"] == {"train": 8, "valid": 1, "test": 1}  # Table 1's shares of 10
    assert not any("\\n" in x for s in R.SPLITS for x in lines(out / f"{s}.source"))


def test_mediqa_ans_sample(tmp_path):
    rc, out, stats = prepare(tmp_path, "mediqa_ans", SAMPLES / "mediqa_ans")
    assert rc == 3
    assert stats["counts"] == {"train": 5, "valid": 3, "test": 2}  # test: pages; the page-less answer skipped
    assert lines(out / "train.target")[0] == "Rest and fluids help most cases of headache after exercise."
    assert [b.split(": ")[0].rsplit(".json:", 1)[1] for b in stats["bad_records"]] == [
        'record "5"', 'question "1" answer "1_Answer2"']  # JSON: the record's key, no line
    rc, out2, stats = prepare(tmp_path / "sec", "mediqa_ans", SAMPLES / "mediqa_ans", extra=["--ans-test-source", "section"])
    assert stats["counts"]["test"] == 3
    assert lines(out2 / "test.source")[0] == "What helps a persistent dry cough?\\nHoney and warm drinks soothe a cough."


def test_escape_round_trip_and_errors(tmp_path, capsys):
    text = "line one\nback\\slash \\n literal"
    assert R.unescape_newlines(R.escape_newlines(text)) == text
    assert "\n" not in R.escape_newlines(text)
    assert prepare_seq2seq.main(["--dataset", "covid_dialog", "--input", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")]) == 2
    assert "nope.txt: no such file" in capsys.readouterr().err
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n")
    assert prepare_seq2seq.main(["--dataset", "meqsum", "--input", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "x.csv: not an input of meqsum" in capsys.readouterr().err
