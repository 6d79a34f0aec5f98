"""Tests of biobart-prepare-pubmed, its streaming PubMed XML reader and the sentence splitter.

Real-data expectations come from ../shared/data/pubmed_xml/SOURCE.md (441 PubmedArticle
records with 441 unique PMIDs, 382 of them with Abstract/AbstractText, 6 PubmedBookArticle
records) and from regular expressions over the raw files, which share no code with the
lxml-based reader under test.
"""

import gzip
import hashlib
import heapq
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from biobart_fairseq.cli.prepare_pubmed import main
from biobart_fairseq.data import pubmed_prepare
from biobart_fairseq.data.pubmed_prepare import auto_valid_size
from biobart_fairseq.data.pubmed_xml import Article, Deletion, PubmedXMLError, PubmedXMLReader
from biobart_fairseq.data.sentences import split_sentences

REPO = Path(__file__).resolve().parents[1]
PUBMED_XML = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmed_xml"


# --------------------------------------------------------------------------------------------
# helpers


def read_docs(path):
    """Documents of a fairseq document-format file: lists of lines split at blank lines."""
    text = Path(path).read_text(encoding="utf-8")
    if not text:
        return []
    assert text.endswith("\n") and not text.endswith("\n\n"), "no trailing blank line expected"
    return [block.split("\n") for block in text[:-1].split("\n\n")]


def read_output(out):
    """{pmid: lines} for train and valid, checking the .pmids files line up with the .txt."""
    result = {}
    for split in ("train", "valid"):
        docs = read_docs(out / f"{split}.txt")
        pmids = (out / f"{split}.pmids").read_text().split()
        assert len(docs) == len(pmids)
        for doc in docs:
            assert all(line.strip() == line and line for line in doc), "empty or unstripped line"
        result[split] = dict(zip(pmids, docs))
        result[split + "_order"] = pmids
    return result


def report(out):
    return json.loads((out / "report.json").read_text())


def record_xml(pmid, title="A title.", abstract=None, book=False):
    """One PubmedArticle (or PubmedBookArticle). ``abstract``: None, a str, or [(label, text)]."""
    if abstract is None:
        abstract_xml = ""
    else:
        parts = [("", abstract)] if isinstance(abstract, str) else abstract
        texts = "".join(
            f'<AbstractText Label="{label}">{text}</AbstractText>' if label else f"<AbstractText>{text}</AbstractText>"
            for label, text in parts
        )
        abstract_xml = f"<Abstract>{texts}</Abstract>"
    if book:
        return (
            f'<PubmedBookArticle><BookDocument><PMID Version="1">{pmid}</PMID>'
            f"<Book><BookTitle>Some Book</BookTitle></Book><ArticleTitle>{title}</ArticleTitle>"
            f"{abstract_xml}</BookDocument></PubmedBookArticle>\n"
        )
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>'
        f"<Article><Journal><Title>J Test</Title></Journal><ArticleTitle>{title}</ArticleTitle>{abstract_xml}"
        f"</Article></MedlineCitation><PubmedData><ReferenceList><Reference><ArticleIdList>"
        f'<ArticleId IdType="pubmed">99999999</ArticleId></ArticleIdList></Reference></ReferenceList>'
        f"</PubmedData></PubmedArticle>\n"
    )


def pubmed_xml(records, deletes=()):
    body = "".join(records)
    if deletes:
        body += "<DeleteCitation>" + "".join(f'<PMID Version="1">{p}</PMID>' for p in deletes) + "</DeleteCitation>\n"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">\n'
        f"<PubmedArticleSet>\n{body}</PubmedArticleSet>\n"
    )


def write(path, records, deletes=(), gz=False):
    data = pubmed_xml(records, deletes).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def simple(pmid, words="alpha"):
    """A record whose title and abstract name its PMID, so the output can be checked."""
    return record_xml(pmid, f"Title {pmid} {words}.", f"Abstract of {pmid} {words} one. Second sentence of {pmid}.")


def run(inputs, out, *extra):
    return main([str(p) for p in inputs] + ["-o", str(out), "--no-progress", *extra])


def sha1_smallest(pmids, k):
    return set(heapq.nsmallest(k, pmids, key=lambda p: hashlib.sha1(str(p).encode()).digest()))


