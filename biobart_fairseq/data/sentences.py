"""Sentence splitting for biomedical abstracts.

Which splitter, and why
-----------------------
We wrap `pysbd <https://github.com/nipunsadvilkar/pySBD>`_ (rule-based "Golden Rules" segmenter).
It runs offline, needs no model download, and is deterministic, which matters because the
pretraining corpus must be reproducible and the preparation step runs on clusters without
network access.  The usual alternatives need downloaded models: scispaCy
(``en_core_sci_sm``) and NLTK's punkt tokenizer (``nltk.download("punkt")``).  pysbd already
handles most of what abstracts need: "e.g.", "i.e.", "et al.", "Fig. 2", "vs.",
decimals ("p < 0.05", "2.5 mg"), and genus abbreviations followed by a species ("E. coli").

Biomedical fixes on top of pysbd
--------------------------------
Running pysbd over the real PubMed exports in ``../shared/data/pubmed_xml`` showed the
following mistakes.  :func:`split_sentences` repairs them after pysbd has segmented:

* **Splits after abbreviations that cannot end a sentence**: "ca. 350 degrees C",
  "(cf. -530 mV ...)", "approx. 3 times", and the HGVS protein prefix in
  "c.2207_2212delinsTAGATTC; p.(Tyr736Leufs*5)".  Such a piece is glued back onto the next one.
  Abbreviations that *can* end a sentence (routes "i.v.", "i.p.", "s.c."; "spp."; single-letter
  genus initials "E.", "S.") are glued only when the next piece clearly continues the sentence
  (it starts with a lower-case letter, a digit, a bracket or a sign).
* **List items split off**: pysbd treats "1) a hereditary factor, 2) Epstein-Barr virus" as
  separate list items.  In running abstract text a piece that does not end in sentence-final
  punctuation is never a complete sentence, so it is glued to the next piece.
* **Stray punctuation**: a piece that is only punctuation (e.g. the "." after a "。") joins the
  previous sentence.
* **Missed split after temperatures**: pysbd reads the "C." of "at 37 degrees C. The ..." as an
  initial and does not split; we split after "degrees C." / "°C." (and F, K) when a capitalised
  word follows.

Whitespace is normalised (runs of whitespace become one space) and every returned sentence is
stripped and non-empty, so each can be written as one line of a fairseq document.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import List

import pysbd

__all__ = ["split_sentences"]

# Abbreviations that do not end a sentence, compared lower-case with leading brackets removed.
# A piece ending in one of these is always glued to the next piece.
_NEVER_FINAL = frozenset(
    """
    approx. ca. cf. e.g. i.e. viz. vs. fig. figs. eq. eqs. ref. refs. nos. incl. resp.
    """.split()
)

# Abbreviations that may end a sentence ("... given i.v."), glued only when the next piece
# looks like a continuation (see _CONTINUATION_START).  "p." is the HGVS protein prefix or a
# page number; "no." ends a sentence only in the rare answer "No.".
_MAYBE_FINAL = frozenset(
    """
    i.v. i.p. i.m. i.c.v. s.c. p.o. b.i.d. t.i.d. q.i.d. q.d. sp. spp. subsp. ssp. var.
    no. p. pp. al.
    """.split()
)

# A lone capital letter with a period ("E." in "E. coli"), or a dotted abbreviation ("a.m.").
_INITIAL_OR_DOTTED = re.compile(r"^(?:[A-Z]|(?:[A-Za-z]\.){1,3}[A-Za-z])\.$")

# How the next piece starts when it continues the current sentence.
_CONTINUATION_START = re.compile(r"^[a-z0-9(\[\-+±<>=%,;:/]")

# Sentence-final punctuation, optionally followed by closing quotes/brackets.
_FINAL_PUNCT = re.compile(r"""[.!?。！？…]["'”’)\]]*$""")

# A piece made of punctuation only.
_ONLY_PUNCT = re.compile(r"""^[\W_]+$""")

# "37 degrees C. The" / "37 °C. The" / "300 K. The": split after the unit when a capitalised
# word follows.  pysbd treats the "C." as a name initial.
_TEMPERATURE_END = re.compile(r"(?:\bdegrees ?|[°º] ?)[CFK]\.(?= [A-Z])|(?<=\d) K\.(?= [A-Z])")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    # clean=False keeps the text unchanged (clean=True rewrites it); one instance per process.
    return pysbd.Segmenter(language="en", clean=False)


def _last_token(piece: str) -> str:
    """The last whitespace-separated token, lower-cased, without opening brackets."""
    token = piece.rsplit(None, 1)[-1] if piece else ""
    return token.lstrip("([{\"'").lower()


def _should_glue(piece: str, following: str) -> bool:
    """Whether the stripped pieces ``piece`` and ``following`` are one sentence split by mistake."""
    if not _FINAL_PUNCT.search(piece):
        return True  # list items, colons, missing punctuation: not a complete sentence
    if _ONLY_PUNCT.match(following):
        return True
    last = piece.rsplit(None, 1)[-1].lstrip("([{\"'")
    if last.lower() in _NEVER_FINAL:
        return True
    if _CONTINUATION_START.match(following):
        # "given i.v. (2 mg/kg)", "E. coli", "p.(Tyr736Leufs*5)"
        return last.lower() in _MAYBE_FINAL or bool(_INITIAL_OR_DOTTED.match(last))
    return False


def _split_temperatures(segment: str) -> List[str]:
    pieces, start = [], 0
    for match in _TEMPERATURE_END.finditer(segment):
        pieces.append(segment[start : match.end()])
        start = match.end()
    pieces.append(segment[start:])
    return pieces


def split_sentences(text: str) -> List[str]:
    """Split ``text`` into sentences (see the module docstring for the rules).

    Returns stripped, non-empty sentences with whitespace normalised to single spaces; an
    empty or blank ``text`` gives an empty list.
    """
    text = " ".join(text.split())
    if not text:
        return []
    # With clean=False pysbd's segments concatenate back to ``text`` exactly, so gluing pieces
    # by plain concatenation restores the original spacing (no space is invented or lost).
    sentences: List[str] = []
    for segment in _segmenter().segment(text):
        for piece in _split_temperatures(segment):
            if not piece.strip():
                if sentences:
                    sentences[-1] += piece
                continue
            if sentences and _should_glue(sentences[-1].strip(), piece.strip()):
                sentences[-1] += piece
            else:
                sentences.append(piece)
    return [sentence.strip() for sentence in sentences]
