"""Offline abbreviation definitions: the Schwartz & Hearst (2003) algorithm.

BioSyn and GenBioEL expand abbreviations with Ab3P (Sohn et al. 2008), a C++ program with
large binary word tables that is not on PyPI.  This is our own implementation of the simpler,
published Schwartz & Hearst algorithm ("A simple algorithm for identifying abbreviation
definitions in biomedical text", PSB 2003), which Ab3P extends with more strategies:

1. candidates are ``long form (SF)`` and, when the parenthesis holds more than two words or
   more characters than the text before it, ``SF (long form)``;
2. a short form has 2–10 characters, at most two words, a letter, and starts with a letter
   or digit (and in the ``SF (long form)`` case has a capital);
3. the long form is searched among the words before ``(`` in the same clause (not across
   ``. `` or ``, ``), at most ``min(|SF| + 5, 2·|SF|)`` words: every letter/digit of the
   short form must occur in it, right to left and in order, the first one at the start
   of a word; the shortest such tail of the candidate is the long form.

``find_abbreviations(text)`` -> ``{short form: long form}`` (the first definition of a
short form in the text wins).  What it misses compared with Ab3P: definitions whose short
form letters are not in the long form in order (``5-FU (fluorouracil)``), and Ab3P's
precision-scored alternatives; see docs/entity_linking.md for the measured agreement.
"""

from __future__ import annotations

import bisect
import re
from typing import Dict, Optional

_CLAUSE_END = re.compile(r"[.,;:]\s|\n")


def _is_valid_short_form(sf: str) -> bool:
    return (2 <= len(sf) <= 10 and any(c.isalpha() for c in sf)
            and (sf[0].isalnum() or sf[0] == "(") and len(sf.split()) <= 2)


def best_long_form(sf: str, candidate: str) -> Optional[str]:
    """The shortest tail of ``candidate`` (starting at a word) that contains the letters and
    digits of ``sf`` right to left, in order, the first one at the start of a word; None
    when there is none."""
    li = len(candidate) - 1
    for si in range(len(sf) - 1, -1, -1):
        c = sf[si].lower()
        if not c.isalnum():
            continue
        # the first short-form character must begin a word of the long form
        while li >= 0 and (candidate[li].lower() != c or (si == 0 and li > 0 and candidate[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return None
        li -= 1
    start = candidate.rfind(" ", 0, li + 1) + 1
    return candidate[start:]


def _accept(sf: str, lf: str) -> bool:
    n_sf = sum(c.isalnum() for c in sf)
    n_lf = len(re.split(r"[\s\-]+", lf.strip()))
    return not (len(lf) < len(sf) or (sf + " ") in lf or lf.endswith(sf)
                or n_lf > 2 * n_sf or n_lf > n_sf + 5 or n_sf > 10)


def _close_paren(text: str, open_i: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``open_i`` (nested pairs skipped), or -1."""
    depth = 0
    for i in range(open_i, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _clause_start(bounds, end: int) -> int:
    """Start of the clause that ends at ``end``: the last clause boundary (end of ``. ``,
    ``, ``, ``; ``, ``: ``, a newline) at or before it; ``bounds`` sorted."""
    i = bisect.bisect_right(bounds, end)
    return bounds[i - 1] if i else 0


def find_pairs(text: str):
    """Yield ``(short form, long form)`` definitions in text order."""
    bounds = [m.end() for m in _CLAUSE_END.finditer(text)]
    i = text.find(" (")
    while i >= 0:
        open_i = i + 1
        close_i = _close_paren(text, open_i)
        if close_i < 0:
            return
        inner = text[open_i + 1: close_i].strip()
        inner = re.split(r"[;,] ", inner, maxsplit=1)[0]  # "(SF, p < 0.05)" -> "SF"
        before = text[_clause_start(bounds, open_i): open_i].strip()
        sf, lf = inner, before
        if sf and lf:
            if len(sf.split()) > 2 or len(sf) > len(lf):
                # "SF (long form)": the short form is the word before the parenthesis
                words = before.split()
                sf, lf = (words[-1] if words else ""), inner
                if not any(c.isupper() for c in sf):
                    sf = ""
            if sf and _is_valid_short_form(sf):
                best = best_long_form(sf, lf)  # too many words for the short form: _accept says no
                if best and _accept(sf, best):
                    yield sf, best.strip()
        i = text.find(" (", close_i + 1)


def find_abbreviations(text: str) -> Dict[str, str]:
    """``{short form: long form}`` defined in ``text``; the first definition wins."""
    out: Dict[str, str] = {}
    for sf, lf in find_pairs(text):
        out.setdefault(sf, lf)
    return out


def expand_tokens(mention: str, abbr: Dict[str, str], max_rounds: int = 5) -> str:
    """BioSyn's use of the definitions in a mention: every whitespace token that is a short
    form (also each side of a ``/`` and a token with a trailing ``,``) is replaced by its long
    form, repeated until nothing changes (at most ``max_rounds`` times: a long form that
    contains its own short form would otherwise grow for ever)."""
    cur = mention
    for _ in range(max_rounds):
        toks = []
        for tok in cur.split():
            if "/" in tok:
                tok = "/".join(abbr.get(t.strip(), t.strip()) for t in tok.split("/"))
            if tok.endswith(","):
                tok = abbr.get(tok.replace(",", ""), tok.replace(",", "")) + ","
            else:
                tok = abbr.get(tok, tok)
            toks.append(tok)
        new = " ".join(toks)
        if new == cur:
            break
        cur = new
    return cur
