"""Every recipe family in SMALL=1 mode, run as the README says (``SMALL=1 bash examples/X/run.sh``,
from the checkout, on the real data in ../shared/data), only the work folders redirected:

* the outputs of the full recipe are all there;
* the learning rate follows the schedule to its end value on the very last update (the schedule
  comes from the batches fairseq builds or from --max-update), checked against polynomial decay
  recomputed from the updates the log shows;
* a work folder built with other settings stops the recipe, naming them and RESUME=1 / FRESH=1;
  RESUME=1 says it resumes; a failing step is named with its log (also under pipefail);
* once training has ended only the decoded checkpoint is kept, without optimizer state
  (KEEP_LAST=1 also keeps checkpoint_last.pt to train on), and results.json carries
  fairseq-generate's rate and the truncation counts of data-bin/stats.json.
"""

import json
import os
import re
import sys

import pytest

from biobart_fairseq.checkpoints import has_optimizer_state

from conftest import REPO, SHARED_DATA, run


def _recipe(name, env):
    res = run(["bash", str(REPO / "examples" / name / "run.sh")], env={"SMALL": "1", **env}, cwd=str(REPO))
    return res


def _need(path):
    if not path.exists():
        pytest.skip(f"real data not found at {path}")


def _train_log(text):
    """[(num_updates, lr)] of every train_inner line (LOG_INTERVAL=1)."""
    return [(int(u), float(lr)) for u, lr in re.findall(r"train_inner \|.*?num_updates=(\d+), lr=([\d.e-]+)", text)]


def _check_polynomial_schedule(steps, lr, warmup, total, end=0.0):
    """fairseq's polynomial_decay (power 1), recomputed here: the logged lr after update k."""
    assert [u for u, _ in steps] == list(range(1, total + 1)), "one log line per update, up to the total"
    for k, got in steps:
        if warmup and k <= warmup:
            want = lr * k / warmup
        else:
            want = end + (lr - end) * (1 - (k - warmup) / (total - warmup))
        assert got == pytest.approx(want, rel=1e-3, abs=1e-9), (k, got, want)
    assert steps[-1][1] == pytest.approx(end, abs=1e-9) and all(v > end for _, v in steps[:-1])


@pytest.fixture(scope="module")
def covid(tmp_path_factory):
    _need(SHARED_DATA / "covid_dialog_english")
    work = tmp_path_factory.mktemp("covid") / "work"
    # KEEP_LAST=1: checkpoint_last.pt stays, for the resume test below
    res = _recipe("covid_dialog", {"WORK": str(work), "EPOCHS": "2", "KEEP_LAST": "1"})
    assert res.returncode == 0, res.stdout[-4000:]
    return work, res.stdout


