"""biobart-annotate (inference/annotate.py, cli/annotate.py): NER + linking over a corpus in
resumable shards.  The models are small deterministic fakes injected through
``Annotator(tagger, linkers)``; what is tested is the corpus machinery: which documents each
job gets, what is written, bad records, and byte-identical output after a SIGKILL."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biobart_fairseq import errors
from biobart_fairseq.cli import annotate as cli
from biobart_fairseq.inference import annotate as A
from biobart_fairseq.inference import formats as F
from biobart_fairseq.inference.document import Concept

REPO = Path(__file__).resolve().parents[1]
NCBI_TEST = REPO.parent / "shared" / "data" / "ncbi_disease" / "test" / "NCBItestset_corpus.txt"
DISEASE = re.compile(r"\b\w*(?:cancer|disease|tumou?rs?|syndrome|deficiency)\b", re.I)
GENE = re.compile(r"\b[A-Z]{2,}[0-9]*\b")


class FakeTagger:
    """Disease words and upper-case gene-like tokens; ``delay`` seconds per document."""

    def __init__(self, delay=0.0):
        self.delay = delay

    def tag(self, docs, progress=None):
        for doc in docs:
            time.sleep(self.delay)
            for pattern, typ in ((DISEASE, "Disease"), (GENE, "Gene")):
                doc.entities.extend(doc.entity([m.span()], type=typ) for m in pattern.finditer(doc.text))
        return docs


class FakeLinker:
    def link(self, docs, progress=None, types=None):
        for doc in docs:
            for e in doc.entities:
                if types is None or e.type in types:
                    key = e.text.lower()
                    e.concepts = [Concept("C" + hashlib.sha1(key.encode()).hexdigest()[:6], key, -0.5),
                                  Concept("C000000", "other", -2.0)]
        return docs


def fake(delay=0.0):
    return A.Annotator(FakeTagger(delay), [(("Disease",), FakeLinker())])


def expected_entities(text):
    """The fake models' output computed here: (start, end, type, best cui or None)."""
    out = []
    for pattern, typ in ((DISEASE, "Disease"), (GENE, "Gene")):
        for m in pattern.finditer(text):
            cui = "C" + hashlib.sha1(m.group().lower().encode()).hexdigest()[:6] if typ == "Disease" else None
            out.append((m.start(), m.end(), typ, cui))
    return sorted(out)


@pytest.fixture(scope="module")
def corpus():
    if not NCBI_TEST.is_file():
        pytest.skip(f"NCBI-disease test file not found at {NCBI_TEST}")
    return NCBI_TEST


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "checkpoint_best.pt"
    path.write_bytes(b"fake")  # recorded for resuming only: the fake annotator is used
    return str(path)


def outputs(out, pattern="part-*"):
    return {p.name: p.read_bytes() for p in sorted(Path(out).glob(pattern)) if not p.name.endswith((".done", ".partial"))}


def read_parts(out, pattern="part-*.pubtator"):
    docs = []
    for p in sorted(Path(out).glob(pattern)):
        if p.name.endswith((".done", ".partial")):
            continue
        items = list(F.read(p))
        assert not [i for i in items if isinstance(i, F.BadRecord)]
        docs += items
    return docs


