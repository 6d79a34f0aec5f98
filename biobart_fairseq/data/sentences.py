"""Sentence splitting for biomedical abstracts, and how we measure it.

Which splitter, and why
-----------------------
Sentence boundaries feed the sentence-per-line pretraining corpus, the TI+SP ablation and
the sentence-aligned blocks of ``biomed_denoising``, so their quality is measured, not
assumed: the gold set is GENIA (yhcc's CNN_Nested_NER release: 398 MEDLINE abstracts,
3,099 hand-split abstract sentences, see :func:`genia_gold_abstracts`), scored by boundary
precision / recall / F1 (:func:`boundary_scores`).  ``benchmarks/sentence_split.py`` prints
the comparison; on this project's 2-core machine (shared with other jobs, load ~6, so the
speeds are indicative) it gave (boundary F1, gold sentences per second on one core)::

    rules (this module)   0.997    ~50,000/s
    blingfire 0.1.8       0.989    ~40,000/s
    pysbd 0.3.4 + fixes   0.985       ~250/s
    sentencex 1.0.32      0.984   ~230,000/s
    nupunkt 0.8.0         0.983    ~40,000/s
    syntok 1.4.4          0.978     ~1,400/s
    pysbd 0.3.4           0.976       ~250/s
    spaCy 3.8 sentencizer 0.970     ~4,400/s

:func:`split_sentences` (the default everywhere) is therefore our own rule-based splitter: it
is the most accurate on the gold set and ~200x faster than pysbd, which used to take ~85 % of
``biobart-prepare-pubmed``'s time.  Caveat: its rules were written while reading the errors
of all splitters on both GENIA splits (dev 0.999, test 0.994), so its figure is in-sample; the
other splitters were not tuned on GENIA.  Its disagreements with pysbd + fixes on the real
PubMed exports the tests use (5 of 677 abstract sections; all five are right
for the rules: "Context A. Finally", "... by X. This", a citation line, two formulas without
spaces) were read one by one.  pysbd with the biomedical fixes we had is kept as
:func:`split_sentences_pysbd` (``biobart-prepare-pubmed --splitter pysbd``) for comparison and
for corpora prepared with it before.

The rules
---------
A boundary candidate is ``.``, ``?`` or ``!`` (possibly followed by closing quotes or brackets)
followed by whitespace.  It is a sentence end unless one of these holds; each is a mistake
that the GENIA errors or the real PubMed exports showed:

* the word before it is an abbreviation that does not end sentences ("e.g.", "i.e.", "vs.",
  "ca.", "approx.", "cf.", "Fig.", "et al.", "no.", "max.", titles, months);
* it is a route or unit abbreviation followed by a number ("i.v. 3 times a week", "p. 5");
* it is a one-letter initial followed by a lower-case word or another initial ("E. coli",
  "S. H. Reynolds").  A capital letter followed by a capitalised word *is* a sentence end:
  "... activated by protein kinase C. The ...", "vitamin D.", "NF-kappa B." (pysbd misses
  these; they are the largest error class of every off-the-shelf splitter on GENIA);
* the next word starts in lower case, unless it looks like a gene or chemical name ("p53",
  "c-myc", "mRNA", "alpha-2-EtOH"), which in abstracts do start sentences; after a dotted
  abbreviation ("u.v. cross-linking") a lower-case word never starts a sentence;
* the next word starts with a comma, colon, closing bracket, "%" or similar;
* it sits inside a bracket of the current sentence that closes within 300 characters, after
  an initial or a capitalised abbreviation: reference lists such as "(Vogel, J., Hinrichs, S. H.
  ... (1988) Nature 335)".

A list number ("... controls. 2. Mononuclear cells ...") is a sentence of its own, as in
GENIA's gold.  NLM's "(ABSTRACT TRUNCATED AT 250 WORDS)" marker is its own sentence, also when glued to the
last sentence without a space.  Whitespace is normalised (runs of whitespace become one space)
and every returned sentence is stripped and non-empty, so each can be one line of a fairseq
document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence

__all__ = [
    "SPLITTERS",
    "BoundaryScores",
    "boundary_scores",
    "detokenize",
    "genia_gold_abstracts",
    "split_sentences",
    "split_sentences_pysbd",
]

# ---------------------------------------------------------------------------------------------
# the rule-based splitter

# Sentence-final punctuation, possibly followed by more of it or by closing quotes/brackets,
# then whitespace (the text is whitespace-normalised first, so that is one space).
_CANDIDATE = re.compile(r"""[.?!][.?!"'”’)\]]*(?= )""")

# Abbreviations (lower-cased, leading brackets removed) after which a sentence never ends.
_NEVER_FINAL = frozenset(
    """
    approx. ca. cf. e.g. i.e. viz. vs. fig. figs. eq. eqs. ref. refs. no. nos. incl. resp.
    dr. drs. mr. mrs. ms. prof. st. jr. et. al. max. vol. vols. ed. eds. tab. suppl. ver.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec. u.s. u.k.
    """.split()
)

