"""Entity-level micro precision / recall / F1 by exact match (BARTNER's NER metric).

An entity matches only if its type and its words (all fragments) are identical.  Within one
sentence an entity predicted twice counts once, as in BARTNER (it scores a set of tuples);
gold duplicates collapse the same way, so the measure is between sets.  Fragments that touch
are merged before comparing (they cover the same words; see ``ner_formats.normalize_spans``).
"""

from collections import Counter

from ..data.ner_formats import entity_key


class EntityCounts:
    """Running true-positive / predicted / gold counts, overall and per type."""

    def __init__(self):
        self.tp, self.pred, self.gold = Counter(), Counter(), Counter()

    def add_sentence(self, gold_entities, pred_entities):
        gold = {entity_key(e) for e in gold_entities}
        pred = {entity_key(e) for e in pred_entities}
        for t, _ in gold:
            self.gold[t] += 1
        for t, _ in pred:
            self.pred[t] += 1
        for t, _ in gold & pred:
            self.tp[t] += 1

    @staticmethod
    def prf(tp, pred, gold):
        p = tp / pred if pred else 0.0
        r = tp / gold if gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f, "tp": tp, "pred": pred, "gold": gold}

    def result(self):
        out = self.prf(sum(self.tp.values()), sum(self.pred.values()), sum(self.gold.values()))
        types = sorted(set(self.gold) | set(self.pred))
        out["per_type"] = {t: self.prf(self.tp[t], self.pred[t], self.gold[t]) for t in types}
        return out


def score(gold_sentences, pred_sentences):
    """Micro P/R/F1 (and per type) of aligned lists of canonical sentences."""
    if len(gold_sentences) != len(pred_sentences):
        raise ValueError(f"{len(gold_sentences)} gold sentences but {len(pred_sentences)} predicted")
    counts = EntityCounts()
    for g, p in zip(gold_sentences, pred_sentences):
        counts.add_sentence(g["entities"], p["entities"])
    return counts.result()
