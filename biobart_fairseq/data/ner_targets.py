"""BARTNER targets (Yan et al., 2021): entities <-> sequences of pointer and type indices.

The source is ``<s>`` + the BPE of every word + ``</s>``; source position ``j`` is the j-th
token of that sequence (``<s>`` is position 0).  The target index space is

    0 = sos, 1 = eos, 2 .. C+1 = entity types, C+2+j = pointer to source position j

and a target is, per entity (in BARTNER's order: first start, then last end, stable), its
pointers then its type, and eos at the end.  The three target types differ only in the pointers of an entity:

* ``word``: the first BPE of every word of the entity (fragments concatenated; the paper's
  setting);
* ``span``: first BPE of the first word and last BPE of the last word of every fragment;
* ``bpe``: every BPE of every word of the entity.

:func:`decode_target` maps a sequence to entities for the *entity-level* metric and for
prediction files: scan up to eos, a type after >= 1 pointer closes a tuple kept when its
pointers increase (``span``: non-decreasing and an even number); positions are mapped back to
words, so a pointer on a non-initial BPE counts as its word and fragments that touch become
one.  That is more lenient than BARTNER's own counting, which compares the index tuples
themselves: see :mod:`biobart_fairseq.metrics.bartner_f1`.
"""

SOS, EOS = 0, 1
TARGET_TYPES = ("word", "span", "bpe")


class WordPositions:
    """Where each word's BPE lie in the source: word k covers ``first[k] .. last[k]``."""

    def __init__(self, bpe_lens):
        if any(n < 1 for n in bpe_lens):
            raise ValueError("every word needs at least one BPE token")
        self.first, self.last, self.word_of = [], [], {}
        pos = 1  # position 0 is <s>
        for k, n in enumerate(bpe_lens):
            self.first.append(pos)
            self.last.append(pos + n - 1)
            for p in range(pos, pos + n):
                self.word_of[p] = k
            pos += n
        self.src_len = pos + 1  # + </s>


def entity_pointers(entity, wp, target_type):
    """Source positions an entity's target points at."""
    ptrs = []
    for s, e in entity["spans"]:
        if target_type == "word":
            ptrs.extend(wp.first[k] for k in range(s, e))
        elif target_type == "span":
            ptrs.extend((wp.first[s], wp.last[e - 1]))
        elif target_type == "bpe":
            for k in range(s, e):
                ptrs.extend(range(wp.first[k], wp.last[k] + 1))
        else:
            raise ValueError(f"unknown target type {target_type!r}; choose from {TARGET_TYPES}")
    return ptrs


def bartner_order(entities):
    """Entities in BARTNER's target order: by first start, then by the end of the last
    fragment (fragments sorted by start), stable, so ties keep the file order."""
    return sorted(entities, key=lambda e: (e["spans"][0][0], e["spans"][-1][1]))


def encode_entities(entities, wp, type_index, target_type):
    """Target indices (without sos, ending with eos) of a sentence's entities.

    ``type_index`` maps a type name to 0..C-1.  As BARTNER's ``data/pipe.py``: entities in
    :func:`bartner_order`, fragments as given (sorted by start), and an entity listed twice
    is emitted twice.
    """
    n_types = len(type_index)
    target = []
    for ent in bartner_order(entities):
        target.extend(p + n_types + 2 for p in entity_pointers(ent, wp, target_type))
        target.append(type_index[ent["type"]] + 2)
    target.append(EOS)
    return target


def split_tuples(seq, n_types, target_type):
    """BARTNER's scan: ``[(pointer positions, type 0..C-1)]`` of the well-formed tuples."""
    out, cur = [], []
    for idx in seq:
        idx = int(idx)
        if idx == EOS:
            break
        if idx >= n_types + 2:
            cur.append(idx - n_types - 2)
            continue
        # sos or a type closes the tuple; only a type after >= 1 pointer makes an entity
        ok = bool(cur) and idx >= 2
        if ok and target_type == "span":
            ok = len(cur) % 2 == 0 and all(a <= b for a, b in zip(cur, cur[1:]))
        elif ok:
            ok = all(a < b for a, b in zip(cur, cur[1:]))
        if ok:
            out.append((tuple(cur), idx - 2))
        cur = []
    return out


def _runs(words):
    spans = []
    for k in sorted(set(words)):
        if spans and k == spans[-1][1]:
            spans[-1][1] = k + 1
        else:
            spans.append([k, k + 1])
    return spans


def tuple_to_entity(ptrs, type_name, wp, target_type):
    """One decoded tuple -> canonical entity, or None if a pointer is outside the words."""
    if any(p not in wp.word_of for p in ptrs):
        return None
    words = [wp.word_of[p] for p in ptrs]
    if target_type == "span":
        covered = []
        for a, b in zip(words[::2], words[1::2]):
            covered.extend(range(a, b + 1))
        words = covered
    return {"type": type_name, "spans": _runs(words)}


def decode_target(seq, wp, types, target_type):
    """Index sequence (after sos) -> list of canonical entities, duplicates removed."""
    seen, out = set(), []
    for ptrs, t in split_tuples(seq, len(types), target_type):
        if t >= len(types):
            continue
        ent = tuple_to_entity(ptrs, types[t], wp, target_type)
        if ent is None:
            continue
        key = (ent["type"], tuple(map(tuple, ent["spans"])))
        if key not in seen:
            seen.add(key)
            out.append(ent)
    return out