# Abbreviations that can end a sentence ("... given i.v."), but not when a number follows.
_NOT_BEFORE_NUMBER = frozenset(
    "i.v. i.p. i.m. i.c.v. s.c. p.o. b.i.d. t.i.d. q.i.d. q.d. min. p. pp. sp. spp. wt. mol.".split()
)

_INITIAL = re.compile(r"[A-Z][a-z]?\.$")  # "E.", "Ch."
_GENE_LIKE = re.compile(r"[-A-Z0-9]")  # a lower-case word with one of these: "p53", "c-myc"
_NOT_A_START = frozenset(",;:)]}%/-–—=<>+*&|")
_TRUNCATED = ".(ABSTRACT TRUNCATED"


def _is_boundary(prev: str, following: str) -> bool:
    """Whether a sentence ends after the token ``prev`` when ``following`` is the next token."""
    first = following[0]
    word = prev.lstrip("([{\"'").lower()
    if prev[-1] == ".":
        if word in _NEVER_FINAL:
            return False
        if _INITIAL.match(prev) and (first.islower() or _INITIAL.match(following)):
            return False
        if first.isdigit() and word in _NOT_BEFORE_NUMBER:
            return False
    if first.islower():
        if "." in word[:-1]:
            return False  # "u.v. cross-linking"
        return _GENE_LIKE.search(following) is not None
    return first not in _NOT_A_START


def _inside_reference(text: str, start: int, end: int, prev: str) -> bool:
    """An initial or short capitalised abbreviation inside a bracket of the current sentence
    (``text[start:end]``) that closes soon: "(Vogel, J., Hinrichs, S. H., ... Nature 335)"."""
    word = prev.lstrip("([")
    if not (word[:1].isupper() and len(word) <= 6):
        return False
    if text.count("(", start, end) <= text.count(")", start, end):
        return False
    return 0 <= text.find(")", end, end + 300)


def split_sentences(text: str) -> List[str]:
    """Split ``text`` into sentences with the rules of the module docstring.

    Returns stripped, non-empty sentences with whitespace normalised to single spaces; an
    empty or blank ``text`` gives an empty list.
    """
    text = " ".join(text.split())
    if not text:
        return []
    if _TRUNCATED in text:
        text = text.replace(_TRUNCATED, ". (ABSTRACT TRUNCATED")
    sentences: List[str] = []
    start = 0  # where the current sentence starts
    for match in _CANDIDATE.finditer(text):
        end = match.end()  # text[end] is the space
        following_end = text.find(" ", end + 1)
        following = text[end + 1 : following_end if following_end >= 0 else len(text)]
        token_start = max(text.rfind(" ", start, match.start()) + 1, start)
        prev = text[token_start:end]
        if not _is_boundary(prev, following):
            continue
        if _inside_reference(text, start, end, prev):
            continue
        sentences.append(text[start:end])
        start = end + 1
    sentences.append(text[start:])
    return sentences


# ---------------------------------------------------------------------------------------------
# pysbd with our earlier biomedical fixes (the baseline of benchmarks/sentence_split.py)

_PYSBD_NEVER_FINAL = frozenset("approx. ca. cf. e.g. i.e. viz. vs. fig. figs. eq. eqs. ref. refs. nos. incl. resp.".split())
_PYSBD_MAYBE_FINAL = frozenset(
    "i.v. i.p. i.m. i.c.v. s.c. p.o. b.i.d. t.i.d. q.i.d. q.d. sp. spp. subsp. ssp. var. no. p. pp. al.".split()
)
_PYSBD_INITIAL_OR_DOTTED = re.compile(r"^(?:[A-Z]|(?:[A-Za-z]\.){1,3}[A-Za-z])\.$")
_PYSBD_CONTINUATION = re.compile(r"^[a-z0-9(\[\-+±<>=%,;:/]")
_PYSBD_FINAL_PUNCT = re.compile(r"""[.!?。！？…]["'”’)\]]*$""")
_PYSBD_ONLY_PUNCT = re.compile(r"""^[\W_]+$""")
_PYSBD_TEMPERATURE = re.compile(r"(?:\bdegrees ?|[°º] ?)[CFK]\.(?= [A-Z])|(?<=\d) K\.(?= [A-Z])")


@lru_cache(maxsize=1)
def _pysbd_segmenter():
    import pysbd  # only needed for this splitter

    # clean=False keeps the text unchanged, so the pieces concatenate back to it exactly.
    return pysbd.Segmenter(language="en", clean=False)


