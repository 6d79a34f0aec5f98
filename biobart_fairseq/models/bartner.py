"""``bartner``: BART with BARTNER's pointer head (Yan et al., 2021), as used by BioBART for NER.

The decoder reads and writes BARTNER's index space (0 = sos, 1 = eos, 2..C+1 = entity
types, C+2+j = pointer to source position j; see :mod:`biobart_fairseq.data.ner_targets`):

* **inputs**: indices are mapped back to BART ids before the decoder sees them: sos ->
  ``<s>`` (BART's decoder starts with ``</s>``; BARTNER starts with ``<s>`` and so do we),
  eos -> ``</s>``, a type -> its ``<<type>>`` token, pointer j -> the source token at j;
* **scores**: with ``h`` the decoder's last hidden state, eos = h . E[</s>], type c =
  h . E[<<c>>], pointer j = h . (MLP(enc_j) + E[src_j]) / 2 (BARTNER's ``avg_feature``;
  ``--no-pointer-mlp`` uses enc_j itself, BARTNER's ShARe13 setting).  Dropout
  (``--pointer-dropout``, 0.3 in BARTNER) is applied to h and to the source features.
  sos, ``<s>``, ``</s>`` and padding can never be pointed at.

Type tokens are extra dictionary entries (added by the ``bartner_ner`` task); their
embeddings start as the mean of the embeddings of their names' BPE (e.g. ``<<cell_type>>``
from "cell type").  Loading a plain BART/BioBART checkpoint (``--finetune-from-model``,
``--restore-file``) grows its embedding matrices by those rows in
:meth:`BartNerModel.upgrade_state_dict_named`, so the initialisation uses the *pretrained*
embeddings, and adds the freshly initialised pointer MLP.

:meth:`BartNerModel.generate` is greedy (beam 1) or beam search over this space, constrained
so that every hypothesis is a well-formed target: pointers only at word boundaries of the
target type, strictly increasing within an entity (``span``: non-decreasing, starts on a
word's first BPE and ends on a word's last BPE, an even number before the type), a type only
after a pointer, eos only between entities.
"""

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.models import register_model, register_model_architecture
from fairseq.models.bart import BARTModel
from fairseq.models.bart.model import bart_base_architecture, bart_large_architecture

from .biobart_transformer import build_sdpa_decoder, build_sdpa_encoder

logger = logging.getLogger(__name__)

SOS, EOS = 0, 1
EMBED_KEYS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")


class PointerHead(nn.Module):
    """Source features for the pointer scores: (MLP(enc) + emb) / 2, or (enc + emb) / 2."""

    def __init__(self, dim, use_mlp, dropout):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)) if use_mlp else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, enc, emb):
        if self.mlp is not None:
            enc = self.mlp(enc)
        return self.dropout((enc + emb) / 2)


