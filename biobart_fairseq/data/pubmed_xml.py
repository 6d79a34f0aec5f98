"""Streaming reader for PubMed/MEDLINE XML (``PubmedArticleSet``), plain or gzipped.

The annual baseline and the daily update files (``pubmedYYnNNNN.xml.gz``) are 20-40 MB
gzipped and several hundred MB unpacked, so they are never loaded whole:
:class:`PubmedXMLReader` reads 1 MiB chunks, feeds them to an ``lxml`` pull parser that only
reports the record elements, turns each finished record into a small Python object and then
deletes it from the tree.  Memory stays flat however long the file is.

What is yielded, in file order:

* :class:`Article` for every ``PubmedArticle`` (``book=False``) and every
  ``PubmedBookArticle`` (``book=True``).  Book records (NCBI Bookshelf chapters such as PDQ
  cancer summaries or GeneReviews) carry a PMID, a title and an abstract just like journal
  articles, so they are read the same way; callers count them separately.
* :class:`Deletion` for every ``DeleteCitation`` element (update files list the PMIDs that
  NLM withdrew; a deletion applies to versions read *before* it).

Text rules:

* title: ``MedlineCitation/Article/ArticleTitle`` (books: ``BookDocument/ArticleTitle``, or
  ``BookDocument/Book/BookTitle`` when the record is a whole book).  NLM wraps translated
  titles of non-English articles in square brackets ("[Effect of ...]."); the brackets are
  removed.  An empty title falls back to ``VernacularTitle``.
* abstract: every ``Abstract/AbstractText`` in order, as ``(label, text)`` sections.  The
  ``Label`` attribute of structured abstracts is kept as given ("BACKGROUND"); unlabelled
  parts, and parts labelled with NLM's placeholder "UNLABELLED", have label ``""``.  ``OtherAbstract`` (other languages, plain-language summaries) and
  ``CopyrightInformation`` are not part of the abstract.
* inline markup (``<i>``, ``<sup>``, ``<sub>``, MathML ...) is flattened with ``itertext()``
  and whitespace is normalised to single spaces.

Errors.  A file that cannot be read to the end raises :class:`PubmedXMLError` *after* every
record parsed before the break has been yielded; the exception names the file, the number of
the record where parsing broke and the last good PMID.  Bytes that are not valid UTF-8
(PubMed files are always UTF-8) are not fatal: they are replaced by U+FFFD, the file is read
on, and each affected line is reported in :attr:`PubmedXMLReader.issues`.
"""

from __future__ import annotations

import bisect
import codecs
import gzip
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

from lxml import etree

__all__ = [
    "Article",
    "Deletion",
    "Issue",
    "PubmedXMLError",
    "PubmedXMLReader",
]

CHUNK_SIZE = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")
_ROOT_TAG = "PubmedArticleSet"
# NLM's placeholder label for the unlabelled part of a structured abstract: not text.
_NO_LABEL = "UNLABELLED"
# Invalid-byte reports per file are capped: one broken file must not flood the report.
MAX_ISSUES_PER_FILE = 20


@dataclass
class Article:
    """One ``PubmedArticle`` or ``PubmedBookArticle``."""

    pmid: str
    title: str
    sections: List[Tuple[str, str]]  # (label, text); label "" when unlabelled
    book: bool = False
    index: int = 0  # 1-based position among the records (articles + deletions) of its file

    @property
    def has_abstract(self) -> bool:
        return any(text for _, text in self.sections)


@dataclass
class Deletion:
    """One ``DeleteCitation`` element: the PMIDs it withdraws."""

    pmids: List[str]
    index: int = 0


@dataclass
class Issue:
    """A non-fatal problem found while reading (e.g. invalid UTF-8 bytes)."""

    record: Optional[str]  # "PMID 123", or None when not inside a record
    line: int
    message: str


class PubmedXMLError(Exception):
    """A file could not be read to the end; the records before the break were yielded."""

    def __init__(self, path: str, message: str, record: Optional[str] = None):
        self.path = path
        self.message = message
        self.record = record
        where = f" [{record}]" if record else ""
        super().__init__(f"{path}{where}: {message}")


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def _text(element) -> str:
    """All text below ``element`` (inline markup flattened), whitespace normalised."""
    if element is None:
        return ""
    return normalize_space("".join(element.itertext()))


