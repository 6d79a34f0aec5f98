"""biobart-generate / inference.Generator decode as the recipe's fairseq-generate does.

The model: the CovidDialog recipe in SMALL=1 mode (real dialogues, a tiny BART, 1 epoch), run
as the README says; its own ``output/generate.out`` (fairseq-generate with the recipe's flags)
is the reference.  A 1-epoch model writes the same text for every input, so the texts alone
would not show that each input reached the model: the scores (which differ per input) are
compared too.
"""

import json
import re
import warnings

import pytest

from conftest import REPO, SHARED_DATA, run

# one xdist worker for this module and tests/test_api.py: the recipe model is built once
pytestmark = [pytest.mark.xdist_group("seq2seq_model"), pytest.mark.usefixtures("one_thread")]


def build_seq2seq_model(tmp_path_factory):
    """The SMALL=1 CovidDialog recipe's WORK folder, built once per test process: tests/test_api.py
    imports this fixture, which makes a second fixture of the same name there, so the folder
    (in the session's base temp) is what they share."""
    if not (SHARED_DATA / "covid_dialog_english").is_dir():
        pytest.skip(f"real CovidDialog data not found at {SHARED_DATA / 'covid_dialog_english'}")
    work = tmp_path_factory.getbasetemp() / "seq2seq_model" / "work"
    if not (work / "checkpoints" / "results.json").is_file():
        res = run(["bash", str(REPO / "examples" / "covid_dialog" / "run.sh")],
                  env={"SMALL": "1", "EPOCHS": "1", "WORK": str(work), "FRESH": "1"}, cwd=str(REPO))
        assert res.returncode == 0, res.stdout[-4000:]
    return work


@pytest.fixture(scope="session")
def seq2seq_model(tmp_path_factory):
    return build_seq2seq_model(tmp_path_factory)


def fairseq_generate_lines(work):
    """{test index: (score, text)} of the recipe's fairseq-generate D- lines."""
    gen = (work / "output" / "generate.out").read_text(encoding="utf-8")
    return {int(m.group(1)): (float(m.group(2)), m.group(3)) for m in re.finditer(r"^D-(\d+)\t(\S+)\t(.*)$", gen, re.M)}


def sources_of(work):
    from biobart_fairseq.data.seq2seq_readers import unescape_newlines

    return [unescape_newlines(x) for x in (work / "prep" / "test.source").read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.fixture(scope="session")  # session, not module: tests/conftest.py would then group by module
def generator(seq2seq_model):
    from biobart_fairseq.inference.generator import Generator

    return Generator.from_path(seq2seq_model, batch_size=32)


def test_generator_equals_fairseq_generate_of_the_recipe(seq2seq_model, generator):
    from biobart_fairseq.data.seq2seq_readers import unescape_newlines

    ref = fairseq_generate_lines(seq2seq_model)
    sources = sources_of(seq2seq_model)
    assert sorted(ref) == list(range(len(sources))) == list(range(24))
    # the recipe's settings, read from its results.json
    rec = json.loads((seq2seq_model / "checkpoints" / "results.json").read_text())["decoding"]
    s = generator.settings
    assert (s.beam, s.lenpen, s.min_len, s.max_len_b, s.no_repeat_ngram_size) == (
        rec["beam"], rec["lenpen"], rec["min_len"], rec["max_len_b"], rec["no_repeat_ngram_size"]) == (2, 1.0, 1, 24, 3)
    assert len({round(score, 6) for score, _ in ref.values()}) >= 20  # the scores tell the inputs apart
    for batch_size in (32, 5):  # one batch as fairseq-generate's, and batches of another make-up
        generator.batch_size = batch_size
        got = generator.run(sources)
        assert [g.text for g in got] == [unescape_newlines(ref[i][1]) for i in range(24)]
        for i, g in enumerate(got):
            assert g.score == pytest.approx(ref[i][0], abs=1e-6), i
            assert g.truncated_at is None and g.notes == []
    generator.batch_size = 32


def test_over_long_input_is_cut_as_the_recipe_cuts_it_and_said_so(seq2seq_model, generator):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(seq2seq_model / "data-bin" / "spm.model"))
    base = sources_of(seq2seq_model)[0].replace("\n", " ")
    long_text = "Patient: " + " ".join([base] * 12)
    n = len(sp.encode(long_text.replace("\n", "\\n"), out_type=str))
    assert n > 1100
    changed_tail = long_text + " The end is different here and never read."
    changed_head = "Hello. " + long_text
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        generator.generate([long_text])
    assert any("input cut at 1023 of" in str(x.message) for x in w)
    a, b, c = generator.run([long_text, changed_tail, changed_head])
    assert (a.truncated_at, a.source_tokens) == (1023, n + 1)  # 1024 positions: 1023 tokens + </s>
    assert a.notes == [f"input cut at 1023 of {n} tokens (the model reads 1024 positions; the recipes train "
                       "and test with --truncate-source)"]
    assert a.score == b.score and a.text == b.text  # what lies beyond the cut is not read
    assert c.score != a.score  # what lies before it is


