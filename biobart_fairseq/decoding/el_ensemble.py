"""fairseq's ``EnsembleModel`` without the per-step work entity linking never needs.

:class:`~biobart_fairseq.decoding.el_generator.EntityLinkingSequenceGenerator` wraps its
models in this class instead of the stock one:

* ``forward_decoder`` asks the decoder for no attention weights and returns none.  fairseq's
  ensemble always has the last layer average its cross-attention over heads, and the
  generator keeps that average for ``--print-alignment`` in a (rows x source length x max
  length) buffer that it copies and reorders at every step; with 384-word contexts that
  bookkeeping costs more than the model.  Entity linking has no alignments to print
  (GenBioEL's decoder drops the attention too), and without weights to return an attention
  module may take a fused kernel (``biobart_*`` archs: SDPA).
* ``reorder_encoder_out`` returns its input when every new row comes from a row of its own
  sentence (always, with the compact rows below).  The beams of a sentence share one
  encoder output, so such a reorder is the identity, but fairseq copies the whole (source
  length x rows x dim) tensor anyway, which dominates decoding on a CPU for long contexts.
  Under the trie search every step's order is of that kind except in the steps where
  finished sentences leave the batch.
* **only live rows are decoded** (when the search says which rows live, as
  :class:`~biobart_fairseq.decoding.el_search.TrieBeamSearch` does).  Under GenBioEL's beam
  semantics most of fairseq's ``bsz x beam`` rows are dead at any step: ``beam - 1`` rows
  of every sentence while its prefix is forced (step 0 scores beam 0 only, and the prefix
  has one token to take), and every slot whose name has finished (it keeps the slot with
  no token allowed).  The search never reads their log-probabilities, so the decoder runs
  on a compact batch of ``width`` slots per sentence (``width`` = the most live rows any
  sentence has; the same number for every sentence keeps the cross-attention keys
  shared), the output layer on the live slots only, and dead rows get ``-inf``.  On the
  NCBI test mentions that is 85 % of fairseq's row-steps (45 % are live), and no encoder
  output is expanded to beams.  The incremental state then follows the slots, not
  fairseq's rows: :meth:`reorder_incremental_state` maps fairseq's row order onto them.  A
  live row's log-probabilities are the same as before up to float rounding (the decoder
  treats rows independently, but its matrix products run on other shapes).
"""

import math
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from fairseq.models.transformer import TransformerDecoderBase
from fairseq.modules.multihead_attention import MultiheadAttention
from fairseq.sequence_generator import EnsembleModel
from torch import Tensor


_NO_LAYER = -1  # alignment_layer matching no decoder layer


class EntityLinkingEnsemble(EnsembleModel):
    def __init__(self, models, beam_size: int, live_rows: Optional[Callable[[], np.ndarray]] = None):
        super().__init__(models)
        self.beam_size = beam_size
        self.live_rows = live_rows
        # compact decoding needs fairseq transformer decoders (their attention modules hold
        # the incremental state we reorder ourselves) and a search that says which rows live
        self.compact = live_rows is not None and self.has_incremental_states() and self._transformer_decoders()
        self._attention = [[m for m in model.decoder.modules() if isinstance(m, MultiheadAttention)]
                           for model in self.models] if self.compact else []
        self._layout: Optional["_Layout"] = None

    def _transformer_decoders(self) -> bool:
        return all(isinstance(getattr(m, "decoder", None), TransformerDecoderBase) for m in self.models)

    def set_decoder_beam_size(self, beam_size):
        # fairseq's sets it only for beam > 1, so a model decoded before with a wider beam
        # would keep that width and fail at beam 1
        for model in self.models:
            if hasattr(model, "set_beam_size"):
                model.set_beam_size(beam_size)

    @contextmanager
    def decoding(self):
        """Around one ``_generate``: compact decoding keeps one encoder output and one
        cross-attention cache per sentence and lays out its own rows, so the attention
        modules must not split them into beams (beam size 1); their setting is restored
        after, since other generators may share the models."""
        modules = [m for attention in self._attention for m in attention] if self.compact else []
        saved = [m.beam_size for m in modules]
        for m in modules:
            m.set_beam_size(1)
        try:
            yield
        finally:
            for m, size in zip(modules, saved):
                m.set_beam_size(size)

    def forward_decoder(self, tokens, encoder_outs: List[Dict[str, List[Tensor]]],
                        incremental_states: List[Dict[str, Dict[str, Optional[Tensor]]]], temperature: float = 1.0):
        if not self.compact:
            return self._decode(tokens, encoder_outs, incremental_states, temperature), None
        if tokens.size(1) == 1:  # step 0 of a batch: every beam of a sentence is the same
            self._layout = _Layout.first(tokens.size(0), self.beam_size, tokens.device)
        lay = self._layout
        lprobs = self._decode(tokens.index_select(0, lay.slot_rows), encoder_outs, incremental_states, temperature,
                              keep=lay.real_slots)
        out = lprobs.new_full((tokens.size(0), lprobs.size(1)), -math.inf)
        return out.index_copy_(0, lay.real_rows, lprobs), None

    def _decode(self, tokens, encoder_outs, incremental_states, temperature, keep: Optional[Tensor] = None):
        """Log-probabilities of the next token of each row (of the rows ``keep`` only: the
        output projection over the vocabulary is the decoder's widest layer)."""
        if not self._transformer_decoders():
            return super().forward_decoder(tokens, encoder_outs, incremental_states, temperature)[0]
        # fairseq's EnsembleModel.forward_decoder, except that no layer is the "alignment
        # layer" (its index matches none), so no attention weights are computed
        log_probs = []
        for i, model in enumerate(self.models):
            features, extra = model.decoder(
                tokens, encoder_out=encoder_outs[i] if self.has_encoder() else None,
                incremental_state=incremental_states[i] if self.has_incremental_states() else None,
                features_only=True, alignment_layer=_NO_LAYER)
            features = features[:, -1:, :]
            if keep is not None:
                features = features.index_select(0, keep)
            logits = model.decoder.output_layer(features)
            if temperature != 1.0:
                logits = logits.div(temperature)
            log_probs.append(model.get_normalized_probs((logits, extra), log_probs=True, sample=None)[:, -1, :])
        if len(log_probs) == 1:
            return log_probs[0]
        return torch.logsumexp(torch.stack(log_probs, dim=0), dim=0) - math.log(len(log_probs))

    def reorder_incremental_state(self, incremental_states, new_order):
        if not self.compact:
            return super().reorder_incremental_state(incremental_states, new_order)
        self._layout, slot_source = self._layout.next(new_order, self.live_rows(), self.beam_size)
        sentences = _sentence_order(new_order, self.beam_size)
        for attention, state in zip(self._attention, incremental_states):
            for m in attention:
                # cross-attention keeps one key/value cache per sentence (at beam size 1 it
                # reorders only when sentences left the batch); self-attention one per slot
                if m.encoder_decoder_attention:
                    m.reorder_incremental_state(state, sentences)
                    _contiguous_cache(m, state)
                else:
                    m.reorder_incremental_state(state, slot_source)

    def reorder_encoder_out(self, encoder_outs: Optional[List[Dict[str, List[Tensor]]]], new_order):
        if not encoder_outs:
            return super().reorder_encoder_out(encoder_outs, new_order)
        if self.compact:
            # One encoder output per sentence, not expanded to beams; and never reordered:
            # after step 0 the decoder reads only the keys and values its cross-attention
            # cached from it, which reorder_incremental_state reorders by sentence.
            return encoder_outs
        if self._within_sentences(encoder_outs, new_order):
            return encoder_outs
        return super().reorder_encoder_out(encoder_outs, new_order)

    def _within_sentences(self, encoder_outs, new_order) -> bool:
        rows = new_order.numel()
        enc = encoder_outs[0]["encoder_out"]
        if not enc or enc[0].size(1) != rows:  # the first expansion to beams, or a shrunk batch
            return False
        sentence = torch.div(torch.arange(rows, device=new_order.device), self.beam_size, rounding_mode="trunc")
        return torch.equal(torch.div(new_order, self.beam_size, rounding_mode="trunc"), sentence)


