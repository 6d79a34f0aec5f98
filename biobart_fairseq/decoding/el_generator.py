"""``SequenceGenerator`` for generative entity linking (GenBioEL's decoding, batched).

``EntityLinkingTask.build_generator`` passes this class as fairseq's ``seq_gen_cls``.  For a
batch of an :class:`~biobart_fairseq.data.el_dataset.EntityLinkingDataset` it

1. takes each sentence's prefix (``<mention> is``) from the batch and hands it to
   :class:`~biobart_fairseq.decoding.el_search.TrieBeamSearch` as fairseq's per-sentence
   ``constraints`` argument: the search forces the prefix, then walks the KB trie, with
   GenBioEL's beam semantics (see that module);
2. runs fairseq's own ``_generate`` loop, with the models wrapped in
   :class:`~biobart_fairseq.decoding.el_ensemble.EntityLinkingEnsemble`;
3. ranks each sentence's names by the name's own score, as GenBioEL: the log-probabilities
   of the name tokens and ``</s>`` (not the forced prefix), divided by their number **
   ``lenpen``.  ``score`` becomes that score.

A sentence also ends when none of its hypotheses can still reach the end of a KB name (only
possible with a KB of fewer reachable names than ``beam``), instead of running on with
``-inf`` scores to the maximum length: the names found are the same.
"""

import logging
from typing import Dict, List

import torch
from fairseq.search import BeamSearch
from torch.nn.utils.rnn import pad_sequence
from fairseq.sequence_generator import SequenceGenerator

from .el_ensemble import EntityLinkingEnsemble
from .el_search import TrieBeamSearch
from .trie import Trie

logger = logging.getLogger(__name__)


class EntityLinkingSequenceGenerator(SequenceGenerator):
    def __init__(self, models, tgt_dict, trie: Trie, rerank: bool = True, search_strategy=None, **kwargs):
        if search_strategy is not None and type(search_strategy) is not BeamSearch:
            raise ValueError(f"entity linking decodes by beam search over the KB trie; {type(search_strategy).__name__} "
                             "(--sampling, --diverse-beam-groups, --constraints, ...) is not supported")
        beam = min(kwargs.get("beam_size", 1), len(tgt_dict) - 1)  # as SequenceGenerator clamps it
        search = TrieBeamSearch(tgt_dict, trie)
        super().__init__(EntityLinkingEnsemble(models, beam, live_rows=search.live_rows), tgt_dict,
                         search_strategy=search, **kwargs)
        self.trie = trie
        self.rerank = rerank
        self._warned_max_len = False

    def _generate(self, sample: Dict[str, Dict[str, torch.Tensor]], prefix_tokens=None, constraints=None,
                  bos_token=None):
        if prefix_tokens is not None:
            raise ValueError("entity linking forces each mention's own prefix (`<mention> is`); "
                             "--prefix-size / prefix_tokens are not supported")
        if constraints is not None:
            raise ValueError("entity linking constrains the output to KB names itself; --constraints is not supported")
        prefixes, prefix_lens = batch_prefixes(sample, self.pad)
        self._check_max_len(sample, prefix_lens)
        with self.model.decoding():
            finalized = super()._generate(sample, constraints=prefixes, bos_token=bos_token)
        if self.rerank:
            finalized = rerank_batch(finalized, prefix_lens.tolist(), self.len_penalty)
        return finalized

    def is_finished(self, step: int, unfin_idx: int, max_len: int, finalized_sent_len: int, beam_size: int):
        return (super().is_finished(step, unfin_idx, max_len, finalized_sent_len, beam_size)
                or not self.search.can_finish(unfin_idx))

    def _check_max_len(self, sample, prefix_lens) -> None:
        """Warn (once) when the length limit is shorter than a prefix + the longest KB name:
        such names cannot be generated (a hypothesis cut inside a name is dropped, so every
        output is still a KB name)."""
        if self._warned_max_len or self.match_source_len:
            return
        src_len = sample["net_input"]["src_tokens"].size(1)
        limit = min(int(self.max_len_a * src_len + self.max_len_b), self.max_len - 1)
        need = int(prefix_lens.max()) + self.trie.max_length - 1  # prefix + name; the last step adds </s>
        if limit < need:
            self._warned_max_len = True
            logger.warning(f"maximum output length {limit} < longest prefix + longest KB name ({need}): long names "
                           f"cannot be generated; raise --max-len-b (biobart-el-eval sets it from the data)")


def batch_prefixes(sample, pad: int):
    """(sentences x longest prefix) prefix ids right-padded with ``pad``, and the lengths.

    ``prev_output_tokens`` of an entity-linking batch is ``</s> + prefix + name``, right-padded,
    and ``prefix_lens`` says how many tokens of each target are the prefix."""
    if "prefix_lens" not in sample:
        raise KeyError("the batch has no prefix_lens: entity-linking decoding needs batches of an "
                       "EntityLinkingDataset (task biomed_entity_linking)")
    plen = sample["prefix_lens"].to(sample["net_input"]["prev_output_tokens"].device)
    width = int(plen.max()) if plen.numel() else 0
    prefixes = sample["net_input"]["prev_output_tokens"][:, 1:1 + width]
    beyond = torch.arange(prefixes.size(1), device=prefixes.device).unsqueeze(0) >= plen.unsqueeze(1)
    return prefixes.masked_fill(beyond, pad), plen


def name_scores(hypos: List[dict], prefix_lens: List[int], len_penalty: float = 1.0) -> List[float]:
    """GenBioEL's score of each hypothesis: the sum of the log-probabilities of the name
    tokens and ``</s>``, divided by their number ** ``len_penalty``.  The forced prefix does
    not count (it is the same for every beam of a sentence, but it would change the length
    normalisation).  GenBioEL finds the name's start as the first ``" is"`` token of the
    hypothesis, which is wrong when the mention itself contains ``" is"``; the prefix length
    is exact.  One padded tensor for all hypotheses, not one sum per hypothesis."""
    if not hypos:
        return []
    pos = pad_sequence([h["positional_scores"] for h in hypos], batch_first=True)  # zero-padded
    length = torch.tensor([h["positional_scores"].numel() for h in hypos], device=pos.device)
    start = torch.tensor(prefix_lens, device=pos.device)
    in_name = torch.arange(pos.size(1), device=pos.device).unsqueeze(0) >= start.unsqueeze(1)
    total = pos.masked_fill(~in_name, 0.0).sum(dim=1)
    return (total / (length - start).clamp(min=1).to(total.dtype) ** len_penalty).tolist()


def rerank_batch(finalized: List[List[dict]], prefix_lens: List[int], len_penalty: float = 1.0) -> List[List[dict]]:
    """Sort each sentence's hypotheses by :func:`name_scores`, best first; ``score`` becomes
    that score (``fairseq_score`` keeps fairseq's score of the whole sequence) and
    ``name_tokens`` the name's token ids.

    Ties keep fairseq's order (Python's sort is stable): its length-normalised score of the
    whole sequence, then the order in which the names finished."""
    flat = [h for hypos in finalized for h in hypos]
    plens = [n for hypos, n in zip(finalized, prefix_lens) for _ in hypos]
    for h, n, score in zip(flat, plens, name_scores(flat, plens, len_penalty)):
        h["fairseq_score"], h["score"], h["name_tokens"] = h["score"], score, h["tokens"][n:-1]
    return [sorted(hypos, key=lambda h: -h["score"]) for hypos in finalized]
