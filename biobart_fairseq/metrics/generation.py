"""ROUGE / BLEU / BERTScore for generated text, computed with the libraries the paper's
authors used (no re-implementation):

* ROUGE-1/2/L/Lsum: ``rouge-score`` with the Porter stemmer, F-measure averaged over examples,
  x 100.  For ROUGE-Lsum each text is split into sentences first
  (:func:`biobart_fairseq.data.sentences.split_sentences`) and the sentences joined with
  newlines, which is what ``rougeLsum`` splits on.
* BLEU: corpus BLEU from ``sacrebleu`` (its default 13a tokenisation).
* BERTScore: F1 from ``bert-score`` averaged over examples, no baseline rescaling (the paper's
  values are ~0.85-0.93); ``roberta-large`` by default, or any local model folder for offline use.
"""

import json
import os
from typing import Dict, List, Optional

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _lsum_text(text: str) -> str:
    from ..data.sentences import split_sentences

    sentences = []
    for line in text.split("\n"):
        if line.strip():
            sentences.extend(split_sentences(line))
    return "\n".join(sentences)


def rouge(hyps: List[str], refs: List[str]) -> Dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for h, r in zip(hyps, refs):
        s = scorer.score(r, h)  # rouge-score takes (target, prediction)
        for k in ("rouge1", "rouge2", "rougeL"):
            totals[k] += s[k].fmeasure
        totals["rougeLsum"] += scorer.score(_lsum_text(r), _lsum_text(h))["rougeLsum"].fmeasure
    return {k: 100.0 * v / len(hyps) for k, v in totals.items()}


def bleu(hyps: List[str], refs: List[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(hyps, [refs]).score


def _local_num_layers(model_dir: str) -> Optional[int]:
    cfg = os.path.join(model_dir, "config.json")
    if os.path.isfile(cfg):
        with open(cfg) as f:
            return json.load(f).get("num_hidden_layers")
    return None


def bertscore(hyps: List[str], refs: List[str], model: str = "roberta-large", num_layers: Optional[int] = None,
              batch_size: int = 32, device: Optional[str] = None) -> float:
    """Mean BERTScore F1.  ``model`` is a hub name (bert-score picks its layer) or a local folder
    (then the layer defaults to the model's last one, read from its config.json)."""
    import bert_score

    if os.path.isdir(model):
        model = os.path.abspath(model)
        if num_layers is None:
            num_layers = _local_num_layers(model)
            if num_layers is None:
                raise ValueError(f"{model}: no config.json with num_hidden_layers; pass num_layers")
    _, _, f1 = bert_score.score(hyps, refs, model_type=model, num_layers=num_layers, lang="en",
                                batch_size=batch_size, device=device, verbose=False)
    return float(f1.mean())


def score_all(hyps: List[str], refs: List[str], bertscore_model: Optional[str] = "roberta-large",
              num_layers: Optional[int] = None, device: Optional[str] = None) -> Dict[str, float]:
    """Every metric in one dict; BERTScore is left out when ``bertscore_model`` is None."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("nothing to score")
    out = rouge(hyps, refs)
    out["bleu"] = bleu(hyps, refs)
    if bertscore_model:
        out["bertscore_f1"] = bertscore(hyps, refs, bertscore_model, num_layers, device=device)
    out["n"] = len(hyps)
    return out
