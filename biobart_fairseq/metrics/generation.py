"""ROUGE / BLEU / BERTScore for generated text, computed with the libraries the paper's
authors used (no re-implementation):

* ROUGE-1/2/L/Lsum: ``rouge-score`` with the Porter stemmer, F-measure averaged over examples,
  x 100.  For ROUGE-Lsum each text is split into sentences first
  (:func:`biobart_fairseq.data.sentences.split_sentences`) and the sentences joined with
  newlines, which is what ``rougeLsum`` splits on.
* BLEU: corpus BLEU from ``sacrebleu`` (its default 13a tokenisation).
* BERTScore: F1 from ``bert-score`` averaged over examples, no baseline rescaling (the paper's
  values are ~0.85-0.93); ``roberta-large`` by default, or any local model folder for offline use.
  The model is located (folder, Hugging Face cache, or one download) before anything is scored.
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


class BertScoreUnavailable(Exception):
    """The BERTScore model cannot be loaded without a download that is not possible here."""


_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def _missing_parts(folder: str) -> List[str]:
    """What a model folder lacks to be loaded by transformers (empty when complete)."""
    have = set(os.listdir(folder))
    missing = [] if "config.json" in have else ["config.json"]
    if not have.intersection(_WEIGHTS):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not have.intersection(_TOKENIZER):
        missing.append("tokenizer files")
    return missing


def _hub_cache_dir(cache_dir: Optional[str]) -> str:
    if cache_dir:
        return cache_dir
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _cached_snapshot(name: str, cache_dir: str) -> Optional[str]:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(name, "config.json", cache_dir=cache_dir)
    return os.path.dirname(hit) if isinstance(hit, str) else None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection to the hub, so that an offline machine is recognised at once instead of
    after the hub client's five retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _download(name: str, cache_dir: str) -> Optional[str]:
    """Config, tokenizer and one weights file of a hub model into the cache; None on failure."""
    import logging

    from huggingface_hub import snapshot_download

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        for weights in ("model.safetensors", "pytorch_model.bin"):
            folder = snapshot_download(name, cache_dir=cache_dir,
                                       allow_patterns=["*.json", "*.txt", "*.model", weights])
            if not _missing_parts(folder):
                return folder
    except Exception:  # any hub failure (network, unknown name, gated) means: not available
        return None
    return None


def locate_bertscore_model(model: str, num_layers: Optional[int] = None, cache_dir: Optional[str] = None,
                           download: bool = True):
    """Where the BERTScore model is on disk, and the layer to use, checked before anything is
    scored.  ``model`` is a local folder or a hub name; a hub name is looked up in the Hugging
    Face cache and, if absent and the hub can be reached (and ``download``), fetched once.
    Returns ``(folder, num_layers)``; raises :class:`BertScoreUnavailable` with the reason."""
    if os.path.isdir(model):
        folder = os.path.abspath(model)
    elif model.startswith((".", "/", "~")) or model.count("/") > 1:  # a path, not a hub name ("org/name")
        raise BertScoreUnavailable(f"{model}: no such folder")
    else:
        cache = _hub_cache_dir(cache_dir)
        folder = _cached_snapshot(model, cache)
        if (folder is None or _missing_parts(folder)) and download and _hub_reachable():
            folder = _download(model, cache) or folder
        if folder is None:
            raise BertScoreUnavailable(f"{model} is not in the Hugging Face cache ({cache}) and cannot be downloaded "
                                       "from here; pass --bertscore-model with a local model folder")
    missing = _missing_parts(folder)
    if missing:
        raise BertScoreUnavailable(f"{folder}: incomplete model folder, no {', '.join(missing)}")
    if num_layers is None:
        num_layers = _default_layer(model, folder)
    return folder, num_layers


def _default_layer(name: str, folder: str) -> int:
    """bert-score's tuned layer for the models it knows (roberta-large: 17), else the last layer."""
    from bert_score.utils import model2layers

    if name in model2layers:
        return model2layers[name]
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    layers = cfg.get("num_hidden_layers", cfg.get("num_layers", cfg.get("n_layers")))
    if layers is None:
        raise BertScoreUnavailable(f"{folder}/config.json: no num_hidden_layers; pass --bertscore-layers")
    return int(layers)


def bertscore(hyps: List[str], refs: List[str], folder: str, num_layers: int, batch_size: int = 32,
              device: Optional[str] = None) -> float:
    """Mean BERTScore F1 (0-1, no baseline rescaling) with the model in ``folder`` (see
    :func:`locate_bertscore_model`), its layer ``num_layers``."""
    import bert_score
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "Some weights ... not used" and the like: expected for encoders
    hf_logging.disable_progress_bar()
    _, _, f1 = bert_score.score(hyps, refs, model_type=folder, num_layers=num_layers, lang="en",
                                batch_size=batch_size, device=device, verbose=False)
    return float(f1.mean())


#: How each value in biobart-score's JSON is scaled (written into the JSON as "scales").
SCALES = {"rouge1": "F-measure x 100", "rouge2": "F-measure x 100", "rougeL": "F-measure x 100",
          "rougeLsum": "F-measure x 100", "bleu": "corpus BLEU, 0-100 (sacrebleu)",
          "bertscore_f1": "mean F1, 0-1 (as printed in the paper)"}


def lexical_scores(hyps: List[str], refs: List[str]) -> Dict[str, float]:
    """ROUGE and BLEU, which need no model."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("nothing to score")
    out = rouge(hyps, refs)
    out["bleu"] = bleu(hyps, refs)
    out["n"] = len(hyps)
    return out


def score_all(hyps: List[str], refs: List[str], bertscore_model: Optional[str] = "roberta-large",
              num_layers: Optional[int] = None, device: Optional[str] = None) -> Dict[str, float]:
    """Every metric in one dict; BERTScore is left out when ``bertscore_model`` is None.  The
    model is located first (:class:`BertScoreUnavailable` before anything is computed)."""
    located = locate_bertscore_model(bertscore_model, num_layers) if bertscore_model else None
    out = lexical_scores(hyps, refs)
    if located:
        out["bertscore_f1"] = bertscore(hyps, refs, *located, device=device)
    return out
