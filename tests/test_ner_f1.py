"""Entity-level micro F1: hand-computed cases and the biobart-ner-score CLI."""

import json
import sys

import pytest

from conftest import run
from biobart_fairseq.cli import ner_score
from biobart_fairseq.metrics.entity_f1 import score


def sent(tokens, *entities):
    return {"tokens": tokens.split(), "entities": [{"type": t, "spans": [list(s) for s in spans]} for t, spans in entities]}


TOKENS = "IL-2 gene expression in T cells and B cells"  # 9 words

GOLD = [
    # nested: protein inside DNA, and cell types
    sent(TOKENS, ("protein", [(0, 1)]), ("DNA", [(0, 2)]), ("cell_type", [(4, 6)]), ("cell_type", [(7, 9)])),
    # discontinuous: "T ... cells" (T cells) and "B cells"
    sent(TOKENS, ("cell_type", [(4, 5), (8, 9)]), ("cell_type", [(7, 9)])),
]


def test_hand_computed_nested_discontinuous_duplicates():
    pred = [
        # nested protein right; DNA boundary wrong; one cell_type right, predicted twice; a spurious RNA
        sent(TOKENS, ("protein", [(0, 1)]), ("DNA", [(0, 3)]), ("cell_type", [(4, 6)]), ("cell_type", [(4, 6)]),
             ("RNA", [(2, 3)])),
        # discontinuous right only with both fragments; the contiguous "T cells" span is wrong here
        sent(TOKENS, ("cell_type", [(4, 5), (8, 9)]), ("cell_type", [(4, 6)])),
    ]
    r = score(GOLD, pred)
    # gold 6; predicted (duplicates counted once) 4 + 2 = 6; correct: protein, cell_type[4,6), discontinuous = 3
    assert (r["tp"], r["pred"], r["gold"]) == (3, 6, 6)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5) and r["f1"] == pytest.approx(0.5)
    ct = r["per_type"]["cell_type"]
    assert (ct["tp"], ct["pred"], ct["gold"]) == (2, 3, 4)
    assert ct["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert r["per_type"]["RNA"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "pred": 1, "gold": 0}
    assert r["per_type"]["DNA"]["f1"] == 0.0 and r["per_type"]["protein"]["f1"] == 1.0


def test_partial_discontinuous_match_is_wrong_and_type_matters():
    gold = [sent(TOKENS, ("cell_type", [(4, 5), (8, 9)]))]
    assert score(gold, [sent(TOKENS, ("cell_type", [(4, 5)]))])["f1"] == 0.0  # one fragment only
    assert score(gold, [sent(TOKENS, ("cell_line", [(4, 5), (8, 9)]))])["f1"] == 0.0  # wrong type
    assert score(gold, [sent(TOKENS, ("cell_type", [(8, 9), (4, 5)]))])["f1"] == 1.0  # fragment order irrelevant
    # no predictions and no gold: 0 by convention, not a division by zero
    assert score([sent(TOKENS)], [sent(TOKENS)])["f1"] == 0.0


def test_perfect_and_misaligned():
    assert score(GOLD, GOLD)["f1"] == 1.0
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        score(GOLD, GOLD[:1])


def write(path, sents):
    path.write_text("".join(json.dumps(s) + "\n" for s in sents))
    return str(path)


def test_ner_score_cli(tmp_path, capsys):
    pred = [sent(TOKENS, ("protein", [(0, 1)]), ("protein", [(0, 1)])), sent(TOKENS, ("cell_type", [(7, 9)]))]
    g, p = write(tmp_path / "g.jsonl", GOLD), write(tmp_path / "p.jsonl", pred)
    res = run([sys.executable, "-m", "biobart_fairseq.cli.ner_score", "--metric", "entity", "--gold", g, "--pred", p,
               "--output-json", str(tmp_path / "s.json")])
    assert res.returncode == 0, res.stdout
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["metric"] == "entity" and (out["tp"], out["pred"], out["gold"]) == (2, 2, 6)
    assert out["precision"] == 1.0 and out["recall"] == pytest.approx(1 / 3) and out["f1"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "s.json").read_text()) == out
    assert set(out["per_type"]) == {"protein", "DNA", "cell_type"}

    # misaligned files and bad lines are errors naming the file (and line)
    short = write(tmp_path / "short.jsonl", pred[:1])
    assert ner_score.main(["--metric", "entity", "--gold", g, "--pred", short]) == 2
    assert "1 sentences but" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text(json.dumps(GOLD[0]) + "\n" + '{"tokens": ["a"], "entities": [{"type": "X", "spans": [[0, 5]]}]}\n')
    assert ner_score.main(["--metric", "entity", "--gold", g, "--pred", str(tmp_path / "bad.jsonl")]) == 2
    assert f"{tmp_path / 'bad.jsonl'}:2:" in capsys.readouterr().err