def test_covid_dialog_small_outputs_and_schedule(covid):
    work, log = covid
    for f in ("prep/stats.json", "data-bin/bpe.json", "checkpoints/checkpoint_best.pt", "output/generate.out",
              "output/hyp.txt", "output/scores.json", "train.log", "settings.txt"):
        assert (work / f).is_file(), f
    assert len((work / "output" / "hyp.txt").read_text().splitlines()) == 24
    total = int(re.search(r"schedule: (\d+) updates", log).group(1))
    per_epoch = {int(n) for n in re.findall(r"grouped total_num_itrs = (\d+)", log)}
    assert len(per_epoch) == 1 and total == per_epoch.pop() * 2  # the batches fairseq built, 2 epochs
    _check_polynomial_schedule(_train_log(log), 5e-3, total * 6 // 100, total)
    scores = json.loads((work / "output" / "scores.json").read_text())
    assert scores["n"] == 24 and "bertscore_f1" not in scores and scores["scales"]["rouge1"] == "F-measure x 100"
    _check_generation(work, 24)
    ckpts = work / "checkpoints"
    assert not has_optimizer_state(str(ckpts / "checkpoint_best.pt")) and has_optimizer_state(str(ckpts / "checkpoint_last.pt"))
    assert not (ckpts / "train.done").exists()


def _check_results(work, log):
    """results.json: the rate of fairseq-generate's closing line, and data-bin/stats.json's counts
    (SMALL=1's 400-piece BPE makes long MEDIQA sources longer than 1,024 positions: named in one line)."""
    rec = json.loads((work / "checkpoints" / "results.json").read_text())
    n, secs, rate = re.search(r"Translated (\d+) sentences \([\d,]+ tokens\) in ([\d.]+)s \(([\d.]+) sentences/s",
                              (work / "output" / "generate.log").read_text()).groups()
    assert (rec["speed"]["items"], rec["speed"]["seconds"], rec["speed"]["items_per_s"]) == (int(n), float(secs), float(rate))
    stats = json.loads((work / "data-bin" / "stats.json").read_text())
    assert rec["truncated"] == stats["truncated"] and stats["examples"]["test"] == 24
    cut = stats["truncated"]["test"]["source"]
    assert (f"biobart-results: note: {cut} test source(s) longer than 1024 positions" in log) == (cut > 0)
    return cut


def _check_generation(work, n_test):
    """Hypotheses in test-set order, one per test line, and no repeated trigram (the recipe's
    --no-repeat-ngram-size 3, which stock fairseq ignores on CPU)."""
    gen = (work / "output" / "generate.out").read_text(encoding="utf-8")
    by_id = {int(m.group(1)): m.group(2) for m in re.finditer(r"^D-(\d+)\t\S+\t(.*)$", gen, re.M)}
    hyps = (work / "output" / "hyp.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert sorted(by_id) == list(range(n_test)) and hyps == [by_id[i] for i in range(n_test)]
    for h in hyps:
        words = h.split()
        grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
        assert len(grams) == len(set(grams)), h


def test_other_settings_stop_the_recipe_and_resume_is_explicit(covid, tmp_path):
    work, _ = covid
    res = _recipe("covid_dialog", {"WORK": str(work), "EPOCHS": "3"})
    assert res.returncode == 2 and "== 1/5" not in res.stdout  # stopped before doing anything
    assert "EPOCHS: '2' then, '3' now" in res.stdout and "RESUME=1" in res.stdout and "FRESH=1" in res.stdout
    # RESUME=1: said so; a failing fairseq-train (behind `| tee`, with pipefail) is reported with its log
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "fairseq-train").write_text("#!/bin/bash\necho 'RuntimeError: out of memory'\nexit 1\n")
    (fake / "fairseq-train").chmod(0o755)
    res = _recipe("covid_dialog", {"WORK": str(work), "EPOCHS": "3", "RESUME": "1",
                                   "PATH": f"{fake}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}"})
    assert res.returncode == 1
    assert "RESUME=1: continuing in" in res.stdout and f"resuming from {work}/checkpoints/checkpoint_last.pt" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == (
        f'covid_dialog recipe: step "3/5 fine-tune (base, lr 5e-3, 3 epochs)" failed (exit 1); log: {work}/train.log')
    assert "EPOCHS=3" in (work / "settings.txt").read_text()


@pytest.mark.parametrize("recipe,data", [
    ("mediqa_qs", "meqsum"),          # trained on MeQSum, validated/tested on MEDIQA 2021
    ("mediqa_mas", "mediqa2021_mas"),  # no MEDIQA-AnS here: its validation split stands in for training
])
def test_summarization_small(recipe, data, tmp_path):
    _need(SHARED_DATA / data)
    work = tmp_path / "work"
    env = {"WORK": str(work), "EPOCHS": "1"}
    if recipe == "mediqa_qs":  # on the fast architecture (same parameters as bart_base)
        env["ARCH_ARGS"] = ("--arch biobart_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 "
                            "--decoder-embed-dim 64 --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 "
                            "--encoder-attention-heads 2 --decoder-attention-heads 2")
    res = _recipe(recipe, env)
    assert res.returncode == 0, res.stdout[-4000:]
    _check_generation(work, 24)
    stats = json.loads((work / "prep" / "stats.json").read_text())
    if recipe == "mediqa_qs":
        assert any("MeQSum" in p for p in stats["inputs"]["train"]) and stats["counts"]["train"] == 24
    else:
        assert "SMALL=1: no training split here; the validation split stands in for it" in res.stdout
    assert json.loads((work / "output" / "scores.json").read_text())["n"] == 24
    # training has ended: only the decoded checkpoint, without optimizer state
    ckpts = work / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("*.pt")) == ["checkpoint_best.pt"] and (ckpts / "train.done").is_file()
    assert not has_optimizer_state(str(ckpts / "checkpoint_best.pt"))
    cut = _check_results(work, res.stdout)
    if recipe == "mediqa_mas":
        assert cut > 0  # question + all its answers: long documents
    if recipe == "mediqa_qs":
        assert "'arch': 'biobart_base'" in (work / "train.log").read_text() or "biobart_base" in res.stdout
        # test questions through fairseq-interactive (examples/ask.sh), no settings given: it reads the
        # recipe's generation settings from results.json, so its answers are the test set's hypotheses
        sources = (work / "prep" / "test.source").read_text(encoding="utf-8").splitlines()
        hyps = (work / "output" / "hyp.txt").read_text(encoding="utf-8").splitlines()
        for i in (0, 5):
            question = sources[i].replace("\\n", "\n")  # the file's escaped newlines, as a user types them
            ask = run(["bash", str(REPO / "examples" / "ask.sh"), question], env={"WORK": str(work)}, cwd=str(REPO))
            assert ask.returncode == 0, ask.stdout[-3000:]
            assert ask.stdout.splitlines() == [hyps[i]], (ask.stdout[-2000:], hyps[i])


