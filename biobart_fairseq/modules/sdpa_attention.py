"""Multi-head attention through ``torch.nn.functional.scaled_dot_product_attention``.

A subclass of fairseq's ``MultiheadAttention`` with the same parameters (``q_proj``,
``k_proj``, ``v_proj``, ``out_proj``: checkpoints load unchanged) and the same
incremental-state layout (``prev_key``/``prev_value`` as ``(bsz, heads, len, head_dim)``,
``prev_key_padding_mask``), so fairseq's ``reorder_incremental_state``, beam-shared
cross-attention keys (``set_beam_size``) and the sequence generator work as they are.

Why not fairseq's own path: it reaches ``F.multi_head_attention_forward`` only for
self-attention without a cache; cross-attention (``static_kv``) and every incremental step
take an explicit ``bmm`` → fp32 softmax → ``bmm`` path that materialises the full
``(B·H, T, S)`` score tensor, and the causal mask is passed as a float tensor, which rules
out the flash kernels on GPU.  Here every case is one SDPA call; a decoder's causal
self-attention is declared with ``is_causal`` (flash-eligible) instead of a mask tensor.

Attention weights are computed (explicitly, as fairseq does) only when asked for outside
training — generation with ``--print-alignment``, or a model in eval mode whose caller
needs them.  In training they are not returned: no criterion of this plugin reads them,
and computing them would defeat the fused kernels.
"""

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from fairseq.modules import MultiheadAttention
from torch import Tensor


