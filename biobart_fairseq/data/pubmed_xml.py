"""Streaming reader for PubMed/MEDLINE XML (``PubmedArticleSet``), plain or gzipped.

The annual baseline and the daily update files (``pubmedYYnNNNN.xml.gz``) are 20-40 MB
gzipped and several hundred MB unpacked, so they are never loaded whole:
:class:`PubmedXMLReader` reads 1 MiB chunks and keeps at most one partial record between them.
Memory stays flat however long the file is.

How records are read, and why not with a full XML parser.  Most of a PubMed record is data we
do not use (authors, affiliations, MeSH, chemicals, references, history).  Building lxml
trees for all of it ran at ~12 MB/s of XML per core with the pull parser, the slowest part of
``biobart-prepare-pubmed`` once sentence splitting got fast.  So each record is cut out of
the byte stream by its start and end tags (``PubmedArticle``, ``PubmedBookArticle``,
``DeleteCitation``: they never nest), and only the elements we read are parsed, each as its
own small XML document with lxml: ``ArticleTitle`` (or ``VernacularTitle`` / ``BookTitle``)
and ``Abstract``, all searched for only before ``</MedlineCitation>`` (``</BookDocument>``),
and the ``PMID`` (a plain number, matched directly).  That runs at ~150-200 MB/s.  What is
checked: those elements must be well-formed XML (entities, inline markup), records must be
closed, nothing but whitespace may stand between records, the file must have the
``PubmedArticleSet`` root and end with its closing tag.  What is not checked: the
well-formedness of the parts we skip (an error there cannot change what we read).  PubMed
files have no CDATA sections, comments or internal DTD subsets, which would break tag search.

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
record parsed before the break has been yielded; the exception names the file, the line of the
break, the number of the record where parsing broke and the last good PMID.  Every record
carries the line of its start tag (``line``), to name it in a report.  Bytes that are not valid UTF-8
(PubMed files are always UTF-8) are not fatal: they are replaced by U+FFFD, the file is read
on, and each affected line is reported in :attr:`PubmedXMLReader.issues`.
"""

from __future__ import annotations

import bisect
import codecs
import gzip
import re
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
_ROOT_TAG = b"PubmedArticleSet"
_ROOT_END = b"</PubmedArticleSet>"
# A record's start tag; "<PubmedArticleSet>" does not match (the name must end there).
_RECORD_START = re.compile(rb"<(PubmedArticle|PubmedBookArticle|DeleteCitation)(?=[\s>])[^>]*>")
_PMID_TEXT = re.compile(rb"<PMID(?:\s[^>]*)?>([^<]*)</PMID>")
_START_TAGS = {
    name: re.compile(rb"<" + name + rb"(?:\s[^>]*?)?(/?)>")
    for name in (b"ArticleTitle", b"VernacularTitle", b"BookTitle", b"Abstract")
}
# A record larger than this is taken as a missing end tag (real records are under 1 MiB).
_MAX_RECORD_BYTES = 64 << 20
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
    line: int = 0  # file line of its start tag (of the decompressed text for .gz)

    @property
    def has_abstract(self) -> bool:
        return any(text for _, text in self.sections)


@dataclass
class Deletion:
    """One ``DeleteCitation`` element: the PMIDs it withdraws."""

    pmids: List[str]
    index: int = 0
    line: int = 0


@dataclass
class Issue:
    """A non-fatal problem found while reading (e.g. invalid UTF-8 bytes)."""

    record: Optional[str]  # "PMID 123", or None when not inside a record
    line: int
    message: str


class PubmedXMLError(Exception):
    """A file could not be read to the end; the records before the break were yielded.
    ``line``: the file line of the break (None for the whole file: missing, empty, no root)."""

    def __init__(self, path: str, message: str, record: Optional[str] = None, line: Optional[int] = None):
        self.path = path
        self.message = message
        self.record = record
        self.line = line
        at = f"{path}:{line}" if line else path
        super().__init__(f"{at}: {message}" + (f" ({record})" if record else ""))


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


# lxml parser for the fragments: never fetch a DTD or expand external entities.
_FRAGMENT_PARSER = etree.XMLParser(
    load_dtd=False, no_network=True, resolve_entities=False, remove_comments=True, remove_pis=True
)


def _element(data: bytes, name: bytes, limit: int) -> Tuple[int, bytes]:
    """(offset, bytes) of the first ``<name ...>...</name>`` (or ``<name/>``) in data[:limit];
    (-1, b"") when absent.  None of the elements we read nests in itself."""
    match = _START_TAGS[name].search(data, 0, limit)
    if match is None:
        return -1, b""
    if match.group(1):  # <name/>
        return match.start(), match.group(0)
    close = b"</" + name + b">"
    end = data.find(close, match.end(), limit)
    if end < 0:
        end = data.find(close, match.end())  # malformed: let lxml name the problem
        if end < 0:
            return match.start(), data[match.start() : limit]
    return match.start(), data[match.start() : end + len(close)]