def _strip_translation_brackets(title: str) -> str:
    # "[Treatment of X in children]." -> "Treatment of X in children."
    if title.startswith("[") and (title.endswith("].") or title.endswith("]")):
        inner = title[1 : title.rindex("]")]
        if "[" not in inner and "]" not in inner:  # only one bracketed span around everything
            return inner + ("." if title.endswith(".") and not inner.endswith(".") else "")
    return title


def _article_from_element(element, index: int) -> Article:
    book = element.tag == "PubmedBookArticle"
    if book:
        doc = element.find("BookDocument")
        pmid = (doc.findtext("PMID") if doc is not None else None) or ""
        title = _text(doc.find("ArticleTitle")) if doc is not None else ""
        if not title and doc is not None:
            title = _text(doc.find("Book/BookTitle"))
        abstract = doc.find("Abstract") if doc is not None else None
    else:
        citation = element.find("MedlineCitation")
        pmid = (citation.findtext("PMID") if citation is not None else None) or ""
        article = citation.find("Article") if citation is not None else None
        title = _text(article.find("ArticleTitle")) if article is not None else ""
        if not title and article is not None:
            title = _text(article.find("VernacularTitle"))
        abstract = article.find("Abstract") if article is not None else None
    sections: List[Tuple[str, str]] = []
    if abstract is not None:
        for part in abstract.iterfind("AbstractText"):
            label = normalize_space(part.get("Label") or "").rstrip(":").strip()
            if label.upper() == _NO_LABEL:
                label = ""
            sections.append((label, _text(part)))
    return Article(
        pmid=pmid.strip(),
        title=_strip_translation_brackets(title),
        sections=sections,
        book=book,
        index=index,
    )


