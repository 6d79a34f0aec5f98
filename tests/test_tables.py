"""biobart-tables: the transcription of Tables 2-6 against the paper's own text, the placement of
runs in cells (one run, several seeds, missing), the three formats and the figure, and the whole
way on CPU: tiny pretraining on real PubMed abstracts -> CovidDialog and NCBI recipes ->
results.json -> Tables 2 and 4 with exactly our two cells filled."""

import csv
import io
import json
import math
import os
import re
import sys

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
    assert not unplaced2 and ours2[("bart-base", "ncbi", "recall@1")] == [(2.0, "unplaced", None)]

    md = P.render_markdown(paper, list(cells.values()), ["2", "4"])
    assert "| BioBART base | 28.14 / 28.00±2.83 (n=2) / -0.14 |" in md
    assert "| BART large | 71.49 / missing |" in md              # MedMentions R@1: no run of ours
    assert "90.21 / 91.00 / +0.79" in md and "State-of-the-art sources: Covid19-Dialogue: Zhou et al., 2021" in md
    rows = list(csv.DictReader(io.StringIO(P.render_csv(list(cells.values())))))
    assert len(rows) == len(cells)
    r = next(r for r in rows if (r["table"], r["row"], r["dataset"], r["metric"]) == ("4", "bart-large", "ncbi", "recall@5"))
    assert float(r["ours"]) == 96.0 and float(r["diff"]) == pytest.approx(96.0 - 95.52) and r["n_runs"] == "1"


def test_bertscore_from_another_model_than_the_papers_is_flagged():
    paper = P.load_paper()
    a = dict(record("covid_dialog", "biobart-base", {"bertscore_f1": 0.80}), metric_details={"bertscore_model": "/m/minilm"})
    b = dict(record("covid_dialog", "bart-base", {"bertscore_f1": 0.86}), metric_details={"bertscore_model": "roberta-large"})
    md = P.render_markdown(paper, P.cells(paper, P.place_runs([a, b])[0], ["2"]), ["2"])
    assert "| 0.849 / 0.800† / -0.049 |" in md and "| 0.852 / 0.860 / +0.008 |" in md
    assert "† BERTScore of ours computed with /m/minilm, not RoBERTa-large as in the paper." in md


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


# --- the whole way on CPU ----------------------------------------------------------------------------
NCBI = SHARED_DATA / "ncbi_disease"
COVID = SHARED_DATA / "covid_dialog_english" / "COVID-Dialogue-Dataset-English.txt"
TINY_DIMS = ("--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
             "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2 --decoder-attention-heads 2")


def gpt2_style_bpe(text_file, out):
    """A byte-level BPE in GPT-2's file format (encoder.json, vocab.bpe) learnt on the abstracts, and
    the fairseq dict.txt that maps its ids as BART's does: short sequences keep the smoke run fast."""
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer()
    tok.train([str(text_file)], vocab_size=600, min_frequency=2, show_progress=False)
    out.mkdir()
    tok.save_model(str(out))
    (out / "vocab.json").rename(out / "encoder.json")
    (out / "merges.txt").rename(out / "vocab.bpe")
    n = len(json.loads((out / "encoder.json").read_text()))
    (out / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(n)))
    return out


def ncbi_subset(out, docs=(3, 2, 3), kb_head=300):
    """The first documents of each real NCBI-disease file, and the MEDIC lines of their gold ids plus
    the first ``kb_head`` lines: the real formats through the real reader, at smoke-run size."""
    gold = set()
    for (sub, name), n in zip((("train", "NCBItrainset_corpus.txt"), ("devel", "NCBIdevelopset_corpus.txt"),
                               ("test", "NCBItestset_corpus.txt")), docs):
        blocks = (NCBI / sub / name).read_text(encoding="utf-8").strip().split("\n\n")[:n]
        (out / sub).mkdir(parents=True)
        (out / sub / name).write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
        for line in "\n".join(blocks).splitlines():
            cols = line.split("\t")
            if len(cols) == 6:
                gold.update(re.split(r"[|+,]", cols[5].replace("OMIM:", "")))
    lines = (NCBI / "dictionary" / "medic_06Jul2012.txt").read_text(encoding="utf-8").splitlines()
    keep = [ln for i, ln in enumerate(lines) if i < kb_head or set(ln.split("||")[0].split("|")) & gold]
    (out / "dictionary").mkdir()
    (out / "dictionary" / "medic_06Jul2012.txt").write_text("\n".join(keep) + "\n", encoding="utf-8")
    return out


