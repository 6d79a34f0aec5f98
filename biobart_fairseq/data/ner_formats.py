"""NER corpora: readers and writers for the canonical JSONL and the published formats.

Canonical form (one sentence per line)::

    {"tokens": ["IL-2", "gene", ...], "entities": [{"type": "DNA", "spans": [[0, 2]]}, ...]}

``spans`` are word offsets, ``[start, end)``; several spans make a discontinuous entity and
entities may overlap or nest.  Other keys of a line (``doc_id``, ``sent_id``) are kept.

Published formats read here:

* ``dai``: the 3-line blocks of Dai et al. (2020) used by BARTNER for CADEC and ShARe13/14:
  the whitespace-tokenised sentence, then ``s,e[,s,e...] TYPE|...`` with *inclusive* word
  indices (an empty line: no entity), then a blank line.
* ``genia``: the sentence-level JSON lines of GENIA as preprocessed by yhcc's
  CNN_Nested_NER (``tokens`` + ``entity_mentions`` with exclusive ``end``), and
  also BARTNER's document lines ``{"sentences": [[w]], "ners": [[[s, e_incl, type]]]}``.
  Fine-grained GENIA types are folded into the 5 coarse types of Lin et al. (2019).

Every reader raises :class:`NerFormatError` naming ``file:line`` (a line of the file, not a
sentence number) for an entity outside its sentence, an empty or reversed span, a line it
cannot parse, bytes that are not UTF-8, a ``jsonl`` record without ``entities`` and a file
with no sentence at all; nothing is half-read.  Given a list ``bad``, a reader instead skips
a bad record (a sentence, a Dai block, a GENIA line) and appends its ``file:line: reason`` to
``bad``; what makes the whole file unusable (bytes that are not UTF-8, no sentence at all)
still raises, and a file whose every record is bad gives ``[]``.  Writers go through a temporary file renamed
at the end, so an error never leaves half a file.

Fragments are kept as written, sorted by start (stable), as BARTNER's loader keeps them: its
targets point at every fragment, so merging fragments that overlap or touch would change the
targets and the ``bartner`` metric.  Readers count them in ``stats``
(``overlapping_fragments``, ``touching_fragments``: entities with at least one such pair);
``entity_key`` (the entity-level metric) compares the words covered, so there they are equal
to the merged entity.
"""

import difflib
import json
import os
import tempfile

GENIA_TYPES = ("DNA", "RNA", "protein", "cell_line", "cell_type")


class NerFormatError(ValueError):
    """Bad input, with the file and line it came from in the message."""


def normalize_spans(spans):
    """Sorted fragments with touching or overlapping ones merged: the words an entity covers."""
    out = []
    for s, e in sorted((int(s), int(e)) for s, e in spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def entity_key(entity):
    """Hashable identity of an entity for the entity-level metric: (type, covered word runs)."""
    return entity["type"], tuple(tuple(sp) for sp in normalize_spans(entity["spans"]))


def count_fragment_contacts(spans, stats):
    """Count (in ``stats``) an entity whose start-sorted fragments overlap or touch."""
    overlap = touch = False
    end = None
    for s, e in spans:
        if end is not None:
            overlap |= s < end
            touch |= s == end
        end = e if end is None else max(end, e)
    stats["overlapping_fragments"] = stats.get("overlapping_fragments", 0) + overlap
    stats["touching_fragments"] = stats.get("touching_fragments", 0) + touch


def _check_spans(spans, i, etype, n_tokens, where):
    if not isinstance(spans, list) or not spans:
        raise NerFormatError(f"{where}: entity {i} ({etype}) needs a non-empty list of spans")
    for sp in spans:
        if (not isinstance(sp, (list, tuple)) or len(sp) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in sp)):
            raise NerFormatError(f"{where}: entity {i} ({etype}): span {sp!r} is not [start, end]")
        s, e = sp
        if e <= s:
            raise NerFormatError(f"{where}: entity {i} ({etype}): empty span [{s}, {e})")
        if s < 0 or e > n_tokens:
            raise NerFormatError(
                f"{where}: entity {i} ({etype}): span [{s}, {e}) outside the sentence of {n_tokens} tokens")