@register_model("bartner")
class BartNerModel(BARTModel):
    @staticmethod
    def add_args(parser):
        BARTModel.add_args(parser)
        parser.add_argument("--no-pointer-mlp", action="store_true",
                            help="score pointers against (encoder state + token embedding) / 2 without "
                                 "BARTNER's 2-layer MLP on the encoder states (its ShARe13 setting)")
        parser.add_argument("--pointer-dropout", type=float, metavar="D",
                            help="dropout on the decoder state and source features of the pointer head (BARTNER: 0.3)")
        parser.add_argument("--sdpa-attention", action="store_true",
                            help="the fast path's attention layers (as --arch biobart_base; same parameters, "
                                 "so checkpoints load either way)")

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        if getattr(args, "sdpa_attention", False):
            return build_sdpa_encoder(args, src_dict, embed_tokens)
        return super().build_encoder(args, src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        if getattr(args, "sdpa_attention", False):
            return build_sdpa_decoder(args, tgt_dict, embed_tokens)
        return super().build_decoder(args, tgt_dict, embed_tokens)

    @classmethod
    def build_model(cls, args, task):
        model = super().build_model(args, task)
        for attr in ("type_token_ids", "type_name_ids"):
            if not hasattr(task, attr):
                raise ValueError(f"--arch {args.arch} needs the bartner_ner task (task {type(task).__name__} has no {attr})")
        model.setup_ner(task.type_token_ids, task.type_name_ids, not args.no_pointer_mlp, args.pointer_dropout)
        return model

    def setup_ner(self, type_token_ids, type_name_ids, use_mlp=True, dropout=0.3):
        """Attach the pointer head and initialise the type rows from their names' BPE."""
        self.n_types = len(type_token_ids)
        # not persistent: a plain BART checkpoint has no such buffer, and the ids are the task's
        self.register_buffer("type_ids", torch.LongTensor(type_token_ids), persistent=False)
        self.type_name_ids = [list(ids) for ids in type_name_ids]
        self.pointer_head = PointerHead(self.decoder.embed_tokens.embedding_dim, use_mlp, dropout)
        self.head_dropout = nn.Dropout(dropout)
        self.bos_idx = self.encoder.dictionary.bos()
        self.pad_idx = self.encoder.dictionary.pad()
        with torch.no_grad():
            self._init_type_rows(self.decoder.embed_tokens.weight, range(len(self.encoder.dictionary)))

    def _init_type_rows(self, weight, rows_to_set):
        rows_to_set = set(rows_to_set)
        for tid, name_ids in zip(self.type_ids.tolist(), self.type_name_ids):
            if tid in rows_to_set and name_ids:
                weight[tid] = weight[torch.LongTensor(name_ids)].mean(0)

    def upgrade_state_dict_named(self, state_dict, name):
        """Grow a BART checkpoint's embeddings by the type rows; add the pointer head."""
        prefix = name + "." if name else ""
        n_dict = len(self.encoder.dictionary)
        grown_by_source = {}  # tied matrices (shared embeddings) must stay identical
        for key in EMBED_KEYS:
            w = state_dict.get(prefix + key)
            if w is None or w.size(0) >= n_dict:
                continue
            if w.data_ptr() in grown_by_source:
                state_dict[prefix + key] = grown_by_source[w.data_ptr()]
                continue
            n_old = w.size(0)
            if any(i >= n_old for ids in self.type_name_ids for i in ids):
                raise ValueError(f"{key}: the checkpoint's {n_old} rows do not cover the BPE of the type names; "
                                 "was the data's dict.txt made for another model?")
            grown = w.new_zeros(n_dict, w.size(1))
            grown[:n_old] = w
            # rows that are neither the checkpoint's nor a type (e.g. <mask> for a model
            # without one): BART's own init, N(0, d^-1/2)
            nn.init.normal_(grown[n_old:], mean=0, std=w.size(1) ** -0.5)
            self._init_type_rows(grown, range(n_old, n_dict))
            state_dict[prefix + key] = grown_by_source[w.data_ptr()] = grown
            logger.info(f"{key}: {n_old} -> {n_dict} rows (type tokens initialised from their names' BPE)")
        if hasattr(self, "pointer_head"):
            for k, v in self.pointer_head.state_dict().items():
                state_dict.setdefault(prefix + "pointer_head." + k, v)
        super().upgrade_state_dict_named(state_dict, name)

    # ------------------------------------------------------------------ scoring

    def decoder_ids(self, prev_output_tokens, src_tokens):
        """BARTNER indices -> BART ids (sos -> <s>, eos -> </s>, types, pointers, -1 -> <pad>)."""
        off = self.n_types + 2
        p = prev_output_tokens
        ptr = (p - off).clamp(min=0, max=src_tokens.size(1) - 1)
        ids = src_tokens.gather(1, ptr)
        types = self.type_ids[(p - 2).clamp(min=0, max=self.n_types - 1)]
        ids = torch.where(p < off, types, ids)
        ids = torch.where(p == EOS, torch.full_like(p, self.eos), ids)
        ids = torch.where(p == SOS, torch.full_like(p, self.bos_idx), ids)
        return torch.where(p < 0, torch.full_like(p, self.pad_idx), ids)

    def source_features(self, encoder_out, src_tokens):
        enc = encoder_out["encoder_out"][0].transpose(0, 1)  # (B, S, D)
        return self.pointer_head(enc, self.encoder.embed_tokens(src_tokens))

    @staticmethod
    def pointer_positions(src_tokens, src_lengths):
        """(B, S) True at source positions that hold a word's BPE (not <s>, </s>, pad)."""
        pos = torch.arange(src_tokens.size(1), device=src_tokens.device)[None, :]
        return (pos >= 1) & (pos < (src_lengths - 1)[:, None])

    def scores(self, h, src_feat, ptr_ok):
        """Logits (B, T, 2 + C + S) over BARTNER's index space, in float32."""
        h = self.head_dropout(h)
        emb = self.decoder.embed_tokens.weight
        eos = h @ emb[self.eos].unsqueeze(-1)
        types = h @ emb[self.type_ids].t()
        ptr = torch.einsum("btd,bsd->bts", h, src_feat).float()
        ptr = ptr.masked_fill(~ptr_ok[:, None, :], float("-inf"))
        sos = torch.full_like(eos, float("-inf"), dtype=torch.float)
        return torch.cat([sos, eos.float(), types.float(), ptr], dim=-1)

    def forward(self, src_tokens, src_lengths, prev_output_tokens, **unused):
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        h, extra = self.decoder(self.decoder_ids(prev_output_tokens, src_tokens), encoder_out=encoder_out,
                                features_only=True, src_lengths=src_lengths)
        src_feat = self.source_features(encoder_out, src_tokens)
        return self.scores(h, src_feat, self.pointer_positions(src_tokens, src_lengths)), extra

    # ------------------------------------------------------------------ decoding

    def allowed(self, n_open, last_ptr, ptr_ok, word_first, word_last, target_type):
        """(N, V) mask of the indices that keep each hypothesis a well-formed target."""
        n, s = ptr_ok.shape
        off = self.n_types + 2
        ok = torch.zeros(n, off + s, dtype=torch.bool, device=ptr_ok.device)
        ok[:, EOS] = n_open == 0
        type_ok = n_open >= 1
        if target_type == "span":
            type_ok &= n_open % 2 == 0
        ok[:, 2:off] = type_ok[:, None]
        pos = torch.arange(s, device=ptr_ok.device)[None, :]
        if target_type == "word":
            ptr = ptr_ok & word_first & (pos > last_ptr[:, None])
        elif target_type == "span":
            boundary = torch.where((n_open % 2 == 0)[:, None], word_first, word_last)
            ptr = ptr_ok & boundary & (pos >= last_ptr[:, None])
        else:
            ptr = ptr_ok & (pos > last_ptr[:, None])
        ok[:, off:] = ptr
        return ok

    @staticmethod
    def output_positions(src_lengths, max_len_a, max_len_b):
        """Indices a hypothesis may have after sos, its eos included, per sentence.

        BARTNER's generator stops its sequences, sos counted, at ``max_length + int(max_len_a *
        source length)`` (source with ``<s>`` and ``</s>``; the product in float32, as it computes
        it), the last of them a forced eos: one position fewer after sos.
        """
        limit = (src_lengths.float() * max_len_a).long() + max_len_b
        return (limit - 1).clamp(min=1)

    @torch.no_grad()
    def generate(self, src_tokens, src_lengths, word_first, word_last, target_type="word", beam=1,
                 max_len_a=0.6, max_len_b=10, len_penalty=1.0):
        """Best index sequence (no sos, always eos-terminated) per sentence.

        A hypothesis has at most :meth:`output_positions` indices, the last a forced eos, as in
        BARTNER's generator.  Each step the decoder reads only the newest index
        (``incremental_state``); the beams live in tensors and the host syncs only to test the stop.
        Per sentence, the 2k best candidates are read best first: an eos among the k best ends a
        hypothesis (score: summed log-probabilities / length ** ``len_penalty``, length counting the
        eos), other candidates fill the k beams; a sentence is done when k hypotheses ended or no
        beam is left.  Its best ended hypothesis wins, the earlier one on a tie.
        """
        bsz, k = src_tokens.size(0), beam
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        src_feat = self.source_features(encoder_out, src_tokens)
        order = torch.arange(bsz, device=src_tokens.device).repeat_interleave(k)
        st = _BeamState(self, bsz, k, src_tokens, src_lengths, word_first, word_last, src_feat, order,
                        self.output_positions(src_lengths, max_len_a, max_len_b), target_type, len_penalty)
        encoder_out = self.encoder.reorder_encoder_out(encoder_out, order)
        incremental_state = {}
        check_every = 1 if src_tokens.device.type == "cpu" else 4  # a stop test is a host sync on GPU
        for step in range(st.n_steps):
            h, _ = self.decoder(self.decoder_ids(st.tokens, st.src), encoder_out=encoder_out,
                                incremental_state=incremental_state, features_only=True)
            lprobs = st.step_lprobs(self.scores(h[:, -1:], st.feat, st.ptr_ok)[:, 0], step)
            rows = st.advance(lprobs, step)
            # rows stay within each sentence's block of k beams, whose encoder states are equal:
            # only the decoder's cached self-attention states need reordering
            self.decoder.reorder_incremental_state_scripting(incremental_state, rows)
            if (step + 1) % check_every == 0 and bool(st.done.all()):
                break
        return st.best()


class _BeamState:
    """Tensor bookkeeping of :meth:`BartNerModel.generate`: beams, their constraint state
    (open pointers, last pointer) and the best ended hypothesis of each sentence."""

    def __init__(self, model, bsz, k, src_tokens, src_lengths, word_first, word_last, src_feat, order, limit,
                 target_type, len_penalty):
        dev = src_tokens.device
        self.model, self.bsz, self.k, self.target_type, self.len_penalty = model, bsz, k, target_type, len_penalty
        self.off = model.n_types + 2
        self.src, self.feat = src_tokens[order], src_feat[order]
        self.ptr_ok = model.pointer_positions(src_tokens, src_lengths)[order]
        self.first, self.last = word_first.to(dev)[order], word_last.to(dev)[order]
        self.limit = limit[order]
        self.n_steps = int(limit.max())  # the one sync before the loop
        self.tokens = torch.full((bsz * k, 1), SOS, dtype=torch.long, device=dev)
        self.scores = torch.full((bsz, k), float("-inf"), device=dev)
        self.scores[:, 0] = 0
        self.n_open = torch.zeros(bsz * k, dtype=torch.long, device=dev)
        self.last_ptr = torch.full((bsz * k,), -1, dtype=torch.long, device=dev)
        self.n_ended = torch.zeros(bsz, dtype=torch.long, device=dev)
        self.done = torch.zeros(bsz, dtype=torch.bool, device=dev)
        self.best_score = torch.full((bsz,), float("-inf"), device=dev)
        self.best_seq = torch.full((bsz, self.n_steps), EOS, dtype=torch.long, device=dev)
        self.best_len = torch.zeros(bsz, dtype=torch.long, device=dev)
        self.block = torch.arange(bsz, device=dev)[:, None] * k

    def step_lprobs(self, logits, step):
        """Log-probabilities restricted to well-formed continuations; eos alone at the limit."""
        mask = self.model.allowed(self.n_open, self.last_ptr, self.ptr_ok, self.first, self.last, self.target_type)
        eos_only = torch.zeros_like(mask)
        eos_only[:, EOS] = True
        mask = torch.where((self.limit == step + 1)[:, None], eos_only, mask)
        return F.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)

    def advance(self, lprobs, step):
        """One step for every sentence at once; returns the rows the new beams come from."""
        k, vocab = self.k, lprobs.size(1)
        cand = (self.scores.view(-1, 1) + lprobs).view(self.bsz, k * vocab)
        top_s, top_i = cand.topk(min(2 * k, k * vocab), dim=1)
        beam_of, tok = top_i // vocab, top_i % vocab
        rank = torch.arange(top_s.size(1), device=top_s.device)[None, :]
        valid = top_s > float("-inf")
        is_eos = tok == EOS
        end = is_eos & valid & (rank < k)  # as fairseq: only an eos among the k best ends a hypothesis
        pick = ~is_eos & valid
        # candidates are read best first and reading stops once k hypotheses ended or k beams are filled
        stop = (end & (self.n_ended[:, None] + end.cumsum(1) >= k)) | (pick & (pick.cumsum(1) == k))
        read = (stop.cumsum(1) - stop.long()) == 0
        end, pick = end & read, pick & read
        self._keep_best(top_s, beam_of, end, step)
        self.n_ended += end.sum(1)
        self.done |= (self.n_ended >= k) | ~pick.any(1)
        return self._fill_beams(top_s, beam_of, tok, pick)

    def _keep_best(self, top_s, beam_of, end, step):
        norm = torch.where(end, top_s / float(step + 1) ** self.len_penalty, torch.full_like(top_s, float("-inf")))
        best, _ = norm.max(1)
        rank = torch.arange(norm.size(1), device=norm.device)[None, :]
        at = torch.where(end & (norm == best[:, None]), rank, norm.size(1)).min(1).values.clamp(max=norm.size(1) - 1)
        better = best > self.best_score
        row = self.block[:, 0] + beam_of.gather(1, at[:, None])[:, 0]
        seq = torch.cat([self.tokens[row, 1:], torch.full_like(row[:, None], EOS)], dim=1)
        self.best_seq[:, : step + 1] = torch.where(better[:, None], seq, self.best_seq[:, : step + 1])
        self.best_len = torch.where(better, torch.full_like(self.best_len, step + 1), self.best_len)
        self.best_score = torch.where(better, best, self.best_score)

    def _fill_beams(self, top_s, beam_of, tok, pick):
        k = self.k
        slot = torch.where(pick, pick.cumsum(1) - 1, torch.full_like(tok, k))  # slot k: discarded
        src_beam = torch.zeros(self.bsz, k + 1, dtype=torch.long, device=tok.device).scatter(1, slot, beam_of)
        new_tok = torch.full((self.bsz, k + 1), SOS, dtype=torch.long, device=tok.device).scatter(1, slot, tok)
        new_s = torch.full((self.bsz, k + 1), float("-inf"), device=tok.device).scatter(1, slot, top_s)
        # a finished sentence keeps k dead beams (score -inf): they never produce a candidate
        new_s = torch.where(self.done[:, None], float("-inf"), new_s[:, :k])
        rows = (self.block + src_beam[:, :k]).view(-1)
        new_tok = new_tok[:, :k].reshape(-1)
        self.tokens = torch.cat([self.tokens[rows], new_tok[:, None]], dim=1)
        self.scores = new_s
        is_ptr = new_tok >= self.off
        self.n_open = torch.where(is_ptr, self.n_open[rows] + 1, torch.zeros_like(self.n_open))
        self.last_ptr = torch.where(is_ptr, new_tok - self.off, torch.full_like(self.last_ptr, -1))
        return rows

    def best(self):
        lens = self.best_len.tolist()
        return [seq[:n] for seq, n in zip(self.best_seq.tolist(), lens)]


def _bartner_defaults(args):
    args.no_pointer_mlp = getattr(args, "no_pointer_mlp", False)
    if getattr(args, "pointer_dropout", None) is None:
        args.pointer_dropout = 0.3


@register_model_architecture("bartner", "bartner_base")
def bartner_base_architecture(args):
    bart_base_architecture(args)
    _bartner_defaults(args)


@register_model_architecture("bartner", "bartner_large")
def bartner_large_architecture(args):
    bart_large_architecture(args)
    _bartner_defaults(args)