def _without_fragment_lines(error) -> str:
    """lxml's message without its positions: they count from the piece of XML it was given
    (lines from its first, columns from where it starts on that line), not from the file, and
    the message already begins with the file's line."""
    return re.sub(r",? line \d+(, column \d+)?", "", error.msg).strip()


def _parse_fragment(data: bytes, name: bytes, limit: int):
    """The lxml element of :func:`_element`, or None; a syntax error carries its line counted
    from the start of ``data``."""
    offset, fragment = _element(data, name, limit)
    if offset < 0:
        return None
    try:
        return etree.fromstring(fragment, _FRAGMENT_PARSER)
    except etree.XMLSyntaxError as error:
        line = data.count(b"\n", 0, offset) + (error.position[0] if error.position else 1)
        error.position = (line, error.position[1] if error.position else 0)
        raise


def _article_from_bytes(data: bytes, book: bool, index: int) -> Article:
    """An :class:`Article` from the bytes of one ``PubmedArticle`` / ``PubmedBookArticle``.

    Only the elements we use are parsed: the PMID, the titles and the abstract, all of which
    come before the end of ``MedlineCitation`` (``BookDocument``), where the search stops, so
    the PMIDs of ``CommentsCorrections`` or references in ``PubmedData`` are never read."""
    head = data.find(b"</BookDocument>" if book else b"</MedlineCitation>")
    limit = head if head >= 0 else len(data)
    pmid_match = _PMID_TEXT.search(data, 0, limit)
    pmid = pmid_match.group(1).decode("utf-8") if pmid_match else ""
    title = _text(_parse_fragment(data, b"ArticleTitle", limit))
    if not title:
        title = _text(_parse_fragment(data, b"BookTitle" if book else b"VernacularTitle", limit))
    abstract = _parse_fragment(data, b"Abstract", limit)
    sections: List[Tuple[str, str]] = []
    if abstract is not None:
        for part in abstract.iterfind("AbstractText"):
            label = normalize_space(part.get("Label") or "").rstrip(":").strip()
            if label.upper() == _NO_LABEL:
                label = ""
            sections.append((label, _text(part)))
    return Article(
        pmid=normalize_space(pmid),
        title=_strip_translation_brackets(title),
        sections=sections,
        book=book,
        index=index,
    )


def _starts_again(buffer: bytes, start, end: int) -> bool:
    """Whether another record with the same tag starts inside ``buffer[start.end():end]``: the
    end tag found then belongs to a later record, and this one was never closed."""
    opening = b"<" + start.group(1)
    found = buffer.find(opening, start.end(), end)
    while found >= 0:
        if buffer[found + len(opening) : found + len(opening) + 1] in (b">", b" ", b"\n", b"\t", b"\r"):
            return True
        found = buffer.find(opening, found + 1, end)
    return False