# --------------------------------------------------------------------------------------------
# the real PubMed exports


def real_files():
    if not PUBMED_XML.is_dir():
        pytest.skip(f"real PubMed XML sample not found at {PUBMED_XML}")
    return sorted(PUBMED_XML.glob("*.xml"))


def independent_counts(files):
    """PMIDs of all records and of those with non-empty AbstractText, by regex over raw text."""
    records, with_abstract, books = [], set(), 0
    for path in files:
        raw = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<(PubmedArticle|PubmedBookArticle)>(.*?)</\1>", raw, re.S):
            kind, body = match.groups()
            books += kind == "PubmedBookArticle"
            pmid = re.search(r"<PMID[^>]*>(\d+)</PMID>", body).group(1)  # the first PMID is the record's
            records.append((kind, pmid))
            parts = re.findall(r"<AbstractText[^>]*>(.*?)</AbstractText>", body, re.S)
            if any(re.sub(r"<[^>]+>", "", part).strip() for part in parts):  # text, not only markup
                with_abstract.add(pmid)
    return records, with_abstract, books


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    files = real_files()
    out = tmp_path_factory.mktemp("real")
    assert run(files, out, "--workers", "2", "--valid-docs", "20") == 0
    return files, out


def test_real_counts_match_source_md(real_run):
    files, out = real_run
    counts = report(out)
    # SOURCE.md: 441 PubmedArticle (441 unique PMIDs), 382 with AbstractText, 6 PubmedBookArticle.
    assert counts["files"] == 4
    assert counts["articles"] == 441
    assert counts["book_articles"] == 6
    assert counts["no_abstract"] == 441 - 382  # every book record has an abstract
    assert counts["duplicates"] == counts["deleted"] == counts["delete_citations"] == 0
    assert counts["errors"] == []
    # Book articles are written like journal articles.
    assert counts["written"] == 382 + 6
    assert (counts["train"], counts["valid"]) == (388 - 20, 20)


def test_real_written_pmids_equal_independent_regex_count(real_run):
    files, out = real_run
    records, with_abstract, books = independent_counts(files)
    assert sum(kind == "PubmedArticle" for kind, _ in records) == 441 and books == 6
    assert len({pmid for _, pmid in records}) == 447
    output = read_output(out)
    written = set(output["train"]) | set(output["valid"])
    assert written == with_abstract
    assert len(with_abstract) == 388
    # The held-out PMIDs are the 20 smallest SHA-1 digests, computed here independently.
    assert set(output["valid"]) == sha1_smallest(with_abstract, 20)
    # Documents follow input-file order, then position in the file.
    file_order = [pmid for _, pmid in records if pmid in with_abstract and pmid not in output["valid"]]
    assert output["train_order"] == file_order


def test_real_structured_record_29768149(real_run):
    _, out = real_run
    output = read_output(out)
    doc = {**output["train"], **output["valid"]}["29768149"]
    assert doc[0] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    # The <sub>2</sub> of "beta-2-agonist" is flattened into the text.
    assert doc[1] == (
        "BACKGROUND: In patients with mild asthma, as-needed use of an inhaled glucocorticoid plus a "
        "fast-acting \u03b2 2-agonist may be an alternative to conventional treatment strategies."
    )
    labelled = [line.split(":")[0] for line in doc if re.match(r"^[A-Z]+: ", line)]
    assert labelled == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert doc[2] == "METHODS: We conducted a 52-week, double-blind trial involving patients 12 years of age or older with mild asthma."
    # "34.4% vs. 31.1% of weeks" must not be split at "vs.".
    assert any("(34.4% vs. 31.1% of weeks; odds ratio, 1.14;" in line for line in doc)
    assert doc[-1].endswith("(Funded by AstraZeneca; SYGMA 1 ClinicalTrials.gov number, NCT02149199 .).")