class SdpaMultiheadAttention(MultiheadAttention):
    """fairseq ``MultiheadAttention`` with an SDPA core; ``causal=True`` marks a decoder's
    self-attention, whose future mask the decoder then does not need to build."""

    def __init__(self, *args, causal: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if self.bias_k is not None or self.add_zero_attn or self.use_xformers:
            raise ValueError("SdpaMultiheadAttention supports neither add_bias_kv, add_zero_attn nor xformers")
        self.causal = causal

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor],
        value: Optional[Tensor],
        key_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        need_weights: bool = True,
        static_kv: bool = False,
        attn_mask: Optional[Tensor] = None,
        before_softmax: bool = False,
        need_head_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        if before_softmax:
            raise NotImplementedError("before_softmax is not supported by the SDPA attention")
        tgt_len, bsz, _ = query.size()
        saved_state = self._get_input_buffer(incremental_state) if incremental_state is not None else None
        if saved_state is not None and "prev_key" in saved_state and static_kv:
            key = value = None  # cached encoder keys/values are reused

        q, k, v, key_padding_mask = self._project(query, key, value, key_padding_mask, bsz)
        if saved_state is not None:
            k, v, key_padding_mask = self._extend_cache(saved_state, k, v, key_padding_mask, static_kv)
            incremental_state = self._set_input_buffer(incremental_state, saved_state)
        kv_bsz = k.size(0)
        src_len = k.size(2)
        # (bsz, H, T, D) queries; with beam-shared keys (kv_bsz < bsz) the beams of one
        # sentence are laid side by side along the query axis so they meet the same keys.
        beams = bsz // kv_bsz
        q = q.view(kv_bsz, beams, self.num_heads, tgt_len, self.head_dim)
        q = q.transpose(1, 2).reshape(kv_bsz, self.num_heads, beams * tgt_len, self.head_dim)

        mask, is_causal = self._sdpa_mask(attn_mask, key_padding_mask, tgt_len, src_len, beams, q)
        dropout_p = self.dropout_module.p if (self.training or self.dropout_module.apply_during_inference) else 0.0
        want_weights = (need_weights or need_head_weights) and not self.training
        if want_weights:
            out, weights = self._explicit_attention(q, k, v, mask, is_causal, dropout_p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)
            weights = None
        # (kv_bsz, H, beams*T, D) -> (T, bsz, C)
        out = out.view(kv_bsz, self.num_heads, beams, tgt_len, self.head_dim).permute(3, 0, 2, 1, 4)
        out = self.out_proj(out.reshape(tgt_len, bsz, self.embed_dim))
        if weights is not None:
            weights = weights.view(kv_bsz, self.num_heads, beams, tgt_len, src_len).transpose(1, 2)
            weights = weights.reshape(bsz, self.num_heads, tgt_len, src_len).transpose(1, 0)
            if not need_head_weights:
                weights = weights.mean(dim=0)
        return out, weights

    def _project(self, query, key, value, key_padding_mask, bsz):
        """q as (bsz, H, T, D); k, v as (kv_bsz, H, S, D) or None when they come from the cache."""
        if self.self_attention:
            key = value = query
        elif self.encoder_decoder_attention and key is not None and self.beam_size > 1 and bsz == key.size(1):
            # the encoder output repeats each sentence beam_size times: keep one copy
            key = value = key.view(key.size(0), -1, self.beam_size, key.size(2))[:, :, 0, :]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.view(-1, self.beam_size, key_padding_mask.size(1))[:, 0, :]
        q = self._heads(self.q_proj(query))
        if key is None:
            return q, None, None, key_padding_mask
        return q, self._heads(self.k_proj(key)), self._heads(self.v_proj(value)), key_padding_mask

    def _heads(self, x: Tensor) -> Tensor:
        """(T, B, C) -> (B, H, T, D)"""
        t, b, _ = x.size()
        return x.view(t, b, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def _extend_cache(self, saved_state, k, v, key_padding_mask, static_kv):
        """Append this step's keys/values to the cache (or reuse static ones), in fairseq's layout."""
        if "prev_key" in saved_state:
            prev_k, prev_v = saved_state["prev_key"], saved_state["prev_value"]
            if static_kv:
                k, v = prev_k, prev_v
            else:
                k, v = torch.cat([prev_k, k], dim=2), torch.cat([prev_v, v], dim=2)
        key_padding_mask = MultiheadAttention._append_prev_key_padding_mask(
            key_padding_mask=key_padding_mask,
            prev_key_padding_mask=saved_state.get("prev_key_padding_mask"),
            batch_size=k.size(0),
            src_len=k.size(2),
            static_kv=static_kv,
        )
        saved_state["prev_key"], saved_state["prev_value"] = k, v
        saved_state["prev_key_padding_mask"] = key_padding_mask
        return k, v, key_padding_mask

    def _sdpa_mask(self, attn_mask, key_padding_mask, tgt_len, src_len, beams, q):
        """One mask for SDPA (True = may attend, or an additive float mask), and is_causal."""
        causal = self.causal and tgt_len > 1
        if attn_mask is None and key_padding_mask is None:
            if causal and tgt_len == src_len:
                return None, True
            if not causal:
                return None, False
        allowed = None
        if key_padding_mask is not None and key_padding_mask.dim() == 2:
            allowed = ~key_padding_mask.to(torch.bool)[:, None, None, :]  # (kv_bsz, 1, 1, S)
        if causal:
            # queries are the last tgt_len positions of the src_len keys
            pos = torch.arange(src_len, device=q.device)
            future = pos[None, :] > pos[src_len - tgt_len:, None]
            future = future.repeat(beams, 1) if beams > 1 else future
            allowed = ~future if allowed is None else allowed & ~future
        if attn_mask is not None:
            add = attn_mask.to(q.dtype) if attn_mask.is_floating_point() else attn_mask.to(torch.bool)
            if beams > 1:
                add = add.repeat(beams, 1)
            if not add.is_floating_point():
                allowed = add if allowed is None else allowed & add
            else:
                if allowed is not None:
                    add = add.masked_fill(~allowed, float("-inf"))
                return add, False
        return allowed, False

    def _explicit_attention(self, q, k, v, mask, is_causal, dropout_p):
        """Attention that also returns its fp32 probabilities (for alignment outputs)."""
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling
        if is_causal:
            t, s = scores.shape[-2:]
            mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        probs = torch.softmax(scores.float(), dim=-1)
        out = torch.matmul(F.dropout(probs.type_as(q), p=dropout_p, training=dropout_p > 0), v)
        return out, probs