@pytest.mark.parametrize("recipe,data", [
    # NCBI also reads the module's CovidDialog run (below): the same xdist worker builds it once
    pytest.param("el_ncbi", "ncbi_disease", marks=pytest.mark.xdist_group("test_recipes_small")),
    ("el_bc5cdr", "bc5cdr")])
def test_entity_linking_small(recipe, data, tmp_path, request):
    _need(SHARED_DATA / data)
    env = {"OUT": str(tmp_path / "data"), "SAVE_DIR": str(tmp_path / "ckpt"), "LOG_INTERVAL": "1", "WORKERS": "2"}
    if recipe == "el_bc5cdr":
        env["RAW"] = "../shared/data/bc5cdr"  # the recipe's default is where the paper's run keeps it
    res = _recipe(recipe, env)
    assert res.returncode == 0, res.stdout[-4000:]
    save = tmp_path / "ckpt-small"
    preds = [json.loads(x) for x in (save / "test_predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 48 and all(len(p["names"]) <= 2 for p in preds)
    assert json.loads((save / "results.json").read_text())["metrics"].keys() == {"recall@1", "recall@5"}
    # --max-update 30 = --total-num-update: the lr reaches --end-learning-rate on update 30, not before
    _check_polynomial_schedule(_train_log((save / "train.log").read_text()), 1e-3, 3, 30, end=1e-7)
    if recipe == "el_bc5cdr":
        assert "--kb-from-data" in res.stdout or "stand in" in res.stdout
    else:  # a dialogue model given to biobart-el-eval: one line naming it, no state-dict traceback
        dialogue = request.getfixturevalue("covid")[0] / "checkpoints" / "checkpoint_best.pt"
        ev = run(["biobart-el-eval", str(tmp_path / "data-small" / "bin"), "--path", str(dialogue), "--split", "test"])
        assert ev.returncode == 2 and "Traceback" not in ev.stdout
        assert ev.stdout.strip().splitlines()[-1].startswith(f"biobart-el-eval: error: {dialogue}: not a model for entity linking")


@pytest.mark.parametrize("recipe,data,n_test", [("ner_genia", "genia_nested_ner", 40),
                                                ("ner_cadec", "cadec_discontinuous_sample", 4)])
def test_ner_small(recipe, data, n_test, tmp_path):
    _need(SHARED_DATA / data)
    res = _recipe(recipe, {"SAVE_DIR": str(tmp_path / "ckpt"), "LOG_INTERVAL": "1"})
    assert res.returncode == 0, res.stdout[-4000:]
    save = tmp_path / "ckpt-small"
    assert len((save / "test.pred.jsonl").read_text().splitlines()) == n_test
    assert (save / "checkpoint_best.pt").is_file() and (save / "results.json").is_file()
    updates = int(re.search(r"== fine-tune \(3 epochs, (\d+) updates\)", res.stdout).group(1))
    steps = _train_log((save / "train.log").read_text())
    assert steps[-1][0] == updates and steps[-1][1] == pytest.approx(0.0, abs=1e-12)  # lr ends with the run
