"""biobart-tables: the transcription of Tables 2-6 against the paper's own text, the placement of
runs in cells (one run, several seeds, missing), the three formats and the figure, and the whole
way on CPU: tiny pretraining on real PubMed abstracts -> CovidDialog and NCBI recipes ->
results.json -> Tables 2 and 4 with exactly our two cells filled."""

import csv
import io
import json
import math
import re

import pytest

from conftest import REPO, SHARED_DATA, run
from biobart_fairseq import paper_tables as P
from biobart_fairseq import results as R
from biobart_fairseq.cli import tables as tables_cli

PAPER_TXT = REPO.parent / "shared" / "paper" / "biobart-paper.txt"
# the row labels as the paper's text prints them (longest first: "w/ TI" is a prefix of "w/ TI & SP")
PAPER_LABELS = [("w/ TI & SP", "ti+sp"), ("w/ TI", "ti"), ("BioBART BASE", "biobart-base"), ("BART BASE", "bart-base"),
                ("BioBART LARGE", "biobart-large"), ("BART LARGE", "bart-large"), ("State-of-the-art", "sota")]


def paper_text():
    if not PAPER_TXT.exists():
        pytest.skip(f"paper text not found at {PAPER_TXT}")
    return PAPER_TXT.read_text(encoding="utf-8").splitlines()


def parse_paper_rows(lines, table):
    """{row: [numbers in print order, None for '-']} from the lines between the previous table's
    caption and this one's (Table 3 and 6 print two blocks; their rows concatenate in order)."""
    caption = next(i for i, line in enumerate(lines) if line.startswith(f"Table {table}:"))
    prev = max(i for i, line in enumerate(lines[:caption]) if re.match(r"Table \d:", line))
    rows = {}
    for line in lines[prev + 1:caption]:
        for label, key in PAPER_LABELS:
            if line.startswith(label + " "):
                cells = re.findall(r"\d+\.\d+|(?<![\w.])-(?![\w.])", line[len(label):])
                rows.setdefault(key, []).extend(None if c == "-" else float(c) for c in cells)
                break
    return rows, lines[prev + 1:caption]


@pytest.mark.parametrize("table", P.TABLES)
def test_every_cell_matches_the_papers_text(table):
    lines = paper_text()
    parsed, block = parse_paper_rows(lines, table)
    tab = P.load_paper()["tables"][table]
    assert set(parsed) == set(tab["rows"])
    for row in tab["rows"]:
        ours = [tab["values"][row][d["key"]][m] for d in tab["datasets"] for m in d["metrics"]]
        assert parsed[row] == ours, (table, row)
    source_lines = " ".join(line for line in block if line.startswith("Source "))
    for src in tab["sota_sources"].values():
        assert f"({src})" in source_lines


def test_table1_sizes_and_pretraining_budget_match_the_paper():
    lines = paper_text()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Task Dataset Train"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Table 1:"))
    block = " ".join(lines[start:end])
    names = {"covid_dialog": "CovidDialog", "meqsum": "MeQSum", "mediqa_ans": "MEDIQA-ANS", "icliniq": "iCliniq",
             "mediqa_qs": "MEDIQA-QS", "healthcaremagic": "HealthCareMagic", "mediqa_mas": "MEDIQA-MAS",
             "medmentions": "MedMentions", "ncbi": "NCBI", "bc5cdr": "BC5CDR", "cometa": "COMETA",
             "askapatient": "AskAPatients", "share13": "ShARe13", "share14": "ShARe14", "cadec": "CADEC", "genia": "GENIA"}
    paper = P.load_paper()
    both = dict(paper["table1_train"], **paper["table1_train_entities"])
    assert set(both) == set(names)
    for key, name in names.items():
        assert int(re.search(re.escape(name) + r" ([\d,]+) ", block).group(1).replace(",", "")) == both[key], key
    text = " ".join(lines)
    pre = paper["pretraining"]
    assert f"for {pre['updates'] // 1000}k steps with a batch size of {pre['batch_sequences']}" in text
    assert re.search(rf"{pre['gpus']} 40GB A100 GPUs for about {pre['hours']['base']} hours", text)
    assert f"for {pre['hours']['large']} hours" in text and f"training step to {pre['ablation_updates'] // 1000}k" in text


# --- placement and rendering on hand-made records ---------------------------------------------------------
def record(dataset, row, metrics, kind="seq2seq", split="test", path="x/results.json"):
    return {"kind": kind, "split": split, "dataset": dataset, "paper_row": row, "metrics": metrics, "_path": path}


