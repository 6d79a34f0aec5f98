"""BARTNER's own NER counting (``model/metrics.py`` of yhcc/BARTNER), on index sequences.

BARTNER scores a predicted index sequence (see :mod:`biobart_fairseq.data.ner_targets` for
the index space) against the gold target's tuples *in index space*:

1. the prediction is read up to its first eos; a row without eos loses its last index (BARTNER
   measures a row's length from its eos, and a row without one is the longest of its batch);
2. every index below C+2 (sos or a type) closes the pointers read since the last close; the
   tuple ``(pointers..., closing index)`` is kept if it has >= 1 pointer and the pointers
   strictly increase (``span``: non-decreasing and an even number).  Pointers left open at
   eos are dropped; a tuple closed by sos is kept with "type" 0 and can never be right;
3. gold tuples are the target's ``(pointers..., type)`` groups; predicted and gold tuples are
   compared as sets per sentence: tp = |P & G|, fp = |P - G|, fn = |G - P|.

So, unlike the entity-level metric (``entity_f1``), a pointer on a non-initial BPE of a word,
two touching fragments written as two, an overlapping pair that covers the right words, or the
same words reached through other pointers are all wrong, exactly as BARTNER counts them.
"""

from collections import Counter

from ..data.ner_targets import EOS

SOS_TYPE = "<sos>"  # per-type name of tuples closed by sos (only unconstrained output has them)


def predicted_tuples(seq, n_types, target_type):
    """BARTNER's tuples of one predicted sequence (indices after sos)."""
    seq = [int(i) for i in seq]
    body = seq[: seq.index(EOS)] if EOS in seq else seq[:-1]
    start = n_types + 2
    tuples, cur = [], []
    for j in body:
        if j >= start:
            cur.append(j)
            continue
        if target_type == "span":
            ok = len(cur) > 0 and len(cur) % 2 == 0 and all(a <= b for a, b in zip(cur, cur[1:]))
        else:
            ok = len(cur) > 0 and all(a < b for a, b in zip(cur, cur[1:]))
        if ok:
            tuples.append(tuple(cur + [j]))
        cur = []
    return tuples


def gold_tuples(target, n_types):
    """The ``(pointers..., type)`` groups of an encoded target (BARTNER's ``target_span``)."""
    tuples, cur = [], []
    for j in target:
        j = int(j)
        if j == EOS:
            break
        cur.append(j)
        if j < n_types + 2:
            tuples.append(tuple(cur))
            cur = []
    return tuples


class BartnerCounts:
    """Running tp / fp / fn over sentences, overall and per type, as BARTNER counts them."""

    def __init__(self, types):
        self.types = list(types)
        self.tp, self.pred, self.gold = Counter(), Counter(), Counter()
        self.truncated = 0

    def _type(self, tup):
        t = tup[-1] - 2
        return self.types[t] if 0 <= t < len(self.types) else SOS_TYPE

    def add_sentence(self, gold, pred, missed_gold=0):
        """``gold``/``pred``: tuples of one sentence.  ``missed_gold``: gold entities that have
        no tuple (cut by ``--max-source-positions``), counted as false negatives."""
        gold, pred = set(gold), set(pred)
        for tup in gold:
            self.gold[self._type(tup)] += 1
        for tup in pred:
            self.pred[self._type(tup)] += 1
        for tup in gold & pred:
            self.tp[self._type(tup)] += 1
        self.truncated += missed_gold

    def totals(self):
        """(tp, predicted, gold) over all sentences."""
        return sum(self.tp.values()), sum(self.pred.values()), sum(self.gold.values()) + self.truncated

    def result(self):
        from .entity_f1 import EntityCounts

        out = EntityCounts.prf(*self.totals())
        out["fp"], out["fn"] = out["pred"] - out["tp"], out["gold"] - out["tp"]
        out["truncated_gold"] = self.truncated
        names = sorted(set(self.gold) | set(self.pred))
        out["per_type"] = {t: EntityCounts.prf(self.tp[t], self.pred[t], self.gold[t]) for t in names}
        return out
