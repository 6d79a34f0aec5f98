"""Documents in and out: JSONL, PubTator, BioC XML / JSON, plain text and PubMed XML.

:func:`read` yields :class:`~biobart_fairseq.inference.document.Document` objects, each with
``source = "FILE:LINE"`` (where it starts), and :class:`BadRecord` items for what cannot be
used; it never raises for a bad record, so that the caller counts and skips them through
:class:`biobart_fairseq.errors.BadRecords` (:func:`documents` does just that).  A whole file
that cannot be used (missing, not the format, BioC XML that does not parse) raises
:class:`biobart_fairseq.errors.Unusable` naming the file (and line where known).

Formats (``FORMATS``; ``fmt=None``: from the file name, see :func:`detect`):

* ``jsonl``: one JSON object a line, :meth:`Document.to_json`'s form: ``{"id", "text",
  "passages"?, "entities"?, "notes"?}``; ``"mentions"`` is taken for ``"entities"`` (what
  biobart-link reads), an entity is ``{"start", "end"}`` or ``{"fragments": [[s, e], ...]}``
  with optional ``text`` (checked against the offsets), ``type``, ``id``, ``concepts``.
  No ``id``: ``NAME:LINE`` (NAME: the file name without its extension).
* ``pubtator``: ``PMID|t|title``, ``PMID|a|abstract``, then ``PMID<TAB>start<TAB>end<TAB>
  text<TAB>type<TAB>id`` lines, documents separated by blank lines; text = title + " " +
  abstract.  Lines of 4-5 fields whose 2nd and 3rd are not numbers are relations (BC5CDR
  ``CID``): not annotations, not kept.  An id ``-`` or empty is no id.
* ``bioc-xml`` / ``bioc-json``: BioC collections; passages at their offsets, annotations of
  the document, its passages and their sentences; ``type`` infon -> Entity.type,
  ``identifier`` (or ``MESH``) -> Entity.id, ``cui_K``/``name_K``/``score_K`` -> concepts.
* ``text``: plain UTF-8 text, one document per block of non-blank lines (a file without blank
  lines is one document); lines inside a block stay joined by ``\\n``.
* ``text-file``: the whole file is one document (full text with paragraphs).
* ``pubmed-xml``: PubMed/MEDLINE XML (``.xml`` / ``.xml.gz``) through
  :class:`biobart_fairseq.data.pubmed_xml.PubmedXMLReader`; a document is the title and the
  abstract as two passages (title + " " + abstract, as PubTator), each structured-abstract
  section after its label as biobart-prepare-pubmed writes it (``BACKGROUND: ...``), sections
  joined by a space.  Articles without an abstract are kept as their title;
  ``DeleteCitation`` records are not documents (no version resolution here).

Bad records, each reported at its line and skipped: an empty document; an annotation whose
offsets are outside the text or whose text is not what its offsets slice (compared without
surrounding whitespace: NCBI-disease has trailing spaces in one field), only that annotation
skipped; a line that is not UTF-8 (the document, or the annotation, it belongs to); a JSONL
line that is not a JSON object, or blank.  PubMed XML: what
:mod:`~biobart_fairseq.data.pubmed_xml` reports (a break: the records before it are kept;
invalid UTF-8: replaced by U+FFFD, the record kept and a note added to the document).

:func:`write` writes ``jsonl``, ``pubtator``, ``bioc-xml`` and ``bioc-json`` (the BioC ones
through the ``bioc`` package); what each keeps (see also docs/inference.md, "Formats"):

* JSONL keeps everything: top-k concepts, fragments, notes, passages.
* PubTator has one id column: the best concept's CUI (else the input id, else ``-``); the
  other candidates, names and scores are not written (use JSONL or BioC for them).  It has
  no discontinuous entities: each fragment of one is a line of its own (same type and id), so
  that every line's offsets slice the text to its text.  Newlines and tabs in the text (and
  the entities over them) are written as spaces (same length: offsets unchanged), the title
  is the first passage (or the first line of a plain-text document).
* BioC: one annotation per entity with one location per fragment, its text the fragments
  joined by a space; infons ``type``, ``identifier`` (best CUI, else the input id), for each
  of the top-k ``cui_K``, ``name_K``, ``score_K`` (K from 1), ``input_identifier`` when the
  input id and concepts are both present; document notes as infons ``note_K``.

Light: no torch or fairseq.
"""