def check_sentence(sent, where, stats=None):
    """Validate one canonical sentence in place (fragments sorted by start); raise naming ``where``.

    ``entities`` is required: a record without it (e.g. a misspelt key) is an error, not a
    sentence without entities.
    """
    if not isinstance(sent, dict):
        raise NerFormatError(f"{where}: expected a JSON object, got {type(sent).__name__}")
    tokens = sent.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise NerFormatError(f"{where}: 'tokens' must be a list of strings")
    if not tokens:
        raise NerFormatError(f"{where}: empty sentence (no tokens)")
    if "entities" not in sent:
        near = difflib.get_close_matches("entities", [k for k in sent if isinstance(k, str)], n=1, cutoff=0.6)
        hint = f" (found {near[0]!r}: misspelt?)" if near else ""
        raise NerFormatError(f"{where}: no 'entities' key{hint}; a sentence without entities has \"entities\": []")
    entities = sent["entities"]
    if not isinstance(entities, list):
        raise NerFormatError(f"{where}: 'entities' must be a list")
    for i, ent in enumerate(entities):
        if not isinstance(ent, dict) or not isinstance(ent.get("type"), str) or not ent["type"]:
            raise NerFormatError(f"{where}: entity {i} needs a non-empty string 'type'")
        _check_spans(ent.get("spans"), i, ent["type"], len(tokens), where)
        # BARTNER sorts the fragments by start (stable) and keeps them as they are
        ent["spans"] = sorted(([s, e] for s, e in ent["spans"]), key=lambda sp: sp[0])
        if stats is not None:
            count_fragment_contacts(ent["spans"], stats)
    return sent