def test_real_workers_do_not_change_output(real_run, tmp_path):
    files, out2 = real_run
    out1 = tmp_path / "w1"
    assert run(files, out1, "--workers", "1", "--valid-docs", "20") == 0
    for name in ("train.txt", "valid.txt", "train.pmids", "valid.pmids"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name


# --------------------------------------------------------------------------------------------
# versions: duplicates and deletions


def test_later_file_wins_for_duplicate_pmid(tmp_path):
    baseline = write(tmp_path / "base.xml", [simple(1), simple(2, "old"), simple(3)])
    update = write(tmp_path / "upd.xml", [simple(2, "new"), simple(4)])
    out = tmp_path / "out"
    assert run([baseline, update], out, "--valid-docs", "0") == 0
    output = read_output(out)
    assert output["train_order"] == ["1", "3", "2", "4"]  # the winning version's position
    assert output["train"]["2"][0] == "Title 2 new."
    assert report(out)["duplicates"] == 1
    # Reversed order: the "old" version is now the later one.
    out = tmp_path / "rev"
    assert run([update, baseline], out, "--valid-docs", "0") == 0
    assert read_output(out)["train"]["2"][0] == "Title 2 old."


def test_version_resolution_hand_computed():
    """Step 2 on a hand-worked record sequence (A = abstract, N = no abstract, D = deletion)."""
    import numpy as np

    seq = [("A", 5), ("A", 7), ("N", 5), ("D", 7), ("D", 7), ("A", 9),
           ("D", 5), ("A", 5), ("A", 7), ("A", 7), ("N", 9)]
    codes = np.array([p for _, p in seq], dtype=np.int64)
    kinds = np.array([pubmed_prepare._KIND_CODES[k] for k, _ in seq], dtype=np.int8)
    write, duplicates, deleted = pubmed_prepare._winning_records(codes, kinds)
    # 5: A, N (dup), D (deleted), A again -> record 7; 7: A, D (deleted), D (nothing), A, A
    # (dup) -> record 9; 9: A, N (dup) -> present without abstract, not written.
    assert np.flatnonzero(write).tolist() == [7, 9]
    assert (duplicates, deleted) == (3, 2)


def test_pmid_codes():
    codes = pubmed_prepare._PmidCodes()
    assert codes("123") == 123 and codes("X-1") == -1 and codes("Y") == -2 and codes("X-1") == -1
    assert codes.text(-2) == "Y" and codes.text(123) == "123"


def test_delete_citation_removes_earlier_versions_only(tmp_path):
    first = write(tmp_path / "a.xml", [simple(1), simple(2), simple(3)])
    # Deletes 2 (known) and 77 (never seen); adds 5.
    second = write(tmp_path / "b.xml", [simple(5)], deletes=[2, 77])
    third = write(tmp_path / "c.xml", [simple(2, "revived")])
    out = tmp_path / "out"
    assert run([first, second], out, "--valid-docs", "0") == 0
    assert read_output(out)["train_order"] == ["1", "3", "5"]
    counts = report(out)
    assert (counts["delete_citations"], counts["deleted"]) == (2, 1)
    # A version in a file after the deletion is kept again.
    out = tmp_path / "out3"
    assert run([first, second, third], out, "--valid-docs", "0") == 0
    output = read_output(out)
    assert output["train_order"] == ["1", "3", "5", "2"]
    assert output["train"]["2"][0] == "Title 2 revived."
    # A deletion read before the version does not remove it.
    out = tmp_path / "out_rev"
    assert run([second, first], out, "--valid-docs", "0") == 0
    assert read_output(out)["train_order"] == ["5", "1", "2", "3"]


def test_later_version_without_abstract_replaces_earlier(tmp_path):
    first = write(tmp_path / "a.xml", [simple(1), simple(2)])
    second = write(tmp_path / "b.xml", [record_xml(2, "Title only now.")])
    out = tmp_path / "out"
    assert run([first, second], out, "--valid-docs", "0") == 0
    assert read_output(out)["train_order"] == ["1"]
    assert report(out)["no_abstract"] == 1


# --------------------------------------------------------------------------------------------
# document text


def test_markup_labels_whitespace_and_skipped_records(tmp_path):
    records = [
        record_xml(
            10,
            "Role of <i>fimH</i> in\n   <i>E. coli</i> adhesion.",
            [
                ("BACKGROUND", "CD4<sup>+</sup> T cells and IC<sub>50</sub> values\n\t were studied. It matters."),
                ("UNLABELLED", "An unlabelled part."),
                ("", "No label here."),
                ("RESULTS", "   "),  # empty section: skipped
                ("CONCLUSIONS:", "Done <b>well</b>."),
            ],
        ),
        record_xml(11, "No abstract at all."),
        record_xml(12, "Empty abstract.", [("", "  ")]),
        record_xml(13, "[Translated title of a German article].", "Ein Satz. Zweiter Satz."),
        record_xml(14, "Book chapter title", "Book abstract sentence.", book=True),
    ]
    out = tmp_path / "out"
    assert run([write(tmp_path / "in.xml", records)], out, "--valid-docs", "0") == 0
    output = read_output(out)
    assert output["train"]["10"] == [
        "Role of fimH in E. coli adhesion.",
        "BACKGROUND: CD4+ T cells and IC50 values were studied.",
        "It matters.",
        "An unlabelled part.",
        "No label here.",
        "CONCLUSIONS: Done well.",
    ]
    assert output["train"]["13"] == ["Translated title of a German article.", "Ein Satz.", "Zweiter Satz."]
    assert output["train"]["14"] == ["Book chapter title", "Book abstract sentence."]
    assert output["train_order"] == ["10", "13", "14"]
    counts = report(out)
    assert (counts["articles"], counts["book_articles"], counts["no_abstract"]) == (4, 1, 2)


def test_gzip_input_equals_plain(tmp_path):
    records = [simple(i) for i in range(1, 30)]
    plain = write(tmp_path / "p.xml", records)
    packed = write(tmp_path / "p.xml.gz", records, gz=True)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    outs = []
    for name, path in (("plain", plain), ("gz", packed)):
        outs.append(tmp_path / name)
        assert run([path], outs[-1], "--valid-docs", "3") == 0
    for name in ("train.txt", "valid.txt"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    assert len(read_docs(outs[0] / "train.txt")) == 26


# --------------------------------------------------------------------------------------------
# bad input


def varied(pmid):
    # Text that does not compress to nothing, so a cut gzip really loses records.
    words = " ".join(hashlib.sha1(f"{pmid}-{i}".encode()).hexdigest()[:8] for i in range(40))
    return simple(pmid, words)


def test_truncated_gzip_keeps_records_before_the_cut(tmp_path, capsys):
    good = write(tmp_path / "good.xml", [simple(1000)])
    data = gzip.compress(pubmed_xml([varied(i) for i in range(1, 201)]).encode())
    cut = tmp_path / "cut.xml.gz"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert run([cut, good], out, "--valid-docs", "0") == 3
    counts = report(out)
    [error] = counts["errors"]
    assert error["file"] == str(cut)
    assert "truncated" in error["message"]
    kept = read_output(out)["train_order"]
    assert kept[-1] == "1000"  # the other file is still written
    n = len(kept) - 1
    assert 20 < n < 200 and kept[:-1] == [str(i) for i in range(1, n + 1)]
    assert error["record"] == f"record {n + 1}, after PMID {n}"
    assert str(cut) in capsys.readouterr().err


def test_malformed_xml_mid_file(tmp_path, capsys):
    broken = record_xml(3, "Broken <i>title.", "Never seen.")  # <i> never closed
    path = tmp_path / "broken.xml"
    path.write_text(pubmed_xml([simple(1), simple(2), broken, simple(4)]))
    out = tmp_path / "out"
    assert run([path], out, "--valid-docs", "0") == 3
    assert read_output(out)["train_order"] == ["1", "2"]
    [error] = report(out)["errors"]
    assert error["file"] == str(path)
    assert error["record"] == "record 3, after PMID 2"
    assert error["message"].startswith("malformed XML: ")
    # no second, fragment-relative position from lxml ("line 1, column 40") beside the file's line
    assert not re.search(r"line \d|column \d", error["message"]), error["message"]
    # the break is in the unclosed <i> of record 3's title: its line, found in the text
    line = path.read_text().splitlines().index(broken.rstrip("\n")) + 1
    assert error["line"] == line
    err = capsys.readouterr().err
    assert f"biobart-prepare-pubmed: skipped {path}:{line}: malformed XML: " in err
    assert "(record 3, after PMID 2)\n" in err
    assert f"biobart-prepare-pubmed: 1 bad record(s) skipped (all in {out / 'report.json'})" in err


def test_invalid_utf8_is_replaced_and_reported(tmp_path):
    data = pubmed_xml([simple(1), record_xml(2, "Bad bytes.", "Caf@ au lait. Fine."), simple(3)]).encode()
    data = data.replace(b"@", b"\xff\xfe")  # not UTF-8
    path = tmp_path / "latin.xml"
    path.write_bytes(data)
    out = tmp_path / "out"
    assert run([path], out, "--valid-docs", "0") == 3
    output = read_output(out)
    assert output["train_order"] == ["1", "2", "3"]  # the file is read to the end
    assert output["train"]["2"][1] == "Caf\ufffd\ufffd au lait."
    [error] = report(out)["errors"]
    assert error["record"] == "PMID 2" and "invalid UTF-8" in error["message"]
    assert error["line"] == data.split(b"\n").index(next(x for x in data.split(b"\n") if b"\xff" in x)) + 1


def test_invalid_utf8_across_chunk_boundary(tmp_path):
    # A valid 2-byte character split by the chunk boundary must survive; a lone byte must not.
    data = pubmed_xml([record_xml(1, "T.", "\u00e9t\u00e9 " * 3000 + "ok.")]).encode()
    path = tmp_path / "chunks.xml"
    path.write_bytes(data)
    reader = PubmedXMLReader(path, chunk_size=1001)
    [article] = list(reader)
    assert article.sections[0][1].startswith("\u00e9t\u00e9 \u00e9t\u00e9") and not reader.issues
    path.write_bytes(data.replace(b"ok.", b"o\xc3k."))  # \xc3 followed by "k": invalid
    reader = PubmedXMLReader(path, chunk_size=1001)
    [article] = list(reader)
    assert article.sections[0][1].endswith("o\ufffdk.") and len(reader.issues) == 1


def test_empty_and_missing_files_are_reported(tmp_path, capsys):
    good = write(tmp_path / "good.xml", [simple(1)])
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.xml.gz"
    not_pubmed = tmp_path / "other.xml"
    not_pubmed.write_text("<html><body>hello</body></html>")
    out = tmp_path / "out"
    assert run([empty, good, missing, not_pubmed], out, "--valid-docs", "0") == 3
    assert read_output(out)["train_order"] == ["1"]
    errors = {Path(e["file"]).name: e["message"] for e in report(out)["errors"]}
    assert errors["empty.xml"] == "file is empty"
    assert errors["missing.xml.gz"].startswith("cannot open")
    assert "PubmedArticleSet" in errors["other.xml"]
    err = capsys.readouterr().err
    assert all(str(p) in err for p in (empty, missing, not_pubmed))


@pytest.mark.parametrize("gz", [False, True])
def test_record_without_pmid_is_reported_at_its_start_tag_line(tmp_path, capsys, gz):
    """``PROG: skipped FILE:LINE: reason``, LINE the line of the record's <PubmedArticle> (of
    the decompressed text for .gz), found here by searching the text."""
    records = [simple(1), simple(2).replace('<PMID Version="1">2</PMID>', ""), simple(3)]
    path = write(tmp_path / ("f.xml.gz" if gz else "f.xml"), records, gz=gz)
    text = pubmed_xml(records)
    line = text[: text.index(records[1])].count("\n") + 1
    out = tmp_path / "out"
    assert run([path], out, "--valid-docs", "0") == 3
    expected = f"{path}:{line}: record without PMID skipped (record 2)"
    assert f"biobart-prepare-pubmed: skipped {expected}\n" in capsys.readouterr().err
    assert report(out)["bad_records"] == [expected] and report(out)["errors"][0]["line"] == line


def test_reader_records_carry_their_line(tmp_path):
    records = [simple(1), "\n\n", simple(2)]
    path = write(tmp_path / "lines.xml", records, deletes=[9])
    text = pubmed_xml(records, deletes=[9])
    starts = [text[: m.start()].count("\n") + 1 for m in re.finditer(r"<(PubmedArticle|DeleteCitation)>", text)]
    assert [item.line for item in PubmedXMLReader(path)] == starts


def test_reader_yields_records_then_raises(tmp_path):
    path = tmp_path / "cut.xml"
    path.write_text(pubmed_xml([simple(1), simple(2)], deletes=[9])[: -len("</PubmedArticleSet>\n")])
    items = []
    with pytest.raises(PubmedXMLError) as failure:
        for item in PubmedXMLReader(path):
            items.append(item)
    assert [type(i) for i in items] == [Article, Article, Deletion]
    assert items[2].pmids == ["9"]
    assert failure.value.path == str(path)
    assert failure.value.record == "record 4, after PMID 2"
    assert "Premature end of data" in failure.value.message


def test_reader_memory_stays_flat(tmp_path):
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc/self/statm")
    page = os.sysconf("SC_PAGE_SIZE")
    path = tmp_path / "big.xml"
    record = simple(1, "x " * 900)
    with open(path, "w") as handle:  # about 40 MB, 10,000 records
        handle.write(pubmed_xml([])[: -len("</PubmedArticleSet>\n")])
        for i in range(10000):
            handle.write(record.replace(">1<", f">{i + 1}<"))
        handle.write("</PubmedArticleSet>\n")
    size = path.stat().st_size
    start = int(statm.read_text().split()[1]) * page
    peak, n = start, 0
    for n, _ in enumerate(PubmedXMLReader(path), 1):
        if n % 500 == 0:
            peak = max(peak, int(statm.read_text().split()[1]) * page)
    assert n == 10000
    # Holding the parsed tree would cost several times the file size; streaming costs ~nothing.
    assert peak - start < size / 4, (peak - start, size)


# --------------------------------------------------------------------------------------------
# resuming after SIGKILL


def test_sigkill_then_rerun_skips_finished_files_and_gives_identical_output(tmp_path, capsys):
    """A run killed (SIGKILL) after its first file is complete, started again with the same
    arguments, reuses that file's shard and writes byte-identical output.  The second input is
    a FIFO during the first run, so the kill lands while that file is being read, at a known
    point, without timing assumptions."""
    import multiprocessing
    import signal
    import time

    first = write(tmp_path / "a.xml", [simple(i) for i in range(1, 40)])
    third = write(tmp_path / "c.xml", [simple(2, "newer"), simple(90)], deletes=[5])
    second_records = [simple(i, "second") for i in range(40, 60)]
    second = tmp_path / "b.xml"
    os.mkfifo(second)
    inputs = [first, second, third]
    out = tmp_path / "out"
    args = [str(p) for p in inputs] + ["-o", str(out), "--no-progress", "--workers", "1", "--valid-docs", "3"]
    child = multiprocessing.get_context("fork").Process(target=main, args=(args,))
    child.start()
    deadline = time.monotonic() + 60
    while not (out / ".tmp" / "000000.json").exists():
        assert child.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert not (out / "train.txt").exists() and not (out / ".tmp" / "000001.json").exists()
    shard_text = (out / ".tmp" / "000000.txt").read_bytes()
    # The first file changes on disk but keeps its size and time stamp: if the rerun parsed it
    # again, its documents would change; a reused shard keeps the original text.
    stat = first.stat()
    first.write_bytes(first.read_bytes().replace(b"Title 1 alpha", b"Title 1 omega"))
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.remove(second)
    write(second, second_records)

    capsys.readouterr()
    assert main(args) == 0
    assert "resumed: 1 of 3 files" in capsys.readouterr().err
    assert not (out / ".tmp").exists()
    assert b"Title 1 alpha." in shard_text
    reference = tmp_path / "reference"
    write(tmp_path / "a_orig.xml", [simple(i) for i in range(1, 40)])
    assert run([tmp_path / "a_orig.xml", second, third], reference, "--valid-docs", "3") == 0
    for name in ("train.txt", "valid.txt", "train.pmids", "valid.pmids"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    output = read_output(out)
    assert output["train"].get("1", output["valid"].get("1"))[0] == "Title 1 alpha."
    assert len(output["train"]) + len(output["valid"]) == 39 + 20 + 1 - 1  # 5 deleted, 90 added


def test_changed_input_is_parsed_again(tmp_path):
    """A shard is reused only for an unchanged file (same path, size and time stamp)."""
    path = write(tmp_path / "a.xml", [simple(1), simple(2)])
    out = tmp_path / "out"
    shard_dir = out / ".tmp"
    shard_dir.mkdir(parents=True)
    stale = pubmed_prepare.process_file((0, str(path), str(shard_dir), False, "rules"))
    assert stale["articles"] == 2
    write(path, [simple(1), simple(2), simple(3)])  # new size
    assert run([path], out, "--valid-docs", "0") == 0
    assert read_output(out)["train_order"] == ["1", "2", "3"]


# --------------------------------------------------------------------------------------------
# record scanner


def test_scanner_reads_only_the_citation_part(tmp_path):
    """PMIDs, titles and abstracts after </MedlineCitation> (comments/corrections, references)
    are not taken for the record's own; OtherAbstract is not the abstract; <Abstract/> is empty."""
    record = (
        '<PubmedArticle><MedlineCitation><PMID Version="1">7</PMID><Article><ArticleTitle>Own title.'
        "</ArticleTitle><Abstract><AbstractText>Own text.</AbstractText><CopyrightInformation>(c) X."
        "</CopyrightInformation></Abstract></Article><OtherAbstract><AbstractText>Autre.</AbstractText>"
        '</OtherAbstract><CommentsCorrectionsList><CommentsCorrections><PMID Version="1">99</PMID>'
        "</CommentsCorrections></CommentsCorrectionsList></MedlineCitation><PubmedData><ReferenceList>"
        "<Reference><Citation>Other. <ArticleTitle>Ref</ArticleTitle></Citation></Reference>"
        "</ReferenceList></PubmedData></PubmedArticle>\n"
        '<PubmedArticle><MedlineCitation><PMID Version="1">8</PMID><Article><ArticleTitle/>'
        "<VernacularTitle>Titre &amp; r\u00e9sum\u00e9.</VernacularTitle><Abstract/></Article>"
        "<OtherAbstract><AbstractText>Only other.</AbstractText></OtherAbstract></MedlineCitation>"
        "</PubmedArticle>\n"
    )
    path = tmp_path / "x.xml"
    path.write_text(pubmed_xml([record]), encoding="utf-8")
    seven, eight = list(PubmedXMLReader(path))
    assert (seven.pmid, seven.title, seven.sections) == ("7", "Own title.", [("", "Own text.")])
    assert (eight.pmid, eight.title, eight.sections) == ("8", "Titre & r\u00e9sum\u00e9.", [])


def test_scanner_rejects_text_between_records(tmp_path):
    path = tmp_path / "junk.xml"
    path.write_text(pubmed_xml([simple(1), "stray text\n", simple(2)]))
    items = []
    with pytest.raises(PubmedXMLError) as failure:
        for item in PubmedXMLReader(path):
            items.append(item)
    assert [i.pmid for i in items] == ["1"]
    assert failure.value.record == "record 2, after PMID 1"
    assert failure.value.line == 5 and failure.value.message == "malformed XML: text between records"
    assert str(failure.value) == f"{path}:5: malformed XML: text between records (record 2, after PMID 1)"


def test_scanner_rejects_unclosed_record(tmp_path):
    """A record without its end tag must not swallow the next one."""
    path = tmp_path / "unclosed.xml"
    path.write_text(pubmed_xml([simple(1), simple(2).replace("</PubmedArticle>", ""), simple(3)]))
    items = []
    with pytest.raises(PubmedXMLError) as failure:
        for item in PubmedXMLReader(path):
            items.append(item)
    assert [i.pmid for i in items] == ["1"]
    assert failure.value.line == 5
    assert failure.value.message == "malformed XML: <PubmedArticle> not closed before the next one"


# --------------------------------------------------------------------------------------------
# validation split


def test_valid_split_depends_only_on_pmids(tmp_path):
    files = [write(tmp_path / f"f{j}.xml", [simple(100 * j + i) for i in range(10)]) for j in range(3)]
    pmids = [str(100 * j + i) for j in range(3) for i in range(10)]
    results = []
    for name, order, workers in (("fwd", files, "1"), ("rev", files[::-1], "2")):
        out = tmp_path / name
        assert run(order, out, "--valid-docs", "5", "--workers", workers) == 0
        results.append(read_output(out))
    assert set(results[0]["valid"]) == set(results[1]["valid"]) == sha1_smallest(pmids, 5)
    assert results[0]["valid"] == results[1]["valid"]  # same documents
    assert results[0]["train_order"] != results[1]["train_order"]  # ... while the order differs


def test_default_valid_size():
    assert [auto_valid_size(n) for n in (0, 1, 2, 39, 100, 20000, 10**6)] == [0, 0, 1, 2, 5, 1000, 1000]


# --------------------------------------------------------------------------------------------
# command line


def test_cli_subprocess_exit_code_and_stderr(tmp_path):
    good = write(tmp_path / "good.xml", [simple(1), simple(2)])
    missing = tmp_path / "no_such_file.xml"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "biobart_fairseq.cli.prepare_pubmed", str(good), str(missing), "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert done.returncode == 3, done.stderr
    assert str(missing) in done.stderr
    assert report(out)["written"] == 2
    assert not (out / ".tmp").exists()


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "exit status" in text and "3  some inputs had errors" in text


def test_demo_sample(tmp_path):
    sample = REPO / "examples" / "data" / "pubmed_sample"
    files = [sample / "sample_baseline.xml", sample / "sample_update.xml.gz", sample / "sample_broken.xml"]
    out = tmp_path / "demo"
    assert run(files, out) == 3
    counts = report(out)
    assert (counts["duplicates"], counts["deleted"], counts["book_articles"]) == (1, 1, 1)
    [error] = counts["errors"]
    assert error["file"].endswith("sample_broken.xml") and "after PMID 90000104" in error["record"]
    assert gzip.decompress(files[1].read_bytes()) == (sample / "sample_update.xml.in").read_bytes()


# --------------------------------------------------------------------------------------------
# sentence splitter


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "E. coli and S. aureus were grown at 37 degrees C. Growth was measured hourly.",
            ["E. coli and S. aureus were grown at 37 degrees C.", "Growth was measured hourly."],
        ),
        (
            "As reported by Smith et al. in 2010, levels rose (Fig. 2). The effect was significant (p < 0.05).",
            ["As reported by Smith et al. in 2010, levels rose (Fig. 2).", "The effect was significant (p < 0.05)."],
        ),
        (
            "Drug A vs. drug B was compared, i.e. two arms. Mice received 2.5 mg/kg i.v. daily. Weight fell by 0.8 g.",
            ["Drug A vs. drug B was compared, i.e. two arms.", "Mice received 2.5 mg/kg i.v. daily.", "Weight fell by 0.8 g."],
        ),
        (
            "Expression was reduced by approx. 40% at ca. 350 degrees C (cf. -530 mV for the control). Done.",
            ["Expression was reduced by approx. 40% at ca. 350 degrees C (cf. -530 mV for the control).", "Done."],
        ),
        (
            "Three factors are involved: 1) heredity, 2) Epstein-Barr virus, and 3) diet. They interact.",
            ["Three factors are involved: 1) heredity, 2) Epstein-Barr virus, and 3) diet.", "They interact."],
        ),
        (
            "A variant in BLM (c.2207_2212delinsTAGATTC; p.(Tyr736Leufs*5)) was found. She did well.",
            ["A variant in BLM (c.2207_2212delinsTAGATTC; p.(Tyr736Leufs*5)) was found.", "She did well."],
        ),
        (
            "We isolated P. aeruginosa. P. aeruginosa was resistant, e.g. to imipenem.",
            ["We isolated P. aeruginosa.", "P. aeruginosa was resistant, e.g. to imipenem."],
        ),
        ("  One sentence\n without final stop  ", ["One sentence without final stop"]),
        ("", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_document_lines_label_on_first_sentence():
    article = Article("1", "T.", [("METHODS", "First one. Second one."), ("", "Third.")])
    assert pubmed_prepare.document_lines(article) == ["T.", "METHODS: First one.", "Second one.", "Third."]
    assert pubmed_prepare.document_lines(Article("2", "T.", [("RESULTS", "  ")])) == []
