"""``biobart-prepare-el --style genbioel``: NCBI-disease and BC5CDR prepared as the data
behind BioBART's Table 4 was (GenBioEL's scripts; for NCBI on top of BioSyn's preprocessing).

NCBI-disease (GenBioEL reads BioSyn's processed files):

* each mention: abbreviations expanded token by token (``abbreviations.expand_tokens``; the
  definitions come from the document, Schwartz & Hearst instead of BioSyn's Ab3P), then a
  composite mention with several ids is resolved into one phrase per id
  (:func:`resolve_composite`, BioSyn's rules), then lower-cased, spell-corrected with
  BioSyn's typo list (``--typo-file``) and every ASCII punctuation mark but ``|`` turned into
  a space (:class:`BiosynText`); mentions with an id outside the dictionary are dropped;
* GenBioEL then uses the first phrase of a resolved composite as the mention;
* dictionaries (BioSyn): train = the KB names; dev = + the processed train mentions as
  names of their gold ids; test = + the processed dev mentions.  The trie and the name ->
  id map use the test dictionary; a sample's target synonym is picked from its own split's;
* names: BioSyn's dictionary processing (lower case, all ASCII punctuation to spaces),
  then GenBioEL's ``conv`` (a no-op after it).

BC5CDR (GenBioEL's own reader over the PubTator files):

* a composite line is split when its 7th column joined by spaces is the mention, or when it
  has two parts and the mention contains `` and `` / `` or `` (split there); other composite
  lines, and multi-id lines without a 7th column, are dropped (counted);
* the mention is replaced by its long form when the whole mention is a short form defined
  in the document; lower-cased; no punctuation removed;
* names: GenBioEL's ``conv`` — 23 ASCII characters to spaces (:data:`GENBIOEL_CHARS`),
  whitespace collapsed; a name of several ids stays with the id that has the fewest names;
* no mention is added to the dictionary.

Ids ``-1`` (no concept) are dropped and counted, in both datasets.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

from .abbreviations import expand_tokens, find_abbreviations
from .el_formats import Mention, normalize_cui

# GenBioEL's conv() replaces these characters with spaces (its literal lists "/" twice).
GENBIOEL_CHARS = ",.;{}[]()+-_*/?!`\"'=%><"
_GENBIOEL_TABLE = str.maketrans({c: " " for c in GENBIOEL_CHARS})


def genbioel_conv(name: str, lowercase: bool = True) -> str:
    """GenBioEL's name normalisation: the 23 characters of :data:`GENBIOEL_CHARS` to spaces,
    whitespace collapsed, lower-cased (NCBI; its BC5CDR KB keeps case, its trie lowers it)."""
    name = name.strip()
    if lowercase:
        name = name.lower()
    return " ".join(name.translate(_GENBIOEL_TABLE).split())


class BiosynText:
    """BioSyn's text preprocessing: lower case, then typo corrections token by token, then
    every ASCII punctuation mark (``string.punctuation``) except those in ``keep`` splits
    the text; the pieces are joined by single spaces."""

    def __init__(self, typos: Optional[Dict[str, str]] = None, keep: str = ""):
        self.typos = typos or {}
        punct = "".join(c for c in string.punctuation if c not in keep)
        self.split_re = re.compile(r"[\s" + re.escape(punct) + r"]+")

    def __call__(self, text: str) -> str:
        text = text.lower()
        if self.typos:
            text = " ".join(self.typos.get(t, t) for t in text.split())
        return " ".join(p for p in self.split_re.split(text) if p)


def read_typos(path) -> Dict[str, str]:
    """BioSyn's ``misspelling||correction`` file (``ncbi-spell-check.txt``)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                typo, _, fix = line.partition("||")
                out[typo] = fix
    return out


# --- composite mentions (BioSyn's four patterns, then one token per id) -----------------------------
_W = r"[a-zA-Z-]+"
_PREFIX_OF = re.compile(rf"(?P<head>{_W}) of (both )?(the )?(?P<a>(?:{_W} )+)(and|or) (the )?(?P<b>(?:{_W} ?)+)")
_NESTED_AND = re.compile(rf"(?P<heads>(?:{_W},? )+)(and|or|and/or) (?P<last>{_W} and {_W}) (?P<stem>.*)")
_COORDINATED = re.compile(rf"(?P<heads>(?:{_W},? )+)(and|or|and/or) (?P<last>(the )?{_W}) (?P<stem>.*)")
_SLASH = re.compile(r"(?P<pre>(?:.* )*)(?P<a>.*)/(?P<b>.*)?(?P<post>(?: .*)*)")