class _ReadFailure:
    """Handed from the chunk reader to the scanner when the file cannot be read on, so that
    every record completed before the break is yielded first."""

    def __init__(self, message: str):
        self.message = message


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
        # the record holding each bad line (the guard sees a chunk before the scanner does, so
        # a record with a bad byte always ends after the byte was found).
        self._record_starts: List[int] = []
        self._record_pmids: List[str] = []
        self._guard = _Utf8Guard()

    def _where(self) -> str:
        after = f", after PMID {self.last_pmid}" if self.last_pmid else ", before any PMID"
        return f"record {self.records + 1}{after}"

    def _fail(self, message: str, in_record: bool = True, line: Optional[int] = None) -> PubmedXMLError:
        return PubmedXMLError(self.path, message, self._where() if in_record else None, line)

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
                yield from self._scan(self._chunks(raw, stream, gzipped))
        finally:
            self._report_bad_bytes()

    def _chunks(self, raw, stream, gzipped: bool) -> Iterator[bytes]:
        """UTF-8-checked chunks of the (decompressed) file; b"" once at the end."""
        position = 0
        total = 0
        # GzipFile.read1 returns what one step of decompression produced; read() would gather a
        # whole chunk first and lose it all if the stream turns out to be truncated.
        read = stream.read1 if gzipped else stream.read
        while True:
            try:
                chunk = read(self.chunk_size)
            except (EOFError, OSError, zlib.error) as error:
                kind = "truncated or corrupt gzip stream" if gzipped else "read error"
                yield _ReadFailure(f"{kind}: {error}")
                return
            if self.progress is not None:
                now = raw.tell()
                self.progress(now - position)
                position = now
            total += len(chunk)
            if not chunk and total == 0:
                raise self._fail("file is empty", in_record=False)
            data = self._guard(chunk, final=not chunk)
            if data:
                yield data
            if not chunk:
                yield b""
                return

    def _scan(self, chunks: Iterator[bytes]) -> Iterator[Union[Article, Deletion]]:
        """Cut complete records out of the byte stream and parse each (see the module docstring).

        ``buffer`` holds the bytes not yet consumed; ``line`` is the line number of its first
        byte.  Only a partial record (or the prolog) stays in it between chunks."""
        buffer = b""
        line = 1
        root_seen = False
        for chunk in chunks:
            if isinstance(chunk, _ReadFailure):  # the break is after the last line read
                raise self._fail(chunk.message, line=line + buffer.count(b"\n"))
            at_end = not chunk
            buffer = buffer + chunk if buffer else chunk
            position = 0
            counted, counted_line = 0, line  # newlines are counted once, left to right
            while True:
                match = _RECORD_START.search(buffer, position)
                if match is None:
                    break
                end_tag = b"</" + match.group(1) + b">"
                end = buffer.find(end_tag, match.end())
                if end < 0:
                    break  # the rest of this record is in the next chunk
                end += len(end_tag)
                counted_line += buffer.count(b"\n", counted, match.start())
                counted = match.start()
                if _starts_again(buffer, match, end):
                    raise self._malformed(counted_line, f"<{match.group(1).decode()}> not closed before the next one")
                between = buffer[position : match.start()]
                if not root_seen:
                    root_seen = self._check_prolog(between)
                elif between.strip():
                    junk = len(between) - len(between.lstrip())  # its line: count up to it
                    at = counted_line - between.count(b"\n") + between.count(b"\n", 0, junk)
                    raise self._malformed(at, "text between records")
                yield self._record(match.group(1), buffer[match.start() : end], counted_line)
                position = end
            line = counted_line + buffer.count(b"\n", counted, position)
            buffer = buffer[position:]
            if at_end:
                self._check_epilog(buffer, line, root_seen)
                return
            if len(buffer) > _MAX_RECORD_BYTES:
                raise self._malformed(line, f"no record ends within {_MAX_RECORD_BYTES >> 20} MiB")

    def _check_prolog(self, prolog: bytes) -> bool:
        if b"<" + _ROOT_TAG not in prolog:
            raise self._fail(f"no <{_ROOT_TAG.decode()}> root element: not a PubMed XML file", in_record=False)
        return True

    def _check_epilog(self, rest: bytes, line: int, root_seen: bool) -> None:
        text = rest.strip()
        if not root_seen:
            self._check_prolog(text)
            text = text[text.index(b">", text.index(b"<" + _ROOT_TAG)) + 1 :].strip()
        if text == _ROOT_END:
            return
        if not text or _RECORD_START.search(text) or text.startswith(b"<"):
            raise self._malformed(line + rest.count(b"\n", 0, len(rest) - len(rest.lstrip())),
                                  f"Premature end of data: no closing </{_ROOT_TAG.decode()}>")
        raise self._malformed(line, "text after the last record")

    def _malformed(self, line: int, message: str) -> PubmedXMLError:
        return self._fail(f"malformed XML: {message}", line=line)

    def _record(self, tag: bytes, data: bytes, line: int) -> Union[Article, Deletion]:
        index = self.records + 1
        if tag == b"DeleteCitation":
            pmids = [normalize_space(p.decode("utf-8")) for p in _PMID_TEXT.findall(data)]
            item: Union[Article, Deletion] = Deletion([p for p in pmids if p], index)
        else:
            try:
                item = _article_from_bytes(data, tag == b"PubmedBookArticle", index)
            except etree.XMLSyntaxError as error:
                at = line + (error.position[0] - 1 if error.position else 0)
                raise self._malformed(at, _without_fragment_lines(error)) from None
            if self._guard.bad_lines:
                self._record_starts.append(line)
                self._record_pmids.append(item.pmid)
            if item.pmid:
                self.last_pmid = item.pmid
        item.line = line
        self.records = index
        return item

    def _report_bad_bytes(self) -> None:
        per_line = Counter(self._guard.bad_lines)
        lines = sorted(per_line)
        for line in lines[:MAX_ISSUES_PER_FILE]:
            # The record whose start tag is the last one at or before the line.
            i = bisect.bisect_right(self._record_starts, line) - 1
            record = f"PMID {self._record_pmids[i]}" if i >= 0 and self._record_pmids[i] else None
            self.issues.append(
                Issue(record, line, f"{per_line[line]} invalid UTF-8 byte sequence(s) replaced by U+FFFD (the record kept)")
            )
        if len(lines) > MAX_ISSUES_PER_FILE:
            self.issues.append(
                Issue(None, lines[MAX_ISSUES_PER_FILE], f"invalid UTF-8 on {len(lines) - MAX_ISSUES_PER_FILE} more line(s) not listed")
            )