def test_end_to_end_tiny_pretraining_two_finetunes_and_the_tables(pubmed_text, tmp_path):
    """Tiny BART pretrained 4 updates on real abstracts (examples/pretrain/tiny_cpu.sh), fine-tuned on
    CovidDialog and NCBI-disease through their recipes (at once: two cores), then biobart-tables:
    Tables 2 and 4 with exactly our cells filled, equal to what the scorers wrote."""
    import subprocess

    from biobart_fairseq.cli import binarize

    if not (COVID.exists() and NCBI.is_dir()):
        pytest.skip(f"real data not found at {COVID} / {NCBI}")
    head = tmp_path / "abstracts.txt"  # a slice of the sample: a few updates need no more
    head.write_text("".join(pubmed_text.joinpath("train.txt").read_text(encoding="utf-8").splitlines(True)[:400]))
    bpe = gpt2_style_bpe(head, tmp_path / "bpe")
    data = tmp_path / "pretrain-bin"
    assert binarize.main(["--train", str(head), "--valid", str(pubmed_text / "valid.txt"), "-o", str(data),
                          "--bpe", "gpt2", "--encoder-json", str(bpe / "encoder.json"), "--vocab-bpe",
                          str(bpe / "vocab.bpe"), "--dict", str(bpe / "dict.txt"), "--workers", "1"]) == 0
    pre = tmp_path / "pretrain"
    res = run(["bash", str(REPO / "examples/pretrain/tiny_cpu.sh"), str(data), str(pre), *TINY_DIMS.split(),
               "--tokens-per-sample", "128"], env={"UPDATES": "4", "PAPER_ROW": "biobart-base"})
    assert res.returncode == 0, res.stdout[-3000:]
    pre_rec = R.load(pre / "results.json")
    logged = float(re.findall(r"valid on 'valid' subset \| loss ([\d.]+)", res.stdout)[-1])
    assert pre_rec["kind"] == "pretrain" and pre_rec["metrics"]["valid_loss"] == pytest.approx(logged, abs=1e-3)

    common = {"CHECKPOINT": str(pre / "checkpoint_last.pt"), "BPE_DIR": str(data), "GPUS": "", "OMP_NUM_THREADS": "1"}
    covid_env = dict(common, BPE="gpt2", ARCH_ARGS="--arch bart_base " + TINY_DIMS, WORK=str(tmp_path / "covid"),
                     EXTRA_PREP_ARGS="--limit 8", EPOCHS="1", BATCH_SIZE="8", LR="1e-3", WORKERS="1", BEAM="2",
                     MAX_LEN_B="12", MIN_LEN="1", BERTSCORE="--no-bertscore")
    raw = ncbi_subset(tmp_path / "ncbi")
    ncbi_env = dict(common, RAW=str(raw), KB=str(raw / "dictionary" / "medic_06Jul2012.txt"),
                    TYPO_FILE=str(NCBI / "dictionary" / "ncbi-spell-check.txt"), OUT=str(tmp_path / "el"),
                    SAVE_DIR=str(tmp_path / "el-ckpt"), STEPS="3", LR="1e-3", CONTEXT_WORDS="8",
                    EXTRA_TRAIN_ARGS=TINY_DIMS)
    env0 = {"PATH": f"{sys.executable.rsplit('/', 1)[0]}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen(["bash", str(REPO / f"examples/{name}/run.sh")], cwd=str(REPO), text=True,
                              env=dict(os.environ, **env0, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name, env in (("covid_dialog", covid_env), ("el_ncbi", ncbi_env))]
    outs = [p.communicate()[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]

    covid_rec = R.load(tmp_path / "covid" / "checkpoints" / "results.json")
    ncbi_rec = R.load(tmp_path / "el-ckpt" / "results.json")
    scores = json.loads((tmp_path / "covid" / "output" / "scores.json").read_text())
    el = json.loads((tmp_path / "el-ckpt" / "el_eval.json").read_text())
    for rec in (covid_rec, ncbi_rec):  # the row comes from the pretraining run that made the model
        assert rec["paper_row"] == "biobart-base" and rec["model"]["sha256"] == R.sha256_file(pre / "checkpoint_last.pt")
    assert covid_rec["metrics"]["rouge1"] == scores["rouge1"] and covid_rec["metric_details"]["n"] == 8

    out = tmp_path / "tables.json"
    assert tables_cli.main([str(tmp_path), "--tables", "2", "4", "--format", "json", "-o", str(out),
                            "--plot", str(tmp_path / "smoke.png")]) == 0
    cells = json.loads(out.read_text())["cells"]
    filled = {(c["table"], c["row"], c["dataset"], c["metric"]): c["ours"] for c in cells if c["ours"] is not None}
    assert filled == {
        **{("2", "biobart-base", "covid_dialog", m): scores[m] for m in ("rouge1", "rouge2", "rougeL", "bleu")},
        **{("4", "biobart-base", "ncbi", f"recall@{k}"): 100 * el[f"R@{k}"] for k in (1, 5)}}
    assert sum(c["ours"] is None for c in cells) == len(cells) - 6  # the rest, BERTScore included, missing
    md = tables_cli.main([str(tmp_path), "--tables", "2", "4", "-o", str(tmp_path / "tables.md")])
    assert md == 0 and "| BioBART base | 28.14 / " in (tmp_path / "tables.md").read_text()
    for t in ("2", "4"):
        png = (tmp_path / f"smoke-table{t}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


# --- the reproduction plans ---------------------------------------------------------------------------
def plan(script, tmp_path, *args, **env):
    res = run(["bash", str(REPO / "examples" / script), *args], cwd=str(tmp_path), env=dict(DRY_RUN="1", **env))
    steps = {}
    for line in res.stdout.splitlines():
        m = re.match(r"(\S.*?)\s+([\d.]+|\?) GPU-h  (.*)$", line)
        if m:
            steps[m.group(1)] = (m.group(2), m.group(3))
    return res, steps


def test_reproduce_plan_for_one_model_runs_nothing(tmp_path):
    res, steps = plan("reproduce.sh", tmp_path, "checkpoints/biobart-base")
    assert res.returncode == 0, res.stdout[-2000:]
    assert list(tmp_path.iterdir()) == []  # DRY_RUN=1: nothing was run or written
    recipes = {k: v for k, v in steps.items() if k != "tables"}
    assert len(recipes) == 16 and all(k.endswith("(biobart-base)") for k in recipes)
    for _, cmd in recipes.values():
        script = cmd.split()[-1]
        assert script.endswith("/run.sh") and os.path.exists(script) and "PAPER_ROW=biobart-base" in cmd
    # hand-computed: throughput 120k x 2560 / (16 GPUs x 100 h) = 192,000 sequences per GPU-hour;
    # CovidDialog 490 x 20 epochs, AskAPatient 30k steps x batch 8 x 10 folds, MeQSum 500 x 6
    assert steps["covid_dialog (biobart-base)"][0] == "0.05" and steps["el_askapatient (biobart-base)"][0] == "12.50"
    assert steps["meqsum (biobart-base)"][0] == f"{500 * 6 / 192000:.2f}"
    assert steps["ner_cadec (biobart-base)"][0] == "?"  # Table 1 counts entities, not sentences
    assert "SIZE=base CHECKPOINT=checkpoints/biobart-base/model.pt" in steps["icliniq (biobart-base)"][1]
    assert "--tables 2 3 4 5" in steps["tables"][1]
    large, steps = plan("reproduce.sh", tmp_path, "models/BART_large", DATASETS="healthcaremagic")
    assert large.returncode == 0 and steps["healthcaremagic (bart-large)"][0] == f"{181122 * 6 / (120000 * 2560 / (16 * 168)):.2f}"
    bad, _ = plan("reproduce.sh", tmp_path, "models/my-model")
    assert bad.returncode == 2 and "not a row of Tables 2-5" in bad.stdout


def test_reproduce_table6_plan(tmp_path):
    res, steps = plan("reproduce_table6.sh", tmp_path, DATA="data-bin/pubmed", BART="checkpoints/bart-base")
    assert res.returncode == 0, res.stdout[-2000:]
    assert list(tmp_path.iterdir()) == []
    for arm, row in (("TI", "ti"), ("TI+SP", "ti+sp")):
        hours, cmd = steps[f"pretrain {arm} (40000 updates)"]
        assert hours == "533" and cmd.startswith(f"ARM={arm} ") and cmd.endswith("ablation_ti_sp.sh")  # 1600 h x 40k/120k
        tunes = [k for k in steps if k.endswith(f"({row})")]
        assert len(tunes) == 7 and all(f"PAPER_ROW={row} " in steps[k][1] for k in tunes)
    assert "--tables 6" in steps["tables"][1]
    missing = run(["bash", str(REPO / "examples/reproduce_table6.sh")], cwd=str(tmp_path), env={"DRY_RUN": "1"})
    assert missing.returncode != 0 and "DATA: PubMed binarized" in missing.stdout
