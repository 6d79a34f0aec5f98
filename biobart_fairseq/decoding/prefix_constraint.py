"""Per-sample prefix forcing + trie-constrained beam search for fairseq's SequenceGenerator.

The decoder of a linking model writes ``<mention> is <name> </s>`` starting from ``</s>``:

* the first ``len(prefix)`` steps of a sample are forced to its own prefix tokens
  (``<mention> is``), looked up by the sample's dataset id — fairseq calls
  ``prefix_allowed_tokens_fn(batch_id, sent)`` with ``batch_id = sample["id"][row]`` (the
  dataset index, which stays right when the batch is sorted or shrinks as sentences
  finish), never the row number;
* after that, the allowed tokens are the trie children of the name generated so far, so
  every finished hypothesis is ``prefix + KB name + </s>``.

Why not fairseq's ``prefix_tokens``: it takes one prefix length for the whole batch and
cannot be mixed with ``prefix_allowed_tokens_fn`` per sample.

The trie node of each partial name is memoised (name tuple -> node), so a step costs one
child lookup from the parent's node instead of a walk from the root.  The memo is cleared
when a new batch's prefixes are set.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
from fairseq.search import PrefixConstrainedBeamSearch

from .trie import DONE, ROOT, Trie


class EntityLinkingConstraint:
    """Callable ``(batch_id, sent) -> allowed next tokens`` for fairseq's beam search."""

    def __init__(self, trie: Trie):
        self.trie = trie
        self.prefixes: Dict[int, List[int]] = {}
        self._nodes: Dict[tuple, int] = {(): ROOT}

    def set_prefixes(self, ids: Sequence[int], prefixes: Sequence[Sequence[int]]) -> None:
        """Prefix tokens (``<mention> is``, no leading ``</s>``) of the samples of a batch."""
        self.prefixes = {int(i): list(p) for i, p in zip(ids, prefixes)}
        self._nodes = {(): ROOT}

    def node(self, name: tuple) -> int:
        """Trie node of a partial name (memoised; a parent is always asked first in decoding)."""
        node = self._nodes.get(name)
        if node is None:
            parent = self.node(name[:-1]) if len(name) > 1 else ROOT
            node = self.trie.child(parent, name[-1]) if parent != DONE else -1
            self._nodes[name] = node
        return node

    def _state(self, batch_id: int, tokens: List[int]):
        """("f", token) while the prefix is forced, else ("n", trie node of the name so far)."""
        try:
            prefix = self.prefixes[batch_id]
        except KeyError:
            raise KeyError(
                f"no prefix for sample id {batch_id}: call set_prefixes() for the batch "
                "(EntityLinkingTask.inference_step does it)"
            ) from None
        n = len(tokens) - 1
        if n < len(prefix):
            return ("f", prefix[n])
        return ("n", self.node(tuple(tokens[1 + len(prefix):])))

    def allowed(self, batch_id: int, tokens: List[int]) -> List[int]:
        """``tokens`` = the hypothesis so far, starting with the decoder's ``</s>``."""
        kind, v = self._state(batch_id, tokens)
        return [v] if kind == "f" else self.trie.children(v)

    def __call__(self, batch_id, sent) -> List[int]:
        return self.allowed(int(batch_id), sent.tolist())

    def mask(self, prev_tokens: torch.Tensor, batch_ids: List[int], vocab_size: int, like: torch.Tensor) -> torch.Tensor:
        """(rows, vocab) additive mask: 0 where allowed, -inf elsewhere.

        Rows in the same state (same forced token, same trie node: e.g. every hypothesis
        right after its prefix is at the root) share one mask row, so a wide node's
        children are scattered once per step, not once per hypothesis."""
        key_index: Dict[tuple, int] = {}
        inverse = []
        for toks, b in zip(prev_tokens.tolist(), batch_ids):
            key = self._state(b, toks)
            j = key_index.get(key)
            if j is None:
                j = key_index[key] = len(key_index)
            inverse.append(j)
        rows, cols = [], []
        for key, j in key_index.items():
            allowed = [key[1]] if key[0] == "f" else self.trie.children(key[1])
            rows.extend([j] * len(allowed))
            cols.extend(allowed)
        uniq = torch.full((len(key_index), vocab_size), -math.inf, dtype=like.dtype, device=like.device)
        if rows:
            uniq[torch.tensor(rows, device=like.device), torch.tensor(cols, device=like.device)] = 0
        return uniq[torch.tensor(inverse, device=like.device)]