import gzip
import io
import itertools
import json
import os
import re
import sys
from dataclasses import dataclass

from .. import errors
from .document import Concept, Document, Entity, Passage

FORMATS = ("jsonl", "pubtator", "bioc-xml", "bioc-json", "text", "text-file", "pubmed-xml")
WRITE_FORMATS = ("pubtator", "bioc-xml", "bioc-json", "jsonl")
EXTENSIONS = {"pubtator": ".pubtator", "bioc-xml": ".bioc.xml", "bioc-json": ".bioc.json", "jsonl": ".jsonl"}
_PUBTATOR_HEAD = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")
_NO_ID = ("", "-")


@dataclass
class BadRecord:
    """A record :func:`read` could not use: ``str()`` is the ``FILE:LINE: reason`` form."""

    path: str
    line: object  # int, a position in words (str), or None: the whole file
    reason: str

    def __str__(self):
        return f"{errors.where(self.path, self.line)}: {self.reason}"


# --------------------------------------------------------------------------------------------
# reading


def detect(path):
    """The format of ``path`` from its name (``.jsonl``, ``.pubtator``, ``.json`` = BioC JSON,
    ``.bioc`` = BioC XML), or its first bytes where the name is not enough: ``.xml`` /
    ``.xml.gz`` is BioC XML (``<collection``) or PubMed XML (``<PubmedArticleSet``), ``.txt``
    is PubTator when its first non-blank line is ``ID|t|`` or ``ID|a|``, else plain text."""
    name = os.path.basename(str(path)).lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".pubtator", "pubtator"), (".pubtator.txt", "pubtator"),
                     (".json", "bioc-json"), (".bioc", "bioc-xml")):
        if name.endswith(ext):
            return fmt
    if name.endswith((".xml", ".xml.gz")):
        head = _head(path, 8192)
        if b"<collection" in head:
            return "bioc-xml"
        if b"<PubmedArticleSet" in head:
            return "pubmed-xml"
        raise errors.Unusable(f"{path}: neither BioC (<collection>) nor PubMed XML (<PubmedArticleSet>)")
    if name.endswith((".txt", ".text")):
        first = next((line for line in _head(path, 65536).split(b"\n") if line.strip()), b"")
        return "pubtator" if _PUBTATOR_HEAD.match(first.decode("utf-8", "replace")) else "text"
    raise errors.Unusable(f"{path}: cannot tell the format from the file name; give it with --format "
                          f"({', '.join(FORMATS)})")


def _head(path, size):
    try:
        with open(path, "rb") as f:
            data = f.read(size)
            if data[:2] == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as z:
                    return z.read(size)
            return data
    except (OSError, EOFError) as e:
        raise errors.Unusable(errors.os_error(e) if isinstance(e, OSError) else f"{path}: {e}") from None


