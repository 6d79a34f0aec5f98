"""fairseq's ``EnsembleModel`` without two per-step copies entity linking never needs.

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
  sentence.  The beams of a sentence share one encoder output, so such a reorder is the
  identity, but fairseq copies the whole (source length x rows x dim) tensor anyway, which
  dominates decoding on a CPU for long contexts.  Under the trie search every step's order
  is of that kind except in the steps where finished sentences leave the batch.
"""

import math
from typing import Dict, List, Optional

import torch
from fairseq.models.transformer import TransformerDecoderBase
from fairseq.sequence_generator import EnsembleModel
from torch import Tensor


_NO_LAYER = -1  # alignment_layer matching no decoder layer


class EntityLinkingEnsemble(EnsembleModel):
    def __init__(self, models, beam_size: int):
        super().__init__(models)
        self.beam_size = beam_size

    def set_decoder_beam_size(self, beam_size):
        # fairseq's sets it only for beam > 1, so a model decoded before with a wider beam
        # would keep that width and fail at beam 1
        for model in self.models:
            if hasattr(model, "set_beam_size"):
                model.set_beam_size(beam_size)

    def forward_decoder(self, tokens, encoder_outs: List[Dict[str, List[Tensor]]],
                        incremental_states: List[Dict[str, Dict[str, Optional[Tensor]]]], temperature: float = 1.0):
        if not all(isinstance(getattr(m, "decoder", None), TransformerDecoderBase) for m in self.models):
            lprobs, _attn = super().forward_decoder(tokens, encoder_outs, incremental_states, temperature)
            return lprobs, None
        # fairseq's EnsembleModel.forward_decoder, except that no layer is the "alignment
        # layer" (its index matches none), so no attention weights are computed
        log_probs = []
        for i, model in enumerate(self.models):
            out = model.decoder(
                tokens, encoder_out=encoder_outs[i] if self.has_encoder() else None,
                incremental_state=incremental_states[i] if self.has_incremental_states() else None,
                alignment_layer=_NO_LAYER)
            logits = out[0][:, -1:, :]
            if temperature != 1.0:
                logits = logits.div(temperature)
            log_probs.append(model.get_normalized_probs((logits, out[1]), log_probs=True, sample=None)[:, -1, :])
        if len(log_probs) == 1:
            return log_probs[0], None
        return torch.logsumexp(torch.stack(log_probs, dim=0), dim=0) - math.log(len(log_probs)), None

    def reorder_encoder_out(self, encoder_outs: Optional[List[Dict[str, List[Tensor]]]], new_order):
        if encoder_outs and self._within_sentences(encoder_outs, new_order):
            return encoder_outs
        return super().reorder_encoder_out(encoder_outs, new_order)

    def _within_sentences(self, encoder_outs, new_order) -> bool:
        rows = new_order.numel()
        enc = encoder_outs[0]["encoder_out"]
        if not enc or enc[0].size(1) != rows:  # the first expansion to beams, or a shrunk batch
            return False
        sentence = torch.div(torch.arange(rows, device=new_order.device), self.beam_size, rounding_mode="trunc")
        return torch.equal(torch.div(new_order, self.beam_size, rounding_mode="trunc"), sentence)