def resolve_composite(mention: str, n_ids: int) -> List[str]:
    """One phrase per concept of a composite mention, by BioSyn's rules, tried in order:
    ``X of (both) (the) A and|or B`` -> ``X of A``, ``X of B``; ``A, B and|or C and D stem``
    and ``A, B and|or C stem`` -> ``A stem``, ...; ``pre A/B post`` -> ``pre A post``,
    ``pre B post``; else one phrase per token when there are as many tokens as ids.  The
    mention itself (one phrase) when nothing applies."""
    mention = mention.strip()
    if n_ids <= 1:
        return [mention]
    m = _PREFIX_OF.match(mention)
    if m:
        return [f"{m['head']} of {m['a'].strip()}", f"{m['head']} of {m['b'].strip()}"]
    m = _NESTED_AND.match(mention) or _COORDINATED.match(mention)
    if m:
        heads = [h.strip() for h in m["heads"].strip().split(",")] + [m["last"].strip()]
        return [f"{h} {m['stem']}" for h in heads if h]
    m = _SLASH.fullmatch(mention)
    if m and "and/or" not in mention:
        pre, post = m["pre"].strip(), m["post"].strip()
        return [f"{pre} {part.strip()} {post}".strip() for part in (m["a"], m["b"] or "")]
    toks = mention.split()
    return toks if len(toks) == n_ids else [mention]


# --- NCBI-disease -----------------------------------------------------------------------------
def _abbreviations(cache: Dict[str, Dict[str, str]], m: Mention) -> Dict[str, str]:
    if m.doc_id not in cache:
        cache[m.doc_id] = find_abbreviations(m.text)
    return cache[m.doc_id]


def biosyn_queries(mentions: Iterable[Mention], text: BiosynText, kb_ids: Optional[set], counts: Counter,
                   split: str) -> List[Mention]:
    """BioSyn's query preprocessing (NCBI): sets ``query`` of each mention (``a|b`` for a
    resolved composite); mentions with an id outside ``kb_ids`` are dropped and counted."""
    cache: Dict[str, Dict[str, str]] = {}
    out = []
    for m in mentions:
        q = expand_tokens(m.mention, _abbreviations(cache, m))
        if q != m.mention:
            counts[f"{split}_abbreviations_expanded"] += 1
        if len(m.cuis) > 1:
            parts = resolve_composite(q, len(m.cuis))
            if len(parts) == len(m.cuis):
                q = "|".join(parts)
                counts[f"{split}_composites_resolved"] += 1
        if kb_ids is not None and not all(c in kb_ids for c in m.cuis):
            counts[f"{split}_not_in_kb"] += 1
            continue
        m.query = text(q)
        out.append(m)
    return out


def mention_synonyms(mentions: Iterable[Mention]) -> List[Tuple[str, str]]:
    """(id, name) pairs BioSyn adds to the next split's dictionary: the processed mention,
    punctuation (``|`` too) removed, under each of its ids."""
    clean = BiosynText()
    return [(c, clean(m.query)) for m in mentions for c in m.cuis if clean(m.query)]


# --- BC5CDR -----------------------------------------------------------------------------------
def split_bc5cdr_composite(m: Mention, ids_column: str, parts_column: Optional[str]) -> Optional[List[Mention]]:
    """GenBioEL's BC5CDR rules -> one mention per id, or None (dropped) for a line with
    several ids (``ids_column`` as written, ``A|B``) that none of them splits."""
    ids = [normalize_cui(c) for c in ids_column.split("|")]
    if len(ids) == 1:
        return [Mention(m.doc_id, m.text, m.start, m.end, m.mention, ids)]
    if parts_column is None or "|" not in parts_column:
        return None
    parts = parts_column.split("|")
    if " ".join(parts) == m.mention:
        pieces, sep = parts, " "
    elif len(parts) == 2 and " and " in m.mention:
        pieces, sep = m.mention.split(" and "), " and "
    elif len(parts) == 2 and " or " in m.mention:
        pieces, sep = m.mention.split(" or "), " or "
    else:
        return None
    out, start = [], m.start
    for piece, cui in zip(pieces, ids):  # zip: extra pieces or ids are ignored, as GenBioEL's
        out.append(Mention(m.doc_id, m.text, start, start + len(piece), piece, [cui]))
        start += len(piece) + len(sep)
    return out


def genbioel_bc5cdr(records: Iterable[Tuple[Mention, str, Optional[str]]], kb_ids: Optional[set], counts: Counter,
                    split: str) -> List[Mention]:
    """(mention, ids column, 7th column) -> GenBioEL's BC5CDR mentions with ``query`` set."""
    cache: Dict[str, Dict[str, str]] = {}
    out = []
    for m, ids, parts in records:
        pieces = split_bc5cdr_composite(m, ids, parts)
        if pieces is None:
            counts[f"{split}_composite_not_split"] += 1
            continue
        if len(pieces) > 1:
            counts[f"{split}_composite_split"] += 1
        for p in pieces:
            if p.cuis == ["-1"]:
                counts[f"{split}_no_concept"] += 1
                continue
            if kb_ids is not None and p.cuis[0] not in kb_ids:
                counts[f"{split}_not_in_kb"] += 1
                continue
            long_form = _abbreviations(cache, p).get(p.mention)
            if long_form:
                counts[f"{split}_abbreviations_expanded"] += 1
            p.query = (long_form or p.mention).lower()
            out.append(p)
    return out