def test_annotate_writes_entities_and_links_only_the_linked_types(corpus, ner, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main([str(corpus), "--ner", ner, "--link", f"Disease={ner}", "-o", str(out), "--chunk-size", "30",
                   "--output-format", "bioc-xml", "--quiet"], annotator=fake())
    assert rc == 0, capsys.readouterr().err
    assert sorted(outputs(out)) == [f"part-00000{k}.bioc.xml" for k in range(4)]  # 100 documents, 30 a file
    source = {d.id: d.text for d in F.read(corpus)}
    docs = read_parts(out, "part-*.bioc.xml")
    assert [d.id for d in docs] == list(source)  # input order
    for doc in docs:
        assert doc.text == source[doc.id]
        got = sorted((e.start, e.end, e.type, e.concepts[0].cui if e.concepts else None) for e in doc.entities)
        assert got == expected_entities(doc.text)  # gold entities of the input replaced, Genes not linked
    import json
    report = json.loads((out / "report.json").read_text())
    assert (report["documents"], report["documents_read"], report["chunks"]) == (100, 100, 4)
    assert report["entities"] == sum(len(expected_entities(t)) for t in source.values())
    assert report["speed"]["unit"] == "document" and report["speed"]["items"] == 100


def test_shards_split_documents_or_files_without_overlap(corpus, ner, tmp_path):
    ids = [d.id for d in F.read(corpus)]
    out = tmp_path / "out"
    for i in range(3):
        assert cli.main([str(corpus), "--ner", ner, "-o", str(out), "--shard", f"{i}/3", "--chunk-size", "7",
                         "--quiet"], annotator=fake()) == 0
        assert [d.id for d in read_parts(out, f"shard-{i}-of-3.part-*")] == ids[i::3]
    assert (out / "shard-2-of-3.report.json").is_file()
    # by file: two inputs, job 1 of 2 reads the second one only
    second = tmp_path / "second.txt"
    second.write_text("Tay-Sachs disease.\n\nBRCA1 and breast cancer.\n", encoding="utf-8")
    by_file = tmp_path / "by_file"
    for i in range(2):
        cli.main([str(corpus), str(second), "--ner", ner, "-o", str(by_file), "--shard", f"{i}/2",
                  "--shard-by", "file", "--quiet", "--output-format", "jsonl"], annotator=fake())
    assert [d.id for d in read_parts(by_file, "shard-1-of-2.part-*")] == ["second:1", "second:3"]
    assert [d.id for d in read_parts(by_file, "shard-0-of-2.part-*")] == ids


def test_bad_records_are_reported_once_across_shards(ner, tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "text": "Fabry disease."}\n\n{"id": "b", "text": "Gaucher disease."}\n'
                     b'{"id": "c", "text": "\xff"}\n{"id": "d", "text": "MEN1."}\n')
    reports = []
    for i in range(2):
        out = tmp_path / "out"
        rc = cli.main([str(path), "--ner", ner, "-o", str(out), "--shard", f"{i}/2", "--quiet"], annotator=fake())
        reports.append((rc, capsys.readouterr().err))
    # line 2 is read before document 1 (job 1's), line 4 before document 2 (job 0's)
    assert reports[0][0] == reports[1][0] == errors.EXIT_BAD_RECORDS
    assert f"biobart-annotate: skipped {path}:4: not UTF-8 text (byte 0xff at column 22)" in reports[0][1]
    assert f"{path}:2:" not in reports[0][1]
    assert f"biobart-annotate: skipped {path}:2: empty line (no JSON record)" in reports[1][1]
    assert f"{path}:4:" not in reports[1][1]


def test_unusable_input_and_output_folder_are_one_line(ner, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("mine")
    text = tmp_path / "a.txt"
    text.write_text("Fabry disease.\n")
    assert cli.main([str(text), "--ner", ner, "-o", str(other)], annotator=fake()) == 2
    err = capsys.readouterr().err
    assert err == f"biobart-annotate: error: {other}: not empty and holds no biobart-annotate output; give a new or empty folder\n"
    assert cli.main([str(tmp_path / "none.txt"), "--ner", ner, "-o", str(tmp_path / "o")], annotator=fake()) == 2
    assert capsys.readouterr().err.endswith(f"error: {tmp_path / 'none.txt'}: no such file\n")
    with pytest.raises(errors.Unusable, match="'Disease' is linked by a already"):
        A.parse_links(["Disease=a", "Disease,Chemical=b"])
    assert A.parse_links(["Disease=a", "Chemical=b", "Drug=b"]) == [(("Disease",), "a"), (("Chemical", "Drug"), "b")]
    assert A.parse_links(["all.pt"]) == [(None, "all.pt")]


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import test_annotate as t
from biobart_fairseq.cli import annotate as cli
sys.exit(cli.main(sys.argv[1:], annotator=t.fake(delay=float({delay!r}))))
"""


def run_script(argv, delay, **kw):
    code = SCRIPT.format(tests=str(REPO / "tests"), delay=delay)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=str(REPO), **kw)


def test_sigkill_then_resume_gives_the_same_bytes(corpus, ner, tmp_path):
    argv = [str(corpus), "--ner", ner, "--link", f"Disease={ner}", "--chunk-size", "10", "--quiet"]
    whole = tmp_path / "whole"
    assert cli.main(argv + ["-o", str(whole), "--workers", "2"], annotator=fake()) == 0
    out = tmp_path / "killed"
    proc = run_script(argv + ["-o", str(out)], delay=0.03)  # ~0.3 s a chunk, 10 chunks
    deadline = time.time() + 60
    while not (out / "part-000001.pubtator.done").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in out.glob("*.done"))
    assert 2 <= len(done) < 10 and not (out / "report.json").exists()  # killed mid-run
    rerun = run_script(argv + ["-o", str(out)], delay=0.0)
    log = rerun.communicate()[0].decode()
    assert rerun.returncode == 0, log
    assert f"({len(done)} of 10 chunks resumed)" in log
    assert outputs(out) == outputs(whole) and len(outputs(whole)) == 10
