"""Recall@k for entity linking by concept id (GenBioEL's metric, made explicit).

A mention is a hit at k when one of its gold CUIs (a composite mention has several: any
counts) is among the CUIs of the names ranked 1..k.  A predicted name maps to every CUI
it names (usually one).  As in GenBioEL the ranking is over names, not deduplicated CUIs:
R@5 looks at the top 5 *names*.  Recall = hits / number of mentions; a mention with no
prediction counts as a miss, never as skipped.
"""

from typing import Dict, Iterable, List, Sequence


def recall_at_k(
    ranked_cuis: Sequence[Sequence[Iterable[str]]],
    gold_cuis: Sequence[Iterable[str]],
    ks: Sequence[int] = (1, 5),
) -> Dict[str, float]:
    """``ranked_cuis[i][j]``: CUIs of the j-th ranked name for mention i; ``gold_cuis[i]``:
    its gold CUIs. Returns ``{"R@1": ..., "R@5": ..., "n": mentions}``."""
    if len(ranked_cuis) != len(gold_cuis):
        raise ValueError(f"{len(ranked_cuis)} predictions for {len(gold_cuis)} mentions")
    hits = {k: 0 for k in ks}
    for ranked, gold in zip(ranked_cuis, gold_cuis):
        gold = set(gold)
        first = None  # rank (1-based) of the first name hitting a gold CUI
        for j, cuis in enumerate(ranked, 1):
            if gold.intersection(cuis):
                first = j
                break
        for k in ks:
            if first is not None and first <= k:
                hits[k] += 1
    n = len(gold_cuis)
    out = {f"R@{k}": (hits[k] / n if n else 0.0) for k in ks}
    out["n"] = n
    return out


def average_folds(results: List[Dict[str, float]]) -> Dict[str, float]:
    """Unweighted mean over folds (AskAPatient's 10 folds are reported this way)."""
    if not results:
        raise ValueError("no fold results to average")
    keys = [k for k in results[0] if k.startswith("R@")]
    out = {k: sum(r[k] for r in results) / len(results) for k in keys}
    out["folds"] = len(results)
    out["n"] = sum(r["n"] for r in results)
    return out