def _pysbd_should_glue(piece: str, following: str) -> bool:
    if not _PYSBD_FINAL_PUNCT.search(piece):
        return True  # pysbd splits list items "1) ..., 2) ..." off running text
    if _PYSBD_ONLY_PUNCT.match(following):
        return True
    last = piece.rsplit(None, 1)[-1].lstrip("([{\"'")
    if last.lower() in _PYSBD_NEVER_FINAL:
        return True
    if _PYSBD_CONTINUATION.match(following):
        return last.lower() in _PYSBD_MAYBE_FINAL or bool(_PYSBD_INITIAL_OR_DOTTED.match(last))
    return False


def split_sentences_pysbd(text: str) -> List[str]:
    """pysbd 0.3.4, then glue pieces it splits after abbreviations and list numbers, and split
    after "37 degrees C." before a capitalised word (pysbd reads the "C." as an initial).
    Same output conventions as :func:`split_sentences`."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences: List[str] = []
    for segment in _pysbd_segmenter().segment(text):
        start = 0
        pieces = []
        for match in _PYSBD_TEMPERATURE.finditer(segment):
            pieces.append(segment[start : match.end()])
            start = match.end()
        pieces.append(segment[start:])
        for piece in pieces:
            if not piece.strip():
                if sentences:
                    sentences[-1] += piece
            elif sentences and _pysbd_should_glue(sentences[-1].strip(), piece.strip()):
                sentences[-1] += piece
            else:
                sentences.append(piece)
    return [sentence.strip() for sentence in sentences]


SPLITTERS: Dict[str, Callable[[str], List[str]]] = {
    "rules": split_sentences,
    "pysbd": split_sentences_pysbd,
}


# ---------------------------------------------------------------------------------------------
# measuring a splitter against hand-split abstracts

GENIA_FILES = ("dev.jsonlines", "test.jsonlines")
_NO_SPACE_BEFORE = frozenset(".,;:)]}%?!")
_NO_SPACE_AFTER = frozenset("([{")


def detokenize(tokens: Sequence[str]) -> str:
    """Text from GENIA's tokens: no space before ``. , ; : ) ] } % ? !`` or after ``( [ {``,
    and double quotes attached to what they enclose (they come in pairs).  GENIA keeps
    every character of the abstract in its tokens, so only spacing is reconstructed."""
    out: List[str] = []
    glue_next = False
    quote_open = False
    for token in tokens:
        if token == '"':
            quote_open = not quote_open
            if quote_open:
                out.append(" " + token if out else token)
                glue_next = True
            else:
                out.append(token)
                glue_next = False
            continue
        if not out or glue_next or token in _NO_SPACE_BEFORE:
            out.append(token)
        else:
            out.append(" " + token)
        glue_next = token in _NO_SPACE_AFTER
    return "".join(out)


def genia_gold_abstracts(folder: Path, files: Iterable[str] = GENIA_FILES) -> List[List[str]]:
    """The abstracts of GENIA (``doc_id``/``sent_id``/``tokens`` JSON lines), each a list of
    its hand-split sentences in order, the title (sentence 0) left out: titles are their own
    line in our corpus and never go through the splitter."""
    documents: Dict[str, Dict[int, str]] = {}
    for name in files:
        with open(Path(folder) / name, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                number = int(record["sent_id"].rsplit("-", 1)[1])
                documents.setdefault(record["doc_id"], {})[number] = detokenize(record["tokens"])
    abstracts = []
    for sentences in documents.values():
        ordered = [sentences[i] for i in sorted(sentences)]
        if len(ordered) > 1:
            abstracts.append(ordered[1:])
    return abstracts


@dataclass
class BoundaryScores:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        gold = self.true_positives + self.false_negatives
        return self.true_positives / gold if gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _boundaries(sentences: Iterable[str]) -> set:
    """Sentence ends as counts of non-space characters before them, so that splitters that
    re-space the text are compared fairly (the end of the text is not a boundary)."""
    ends, position = set(), 0
    for sentence in sentences:
        position += len("".join(sentence.split()))
        ends.add(position)
    ends.discard(position)
    return ends


def boundary_scores(split: Callable[[str], List[str]], abstracts: Iterable[List[str]]) -> BoundaryScores:
    """Boundary precision/recall/F1 of ``split`` on gold abstracts (lists of sentences): each
    abstract's sentences are joined with one space and split again."""
    tp = fp = fn = 0
    for gold_sentences in abstracts:
        text = " ".join(gold_sentences)
        predicted = split(text)
        if "".join("".join(predicted).split()) != "".join(text.split()):
            raise ValueError(f"splitter changed the text of: {text[:80]}...")
        gold, found = _boundaries(gold_sentences), _boundaries(predicted)
        tp += len(gold & found)
        fp += len(found - gold)
        fn += len(gold - found)
    return BoundaryScores(tp, fp, fn)
