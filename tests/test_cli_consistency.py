"""The biobart-* commands behave alike: each module in biobart_fairseq/cli has an installed
console script, and no command takes an abbreviated flag for a full one (``--bea 3`` once ran
biobart-el-eval with beam 3)."""

import argparse
import json
import importlib
import importlib.metadata
from pathlib import Path

import pytest

CLI_DIR = Path(__file__).resolve().parents[1] / "biobart_fairseq" / "cli"
MODULES = sorted(p.stem for p in CLI_DIR.glob("*.py") if p.stem != "__init__" and "def main(" in p.read_text())


def test_every_command_has_a_console_script():
    scripts = {ep.value.split(":")[1]: ep.name for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.value.startswith("biobart_launch:")}
    missing = [m for m in MODULES if m not in scripts]
    assert not missing, f"cli modules without a console script (setup.py COMMANDS, biobart_launch.py): {missing}"
    assert scripts["binarize_seq2seq"] == "biobart-binarize-seq2seq"
    import biobart_launch

    assert all(callable(getattr(biobart_launch, m)) for m in MODULES)


class _Captured(Exception):
    pass


def _parser_of(module_name, monkeypatch):
    """The parser a command builds: its main() is stopped where it calls parse_args."""
    seen = {}

    def capture(self, args=None, namespace=None):
        seen["parser"] = self
        raise _Captured

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    module = importlib.import_module(f"biobart_fairseq.cli.{module_name}")
    with pytest.raises(_Captured):
        module.main([])
    monkeypatch.undo()
    return seen["parser"]


def _parsers(parser, name):
    """The parser and, for commands with sub-commands, each sub-command's parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(name, parser)]
    return [(f"{name} {k}", p) for a in subs for k, p in a.choices.items()]


def _abbreviations_taken(parser):
    """Long options whose abbreviation (all but the last letter) the parser takes for them."""
    for a in parser._actions:
        a.required = False  # so that only the probe matters, not the command's required inputs
    for g in parser._mutually_exclusive_groups:
        g.required = False
    longs = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    taken = []
    for a in parser._actions:
        for opt in a.option_strings:
            short = opt[:-1]
            if not opt.startswith("--") or opt == "--help" or short in longs:
                continue
            value = [str(next(iter(a.choices)))] if a.choices else (["1"] if a.nargs != 0 else [])
            try:
                _, extras = parser.parse_known_args([short] + value)
            except SystemExit:  # e.g. an ambiguous abbreviation: still not an unknown flag
                taken.append(opt)
                continue
            if short not in extras:
                taken.append(opt)
    return taken


@pytest.mark.parametrize("module_name", MODULES)
def test_abbreviated_flags_are_unknown(module_name, monkeypatch, capsys):
    for name, parser in _parsers(_parser_of(module_name, monkeypatch), module_name):
        n_long = sum(1 for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help")
        assert n_long > 0 or name == "convert", name
        assert _abbreviations_taken(parser) == [], f"{name} accepts abbreviated flags"
    capsys.readouterr()


def test_abbreviated_flag_is_an_error_naming_it(tmp_path, capsys):
    from biobart_fairseq.cli import score

    (tmp_path / "h").write_text("a b\n")
    with pytest.raises(SystemExit) as e:
        score.main(["--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "h"), "--no-bert"])
    assert e.value.code == 2 and "unrecognized arguments: --no-bert" in capsys.readouterr().err


BPE_COMMANDS = ("binarize", "binarize_seq2seq", "prepare_el", "prepare_ner")


@pytest.mark.parametrize("module_name", BPE_COMMANDS)
def test_every_bpe_command_can_train_or_reuse_sentencepiece(module_name, monkeypatch):
    parser = _parser_of(module_name, monkeypatch)
    for a in parser._actions:
        a.required = False
    args, extras = parser.parse_known_args(["--bpe", "sentencepiece", "--spm-model", "m.model", "--vocab-size", "123"])
    assert extras == [] and (args.bpe, args.spm_model, args.vocab_size) == ("sentencepiece", "m.model", 123)


def test_prepare_ner_trains_sentencepiece_then_reuses_it(tmp_path, capsys):
    """biobart-prepare-ner once needed --spm-model; now it trains one on its inputs, as the others do."""
    from biobart_fairseq.cli import prepare_ner

    src = tmp_path / "train.jsonl"
    src.write_text("".join(
        '{"tokens": %s, "entities": [{"type": "Drug", "spans": [[0, 1]]}]}\n'
        % json.dumps(f"aspirin{i} relieved the pain of patient number {i} quickly".split()) for i in range(40)))
    assert prepare_ner.main(["--format", "jsonl", "--input", str(src), "-o", str(tmp_path / "a"),
                             "--bpe", "sentencepiece", "--vocab-size", "400"]) == 0
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "a" / "spm.model"))
    assert sp.get_piece_size() <= 400 and "▁relieved" in sp.encode("aspirin7 relieved", out_type=str)
    assert prepare_ner.main(["--format", "jsonl", "--input", str(src), "-o", str(tmp_path / "b"),
                             "--bpe", "sentencepiece", "--spm-model", str(tmp_path / "a" / "spm.model")]) == 0
    assert (tmp_path / "b" / "spm.model").read_bytes() == (tmp_path / "a" / "spm.model").read_bytes()
    assert "training sentencepiece" in capsys.readouterr().err


# ------------------------------------------------------------------ bad records: one form


def test_bad_records_one_form_cap_and_status(capsys):
    from biobart_fairseq.errors import EXIT_BAD_RECORDS, EXIT_OK, BadRecords

    bad = BadRecords("biobart-x", shown=2)
    assert bad.status() == EXIT_OK and len(bad) == 0
    bad.report("out/report.json")
    assert capsys.readouterr().err == ""  # nothing bad: nothing said
    bad.add("a.txt", 7, "no text")
    bad.add("b.xlsx", "row 12", "empty target")
    bad.add("c.xml", None, "file is empty")
    bad.add_located("d.jsonl:3: not valid JSON")
    assert bad.to_json() == ["a.txt:7: no text", "b.xlsx:row 12: empty target", "c.xml: file is empty",
                             "d.jsonl:3: not valid JSON"]
    bad.report("out/report.json")
    assert capsys.readouterr().err.splitlines() == [
        "biobart-x: skipped a.txt:7: no text",
        "biobart-x: skipped b.xlsx:row 12: empty target",
        "biobart-x: 4 bad record(s) skipped, the first 2 shown (all in out/report.json)",
    ]
    assert len(bad) == 4 and bad.status() == EXIT_BAD_RECORDS == 3


def test_bad_records_all_shown_under_the_cap(capsys):
    from biobart_fairseq.errors import BadRecords

    bad = BadRecords("p")
    bad.add("f", 1, "r")
    bad.report()
    assert capsys.readouterr().err.splitlines() == ["p: skipped f:1: r", "p: 1 bad record(s) skipped"]
