"""NER corpora: readers and writers for the canonical JSONL and the published formats.

Canonical form (one sentence per line)::

    {"tokens": ["IL-2", "gene", ...], "entities": [{"type": "DNA", "spans": [[0, 2]]}, ...]}

``spans`` are word offsets, ``[start, end)``; several spans make a discontinuous entity and
entities may overlap or nest.  Other keys of a line (``doc_id``, ``sent_id``) are kept.

Published formats read here:

* ``dai``: the 3-line blocks of Dai et al. (2020) used by BARTNER for CADEC and ShARe13/14:
  the whitespace-tokenised sentence, then ``s,e[,s,e...] TYPE|...`` with *inclusive* word
  indices (an empty line: no entity), then a blank line.
* ``genia``: the sentence-level JSON lines of ``../shared/data/genia_nested_ner`` (yhcc's
  CNN_Nested_NER preprocessing: ``tokens`` + ``entity_mentions`` with exclusive ``end``), and
  also BARTNER's document lines ``{"sentences": [[w]], "ners": [[[s, e_incl, type]]]}``.
  Fine-grained GENIA types are folded into the 5 coarse types of Lin et al. (2019).

Every reader raises :class:`NerFormatError` naming ``file:line`` for an entity outside its
sentence, an empty or reversed span or a line it cannot parse; nothing is half-read.
Writers go through a temporary file renamed at the end, so an error never leaves half a file.
"""

import json
import os
import tempfile

GENIA_TYPES = ("DNA", "RNA", "protein", "cell_line", "cell_type")


class NerFormatError(ValueError):
    """Bad input, with the file and line it came from in the message."""


def normalize_spans(spans):
    """Sorted fragments with touching or overlapping ones merged.

    Two fragments that touch cover the same words as one fragment, and no target type can
    tell them apart; merging makes entity equality mean "same words, same type".
    """
    out = []
    for s, e in sorted((int(s), int(e)) for s, e in spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def entity_key(entity):
    """Hashable identity of an entity: (type, ((start, end), ...)) of normalised spans."""
    return entity["type"], tuple(tuple(sp) for sp in normalize_spans(entity["spans"]))


def check_sentence(sent, where):
    """Validate one canonical sentence in place (spans normalised); raise naming ``where``."""
    if not isinstance(sent, dict):
        raise NerFormatError(f"{where}: expected a JSON object, got {type(sent).__name__}")
    tokens = sent.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise NerFormatError(f"{where}: 'tokens' must be a list of strings")
    if not tokens:
        raise NerFormatError(f"{where}: empty sentence (no tokens)")
    entities = sent.get("entities", [])
    if not isinstance(entities, list):
        raise NerFormatError(f"{where}: 'entities' must be a list")
    for i, ent in enumerate(entities):
        if not isinstance(ent, dict) or not isinstance(ent.get("type"), str) or not ent["type"]:
            raise NerFormatError(f"{where}: entity {i} needs a non-empty string 'type'")
        spans = ent.get("spans")
        if not isinstance(spans, list) or not spans:
            raise NerFormatError(f"{where}: entity {i} ({ent['type']}) needs a non-empty list of spans")
        for sp in spans:
            if (not isinstance(sp, (list, tuple)) or len(sp) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in sp)):
                raise NerFormatError(f"{where}: entity {i} ({ent['type']}): span {sp!r} is not [start, end]")
            s, e = sp
            if e <= s:
                raise NerFormatError(f"{where}: entity {i} ({ent['type']}): empty span [{s}, {e})")
            if s < 0 or e > len(tokens):
                raise NerFormatError(
                    f"{where}: entity {i} ({ent['type']}): span [{s}, {e}) outside the sentence of {len(tokens)} tokens"
                )
        ent["spans"] = normalize_spans(spans)
    sent["entities"] = entities
    return sent


# ---------------------------------------------------------------------------- readers

def read_jsonl(path):
    """Canonical JSONL -> list of sentences (validated)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                sent = json.loads(line)
            except json.JSONDecodeError as e:
                raise NerFormatError(f"{path}:{n}: not valid JSON ({e.msg})") from e
            out.append(check_sentence(sent, f"{path}:{n}"))
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


def read_dai(path):
    """Dai et al. (2020) 3-line blocks -> canonical sentences."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            raise NerFormatError(f"{path}:{i + 1}: expected a sentence line, got a blank line")
        tokens = lines[i].split()
        if i + 1 >= len(lines):
            raise NerFormatError(f"{path}:{i + 1}: sentence without its entity line (file ends)")
        ann = lines[i + 1].strip()
        where = f"{path}:{i + 2}"
        entities = _dai_entities(ann, len(tokens), where) if ann else []
        if i + 2 < len(lines) and lines[i + 2].strip():
            raise NerFormatError(f"{path}:{i + 3}: expected a blank line after the entity line, got {lines[i + 2][:60]!r}")
        out.append(check_sentence({"tokens": tokens, "entities": entities}, where))
        i += 3
    return out


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


def read_genia(path, stats=None):
    """GENIA JSON lines (sentence form or BARTNER's document form) -> canonical sentences.

    ``stats`` (a dict) receives ``dropped_types``: entities whose type is not one of the 5.
    """
    stats = stats if stats is not None else {}
    stats.setdefault("dropped_types", 0)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise NerFormatError(f"{where}: not valid JSON ({e.msg})") from e
            if not isinstance(doc, dict):
                raise NerFormatError(f"{where}: expected a JSON object")
            if "tokens" in doc and "entity_mentions" in doc:
                sent = {k: v for k, v in doc.items() if k not in ("tokens", "entity_mentions")}
                sent["tokens"], sent["entities"] = doc["tokens"], []
                for m in doc["entity_mentions"]:
                    try:
                        s, e, t = m["start"], m["end"], m["entity_type"]
                    except (KeyError, TypeError):
                        raise NerFormatError(f"{where}: entity mention {m!r} lacks start/end/entity_type") from None
                    coarse = genia_coarse_type(t)
                    if coarse is None:
                        stats["dropped_types"] += 1
                        continue
                    sent["entities"].append({"type": coarse, "spans": [[s, e]]})
                out.append(check_sentence(sent, where))
            elif "sentences" in doc and "ners" in doc:
                if len(doc["sentences"]) != len(doc["ners"]):
                    raise NerFormatError(f"{where}: 'sentences' and 'ners' differ in length")
                for tokens, ners in zip(doc["sentences"], doc["ners"]):
                    ents = []
                    for item in ners:
                        if not isinstance(item, list) or len(item) != 3:
                            raise NerFormatError(f"{where}: ner {item!r} is not [start, end_inclusive, type]")
                        s, e, t = item
                        coarse = genia_coarse_type(t)
                        if coarse is None:
                            stats["dropped_types"] += 1
                            continue
                        ents.append({"type": coarse, "spans": [[s, e + 1 if isinstance(e, int) else e]]})
                    out.append(check_sentence({"tokens": tokens, "entities": ents}, where))
            else:
                raise NerFormatError(
                    f"{where}: unknown GENIA line: expected keys tokens+entity_mentions or sentences+ners, got {sorted(doc)}"
                )
    return out


READERS = {"jsonl": read_jsonl, "dai": read_dai, "genia": read_genia}


def read(path, fmt, stats=None):
    if fmt not in READERS:
        raise ValueError(f"unknown NER format {fmt!r}; choose from {sorted(READERS)}")
    if fmt == "genia":
        return read_genia(path, stats)
    return READERS[fmt](path)


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
