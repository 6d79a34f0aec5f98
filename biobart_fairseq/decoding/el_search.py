"""Beam search over a KB trie with each sentence's own forced prefix, GenBioEL's semantics.

A linking decoder writes ``<mention> is <name> </s>`` from ``</s>``: the first ``len(prefix)``
tokens of a sentence are its own prefix, the rest must walk the trie of KB names.

:class:`TrieBeamSearch` is fairseq's :class:`~fairseq.search.BeamSearch` with two changes:

* **only allowed tokens are candidates**: the step takes each sentence's best expansions
  among the (row, token) pairs the trie allows, which is what masking every other token to
  ``-inf`` and taking the top of the sentence's (beam x vocabulary) matrix gives, without
  writing, adding to or sorting that matrix (most of its rows are dead under these
  semantics).  Each hypothesis carries one trie node id, reordered with the beams through
  fairseq's own hooks for per-hypothesis search state (``init_constraints`` /
  ``prune_sentences`` / ``update_constraints``, the ones lexically constrained decoding
  uses).  A step reads the children of all rows' nodes at once
  (:meth:`Trie.children_many`), and a candidate's node is that of its pair: no walk from
  the root, no per-row Python loop;
* **``beam`` candidates, not ``2 * beam``** (the parent's ``candidate_multiple=1``).  This
  is GenBioEL's search (its vendored fairseq ``PrefixConstrainedBeamSearch`` returns ``beam``
  candidates): fairseq's generator then cannot refill the slot of a name that ends, so a
  finished name keeps its slot and a sentence ends when all ``beam`` slots have finished.
  With ``2 * beam`` candidates the slots are refilled and the search stops as soon as any
  ``beam`` names have ended, which lets short names crowd out longer, better-scoring ones.

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
        trie node and no allowed token, so its log-probabilities are never read and the
        decoder need not compute them (:class:`~.el_ensemble.EntityLinkingEnsemble`)."""
        return self._nodes >= 0

    def can_finish(self, sentence: int) -> bool:
        """Whether a sentence of the current batch still has a hypothesis that may end in a
        KB name (after the last :meth:`step`).  Only a KB with fewer reachable names than
        ``beam`` runs out; then nothing more can finish and the generator may stop it."""
        return bool(self._live[sentence])

    # -- the step ------------------------------------------------------------------------------
    def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
        """fairseq's ``BeamSearch.step`` with ``beam`` candidates, over the allowed (row,
        token) pairs only: the same as setting every other token to -inf and taking the
        top of the (beam x vocabulary) matrix of each sentence, without touching it."""
        bsz, beam_size, vocab_size = lprobs.size()
        rows, toks, kids = self._pairs(step, beam_size, vocab_size)
        dev = lprobs.device
        r, t = torch.from_numpy(rows).to(dev), torch.from_numpy(toks).to(dev)
        values = lprobs.view(bsz * beam_size, vocab_size)[r, t]
        if step > 0:  # cumulative scores, the same single addition as the parent's
            values = values + scores[:, :, step - 1].reshape(-1).index_select(0, r)
        cand_scores, pick = self._top(values, rows // beam_size, bsz, beam_size)
        real = pick >= 0
        at = np.where(real, pick, 0)
        # a slot without a pair (fewer allowed pairs than beam) is a -inf candidate: its
        # token and beam are never used, fairseq drops or ignores -inf hypotheses
        cand_tokens = np.where(real, toks[at] if len(toks) else 0, 0)
        cand_beams = np.where(real, rows[at] % beam_size if len(rows) else 0, 0)
        self._advance(cand_scores, cand_tokens, np.where(real, kids[at] if len(kids) else -1, -1))
        return cand_scores, torch.from_numpy(cand_tokens).to(dev), torch.from_numpy(cand_beams).to(dev)

    def _forced(self, step: int) -> np.ndarray:
        """Per sentence: the token forced at this step, or -1 once its prefix is done."""
        if step >= self._prefix.shape[1]:
            return np.full(len(self._prefix), -1, dtype=np.int64)
        return self._prefix[:, step]

    def _pairs(self, step: int, beam_size: int, vocab_size: int):
        """``(row, token, node)`` of every token a row may take next and the trie node it
        leads to, sorted by (row, token), i.e. in the order of fairseq's (beam x vocabulary)
        candidate index.  A row with no trie node (a dead end, a finished name, or one of the
        beam - 1 empty rows while the prefix is forced) has none; at step 0 only beam 0
        counts, as in fairseq (all beams are the same)."""
        forced = np.repeat(self._forced(step), beam_size)
        nodes = np.where(forced >= 0, -1, self._nodes)
        if step == 0:
            nodes[np.arange(len(nodes)) % beam_size != 0] = -1
            forced[np.arange(len(forced)) % beam_size != 0] = -1
        rows, toks, kids = self.trie.children_many(nodes)
        # a prefix token leads to the root: the name starts after the prefix's last token
        in_prefix = np.flatnonzero((forced >= 0) & (self._nodes >= 0))
        rows, toks = np.concatenate([rows, in_prefix]), np.concatenate([toks, forced[in_prefix]])
        kids = np.concatenate([kids, np.full(len(in_prefix), ROOT, dtype=np.int64)])
        order = np.argsort(rows * vocab_size + toks)
        return rows[order], toks[order], kids[order]

    def _top(self, values: torch.Tensor, sentence: np.ndarray, bsz: int, beam_size: int):
        """Per sentence, the ``beam`` best pairs: scores (tensor) and pair index or -1
        (array), both bsz x beam.
        The pairs of a sentence are laid out in a row of a -inf matrix, in candidate order."""
        start = np.searchsorted(sentence, np.arange(bsz + 1))
        count = np.diff(start)
        width = max(beam_size, int(count.max(initial=0)))
        pos = np.arange(len(sentence)) - start[sentence]
        dev = values.device
        grid = torch.full((bsz, width), -math.inf, dtype=values.dtype, device=dev)
        grid[torch.from_numpy(sentence).to(dev), torch.from_numpy(pos).to(dev)] = values
        top, at = torch.topk(grid, k=beam_size)
        at_np = at.cpu().numpy()
        return top, np.where(at_np < count[:, None], start[:-1, None] + at_np, -1)

    def _advance(self, cand_scores, cand_tokens: np.ndarray, cand_nodes: np.ndarray) -> None:
        """Trie node of every candidate (-1 for one with score -inf); and which sentences
        keep a live hypothesis: a finite one that has not ended."""
        finite = np.isfinite(cand_scores.cpu().numpy())
        self._live = (finite & (cand_tokens != self.eos)).any(axis=1)
        self._cand_nodes = np.where(finite, cand_nodes, -1)