def test_one_run_several_seeds_and_missing_cells():
    paper = P.load_paper()
    recs = [record("covid_dialog", "biobart-base", {"rouge1": 30.0, "bleu": 10.0}, path="s1"),
            record("covid_dialog", "biobart-base", {"rouge1": 26.0, "bleu": 12.0}, path="s2"),
            record("ncbi", "bart-large", {"recall@1": 91.0, "recall@5": 96.0}, kind="el"),
            record("ncbi", "bart-large", {"recall@1": 1.0}, kind="el", split="valid"),   # not a test score
            record("ncbi", None, {"recall@1": 2.0}, kind="el", path="unplaced")]
    ours, unplaced = P.place_runs(recs)
    assert [r["_path"] for r in unplaced] == ["unplaced"]
    cells = {(c["table"], c["row"], c["dataset"], c["metric"]): c for c in P.cells(paper, ours)}
    c = cells[("2", "biobart-base", "covid_dialog", "rouge1")]
    assert c["paper"] == 28.14 and c["ours"] == 28.0 and c["n_runs"] == 2 and c["runs"] == ["s1", "s2"]
    assert c["ours_sd"] == pytest.approx(math.sqrt(8.0))       # (30-28)^2 + (26-28)^2, / (2-1)
    assert c["diff"] == pytest.approx(28.0 - 28.14)
    bleu = cells[("2", "biobart-base", "covid_dialog", "bleu")]
    assert bleu["ours"] == 11.0 and bleu["ours_sd"] == pytest.approx(math.sqrt(2.0))
    one = cells[("4", "bart-large", "ncbi", "recall@1")]
    assert one["ours"] == 91.0 and one["ours_sd"] is None and one["diff"] == pytest.approx(91.0 - 90.21)
    assert cells[("2", "sota", "covid_dialog", "rouge1")]["paper"] is None
    filled = {k for k, c in cells.items() if c["ours"] is not None}
    assert filled == {("2", "biobart-base", "covid_dialog", m) for m in ("rouge1", "bleu")} | {
        ("4", "bart-large", "ncbi", m) for m in ("recall@1", "recall@5")}
    # placing the unplaced run on request
    ours2, unplaced2 = P.place_runs(recs, default_row="bart-base")
    assert not unplaced2 and ours2[("bart-base", "ncbi", "recall@1")] == [(2.0, "unplaced")]

    md = P.render_markdown(paper, list(cells.values()), ["2", "4"])
    assert "| BioBART base | 28.14 / 28.00±2.83 (n=2) / -0.14 |" in md
    assert "| BART large | 71.49 / missing |" in md              # MedMentions R@1: no run of ours
    assert "90.21 / 91.00 / +0.79" in md and "State-of-the-art sources: Covid19-Dialogue: Zhou et al., 2021" in md
    rows = list(csv.DictReader(io.StringIO(P.render_csv(list(cells.values())))))
    assert len(rows) == len(cells)
    r = next(r for r in rows if (r["table"], r["row"], r["dataset"], r["metric"]) == ("4", "bart-large", "ncbi", "recall@5"))
    assert float(r["ours"]) == 96.0 and float(r["diff"]) == pytest.approx(96.0 - 95.52) and r["n_runs"] == "1"


def test_cli_formats_plot_and_unreadable_records(tmp_path, capsys):
    rec = R.build_record("el", "ncbi", "test", {"recall@1": 88.0, "recall@5": 95.0}, {"n": 960}, paper_row="biobart-base")
    R.write(tmp_path / "a" / "results.json", rec)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text('{"R@1": 0.5}')  # an old el-eval file, not a record
    out = tmp_path / "t.json"
    rc = tables_cli.main([str(tmp_path), "--tables", "4", "--format", "json", "-o", str(out), "--plot", str(tmp_path / "g.png")])
    err = capsys.readouterr().err
    assert rc == 3 and "b/results.json: not a biobart-results/1 record" in err
    got = json.loads(out.read_text())
    filled = [c for c in got["cells"] if c["ours"] is not None]
    assert [(c["row"], c["dataset"], c["metric"], c["ours"]) for c in filled] == [
        ("biobart-base", "ncbi", "recall@1", 88.0), ("biobart-base", "ncbi", "recall@5", 95.0)]
    png = (tmp_path / "g-table4.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert tables_cli.main([str(tmp_path / "nope")]) == 2
