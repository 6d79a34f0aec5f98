"""Preparation output appears complete or not at all (biobart_fairseq/data/atomic.py), Ctrl-C
exits in one line with status 130, and the failure modes once seen as tracebacks or broken
folders are one-line errors naming the file."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from biobart_fairseq.data.atomic import run_staged

from conftest import SHARED_DATA

NCBI = SHARED_DATA / "ncbi_disease"
PUBMED_SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "pubmed_sample"


def _snapshot(folder):
    """{relative path: sha1} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def old_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stats.json").write_text("old\n")
    (out / "train.source").write_text("old data\n")
    return out


def _body(files, rc=0, raise_=None):
    def body(args):
        for name, text in files.items():
            Path(args.out_dir, name).write_text(text)
        if raise_:
            raise raise_
        return rc
    return body


def test_success_replaces_the_folder_whole(old_out):
    args = Namespace(out_dir=str(old_out))
    assert run_staged("prog", args, _body({"stats.json": "new\n"}), ("stats.json",)) == 0
    assert _snapshot(old_out) == {"stats.json": hashlib.sha1(b"new\n").hexdigest()}  # stale train.source gone
    assert args.out_dir == str(old_out) and not Path(f"{old_out}.incomplete").exists()


def test_failure_leaves_the_old_folder_and_keeps_the_attempt(old_out, capsys):
    before = _snapshot(old_out)
    rc = run_staged("prog", Namespace(out_dir=str(old_out)), _body({"stats.json": "half\n"}, rc=2), ("stats.json",))
    assert rc == 2 and _snapshot(old_out) == before
    assert Path(f"{old_out}.incomplete/stats.json").read_text() == "half\n"  # for inspection
    run_staged("prog", Namespace(out_dir=str(old_out)), _body({"stats.json": "new\n"}), ("stats.json",))
    assert (old_out / "stats.json").read_text() == "new\n" and not Path(f"{old_out}.incomplete").exists()


def test_interrupt_leaves_the_old_folder(old_out, capsys):
    before = _snapshot(old_out)
    rc = run_staged("prog", Namespace(out_dir=str(old_out)),
                    _body({"stats.json": "half\n"}, raise_=KeyboardInterrupt()), ("stats.json",))
    err = capsys.readouterr().err
    assert rc == 130 and err == f"prog: interrupted; {old_out} left as it was\n"
    assert _snapshot(old_out) == before and not Path(f"{old_out}.incomplete").exists()


def test_foreign_folder_is_refused_and_carry_over_keeps_files(tmp_path, capsys):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    rc = run_staged("prog", Namespace(out_dir=str(foreign)), _body({"stats.json": "x"}), ("stats.json",))
    assert rc == 2 and "not empty and holds no output of this command" in capsys.readouterr().err
    assert _snapshot(foreign) == {"thesis.tex": hashlib.sha1(b"mine").hexdigest()}
    out = tmp_path / "ner"
    run_staged("prog", Namespace(out_dir=str(out)), _body({"ner.json": "1", "train.jsonl": "a"}), ("ner.json",))
    run_staged("prog", Namespace(out_dir=str(out)), _body({"ner.json": "2", "test.jsonl": "b"}), ("ner.json",),
               carry_over=True)
    assert sorted(_snapshot(out)) == ["ner.json", "test.jsonl", "train.jsonl"] and (out / "ner.json").read_text() == "2"


def _cli(*argv, **kw):
    launcher = [sys.executable, "-m", "biobart_launch"]
    return subprocess.run(launcher + list(argv), capture_output=True, text=True, **kw)


def test_ctrl_c_during_binarize_exits_130_in_one_line(tmp_path):
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group (command, its pool
    workers, fairseq-preprocess), while the new data is being written over an existing folder."""
    text = tmp_path / "train.txt"
    lines = (PUBMED_SAMPLE / "sample_baseline.xml").read_text(encoding="utf-8").split("\n")
    text.write_text("\n".join(x.strip() for x in lines if x.strip()) + "\n", encoding="utf-8")
    out = tmp_path / "bin"  # an earlier run's output (stands in: only its bytes matter)
    out.mkdir()
    for name in ("dict.txt", "bpe.json", "spm.model", "train.bin", "train.idx"):
        (out / name).write_bytes(os.urandom(64))
    before = _snapshot(out)
    args = ["binarize", "--train", str(text), "-o", str(out), "--bpe", "sentencepiece", "--vocab-size", "800",
            "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "biobart_launch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    staged = tmp_path / "bin.incomplete" / "bpe-text" / "train.bpe"
    deadline = time.time() + 60
    while not staged.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"biobart-binarize: interrupted; {out} left as it was"
    assert _snapshot(out) == before and not (tmp_path / "bin.incomplete").exists()


def test_sentencepiece_vocabulary_error_names_the_file(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("a tiny text with few characters\n" * 20)
    out = tmp_path / "bin"
    r = _cli("binarize", "--train", str(text), "-o", str(out), "--bpe", "sentencepiece", "--vocab-size", "5")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"biobart-binarize: error: {text}: sentencepiece cannot learn a 5-piece")
    assert not out.exists()


@pytest.fixture(scope="module")
def ncbi():
    if not NCBI.exists():
        pytest.skip(f"real data not found at {NCBI}")
    return NCBI


def test_prepare_el_bad_inputs_are_one_line_errors(ncbi, tmp_path):
    out = tmp_path / "el"
    out.mkdir()
    (out / "kb.tsv").write_text("D000001\told name\n")
    before = _snapshot(out)
    # a text that is not a KB: the old kb.tsv stays, no 0-byte file
    r = _cli("prepare_el", "--dataset", "ncbi", "--input", str(ncbi), "-o", str(out),
             "--kb", str(ncbi / "SOURCE.md"), "--bpe", "sentencepiece")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"biobart-prepare-el: error: {ncbi / 'SOURCE.md'}: no KB names")
    assert _snapshot(out) == before
    # a folder without the dataset's files: one line naming it
    r = _cli("prepare_el", "--dataset", "bc5cdr", "--input", str(ncbi / "dictionary"), "-o", str(out))
    assert r.returncode == 2 and r.stderr.strip() == (
        f"biobart-prepare-el: error: {ncbi / 'dictionary'}: no BC5CDR training file (*Training* or *train*)")
    assert _snapshot(out) == before
    # the NCBI folder given as BC5CDR: its split folders (train/, test/) match the file
    # patterns but are not taken for files (was: IsADirectoryError); its PubTator files are read
    r = _cli("prepare_el", "--dataset", "bc5cdr", "--input", str(ncbi), "-o", str(out))
    assert r.returncode in (0, 3) and "Traceback" not in r.stderr, r.stderr
    assert (out / "test.jsonl").stat().st_size > 0 and not (out / "kb.tsv").exists()  # replaced whole