class _Utf8Guard:
    """Passes UTF-8 bytes through, replacing invalid sequences by U+FFFD.

    The parser would stop at the first invalid byte and lose the rest of the file; a decode
    check per chunk costs little and lets the file be read to the end.  Clean chunks are
    passed on unchanged (only the 0-3 bytes of a character cut by the chunk boundary are held
    back), so the usual case pays one validating decode and no re-encode.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._newlines = 0  # newlines in all bytes handed on so far
        self.bad_lines: List[int] = []  # 1-based line of each invalid sequence

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        try:
            _, consumed = codecs.utf_8_decode(data, "strict", final)
            out = data[:consumed]
        except UnicodeDecodeError:
            out, consumed = self._repair(data, final)
        self._pending = data[consumed:]
        self._newlines += data.count(b"\n", 0, consumed)
        return out

    def _repair(self, data: bytes, final: bool) -> Tuple[bytes, int]:
        parts: List[str] = []
        pos = 0
        while True:
            try:
                text, used = codecs.utf_8_decode(data[pos:], "strict", final)
            except UnicodeDecodeError as error:
                bad = pos + error.start
                parts.append(data[pos:bad].decode("utf-8"))
                parts.append("\ufffd")
                self.bad_lines.append(self._newlines + data.count(b"\n", 0, bad) + 1)
                pos += error.end
                continue
            parts.append(text)
            return "".join(parts).encode("utf-8"), pos + used


class PubmedXMLReader:
    """Iterate over the records of one PubMed XML file; see the module docstring.

    ``progress`` is called with the number of *file* bytes (compressed bytes for ``.gz``)
    consumed since the previous call, for a progress bar sized by the file's size on disk.
    """

    def __init__(
        self,
        path: Union[str, Path],
        progress: Optional[Callable[[int], None]] = None,
        chunk_size: int = CHUNK_SIZE,
    ):
        self.path = str(path)
        self.progress = progress
        self.chunk_size = chunk_size
        self.issues: List[Issue] = []
        self.records = 0  # records (articles + deletions) fully parsed
        self.last_pmid: Optional[str] = None
        # Start line and PMID of the articles parsed once invalid bytes had been seen, to name
        # the record holding each bad line (the guard sees a chunk before the parser does, so a
        # record with a bad byte always ends after the byte was found).
        self._record_starts: List[int] = []
        self._record_pmids: List[str] = []
        self._guard = _Utf8Guard()
        self._saw_root = False

    def _where(self) -> str:
        after = f", after PMID {self.last_pmid}" if self.last_pmid else ", before any PMID"
        return f"record {self.records + 1}{after}"

    def _fail(self, message: str, in_record: bool = True) -> PubmedXMLError:
        return PubmedXMLError(self.path, message, self._where() if in_record else None)

    def __iter__(self) -> Iterator[Union[Article, Deletion]]:
        try:
            raw = open(self.path, "rb")
        except OSError as error:
            raise PubmedXMLError(self.path, f"cannot open: {error.strerror or error}") from None
        try:
            with raw:
                gzipped = raw.read(2) == _GZIP_MAGIC
                raw.seek(0)
                stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
                yield from self._parse(raw, stream, gzipped)
        finally:
            self._report_bad_bytes()

    def _parse(self, raw, stream, gzipped: bool):
        parser = etree.XMLPullParser(
            events=("start", "end"),
            tag=(_ROOT_TAG,) + _RECORD_TAGS,
            # PubMed files are UTF-8; forcing it keeps the guard's re-encoded bytes consistent.
            encoding="utf-8",
            # Never fetch the DTD named in the DOCTYPE, never expand external entities.
            no_network=True,
            load_dtd=False,
            resolve_entities=False,
            remove_comments=True,
            remove_pis=True,
        )
        self._saw_root = False
        total = 0
        position = 0
        # GzipFile.read1 returns what one step of decompression produced; read() would gather a
        # whole chunk first and lose it all if the stream turns out to be truncated.
        read = stream.read1 if gzipped else stream.read
        while True:
            try:
                chunk = read(self.chunk_size)
            except (EOFError, OSError, zlib.error) as error:
                # Drain what the parser finished before the damaged part of the stream.
                yield from self._drain(parser)
                kind = "truncated or corrupt gzip stream" if gzipped else "read error"
                raise self._fail(f"{kind}: {error}") from None
            if self.progress is not None:
                now = raw.tell()
                self.progress(now - position)
                position = now
            data = self._guard(chunk, final=not chunk)
            total += len(chunk)
            try:
                if data:
                    parser.feed(data)
                if not chunk:
                    if total == 0:
                        raise self._fail("file is empty", in_record=False)
                    parser.close()
            except etree.XMLSyntaxError as error:
                yield from self._drain(parser)
                line, column = (error.position or (None, None))[:2]
                at = f" at line {line}, column {column}" if line else ""
                raise self._fail(f"malformed XML{at}: {error.msg}") from None
            yield from self._drain(parser)
            if not chunk:
                break
        if not self._saw_root:
            raise self._fail(f"no <{_ROOT_TAG}> root element: not a PubMed XML file", in_record=False)

    def _drain(self, parser) -> Iterator[Union[Article, Deletion]]:
        for event, element in parser.read_events():
            if element.tag == _ROOT_TAG:
                self._saw_root = True
                continue
            if event != "end":
                continue
            index = self.records + 1
            if element.tag == "DeleteCitation":
                pmids = [normalize_space(p.text or "") for p in element.iterfind("PMID")]
                item: Union[Article, Deletion] = Deletion([p for p in pmids if p], index)
            else:
                item = _article_from_element(element, index)
                if self._guard.bad_lines:
                    self._record_starts.append(element.sourceline or 0)
                    self._record_pmids.append(item.pmid)
                if item.pmid:
                    self.last_pmid = item.pmid
            self.records = index
            # Free the finished record and the already-cleared siblings before it, so the
            # in-memory tree never holds more than one record.
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
            yield item

    def _report_bad_bytes(self) -> None:
        per_line = Counter(self._guard.bad_lines)
        lines = sorted(per_line)
        for line in lines[:MAX_ISSUES_PER_FILE]:
            # The record whose start tag is the last one at or before the line.
            i = bisect.bisect_right(self._record_starts, line) - 1
            record = f"PMID {self._record_pmids[i]}" if i >= 0 and self._record_pmids[i] else None
            self.issues.append(
                Issue(record, line, f"{per_line[line]} invalid UTF-8 byte sequence(s) at line {line} replaced by U+FFFD")
            )
        if len(lines) > MAX_ISSUES_PER_FILE:
            self.issues.append(
                Issue(None, lines[MAX_ISSUES_PER_FILE], f"invalid UTF-8 on {len(lines) - MAX_ISSUES_PER_FILE} more line(s) not listed")
            )