def read(path, fmt=None):
    """Documents and :class:`BadRecord` items of ``path`` in file order (module docstring)."""
    path = str(path)
    if not os.path.exists(path):
        raise errors.Unusable(errors.missing(path))
    fmt = fmt or detect(path)
    if fmt not in _READERS:
        raise errors.Unusable(f"{path}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return _READERS[fmt](path)


def documents(paths, fmt, bad):
    """The documents of every file of ``paths``; bad records go to ``bad`` (an
    :class:`errors.BadRecords`), and so does a file that cannot be used at all, unless none can
    be: then the :class:`errors.Unusable` of the first is raised."""
    usable, first = 0, None
    for path in paths:
        try:
            for item in read(path, fmt):
                if isinstance(item, BadRecord):
                    bad.add(item.path, item.line, item.reason)
                else:
                    yield item
            usable += 1
        except errors.Unusable as e:
            first = first or e
            bad.add_located(str(e))
    if not usable and first is not None:
        raise first


def read_all(paths, fmt, bad):
    """:func:`documents` as a list (the commands that read all before decoding); ``errors.Unusable``
    when not one document could be read."""
    docs = list(documents(paths, fmt, bad))
    if not docs:
        raise errors.Unusable(f"{paths[0]}: no usable document")
    return docs


def write_output(docs, output, fmt):
    """:func:`write` to stdout (``output`` ``"-"``) or to a file, which is written through a
    temporary file and renamed, so that an error leaves no half-written output."""
    from ..data.ner_formats import atomic_write_text

    if output == "-":
        write(docs, sys.stdout, fmt)
        return
    buf = io.StringIO()
    write(docs, buf, fmt)
    atomic_write_text(output, buf.getvalue())


def _lines(path):
    """(line number, text or None if not UTF-8, the UnicodeDecodeError) of a text file."""
    opener = gzip.open if path.endswith(".gz") else open
    content = False
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                raw = raw.rstrip(b"\n").rstrip(b"\r")
                content = content or bool(raw.strip())
                try:
                    yield number, raw.decode("utf-8"), None
                except UnicodeDecodeError as e:
                    yield number, None, e
    except (OSError, EOFError) as e:
        raise errors.Unusable(errors.os_error(e) if isinstance(e, OSError) else f"{path}: {e}") from None
    if not content:
        raise errors.Unusable(f"{path}: empty file")


def _not_utf8(error):
    return f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at column {error.start + 1})"


