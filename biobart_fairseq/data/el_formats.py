"""Readers for entity-linking corpora and knowledge bases, and the canonical formats.

Canonical mention format (JSONL, one mention a line)::

    {"doc_id": "9949209", "text": "<title> <abstract>", "start": 23, "end": 39,
     "mention": "copper toxicosis", "cuis": ["OMIM:215600"]}

``start``/``end`` are character offsets into ``text`` (end exclusive) with
``text[start:end] == mention``; ``cuis`` has several ids for composite mentions (NCBI
``A|B`` and ``A+B``, BC5CDR ``A|B``): a prediction is right if it hits any of them.

Canonical KB format (TSV): one ``cui<TAB>name`` a line; a concept has as many lines as names.

Readers never stop at a bad record: they yield :class:`BadRecord` items (file, line, reason)
that the caller counts and reports, and go on.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union


@dataclass
class Mention:
    doc_id: str
    text: str
    start: int
    end: int
    mention: str
    cuis: List[str] = field(default_factory=list)
    # --style genbioel: the mention as the model sees it (abbreviations expanded, composites
    # resolved into "a|b", normalised); None: the raw mention
    query: Optional[str] = None

    def to_json(self) -> str:
        # a plain dict: dataclasses.asdict deep-copies and was most of the time of step 1
        d = {"doc_id": self.doc_id, "text": self.text, "start": self.start, "end": self.end,
             "mention": self.mention, "cuis": list(self.cuis)}
        if self.query is not None:
            d["query"] = self.query
        return json.dumps(d, ensure_ascii=False)


@dataclass
class BadRecord:
    path: str
    line: int
    reason: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.reason}"


class RepeatedDocument(BadRecord):
    """A document skipped because its id already appeared: reported, but not an error."""


class NoConcept(BadRecord):
    """A mention whose id is ``-1`` (BC5CDR: no concept for it): counted, but not an error."""


Record = Union[Mention, BadRecord]


class UnusableInput(Exception):
    """A file that cannot be read at all (bytes that are not UTF-8, an empty file): the
    command stops with this message (file and line) and exit status 2."""

    def __init__(self, path, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


def read_lines(path) -> Iterator[Tuple[int, str]]:
    """(file line number, line without its newline) of a UTF-8 text file, ``.gz`` too.
    Raises :class:`UnusableInput` at the first line that is not UTF-8, and at the end of a
    file without a non-blank line."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    nonblank = False
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UnusableInput(path, lineno, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
                line = line.rstrip("\n").rstrip("\r")
                nonblank = nonblank or bool(line.strip())
                yield lineno, line
    except (EOFError, gzip.BadGzipFile) as e:
        raise UnusableInput(path, 0, f"unreadable compressed file ({e})")
    if not nonblank:
        raise UnusableInput(path, 0, "empty file")


# --- concept ids -----------------------------------------------------------------------------
def normalize_cui(raw: str) -> str:
    """One id in the form used everywhere here: ``MESH:D001`` -> ``D001``, ``UMLS:C01`` ->
    ``C01``, a bare OMIM number ``613097`` -> ``OMIM:613097`` (MEDIC writes OMIM ids bare,
    the NCBI corpus as ``OMIM:``), whitespace stripped (the corpus has `` D008661``)."""
    cui = raw.strip()
    for p in ("MESH:", "UMLS:"):
        if cui.startswith(p):
            cui = cui[len(p):]
    if cui.isdigit():
        cui = "OMIM:" + cui
    return cui


def split_cuis(raw: str) -> List[str]:
    """``A|B`` (composite: either) and ``A+B`` (combination) -> ``[A, B]``; duplicates dropped."""
    out = []
    for part in re.split(r"[|+]", raw):
        cui = normalize_cui(part)
        if cui and cui not in out:
            out.append(cui)
    return out


def drop_omim_if_mixed(cuis: List[str]) -> List[str]:
    """BioSyn's rule for NCBI-disease ids (kept by GenBioEL and so behind Table 1): when a
    mention's ids mix OMIM and MeSH, the OMIM ones are dropped; ``["D001", "OMIM:1"]`` ->
    ``["D001"]``, which is then no longer a composite mention."""
    mesh = [c for c in cuis if not c.startswith("OMIM:")]
    return mesh if mesh and len(mesh) < len(cuis) else cuis


# --- PubTator (NCBI-disease, BC5CDR, MedMentions) ------------------------------------------------
def read_pubtator(path, keep_types: Optional[Iterable[str]] = None, doc_ids: Optional[set] = None,
                  with_columns: bool = False) -> Iterator[Record]:
    """Mentions of a PubTator file: ``PMID|t|title``, ``PMID|a|abstract`` then
    ``PMID<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>ids[<TAB>...]`` lines, documents
    separated by blank lines; offsets index ``title + " " + abstract``.

    Relation lines (BC5CDR ``CID``, 4 fields) are skipped silently; a mention with an id
    ``-1`` (BC5CDR: no concept) is a :class:`NoConcept` record (counted, not an error).
    ``keep_types`` filters on the type column (a MedMentions row may carry several
    comma-separated types: any match keeps it).  ``with_columns``: yield ``(Mention, ids
    column, 7th column or None)`` instead of mentions, and mentions with ``-1`` among their
    ids too (GenBioEL's BC5CDR reader splits composites by those columns before it looks at
    ids).

    A document whose PMID already appeared in the file is skipped with its annotations and
    reported once (the NCBI-disease train file has PMID 8528200 twice; BioSyn's script, and
    so GenBioEL's data and Table 1, keep the first copy only)."""
    keep = set(keep_types) if keep_types else None
    path = str(path)
    title = abstract = None
    doc = None
    first_seen: Dict[str, int] = {}  # PMID -> line of its title
    repeated = None  # PMID of the repeated document being skipped
    for lineno, line in read_lines(path):
        if not line.strip():
            title = abstract = doc = repeated = None
            continue
        m = re.match(r"^([^|\t]+)\|([ta])\|(.*)$", line)
        if m:
            pmid, kind, body = m.groups()
            if kind == "t" and pmid in first_seen:
                repeated = pmid
                yield RepeatedDocument(path, lineno, f"document {pmid} appears again (first at line "
                                              f"{first_seen[pmid]}): this copy and its annotations skipped")
                continue
            if pmid == repeated:
                continue
            if kind == "t":
                first_seen[pmid] = lineno
                doc, title, abstract = pmid, body, None
            else:
                if doc != pmid:
                    yield BadRecord(path, lineno, f"abstract of {pmid} without its title")
                    doc, title = pmid, ""
                abstract = body
            continue
        cols = line.split("\t")
        if len(cols) == 4:  # relation line (e.g. BC5CDR "PMID CID D1 D2")
            continue
        if len(cols) < 6:
            yield BadRecord(path, lineno, f"expected 6 tab-separated fields, got {len(cols)}")
            continue
        pmid, typ = cols[0], cols[4]
        if pmid == repeated or (doc_ids is not None and pmid not in doc_ids):
            continue
        if pmid != doc or title is None:
            yield BadRecord(path, lineno, f"annotation of {pmid} outside its document")
            continue
        if keep is not None and not keep.intersection(typ.split(",")):
            continue
        yield _pubtator_mention(path, lineno, cols, title + " " + (abstract or ""), with_columns)


def _pubtator_mention(path: str, lineno: int, cols: List[str], text: str, with_columns: bool):
    """One annotation line of its document ``text`` -> what :func:`read_pubtator` yields for it."""
    pmid, s, e, mention, _, ids = cols[:6]
    try:
        start, end = int(s), int(e)
    except ValueError:
        return BadRecord(path, lineno, f"offsets {s!r}, {e!r} are not integers")
    if not (0 <= start < end <= len(text)) or text[start:end].strip() != mention.strip():
        return BadRecord(path, lineno, f"offsets {start}-{end} do not give the mention {mention!r}")
    mention = text[start:end]  # NCBI train line 3249 has trailing spaces in the field
    cuis = split_cuis(ids)
    if not cuis:
        return BadRecord(path, lineno, f"mention {mention!r} has no concept id ({ids!r})")
    if with_columns:
        return Mention(pmid, text, start, end, mention, cuis), ids, (cols[6] if len(cols) > 6 else None)
    if "-1" in cuis:
        return NoConcept(path, lineno, f"mention {mention!r} has concept id {ids!r}")
    return Mention(pmid, text, start, end, mention, cuis)


def read_pmid_list(path) -> set:
    return {line.strip() for _, line in read_lines(path) if line.strip()}


# --- COMETA -----------------------------------------------------------------------------
def read_cometa(path, id_column: str = "General SNOMED ID") -> Iterator[Record]:
    """A COMETA split file (tab-separated, header ``ID Term General SNOMED ID Specific
    SNOMED ID Example``).  The mention is ``Term``, the context the Reddit post ``Example``;
    the offsets are the first case-insensitive occurrence of the term in the post (the
    release gives none).  A term missing from its post is kept, as the whole text."""
    path = str(path)
    reader = csv.DictReader((line for _, line in read_lines(path)), delimiter="\t")
    missing = {"Term", id_column} - set(reader.fieldnames or [])
    if missing:
        yield BadRecord(path, 1, f"missing columns {sorted(missing)} (have {reader.fieldnames})")
        return
    for row in reader:
        lineno = reader.line_num  # lines fed to the reader = file lines
        term, cui = (row.get("Term") or "").strip(), (row.get(id_column) or "").strip()
        if not term or not cui:
            yield BadRecord(path, lineno, "empty term or concept id")
            continue
        text = row.get("Example") or ""
        i = text.lower().find(term.lower())
        if i < 0:
            text, i = term, 0
        yield Mention(row.get("ID") or f"{os.path.basename(path)}:{lineno}", text, i, i + len(term),
                      text[i:i + len(term)], [cui])


# --- AskAPatient -----------------------------------------------------------------------------
def read_askapatient(path) -> Iterator[Record]:
    """An AskAPatient fold file: ``cui<TAB>label<TAB>phrase`` lines, no context (the
    phrase is the whole text)."""
    path = str(path)
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 3 or not cols[0].strip() or not cols[2].strip():
            yield BadRecord(path, lineno, f"expected cui<TAB>label<TAB>phrase, got {len(cols)} fields")
            continue
        phrase = cols[2].strip()
        yield Mention(f"{os.path.basename(path)}:{lineno}", phrase, 0, len(phrase), phrase, [cols[0].strip()])


def askapatient_labels(paths) -> List[Tuple[str, str]]:
    """(cui, label) pairs of AskAPatient fold files: its KB when no other is given."""
    seen = {}
    for p in paths:
        for _, line in read_lines(p):
            cols = line.split("\t")
            if len(cols) >= 3 and cols[0].strip() and cols[1].strip():
                seen.setdefault((cols[0].strip(), cols[1].strip()), None)
    return list(seen)


# --- knowledge bases ------------------------------------------------------------------------
def read_kb(path, fmt: str = "auto") -> Iterator[Union[Tuple[str, str], BadRecord]]:
    """(cui, name) pairs of a KB file.

    * ``tsv``: ``cui<TAB>name`` (our canonical format);
    * ``biosyn``: ``id[|alt id...]||name[|synonym...]`` (MEDIC as shipped by BioSyn, and
      BioSyn's ``cui||name`` dictionaries); a name is listed under every id of its line;
    * ``mrconso``: UMLS ``MRCONSO.RRF``, English strings only;
    * ``auto``: by the first line.
    """
    path = str(path)
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        if fmt == "auto":
            fmt = "biosyn" if "||" in line else ("mrconso" if line.count("|") > 10 else "tsv")
        if fmt == "tsv":
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
                yield BadRecord(path, lineno, "expected cui<TAB>name")
                continue
            yield cols[0].strip(), cols[1].strip()
        elif fmt == "biosyn":
            if "||" not in line:
                yield BadRecord(path, lineno, "expected ids||names")
                continue
            ids, names = line.split("||", 1)
            cuis = [normalize_cui(c) for c in ids.split("|") if c.strip()]
            names = [n.strip() for n in names.split("|") if n.strip()]
            if not cuis or not names:
                yield BadRecord(path, lineno, "no id or no name")
                continue
            for c in cuis:
                for n in names:
                    yield c, n
        elif fmt == "mrconso":
            cols = line.split("|")
            if len(cols) < 15:
                yield BadRecord(path, lineno, f"expected ≥15 |-separated MRCONSO fields, got {len(cols)}")
                continue
            if cols[1] == "ENG" and cols[14].strip():
                yield cols[0], cols[14].strip()
        else:
            raise ValueError(f"unknown KB format {fmt!r}")


def write_jsonl(path, mentions: Iterable[Mention]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for m in mentions:
            f.write(m.to_json() + "\n")
            n += 1
    return n


def read_jsonl(path) -> Iterator[Record]:
    path = str(path)
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            m = Mention(str(d["doc_id"]), d["text"], int(d["start"]), int(d["end"]), d["mention"],
                        [str(c) for c in d["cuis"]], d.get("query"))
        except (ValueError, KeyError, TypeError) as e:
            yield BadRecord(path, lineno, f"not a mention record: {e!r}")
            continue
        if not m.cuis:
            yield BadRecord(path, lineno, "no concept id")
            continue
        yield m


def write_kb(path, pairs: Iterable[Tuple[str, str]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for cui, name in pairs:
            name = " ".join(name.split())  # no tabs/newlines inside a name
            f.write(f"{cui}\t{name}\n")
            n += 1
    return n


# --- normalisation shared by the KB, the targets and the trie -------------------------------------
_PUNCT = re.compile(r"[^\w\s]|_")


def conv_name(name: str, lowercase: bool = True) -> str:
    """``--style raw`` names: html-unescape, every punctuation mark (any script) to a space,
    whitespace collapsed, lower-cased by default.  (GenBioEL's own ``conv`` replaces a fixed
    list of 23 ASCII characters: ``el_biosyn.genbioel_conv``.)"""
    name = _PUNCT.sub(" ", html.unescape(name))
    name = " ".join(name.split())
    return name.lower() if lowercase else name


def build_name_index(pairs: Iterable[Tuple[str, str]], lowercase: bool = True, ambiguous: str = "keep",
                     normalise: Optional[Callable[[str], str]] = None
                     ) -> Tuple[Dict[str, List[str]], Dict[str, List[str]]]:
    """-> (cui -> its distinct normalised names, name -> its cuis).  Names are normalised by
    ``normalise`` (default: :func:`conv_name` with ``lowercase``).

    ``ambiguous="keep"``: a name shared by several concepts maps to all of them (a beam hit
    on any counts); ``"fewest"``: GenBioEL's rule, the name stays only with the concept that
    has the fewest names."""
    cui_names: Dict[str, List[str]] = {}
    seen = set()
    for cui, name in pairs:
        n = normalise(name) if normalise else conv_name(name, lowercase)
        if n and (cui, n) not in seen:
            seen.add((cui, n))
            cui_names.setdefault(cui, []).append(n)
    name_cuis: Dict[str, List[str]] = {}
    for cui, names in cui_names.items():
        for n in names:
            name_cuis.setdefault(n, []).append(cui)
    if ambiguous == "fewest":
        for n, cuis in name_cuis.items():
            if len(cuis) > 1:
                best = min(cuis, key=lambda c: (len(cui_names[c]), c))
                for c in cuis:
                    if c != best:
                        cui_names[c].remove(n)
                name_cuis[n] = [best]
        cui_names = {c: ns for c, ns in cui_names.items() if ns}
    elif ambiguous != "keep":
        raise ValueError(f"ambiguous must be keep or fewest, not {ambiguous!r}")
    return cui_names, name_cuis