def test_command_lines_and_jsonl_with_bad_records(seq2seq_model, tmp_path, capsys):
    from biobart_fairseq.cli import generate

    ref = fairseq_generate_lines(seq2seq_model)
    src_lines = (seq2seq_model / "prep" / "test.source").read_bytes().split(b"\n")[:4]
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"\n".join(src_lines[:2] + [b"   ", b"caf\xe9 au lait"] + src_lines[2:4]) + b"\n")
    out = tmp_path / "out.txt"
    rc = generate.main([str(inp), "--model", str(seq2seq_model), "--output-format", "lines", "-o", str(out),
                        "--report", str(tmp_path / "report.json")])
    err = capsys.readouterr().err
    assert rc == 3
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == [ref[0][1], ref[1][1], "", "", ref[2][1], ref[3][1]]
    assert f"biobart-generate: skipped {inp}:3: empty line" in err
    assert f"biobart-generate: skipped {inp}:4: not UTF-8 text (byte 0xe9 at column 4)" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["texts"] == 4 and len(report["bad_records"]) == 2 and report["speed"]["items_per_s"] > 0
    # JSONL: a dialogue history as text and as turns are the same input; records keep their fields
    turns = [line.split(": ", 1) for line in sources_of(seq2seq_model)[1].split("\n")]
    jin = tmp_path / "in.jsonl"
    jin.write_text("\n".join([json.dumps({"id": "a", "text": sources_of(seq2seq_model)[1], "extra": 1}),
                              json.dumps({"id": "b", "turns": turns}), "[1, 2]", json.dumps({"id": "c"})]) + "\n")
    rc = generate.main([str(jin), "--model", str(seq2seq_model), "-o", str(tmp_path / "out.jsonl"), "--quiet"])
    err = capsys.readouterr().err
    recs = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rc == 3 and [r["id"] for r in recs] == ["a", "b"] and recs[0]["extra"] == 1
    assert recs[0]["output"] == recs[1]["output"] == ref[1][1] and recs[0]["score"] == recs[1]["score"]
    assert recs[0]["score"] == pytest.approx(ref[1][0], abs=1e-5)
    assert f"{jin}:3: not a JSON object" in err and f"{jin}:4: no 'text'" in err


def test_wrong_task_and_unreadable_checkpoints_are_one_line_errors(seq2seq_model, tmp_path):
    import torch

    from biobart_fairseq import errors
    from biobart_fairseq.inference.generator import Generator

    state = torch.load(seq2seq_model / "checkpoints" / "checkpoint_best.pt", weights_only=False)
    state["cfg"]["task"]["_name"] = "bartner_ner"
    ner = tmp_path / "ner.pt"
    torch.save(state, ner)
    with pytest.raises(errors.Unusable, match=rf"^{ner}: not a model for generation: its task is bartner_ner; for this one use "
                                              "biobart-tag"):
        Generator.from_path(str(ner))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    (tmp_path / "q.txt").write_text("Patient: hello\n")
    for model, message in ((ner, "not a model for generation"), (junk, "not a fairseq checkpoint"),
                           (tmp_path / "none.pt", "no such file or folder")):
        res = run(["biobart-generate", str(tmp_path / "q.txt"), "--model", str(model)])
        assert res.returncode == 2 and "Traceback" not in res.stdout, res.stdout[-2000:]
        assert res.stdout.strip().splitlines()[-1].startswith(f"biobart-generate: error: {model}: {message}")