def read_lines(path):
    """``(line number, text)`` of a UTF-8 file, line ends removed; bad bytes name file and line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise NerFormatError(f"{path}:{n}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                     "convert the file to UTF-8") from None
            yield n, text.rstrip("\r\n")


def _nonempty(out, path, bad=None):
    if not out and not bad:
        raise NerFormatError(f"{path}: no sentences (empty file)")
    return out


def _parsed(parse, stats, bad, *args):
    """``parse(*args, counts)``; its counts are added to ``stats`` only when it succeeds.  A
    NerFormatError is raised when ``bad`` is None, else appended to ``bad`` (-> None)."""
    counts = {}
    try:
        result = parse(*args, counts)
    except NerFormatError as e:
        if bad is None:
            raise
        bad.append(str(e))
        return None
    if stats is not None:
        for key, n in counts.items():
            stats[key] = stats.get(key, 0) + n
    return result


def _json_lines(path, parse, stats, bad):
    """``parse(object, "file:line", counts)`` -> sentences, for every non-blank line of ``path``."""
    out, numbers = [], []
    for n, line in read_lines(path):
        if line.strip():
            sents = _parsed(_parse_json_line, stats, bad, parse, line, f"{path}:{n}")
            out.extend(sents or [])
            numbers.extend([n] * len(sents or []))
    return _nonempty(out, path, bad), numbers


def _parse_json_line(parse, line, where, counts):
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise NerFormatError(f"{where}: not valid JSON ({e.msg})") from None
    return parse(obj, where, counts)


# ---------------------------------------------------------------------------- readers

def read_jsonl(path, stats=None, line_numbers=None, bad=None):
    """Canonical JSONL -> list of sentences (validated).

    ``line_numbers`` (a list) receives the file line of every sentence, for later messages.
    """
    out, numbers = _json_lines(path, lambda obj, where, counts: [check_sentence(obj, where, counts)], stats, bad)
    if line_numbers is not None:
        line_numbers.extend(numbers)
    return out


def _dai_entities(text, n_tokens, where):
    entities = []
    for item in text.split("|"):
        parts = item.strip().split()
        if len(parts) != 2:
            raise NerFormatError(f"{where}: entity {item!r} is not 'start,end[,start,end...] TYPE'")
        offsets, etype = parts
        try:
            nums = [int(x) for x in offsets.split(",")]
        except ValueError:
            raise NerFormatError(f"{where}: entity {item!r}: offsets must be integers") from None
        if len(nums) % 2:
            raise NerFormatError(f"{where}: entity {item!r}: an odd number of offsets")
        spans = []
        for s, e in zip(nums[::2], nums[1::2]):
            if e < s:  # inclusive ends: e == s is a one-word span, e < s is empty
                raise NerFormatError(f"{where}: entity {item!r}: empty span {s},{e}")
            if s < 0 or e >= n_tokens:
                raise NerFormatError(
                    f"{where}: entity {item!r}: span {s},{e} outside the sentence of {n_tokens} tokens"
                )
            spans.append([s, e + 1])
        entities.append({"type": etype, "spans": spans})
    return entities


def dai_tokens(line, where):
    """The words of a Dai sentence line, split on single spaces as BARTNER's loader does.

    BARTNER reads ``line.strip().split(' ')``: a double space makes an empty word and a tab
    does not separate words, so its offsets and a split on any whitespace name different
    words.  Such lines are refused rather than guessed at.
    """
    text = line.strip()
    tokens = text.split(" ")
    if tokens != text.split():
        lead = len(line) - len(line.lstrip())
        col = lead + next(i for i, c in enumerate(text) if (c.isspace() and c != " ") or text[i:i + 2] == "  ")
        raise NerFormatError(f"{where}: irregular whitespace at column {col + 1} ({line[col:col + 2]!r}): Dai-format "
                             "words are separated by single spaces (BARTNER splits on ' '); fix the line")
    return tokens


def read_dai(path, stats=None, bad=None):
    """Dai et al. (2020) 3-line blocks -> canonical sentences."""
    lines = [text for _, text in read_lines(path)]
    while lines and lines[-1] == "":
        lines.pop()  # the final newline(s)
    out, i = [], 0
    while i < len(lines):
        sent = _parsed(_dai_block, stats, bad, lines, i, path)
        if sent is not None:
            out.append(sent)
            i += 3
        else:
            i = _next_dai_block(lines, i)
    return _nonempty(out, path, bad)


def _dai_block(lines, i, path, counts):
    """The sentence of the block at line index ``i``: sentence, entity line, blank line."""
    if not lines[i].strip():
        raise NerFormatError(f"{path}:{i + 1}: expected a sentence line, got a blank line")
    tokens = dai_tokens(lines[i], f"{path}:{i + 1}")
    if i + 1 >= len(lines):
        raise NerFormatError(f"{path}:{i + 1}: sentence without its entity line (file ends)")
    ann = lines[i + 1].strip()
    where = f"{path}:{i + 2}"
    entities = _dai_entities(ann, len(tokens), where) if ann else []
    if i + 2 < len(lines) and lines[i + 2].strip():
        raise NerFormatError(f"{path}:{i + 3}: expected a blank line after the entity line, got {lines[i + 2][:60]!r}")
    return check_sentence({"tokens": tokens, "entities": entities}, where, counts)


def _next_dai_block(lines, i):
    """Where reading goes on after a bad block at ``i``: past stray blank lines; after a block
    whose layout is right, the next block; else after the next blank line (an entity line may
    be blank, so a broken block can only be skipped up to where a blank line must end it)."""
    if not lines[i].strip():
        while i < len(lines) and not lines[i].strip():
            i += 1
        return i
    if i + 2 >= len(lines) or not lines[i + 2].strip():
        return i + 3
    j = i + 2
    while j < len(lines) and lines[j].strip():
        j += 1
    return j + 1


def genia_coarse_type(fine):
    """Lin et al. (2019)'s 5 GENIA types from a (possibly fine-grained) GENIA label, or None.

    ``G#DNA_domain_or_region`` -> ``DNA``, ``G#protein_complex`` -> ``protein``, ``cell_line``
    and ``cell_type`` are kept, every other label (``G#lipid``, ``G#virus``, ...) is dropped.
    """
    t = fine[2:] if fine.startswith("G#") else fine
    if t in GENIA_TYPES:
        return t
    for coarse in ("DNA", "RNA", "protein"):
        if t.startswith(coarse + "_"):
            return coarse
    return None


def _genia_sentence_form(doc, where, stats):
    sent = {k: v for k, v in doc.items() if k not in ("tokens", "entity_mentions")}
    sent["tokens"], sent["entities"] = doc["tokens"], []
    for m in doc["entity_mentions"]:
        try:
            s, e, t = m["start"], m["end"], m["entity_type"]
        except (KeyError, TypeError):
            raise NerFormatError(f"{where}: entity mention {m!r} lacks start/end/entity_type") from None
        coarse = genia_coarse_type(t)
        if coarse is None:
            stats["dropped_types"] = stats.get("dropped_types", 0) + 1
            continue
        sent["entities"].append({"type": coarse, "spans": [[s, e]]})
    return [check_sentence(sent, where, stats)]


def _genia_document_form(doc, where, stats):
    if len(doc["sentences"]) != len(doc["ners"]):
        raise NerFormatError(f"{where}: 'sentences' and 'ners' differ in length")
    out = []
    for tokens, ners in zip(doc["sentences"], doc["ners"]):
        ents = []
        for item in ners:
            if not isinstance(item, list) or len(item) != 3:
                raise NerFormatError(f"{where}: ner {item!r} is not [start, end_inclusive, type]")
            s, e, t = item
            coarse = genia_coarse_type(t)
            if coarse is None:
                stats["dropped_types"] = stats.get("dropped_types", 0) + 1
                continue
            ents.append({"type": coarse, "spans": [[s, e + 1 if isinstance(e, int) else e]]})
        out.append(check_sentence({"tokens": tokens, "entities": ents}, where, stats))
    return out


def read_genia(path, stats=None, bad=None):
    """GENIA JSON lines (sentence form or BARTNER's document form) -> canonical sentences.

    ``stats`` (a dict) receives ``dropped_types``: entities whose type is not one of the 5.
    """
    stats = stats if stats is not None else {}
    stats.setdefault("dropped_types", 0)
    return _json_lines(path, _genia_line, stats, bad)[0]


def _genia_line(doc, where, counts):
    if not isinstance(doc, dict):
        raise NerFormatError(f"{where}: expected a JSON object")
    if "tokens" in doc and "entity_mentions" in doc:
        return _genia_sentence_form(doc, where, counts)
    if "sentences" in doc and "ners" in doc:
        return _genia_document_form(doc, where, counts)
    raise NerFormatError(
        f"{where}: unknown GENIA line: expected keys tokens+entity_mentions or sentences+ners, got {sorted(doc)}")


READERS = {"jsonl": read_jsonl, "dai": read_dai, "genia": read_genia}


def read(path, fmt, stats=None, bad=None):
    if fmt not in READERS:
        raise ValueError(f"unknown NER format {fmt!r}; choose from {sorted(READERS)}")
    return READERS[fmt](path, stats, bad=bad)


# ---------------------------------------------------------------------------- writers

def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def format_jsonl(sentences):
    return "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sentences)


def format_dai(sentences):
    blocks = []
    for i, s in enumerate(sentences):
        for t in s["tokens"]:
            if not t or any(c.isspace() for c in t):
                raise NerFormatError(f"sentence {i}: token {t!r} cannot be written in the whitespace-tokenised dai format")
        items = []
        for ent in s["entities"]:
            offs = ",".join(f"{a},{b - 1}" for a, b in ent["spans"])
            items.append(f"{offs} {ent['type']}")
        blocks.append(" ".join(s["tokens"]) + "\n" + "|".join(items) + "\n\n")
    return "".join(blocks)


def format_genia(sentences):
    lines = []
    for i, s in enumerate(sentences):
        mentions = []
        for ent in s["entities"]:
            if len(ent["spans"]) != 1:
                raise NerFormatError(f"sentence {i}: a discontinuous entity cannot be written in the GENIA format")
            a, b = ent["spans"][0]
            mentions.append({"start": a, "end": b, "entity_type": ent["type"], "text": " ".join(s["tokens"][a:b])})
        extra = {k: v for k, v in s.items() if k not in ("tokens", "entities")}
        lines.append(json.dumps({"tokens": s["tokens"], **extra, "entity_mentions": mentions}, ensure_ascii=False) + "\n")
    return "".join(lines)


def write(path, sentences, fmt="jsonl"):
    text = {"jsonl": format_jsonl, "dai": format_dai, "genia": format_genia}[fmt](sentences)
    atomic_write_text(path, text)


# ---------------------------------------------------------------------------- raw text -> words

# How the NER corpora tokenise words, so that raw text can be given to a model trained on them
# (biobart-tag).  GENIA (and Dai et al.'s CADEC / ShARe) separate punctuation from the words it
# follows or precedes but keep it inside words: "(TRs)," -> "(" "TRs" ")" ",", while
# "Ca(2+)", "[3H]thymidine", "t(14;14)", "i.e.", "S." stay whole; a sentence's final "." is
# a word; "'s" is a word.  The rules below are measured on GENIA's own sentences (text rebuilt by
# sentences.detokenize, then split again: see docs/ner.md and tests/test_tag.py).

_ALWAYS_OFF_END = frozenset(',;:?!"%')  # split off a word's end whenever it has more
_BRACKETS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _BRACKETS.items()}


def _encloses(text, s, e):
    """Whether the bracket at ``text[s]`` closes at ``e - 1`` or nowhere before ``e``."""
    opener, closer, depth = text[s], _BRACKETS[text[s]], 0
    for i in range(s, e):
        depth += (text[i] == opener) - (text[i] == closer)
        if depth == 0:
            return i == e - 1
    return True


def _chunk_words(text, s, e, sentence_end):
    """Word spans of one whitespace-free chunk ``text[s:e]``."""
    lead, trail = [], []
    while e - s > 1:
        c, z = text[s], text[e - 1]
        if c == '"' or (c in _BRACKETS and _encloses(text, s, e)):
            lead.append((s, s + 1))
            s += 1
        elif z in _ALWAYS_OFF_END or (z == "." and e == sentence_end):
            trail.append((e - 1, e))
            e -= 1
        elif z in _CLOSERS and text.count(z, s, e) > text.count(_CLOSERS[z], s, e):
            trail.append((e - 1, e))
            e -= 1
        elif e - s > 2 and text[e - 2:e] in ("'s", "’s"):
            trail.append((e - 2, e))
            e -= 2
        else:
            break
    return lead + [(s, e)] + trail[::-1]


def text_words(text):
    """``[(start, end)]`` character spans of the words of one sentence, tokenised as the NER
    corpora are (see above); whitespace never belongs to a word."""
    import re

    chunks = [m.span() for m in re.finditer(r"\S+", text)]
    end = chunks[-1][1] if chunks else 0
    return [w for s, e in chunks for w in _chunk_words(text, s, e, end)]
