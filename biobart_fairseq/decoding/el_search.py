"""Beam search over a KB trie with each sentence's own forced prefix, GenBioEL's semantics.

A linking decoder writes ``<mention> is <name> </s>`` from ``</s>``: the first ``len(prefix)``
tokens of a sentence are its own prefix, the rest must walk the trie of KB names.

:class:`TrieBeamSearch` is fairseq's :class:`~fairseq.search.BeamSearch` with two changes:

* **the mask**: before the parent's step, every disallowed token gets ``-inf``.  Each
  hypothesis carries one trie node id, reordered with the beams through fairseq's own hooks
  for per-hypothesis search state (``init_constraints`` / ``prune_sentences`` /
  ``update_constraints``, the ones lexically constrained decoding uses).  A step reads the
  children of all rows' nodes at once (:meth:`Trie.children_many`) and a candidate's node is
  looked up among those (row, token) pairs: no walk from the root, no per-row Python loop;
* **``beam`` candidates, not ``2 * beam``**: the parent's step is called with
  ``candidate_multiple=1``.  This is GenBioEL's search (its vendored fairseq
  ``PrefixConstrainedBeamSearch`` returns ``beam`` candidates): fairseq's generator then
  cannot refill the slot of a name that ends, so a finished name keeps its slot and a
  sentence ends when all ``beam`` slots have finished.  With ``2 * beam`` candidates the
  slots are refilled and the search stops as soon as any ``beam`` names have ended, which
  lets short names crowd out longer, better-scoring ones.

In fairseq's generator, with ``beam`` candidates per step and ``F`` names already finished:
the candidates are the ``beam`` best expansions of the sentence's rows by cumulative
log-probability; an ``</s>`` among the first ``beam - F`` of them finishes a name; an
``</s>`` ranked lower is dropped; every other candidate stays a row of the beam (also those
ranked below ``beam - F``).  ``tests/test_el_search.py`` re-implements exactly this in a
plain loop and compares.

Per-sentence prefixes arrive as the ``constraints`` tensor of ``_generate`` (sentences x
longest prefix, right-padded with ``<pad>``), which fairseq hands to :meth:`init_constraints`
for each batch; :class:`~biobart_fairseq.decoding.el_generator.EntityLinkingSequenceGenerator`
builds it from the batch.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from fairseq.search import BeamSearch

from .trie import ROOT, Trie


class TrieBeamSearch(BeamSearch):
    def __init__(self, tgt_dict, trie: Trie):
        super().__init__(tgt_dict)
        self.trie = trie
        # A hypothesis off the end of a name gets -inf everywhere, so at max_len a sentence
        # may have no </s> to finish with; fairseq then asserts unless the search stops.
        self.stop_on_max_len = True
        # the per-sentence prefixes come in as fairseq's per-sentence constraints tensor
        self.supports_constraints = True
        empty = np.zeros(0, dtype=np.int64)
        self._prefix = np.zeros((0, 0), dtype=np.int64)  # sentences x longest prefix, -1 after the end
        self._plen = empty  # prefix length of each sentence
        self._nodes = empty  # trie node of each row (sentence-major, beam rows per sentence)
        self._cand_nodes = np.zeros((0, 0), dtype=np.int64)  # trie node of each candidate of the last step
        self._live = np.zeros(0, dtype=bool)  # sentence still has a finite hypothesis that has not ended
        self._pair_keys = self._pair_nodes = empty  # allowed (row, token) pairs of the step, and their nodes
        self._vocab_size = 0

    # -- fairseq's hooks for per-sentence / per-hypothesis search state ------------------------
    def init_constraints(self, batch_constraints: Optional[torch.Tensor], beam_size: int):
        if batch_constraints is None:
            raise ValueError("TrieBeamSearch needs each sentence's prefix as `constraints` "
                             "(EntityLinkingSequenceGenerator passes it)")
        prefix = batch_constraints.cpu().numpy().astype(np.int64)
        real = prefix != self.pad
        self._prefix = np.where(real, prefix, -1)
        self._plen = real.sum(axis=1)
        self._nodes = np.full(len(prefix) * beam_size, ROOT, dtype=np.int64)
        self._cand_nodes = np.zeros((len(prefix), 0), dtype=np.int64)
        self._live = np.ones(len(prefix), dtype=bool)

    def prune_sentences(self, batch_idxs: torch.Tensor):
        keep = batch_idxs.cpu().numpy()
        self._prefix, self._plen = self._prefix[keep], self._plen[keep]
        self._cand_nodes, self._live = self._cand_nodes[keep], self._live[keep]

    def update_constraints(self, active_hypos: torch.Tensor):
        self._nodes = np.take_along_axis(self._cand_nodes, active_hypos.cpu().numpy(), axis=1).reshape(-1)

    def live_rows(self) -> np.ndarray:
        """Which rows of the current beams may still take a token (after the last
        :meth:`update_constraints`): a row with ``-inf`` score or a finished name has no
        trie node, and its next log-probabilities are masked away whatever they are, so
        the decoder need not compute them (:class:`~.el_ensemble.EntityLinkingEnsemble`)."""
        return self._nodes >= 0

    def can_finish(self, sentence: int) -> bool:
        """Whether a sentence of the current batch still has a hypothesis that may end in a
        KB name (after the last :meth:`step`).  Only a KB with fewer reachable names than
        ``beam`` runs out; then nothing more can finish and the generator may stop it."""
        return bool(self._live[sentence])

    # -- the step ------------------------------------------------------------------------------
    def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
        bsz, beam_size, vocab_size = lprobs.size()
        lprobs = self._masked(step, lprobs.view(bsz * beam_size, vocab_size), beam_size).view(bsz, beam_size, vocab_size)
        cand_scores, cand_tokens, cand_beams = super().step(
            step, lprobs, scores, prev_output_tokens, original_batch_idxs, candidate_multiple=1)
        self._advance(step, cand_scores, cand_tokens, cand_beams, beam_size)
        return cand_scores, cand_tokens, cand_beams

    def _forced(self, step: int) -> np.ndarray:
        """Per sentence: the token forced at this step, or -1 once its prefix is done."""
        if step >= self._prefix.shape[1]:
            return np.full(len(self._prefix), -1, dtype=np.int64)
        return self._prefix[:, step]

    def _allowed(self, step: int, beam_size: int):
        """``(row, token, node)`` of every token a row may take next, and the trie node it
        leads to.  A row with no finite score (a dead end, or one of the beam - 1 empty rows
        while the prefix is forced) gets none: its candidates are -inf anyway."""
        forced = np.repeat(self._forced(step), beam_size)
        rows, toks, kids = self.trie.children_many(np.where(forced >= 0, -1, self._nodes))
        in_prefix = np.flatnonzero(forced >= 0)
        # a prefix token leads to the root: the name starts after the prefix's last token
        return (np.concatenate([rows, in_prefix]), np.concatenate([toks, forced[in_prefix]]),
                np.concatenate([kids, np.full(len(in_prefix), ROOT, dtype=np.int64)]))

    def _masked(self, step: int, lprobs: torch.Tensor, beam_size: int) -> torch.Tensor:
        """``lprobs`` with every token a row may not take next at -inf.  Remembers the
        allowed (row, token) pairs, sorted, with their trie nodes for :meth:`_advance`."""
        rows, toks, kids = self._allowed(step, beam_size)
        vocab_size = lprobs.size(1)
        keys = rows * vocab_size + toks
        order = np.argsort(keys)
        self._pair_keys, self._pair_nodes, self._vocab_size = keys[order], kids[order], vocab_size
        rows, toks = torch.from_numpy(rows).to(lprobs.device), torch.from_numpy(toks).to(lprobs.device)
        out = torch.full_like(lprobs, -math.inf)
        out[rows, toks] = lprobs[rows, toks]
        return out

    def _advance(self, step, cand_scores, cand_tokens, cand_beams, beam_size: int) -> None:
        """Trie node of every candidate (-1 for one with score -inf), found among the
        allowed pairs of the step; and which sentences keep a live hypothesis: a finite one
        that has not ended."""
        finite = np.isfinite(cand_scores.cpu().numpy())
        tokens, beams = cand_tokens.cpu().numpy(), cand_beams.cpu().numpy()
        self._live = (finite & (tokens != self.eos)).any(axis=1)
        keys = (np.arange(len(tokens))[:, None] * beam_size + beams) * self._vocab_size + tokens
        at = np.minimum(np.searchsorted(self._pair_keys, keys), max(len(self._pair_keys) - 1, 0))
        if len(self._pair_keys):
            found = finite & (self._pair_keys[at] == keys)
            self._cand_nodes = np.where(found, self._pair_nodes[at], -1)
        else:
            self._cand_nodes = np.full(keys.shape, -1, dtype=np.int64)