class TrieConstrainedBeamSearch(PrefixConstrainedBeamSearch):
    """fairseq's PrefixConstrainedBeamSearch with two changes:

    * the mask is built in one scatter (:meth:`EntityLinkingConstraint.mask`);
    * it returns ``2 * beam`` candidates like plain beam search: the stock class returns
      ``beam``, so when a candidate is ``</s>`` fewer than ``beam`` live hypotheses remain
      and finished names are kept in the active beam.
    """

    def __init__(self, tgt_dict, constraint: EntityLinkingConstraint):
        super().__init__(tgt_dict, constraint)
        self.constraint = constraint

    def step(self, step, lprobs, scores, prev_output_tokens, original_batch_idxs):
        bsz, beam_size, vocab_size = lprobs.size()
        ids = original_batch_idxs.unsqueeze(-1).expand(bsz, beam_size).reshape(-1).tolist()
        mask = self.constraint.mask(prev_output_tokens, ids, vocab_size, lprobs)
        lprobs = lprobs + mask.view(bsz, beam_size, vocab_size)
        if step == 0:
            lprobs = lprobs[:, ::beam_size, :].contiguous()  # all beams are the same at step 0
        else:
            lprobs = lprobs + scores[:, :, step - 1].unsqueeze(-1)
        top = torch.topk(lprobs.view(bsz, -1), k=min(2 * beam_size, lprobs.view(bsz, -1).size(1) - 1))
        scores_buf, indices_buf = top
        beams_buf = torch.div(indices_buf, vocab_size, rounding_mode="trunc")
        indices_buf = indices_buf.fmod(vocab_size)
        return scores_buf, indices_buf, beams_buf


def skip_within_sentence_reorders(generator, beam_size: int) -> None:
    """Stop fairseq from copying the encoder output at every decoding step.

    ``SequenceGenerator`` calls ``model.reorder_encoder_out(encoder_outs, order)`` after
    each step with the new beam order.  The beams of one sentence share the same encoder
    output, so when every row is taken from a row of its own sentence (always, except in
    the steps where finished sentences leave the batch) the reordered output equals the
    input.  fairseq still copies the whole (source length x rows x dim) tensor: with
    384-word contexts and a batch of 100 x 5 beams, that copy dominates decoding on CPU.
    """
    model = generator.model
    original = model.reorder_encoder_out

    def reorder_encoder_out(encoder_outs, new_order):
        rows = new_order.numel()
        same_sentence = torch.equal(
            torch.div(new_order, beam_size, rounding_mode="trunc"),
            torch.div(torch.arange(rows, device=new_order.device), beam_size, rounding_mode="trunc"),
        )
        if same_sentence and encoder_outs and encoder_outs[0]["encoder_out"][0].size(1) == rows:
            return encoder_outs
        return original(encoder_outs, new_order)

    model.reorder_encoder_out = reorder_encoder_out


def drop_alignment_attention(generator) -> None:
    """Do not keep the decoder's attention over the source in the hypotheses.

    ``SequenceGenerator`` stores it for ``--print-alignment`` in a (rows x source length x
    max length) buffer that it copies and reorders at every step: with a 384-word context
    that bookkeeping costs more than the model.  Entity linking never uses it."""
    model = generator.model
    inner = model.forward_decoder

    def forward_decoder(*args, **kwargs):
        lprobs, _attn = inner(*args, **kwargs)
        return lprobs, None

    model.forward_decoder = forward_decoder


def name_score(hypo: dict, prefix_len: int, len_penalty: float = 1.0) -> float:
    """Score of the generated synonym alone (GenBioEL): the sum of the log-probabilities of
    the name tokens and ``</s>``, divided by their number ** ``len_penalty``.  The forced
    ``<mention> is`` tokens do not count (they are the same for every beam of a sample,
    but they do change the per-length normalisation fairseq applies)."""
    pos = hypo["positional_scores"][prefix_len:]
    n = max(1, pos.numel())
    return float(pos.sum()) / (n ** len_penalty)


def rerank(hypos: List[dict], prefix_len: int, len_penalty: float = 1.0) -> List[dict]:
    """Sort one sample's hypotheses by :func:`name_score`, best first.

    Tie rule: equal scores keep fairseq's order (Python's sort is stable), i.e. the order
    of fairseq's own length-normalised score over the whole sequence, and after that the
    order in which the hypotheses finished."""
    for h in hypos:
        h["el_score"] = name_score(h, prefix_len, len_penalty)
        h["name_tokens"] = h["tokens"][prefix_len:-1]
    return sorted(hypos, key=lambda h: -h["el_score"])
