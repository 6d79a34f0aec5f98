"""results.json: the one writer (biobart_fairseq/results.py, biobart-results), its schema, and the
mapping of each scorer's output to the paper's units."""

import hashlib
import json

import pytest
import torch

from biobart_fairseq import results as R
from biobart_fairseq.cli import write_results


def write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_sha256_streams_across_chunks(tmp_path):
    blob = bytes(range(256)) * 9000 + b"tail"  # > 2 chunks of 1 MiB, not a multiple of the chunk
    f = tmp_path / "w.pt"
    f.write_bytes(blob)
    assert R.sha256_file(f, chunk=1 << 20) == R.sha256_file(f, chunk=7) == hashlib.sha256(blob).hexdigest()


def test_scorer_outputs_in_the_papers_units(tmp_path):
    # biobart-score --json prints ROUGE and BLEU on 0-100 already, BERTScore F1 on 0-1 (as the paper)
    s = write(tmp_path / "scores.json", {"rouge1": 27.5, "rouge2": 12.0, "rougeL": 25.0, "rougeLsum": 25.5,
                                         "bleu": 10.1, "bertscore_f1": 0.851, "n": 61})
    m, d = R.seq2seq_metrics(s, "roberta-large")
    assert m == {"rouge1": 27.5, "rouge2": 12.0, "rougeL": 25.0, "rougeLsum": 25.5, "bleu": 10.1, "bertscore_f1": 0.851}
    assert d["bertscore_model"] == "roberta-large" and d["n"] == 61
    s2 = write(tmp_path / "scores2.json", {"rouge1": 1.0, "bertscore_f1": 0.9, "bertscore_model": "/m/minilm", "n": 2,
                                           "scales": {"rouge1": "F-measure x 100"}})
    assert R.seq2seq_metrics(s2, "roberta-large")[1]["bertscore_model"] == "/m/minilm"  # the scorer's own record wins
    # biobart-el-eval: fractions -> x 100; folds -> unweighted mean of the folds (AskAPatient)
    f1 = write(tmp_path / "f1.json", {"R@1": 0.5, "R@5": 0.75, "n": 4, "outputs_not_in_kb": 0})
    f2 = write(tmp_path / "f2.json", {"R@1": 1.0, "R@5": 1.0, "n": 2, "outputs_not_in_kb": 0})
    m, d = R.el_metrics([f1])
    assert m == {"recall@1": 50.0, "recall@5": 75.0} and d["n"] == 4
    m, d = R.el_metrics([f1, f2])
    assert m == {"recall@1": 75.0, "recall@5": 87.5} and d["folds"] == 2 and d["n"] == 6
    # biobart-ner-score: 2 of 3 predicted entities right, 2 of 4 gold found
    ner = write(tmp_path / "ner.json", {"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "tp": 2, "pred": 3, "gold": 4,
                                        "per_type": {}})
    m, d = R.ner_metrics(ner)
    assert m["f1"] == pytest.approx(100 * 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)) and m["precision"] == pytest.approx(66.6667, abs=1e-3)
    assert (d["tp"], d["pred"], d["gold"]) == (2, 3, 4)
    with pytest.raises(R.ResultsError, match="f1.json: no R@k keys"):
        R.el_metrics([write(tmp_path / "f1.json", {"f1": 0.3})])


def test_checkpoint_settings_are_read_from_the_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoint_best.pt"
    torch.save({"cfg": {"task": {"_name": "biomed_translation"}, "model": {"_name": "bart_base"},
                        "optimization": {"lr": [5e-5], "max_epoch": 20, "update_freq": [1]},
                        "dataset": {"batch_size": 16}, "common": {"seed": 3, "fp16": True},
                        "checkpoint": {"best_checkpoint_metric": "loss"}},
                "optimizer_history": [{"num_updates": 620}], "extra_state": {"best": 4.25, "train_iterator": {"epoch": 20}},
                "model": {"w": torch.zeros(2)}}, ckpt)
    info = R.checkpoint_info(str(ckpt))
    assert info == {"task": "biomed_translation", "arch": "bart_base", "lr": [5e-5], "max_epoch": 20, "update_freq": [1],
                    "batch_size": 16, "seed": 3, "fp16": True, "num_updates": 620, "epoch": 20, "best_valid": 4.25,
                    "best_metric": "loss"}