def _name(path):
    base = os.path.basename(path)
    for ext in (".gz", ".txt", ".text", ".jsonl", ".pubtator"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base or "doc"


def _entity(doc, spans, text=None, **kw):
    """``doc.entity(spans)`` checked against the ``text`` the input gives (ValueError: why not)."""
    entity = doc.entity(spans, **kw)
    if text is not None and " ".join(text.split()) != " ".join(entity.text.split()):
        hull = doc.text[entity.start:entity.end]
        if len(spans) == 1 or " ".join(text.split()) != " ".join(hull.split()):
            raise ValueError(f"offsets {entity.start}-{entity.end} give {entity.text!r}, not {text!r}")
    return entity


# --- text ------------------------------------------------------------------------------------


def _read_text(path, whole_file=False):
    block, start, bad = [], None, None
    name = _name(path)
    for number, line, error in itertools.chain(_lines(path), [(None, "", None)]):
        if error is not None:
            bad = bad or BadRecord(path, number, _not_utf8(error) + "; its document skipped")
        if line is not None and not line.strip() and (not whole_file or number is None):
            if bad is not None:
                yield bad
            elif block and "".join(block).strip():
                doc_id = name if whole_file else f"{name}:{start}"
                yield Document(id=doc_id, text="\n".join(block).strip("\n"), source=f"{path}:{start}")
            elif whole_file:
                yield BadRecord(path, start or 1, "empty document")
            block, start, bad = [], None, None
            continue
        start = start or number
        block.append(line or "")


def _read_text_file(path):
    return _read_text(path, whole_file=True)


# --- JSONL -----------------------------------------------------------------------------------


def _read_jsonl(path):
    name = _name(path)
    for number, line, error in _lines(path):
        if error is not None:
            yield BadRecord(path, number, _not_utf8(error))
        elif not line.strip():
            yield BadRecord(path, number, "empty line (no JSON record)")
        else:
            yield from jsonl_record(path, number, line, name)


def jsonl_record(path, number, line, name):
    """The document of one JSONL line, after the bad records of its entities."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        yield BadRecord(path, number, f"not JSON ({e})")
        return
    if not isinstance(obj, dict):
        yield BadRecord(path, number, f"a JSON {type(obj).__name__}, not an object")
        return
    try:
        doc = _jsonl_document(obj, f"{name}:{number}", f"{path}:{number}")
    except (TypeError, ValueError, KeyError) as e:
        yield BadRecord(path, number, f"{e}; the record skipped")
        return
    raw_entities = obj.get("entities", obj.get("mentions")) or []
    for k, raw in enumerate(raw_entities if isinstance(raw_entities, list) else [raw_entities], 1):
        try:
            doc.entities.append(_jsonl_entity(doc, raw))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            yield BadRecord(path, number, f"entity {k}: {e}; the entity skipped")
    yield doc


def _jsonl_document(obj, default_id, source):
    passages = [Passage(int(p["offset"]), str(p["text"]), p.get("type")) for p in obj.get("passages") or []]
    text = obj.get("text")
    if text is None and passages:
        doc = Document.from_passages(obj.get("id", default_id), passages, source=source)
    elif not isinstance(text, str):
        raise ValueError('no "text" (a string) and no "passages"')
    else:
        doc = Document(id=str(obj.get("id", obj.get("pmid", default_id))), text=text, source=source)
        for p in passages:
            if text[p.offset:p.end] != p.text:
                raise ValueError(f"passage at offset {p.offset} is not the text there")
        doc.passages = sorted(passages, key=lambda p: p.offset)
    if not doc.text.strip():
        raise ValueError("empty document")
    doc.notes = [str(n) for n in obj.get("notes") or []]
    return doc


def _jsonl_entity(doc, raw):
    spans = raw.get("fragments") or raw.get("spans") or [(raw["start"], raw["end"])]
    concepts = [Concept(str(c["cui"]), str(c.get("name", "")), float(c.get("score", 0.0)))
                for c in raw.get("concepts") or []]
    return _entity(doc, spans, raw.get("text"), type=raw.get("type"), id=raw.get("id"), concepts=concepts)


# --- PubTator --------------------------------------------------------------------------------


class _PubtatorDoc:
    """A PubTator document being read: its title/abstract lines, then its annotation lines."""

    def __init__(self, pmid, line):
        self.pmid, self.line = pmid, line
        self.title = self.abstract = None
        self.rows = []  # (line, fields)
        self.bad = None  # the BadRecord that makes the whole document unusable

    def finish(self, path):
        """The bad records of its annotations, then the Document (or its BadRecord)."""
        if self.bad is not None:
            yield self.bad
            return
        title, abstract = self.title or "", self.abstract
        if not title.strip() and not (abstract or "").strip():
            yield BadRecord(path, self.line, f"document {self.pmid}: empty (no title or abstract text)")
            return
        passages = [Passage(0, title, "title")] if title else []
        if abstract:
            passages.append(Passage(len(title) + 1, abstract, "abstract"))
        text = title + " " + abstract if abstract is not None else title
        doc = Document(id=self.pmid, text=text, passages=passages, source=f"{path}:{self.line}")
        for line, fields in self.rows:
            try:
                doc.entities.append(_pubtator_entity(doc, fields))
            except ValueError as e:
                yield BadRecord(path, line, f"{e}; the annotation skipped")
        yield doc


def _pubtator_entity(doc, fields):
    pmid, start, end, text, typ = fields[:5]
    ident = fields[5].strip() if len(fields) > 5 else ""
    if pmid != doc.id:
        raise ValueError(f"annotation of {pmid} inside document {doc.id}")
    try:
        span = (int(start), int(end))
    except ValueError:
        raise ValueError(f"offsets {start!r}, {end!r} are not integers") from None
    if not 0 <= span[0] < span[1] <= len(doc.text):
        raise ValueError(f"offsets {span[0]}-{span[1]} outside the text (0-{len(doc.text)})")
    return _entity(doc, [span], text, type=typ or None, id=None if ident in _NO_ID else ident)


def _read_pubtator(path):
    doc = None
    for number, line, error in itertools.chain(_lines(path), [(None, "", None)]):
        if error is None and not line.strip():
            if doc is not None:
                yield from doc.finish(path)
            doc = None
            continue
        head = _PUBTATOR_HEAD.match(line if error is None else error.object.decode("utf-8", "replace"))
        if head:
            pmid, kind, body = head.groups()
            field = "title" if kind == "t" else "abstract"
            if doc is not None and (pmid != doc.pmid or getattr(doc, field) is not None or doc.rows):
                yield from doc.finish(path)  # no blank line between two documents
                doc = None
            doc = doc or _PubtatorDoc(pmid, number)
            setattr(doc, field, body)
            if error is not None:
                doc.bad = doc.bad or BadRecord(path, number, _not_utf8(error) + f"; document {pmid} skipped")
        elif doc is None:
            yield BadRecord(path, number, _not_utf8(error) if error else "annotation line before any PMID|t| line")
        elif error is not None:
            yield BadRecord(path, number, _not_utf8(error) + "; the annotation skipped")
        else:
            fields = line.split("\t")
            if len(fields) in (4, 5) and not (fields[1].isdigit() and fields[2].isdigit()):
                continue  # a relation line (PMID CID D1 D2): not an annotation
            if len(fields) < 5:
                yield BadRecord(path, number, f"expected 6 tab-separated fields, got {len(fields)}")
                continue
            doc.rows.append((number, fields))


# --- BioC ------------------------------------------------------------------------------------
#
# Read here rather than with bioc.biocxml so that each document and annotation keeps its line
# (lxml's sourceline); the writer uses the bioc package, and the tests read what it writes.


def _utf8_checked(path):
    """The bytes of ``path``; Unusable at the first line that is not UTF-8 (one XML or JSON
    document: nothing after the bad byte could be trusted)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise errors.Unusable(errors.os_error(e)) from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise errors.Unusable(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {column})") from None
    if not data.strip():
        raise errors.Unusable(f"{path}: empty file")
    return data


def _bioc_from_xml(element):
    """A BioC XML element -> the dict form BioC JSON has (what :func:`_bioc_document` reads),
    with ``line`` added to documents and annotations."""
    def infons(e):
        return {i.get("key"): i.text or "" for i in e.findall("infon")}

    def annotation(a):
        return {"id": a.get("id"), "infons": infons(a), "text": a.findtext("text"), "line": a.sourceline,
                "locations": [{"offset": int(loc.get("offset")), "length": int(loc.get("length"))}
                              for loc in a.findall("location")]}

    def part(e):  # passage or sentence
        return {"offset": int(e.findtext("offset")), "infons": infons(e), "text": e.findtext("text"),
                "sentences": [part(s) for s in e.findall("sentence")],
                "annotations": [annotation(a) for a in e.findall("annotation")]}

    return {"id": element.findtext("id"), "infons": infons(element), "line": element.sourceline,
            "passages": [part(p) for p in element.findall("passage")],
            "annotations": [annotation(a) for a in element.findall("annotation")]}


def _read_bioc_xml(path):
    from lxml import etree

    data = _utf8_checked(path)
    try:
        root = etree.parse(io.BytesIO(data), etree.XMLParser(huge_tree=True)).getroot()
    except etree.XMLSyntaxError as e:
        line = e.position[0] if e.position else None
        raise errors.Unusable(f"{errors.where(path, line)}: malformed XML ({e.msg})") from None
    if root.tag != "collection":
        raise errors.Unusable(f"{path}: not BioC XML (root <{root.tag}>, not <collection>)")
    for element in root.iter("document"):
        try:
            record = _bioc_from_xml(element)
        except (TypeError, ValueError) as e:
            yield BadRecord(path, element.sourceline, f"unreadable BioC document ({e}); skipped")
            continue
        yield from _bioc_document(path, record, record["line"])


def _read_bioc_json(path):
    try:
        collection = json.loads(_utf8_checked(path))
    except ValueError as e:
        raise errors.Unusable(f"{path}: not JSON ({e})") from None
    if not isinstance(collection, dict) or not isinstance(collection.get("documents"), list):
        raise errors.Unusable(f'{path}: not a BioC JSON collection (no "documents" list)')
    for k, record in enumerate(collection["documents"], 1):
        where = f'document "{record.get("id")}"' if isinstance(record, dict) and record.get("id") else f"document {k}"
        if not isinstance(record, dict):
            yield BadRecord(path, where, "not a JSON object; skipped")
            continue
        yield from _bioc_document(path, record, where)


def _bioc_passages(record):
    """(passages, annotation dicts) of a BioC document dict; a passage given as sentences
    (no passage text) gets its text from them."""
    passages, annotations = [], list(record.get("annotations") or [])
    for p in record.get("passages") or []:
        annotations += p.get("annotations") or []
        sentences = p.get("sentences") or []
        for s in sentences:
            annotations += s.get("annotations") or []
        text = p.get("text")
        if not text and sentences:  # sentences at their offsets, relative to the passage's
            text = Document.from_passages("", [Passage(int(s["offset"]) - int(p["offset"]), s.get("text") or "")
                                               for s in sentences]).text
        passages.append(Passage(int(p["offset"]), text or "", (p.get("infons") or {}).get("type")))
    return [p for p in passages if p.text], annotations


def _bioc_document(path, record, where):
    try:
        passages, annotations = _bioc_passages(record)
        doc = Document.from_passages(record.get("id") or str(where), passages, source=errors.where(path, where))
    except (TypeError, ValueError, KeyError) as e:
        yield BadRecord(path, where, f"unreadable BioC document ({e}); skipped")
        return
    if not doc.text.strip():
        yield BadRecord(path, where, f"document {doc.id}: empty (no passage text); skipped")
        return
    infons = record.get("infons") or {}
    doc.notes = [infons[k] for k in sorted((k for k in infons if re.fullmatch(r"note_\d+", k)), key=lambda k: int(k[5:]))]
    for a in annotations:
        try:
            doc.entities.append(_bioc_entity(doc, a))
        except (TypeError, ValueError, KeyError) as e:
            yield BadRecord(path, a.get("line", where), f"annotation {a.get('id')}: {e}; the annotation skipped")
    yield doc


def _bioc_entity(doc, a):
    spans = [(int(loc["offset"]), int(loc["offset"]) + int(loc["length"])) for loc in a.get("locations") or []]
    if not spans:
        raise ValueError("no location")
    for s, e in spans:
        if not 0 <= s < e <= len(doc.text):
            raise ValueError(f"location {s}-{e} outside the text (0-{len(doc.text)})")
    infons = a.get("infons") or {}
    concepts, k = [], 1
    while f"cui_{k}" in infons:
        concepts.append(Concept(infons[f"cui_{k}"], infons.get(f"name_{k}", ""), float(infons.get(f"score_{k}", 0))))
        k += 1
    ident = infons.get("input_identifier") if concepts else infons.get("identifier", infons.get("MESH"))
    return _entity(doc, spans, a.get("text"), type=infons.get("type"), concepts=concepts,
                   id=None if ident is None or ident in _NO_ID else ident)


# --- PubMed XML ------------------------------------------------------------------------------


def _read_pubmed_xml(path):
    from ..data.pubmed_xml import Article, PubmedXMLError, PubmedXMLReader

    reader = PubmedXMLReader(path)
    try:
        for item in reader:
            if isinstance(item, Article):
                yield pubmed_document(path, item)
    except PubmedXMLError as e:
        if e.line is None and not reader.records:
            raise errors.Unusable(str(e)) from None
        yield BadRecord(path, e.line, e.message + (f" ({e.record})" if e.record else ""))
    for issue in reader.issues:
        yield BadRecord(path, issue.line, issue.message + (f" ({issue.record})" if issue.record else ""))


def pubmed_document(path, article):
    """The Document of a PubMed :class:`~biobart_fairseq.data.pubmed_xml.Article` (module
    docstring), or a BadRecord when it has no PMID or no text."""
    where = f"{path}:{article.line}"
    if not article.pmid:
        return BadRecord(path, article.line, f"record {article.index} has no PMID; skipped")
    abstract = " ".join(f"{label}: {text}" if label else text for label, text in article.sections if text)
    passages = [Passage(0, article.title, "title")] if article.title else []
    if abstract:
        passages.append(Passage(len(article.title) + 1 if article.title else 0, abstract, "abstract"))
    if not passages:
        return BadRecord(path, article.line, f"PMID {article.pmid}: no title or abstract text; skipped")
    doc = Document.from_passages(article.pmid, passages, source=where)
    if "\ufffd" in doc.text:
        doc.notes.append("invalid UTF-8 in the input replaced by U+FFFD")
    return doc


_READERS = {"jsonl": _read_jsonl, "pubtator": _read_pubtator, "bioc-xml": _read_bioc_xml,
            "bioc-json": _read_bioc_json, "text": _read_text, "text-file": _read_text_file,
            "pubmed-xml": _read_pubmed_xml}


# --------------------------------------------------------------------------------------------
# writing


def write(docs, out, fmt):
    """Write ``docs`` to ``out`` (a path or a text file object) in ``fmt`` (one of
    ``WRITE_FORMATS``; module docstring); returns the number of documents written."""
    if fmt not in _WRITERS:
        raise ValueError(f"cannot write {fmt!r} (one of {', '.join(WRITE_FORMATS)})")
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w", encoding="utf-8", newline="\n") as f:
            return _WRITERS[fmt](docs, f)
    return _WRITERS[fmt](docs, out)


def _write_jsonl(docs, f):
    n = 0
    for doc in docs:
        f.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
        n += 1
    return n


def _best_id(entity):
    return entity.concepts[0].cui if entity.concepts else entity.id


_FLAT = str.maketrans("\n\r\t", "   ")  # same length: offsets stay valid


def _pubtator_split(doc):
    """Where the title ends: after the first passage when a whitespace character follows it,
    else at the first newline; None: the whole text is the title."""
    if len(doc.passages) > 1 and doc.passages[0].end < len(doc.text) and doc.text[doc.passages[0].end].isspace():
        return doc.passages[0].end
    at = doc.text.find("\n")
    return at if at >= 0 else None


def _write_pubtator(docs, f):
    n = 0
    for doc in docs:
        text = doc.text.translate(_FLAT)
        split = _pubtator_split(doc)
        pmid = doc.id.translate(_FLAT).replace("|", "_")
        lines = [f"{pmid}|t|{text if split is None else text[:split]}"]
        if split is not None:
            lines.append(f"{pmid}|a|{text[split + 1:]}")
        for e in doc.entities:
            ident = (_best_id(e) or "-").translate(_FLAT)
            for start, end in e.spans:
                lines.append(f"{pmid}\t{start}\t{end}\t{text[start:end]}\t{(e.type or '').translate(_FLAT)}\t{ident}")
        f.write("\n".join(lines) + "\n\n")
        n += 1
    return n


def _bioc_collection(docs):
    import bioc

    collection = bioc.BioCCollection()
    collection.source, collection.date, collection.key = "biobart-fairseq", "", ""  # no date: same bytes every day
    for doc in docs:
        collection.add_document(_bioc_doc(doc))
    return collection


def _bioc_doc(doc):
    import bioc

    out = bioc.BioCDocument()
    out.id = doc.id
    for k, note in enumerate(doc.notes, 1):
        out.infons[f"note_{k}"] = note
    passages = []
    for p in doc.all_passages():
        passage = bioc.BioCPassage()
        passage.offset, passage.text = p.offset, p.text
        if p.kind:
            passage.infons["type"] = p.kind
        out.add_passage(passage)
        passages.append((p, passage))
    for k, e in enumerate(doc.entities, 1):
        # the passage holding the entity's start (the last one starting at or before it)
        holder = next((b for p, b in reversed(passages) if p.offset <= e.start), passages[0][1])
        holder.add_annotation(_bioc_annotation(e, f"T{k}"))
    return out


def _bioc_annotation(entity, ann_id):
    import bioc

    a = bioc.BioCAnnotation()
    a.id, a.text = ann_id, entity.text
    if entity.type is not None:
        a.infons["type"] = entity.type
    if _best_id(entity) is not None:
        a.infons["identifier"] = _best_id(entity)
    if entity.concepts and entity.id is not None:
        a.infons["input_identifier"] = entity.id
    for k, c in enumerate(entity.concepts, 1):
        a.infons[f"cui_{k}"], a.infons[f"name_{k}"], a.infons[f"score_{k}"] = c.cui, c.name, f"{c.score:.6g}"
    for start, end in entity.spans:
        a.add_location(bioc.BioCLocation(start, end - start))
    return a


def _write_bioc_xml(docs, f):
    from bioc import biocxml

    collection = _bioc_collection(docs)
    biocxml.dump(collection, f)
    return len(collection.documents)


def _write_bioc_json(docs, f):
    from bioc import biocjson

    collection = _bioc_collection(docs)
    biocjson.dump(collection, f, indent=1, ensure_ascii=False)
    f.write("\n")
    return len(collection.documents)


_WRITERS = {"jsonl": _write_jsonl, "pubtator": _write_pubtator, "bioc-xml": _write_bioc_xml,
            "bioc-json": _write_bioc_json}