def _contiguous_cache(attention: MultiheadAttention, state) -> None:
    """Store the cached cross-attention keys and values contiguously.  Step 0 leaves them
    as a transposed view of the key projection ((source, sentences x heads, dim) in
    memory), and with several rows per sentence the attention's einsum then copies both
    whole tensors at every step; one copy per batch here avoids that (same values)."""
    buf = attention._get_input_buffer(state)
    stale = [k for k in ("prev_key", "prev_value") if buf.get(k) is not None and not buf[k].is_contiguous()]
    if stale:
        for k in stale:
            buf[k] = buf[k].contiguous()
        attention._set_input_buffer(state, buf)


def _sentence_order(new_order: Tensor, beam_size: int) -> Tensor:
    """The previous sentence of each sentence of the new order (rows never cross sentences)."""
    return torch.div(new_order.view(-1, beam_size)[:, 0], beam_size, rounding_mode="trunc")


class _Layout:
    """Which of fairseq's rows the decoder computes: ``width`` slots per sentence (the most
    live rows any sentence has), slot ``j`` of a sentence its ``j``-th live row; a sentence
    with fewer fills its spare slots with a copy of its first row, whose output is dropped.
    The same number of slots per sentence keeps the cross-attention keys shared."""

    def __init__(self, slot_rows: np.ndarray, real: np.ndarray, rows: int, device):
        self.row_slot = np.full(rows, -1, dtype=np.int64)  # slot computing each row, -1: none
        self.row_slot[slot_rows[real]] = np.flatnonzero(real)
        self.slot_rows = torch.from_numpy(slot_rows).to(device)
        self.real_slots = torch.from_numpy(np.flatnonzero(real)).to(device)
        self.real_rows = torch.from_numpy(slot_rows[real]).to(device)

    @classmethod
    def first(cls, rows: int, beam_size: int, device) -> "_Layout":
        first_beams = np.arange(0, rows, beam_size, dtype=np.int64)  # step 0 scores beam 0 only
        return cls(first_beams, np.ones(len(first_beams), dtype=bool), rows, device)

    def next(self, new_order: Tensor, live: np.ndarray, beam_size: int):
        """The layout of the next step's rows (``live``: which may still extend a name) and,
        for each of its slots, the slot of this layout its row continues."""
        grid = live.reshape(-1, beam_size)
        sentences = len(grid)
        width = max(1, int(grid.sum(axis=1).max(initial=0)))
        rank = np.cumsum(grid, axis=1) - 1
        s, b = np.nonzero(grid)
        slot_rows = np.repeat(np.arange(sentences, dtype=np.int64) * beam_size, width)
        real = np.zeros(sentences * width, dtype=bool)
        at = s * width + rank[s, b]
        slot_rows[at], real[at] = s * beam_size + b, True
        # a live row's parent was computed (an uncomputed row has -inf scores and no
        # finite child); a spare slot may continue any slot
        source = self.row_slot[new_order.cpu().numpy()[slot_rows]]
        source[~real & (source < 0)] = 0
        device = new_order.device
        return _Layout(slot_rows, real, len(live), device), torch.from_numpy(source).to(device)