def test_cli_writes_a_valid_record_and_rows_follow_the_pretraining_run(tmp_path, capsys):
    pre = tmp_path / "ablation-ours"
    pre.mkdir()
    torch.save({"cfg": {"checkpoint": {"best_checkpoint_metric": "loss"}}, "optimizer_history": [{"num_updates": 5}],
                "extra_state": {"best": 7.5}}, pre / "checkpoint_last.pt")
    assert write_results.main(["--kind", "pretrain", "--dataset", "pubmed", "--split", "valid", "--checkpoint",
                               str(pre / "checkpoint_last.pt"), "--paper-row", "ti", "-o", str(pre / "results.json")]) == 0
    rec = R.load(pre / "results.json")
    assert rec["metrics"] == {"valid_loss": 7.5} and rec["paper_row"] == "ti" and rec["kind"] == "pretrain"

    scores = write(tmp_path / "scores.json", {"rouge1": 20.0, "rouge2": 5.0, "rougeL": 18.0, "rougeLsum": 18.5,
                                              "bleu": 3.0, "bertscore_f1": 0.8, "n": 5})
    out = tmp_path / "ft" / "results.json"
    assert write_results.main([
        "--kind", "seq2seq", "--dataset", "covid_dialog", "--scores", scores, "--scorer-args", "--bertscore-model /m/x",
        "--model", str(pre / "checkpoint_last.pt"), "--checkpoint", str(tmp_path / "gone.pt"),
        "--decoding", "beam=5", "lenpen=1.0", "--setting", "lr=5e-5", "--command", "bash run.sh", "-o", str(out)]) == 0
    assert "gone.pt: not found" in capsys.readouterr().err
    rec = json.loads(out.read_text())
    assert R.validate(rec) == []
    assert rec["paper_row"] == "ti"  # inherited from the pretraining run that made the starting model
    assert rec["model"]["sha256"] == hashlib.sha256((pre / "checkpoint_last.pt").read_bytes()).hexdigest()
    assert rec["checkpoint"]["sha256"] is None
    assert rec["decoding"] == {"beam": 5, "lenpen": 1.0} and rec["settings"] == {"lr": 5e-5}
    assert rec["metric_details"]["bertscore_model"] == "/m/x" and rec["scales"]["bertscore_f1"].startswith("mean F1, 0-1")
    assert rec["versions"]["torch"] == torch.__version__.split("+")[0] or rec["versions"]["torch"] == torch.__version__
    assert rec["versions"]["fairseq"] and rec["command"] == "bash run.sh"


@pytest.mark.parametrize("change,problem", [
    (lambda r: r.pop("metrics"), "metrics: missing"),
    (lambda r: r.update(kind="train"), "kind: 'train'"),
    (lambda r: r.update(paper_row="biobart"), "paper_row: 'biobart'"),
    (lambda r: r["metrics"].update(rouge1=float("nan")), "metrics.rouge1: nan is not a number"),
    (lambda r: r["metrics"].update(meteor=3.0), "metrics.meteor: no entry in scales"),
    (lambda r: r["model"].update(sha256="abc"), "model.sha256: 'abc'"),
    (lambda r: r.update(schema="biobart-results/0"), "schema: 'biobart-results/0'"),
])
def test_schema_rejects(change, problem, tmp_path):
    rec = R.build_record("seq2seq", "covid_dialog", "test", {"rouge1": 1.0}, {})
    assert R.validate(rec) == []
    change(rec)
    assert any(problem in p for p in R.validate(rec)), R.validate(rec)
    with pytest.raises(R.ResultsError, match="invalid record"):
        R.write(tmp_path / "results.json", rec)
    assert not (tmp_path / "results.json").exists()


def test_cli_refuses_unusable_scores_with_the_file_name(tmp_path, capsys):
    bad = tmp_path / "scores.json"
    bad.write_text("{\n  \"rouge1\": 3,\n  oops\n}\n")
    rc = write_results.main(["--kind", "seq2seq", "--dataset", "x", "--scores", str(bad), "-o", str(tmp_path / "r.json")])
    assert rc == 2 and f"{bad}:3: not JSON" in capsys.readouterr().err
    rc = write_results.main(["--kind", "ner", "--dataset", "x", "--scores", str(tmp_path / "none.json"), "-o", "r.json"])
    assert rc == 2 and "none.json: no such file" in capsys.readouterr().err


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python in the NER recipe: the scorer writes a known score file; anything else runs.
if [ "$1 $2" = "-m biobart_fairseq.cli.ner_score" ]; then
  while [ $# -gt 0 ]; do [ "$1" = --output-json ] && mkdir -p "$(dirname "$2")" && echo '{"precision": 0.75, "recall": 0.5, "f1": 0.6}' > "$2"; shift; done
  exit 0
fi
exec PYTHON_EXE "$@"
"""


def test_ner_recipe_writes_the_record_after_scoring(tmp_path):
    """The NER recipe's test stage ends with results.json: dataset from the recipe folder,
    F1 x 100 from the scorer's file, the recipe's decoding settings."""
    import os
    import sys

    from conftest import REPO, run

    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.replace("PYTHON_EXE", sys.executable))
    fake.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"tokens": ["a"], "entities": []}\n')
    save = tmp_path / "save"
    env = {"DATA": str(data), "BART": str(tmp_path / "bart-base"), "STAGES": "test", "PYTHON": str(fake),
           "SAVE_DIR": str(save), "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    res = run(["bash", str(REPO / "examples/ner_cadec/run.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    rec = R.load(save / "results.json")
    assert (rec["kind"], rec["dataset"], rec["split"], rec["paper_row"]) == ("ner", "cadec", "test", "bart-base")
    assert rec["metrics"] == pytest.approx({"f1": 60.0, "precision": 75.0, "recall": 50.0})
    assert rec["decoding"] == {"beam": 4, "max_len_a": 1.6, "max_len_b": 10} and rec["settings"]["lr"] == 2e-5
    assert rec["command"].startswith("bash ") and rec["command"].split()[1].endswith("ner_cadec/run.sh")
