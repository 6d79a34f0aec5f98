"""``--arch biobart_base`` / ``biobart_large``: fairseq's BART with a fast training path.

Same hyper-parameters as fairseq's ``bart_base``/``bart_large`` (every ``--encoder-layers``
style override still works) and exactly the same parameter names and shapes, so a stock
BART checkpoint loads with ``--restore-file``/``--finetune-from-model``, a ``biobart_*``
checkpoint loads as ``bart_*`` (and into ``biobart-convert``), and every task that runs on
BART runs on it.  What changes is inside the layers:

* attention is one ``scaled_dot_product_attention`` call for self-, causal self- and
  cross-attention, in training and incremental decoding (flash / memory-efficient kernels
  on GPU; :mod:`biobart_fairseq.modules.sdpa_attention`);
* the decoder declares its self-attention causal instead of building a float
  ``-inf`` mask, so the kernels can skip the masked half;
* GELU runs in the activations' dtype (fairseq upcasts every FFN activation to fp32 and
  back; in fp32 the result is identical).

Pair it with ``--criterion fused_cross_entropy`` (never materialises fp32 log-probabilities
over the vocabulary) and ``--optimizer torch_adamw`` (torch's fused AdamW) for the full
fast path; ``examples/pretrain/pretrain.sh`` does (``FAST=0`` switches back to stock).

Generation with ``--bf16`` (``fairseq-generate``, ``fairseq-interactive``) runs the model in
bfloat16; stock fairseq ignores the flag there and runs fp32 (see :mod:`biobart_fairseq.compat`).

Not supported (refused when configured): ``--cross-self-attention``, xformers attention,
``full_context_alignment`` (alignment training).  In training the decoder returns no
attention weights (``extra["attn"] == [None]``).
"""

import torch.nn.functional as F
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.bart import BARTModel
from fairseq.models.bart.model import bart_base_architecture, bart_large_architecture
from fairseq.models.transformer import TransformerConfig, TransformerDecoderBase, TransformerEncoderBase
from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase
from fairseq.modules.checkpoint_activations import checkpoint_wrapper

from .. import compat
from ..modules.sdpa_attention import SdpaMultiheadAttention


def _gelu(x):
    return F.gelu(x)


def _fast_activation(layer, cfg):
    if cfg.activation_fn == "gelu":
        layer.activation_fn = _gelu


def _wrap(layer, cfg):
    """Activation checkpointing and FSDP wrapping exactly as fairseq's build_*_layer do."""
    if cfg.checkpoint_activations:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    return fsdp_wrap(layer, min_num_params=cfg.min_params_to_wrap if not cfg.checkpoint_activations else 0)


class SdpaEncoderLayer(TransformerEncoderLayerBase):
    def __init__(self, cfg, return_fc=False):
        super().__init__(cfg, return_fc=return_fc)
        _fast_activation(self, cfg)

    def build_self_attention(self, embed_dim, cfg):
        return SdpaMultiheadAttention(
            embed_dim, cfg.encoder.attention_heads, dropout=cfg.attention_dropout, self_attention=True,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
        )


class SdpaDecoderLayer(TransformerDecoderLayerBase):
    def __init__(self, cfg, no_encoder_attn=False, add_bias_kv=False, add_zero_attn=False):
        if cfg.cross_self_attention:
            raise ValueError("--arch biobart_*: --cross-self-attention is not supported; use --arch bart_*")
        super().__init__(cfg, no_encoder_attn, add_bias_kv, add_zero_attn)
        _fast_activation(self, cfg)

    def build_self_attention(self, embed_dim, cfg, add_bias_kv=False, add_zero_attn=False):
        return SdpaMultiheadAttention(
            embed_dim, cfg.decoder.attention_heads, dropout=cfg.attention_dropout,
            add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn, self_attention=True, causal=True,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
        )

    def build_encoder_attention(self, embed_dim, cfg):
        return SdpaMultiheadAttention(
            embed_dim, cfg.decoder.attention_heads, kdim=cfg.encoder.embed_dim, vdim=cfg.encoder.embed_dim,
            dropout=cfg.attention_dropout, encoder_decoder_attention=True,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
        )


class SdpaTransformerEncoder(TransformerEncoderBase):
    def build_encoder_layer(self, cfg):
        return _wrap(SdpaEncoderLayer(cfg, return_fc=self.return_fc), cfg)


class SdpaTransformerDecoder(TransformerDecoderBase):
    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        return _wrap(SdpaDecoderLayer(cfg, no_encoder_attn), cfg)

    def buffered_future_mask(self, tensor):
        # The self-attention modules are causal by construction (is_causal in SDPA), so
        # the decoder passes no float mask that would keep the flash kernels out.
        return None

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None,
                         full_context_alignment=False, alignment_layer=None, alignment_heads=None):
        if full_context_alignment:
            raise NotImplementedError("--arch biobart_*: full_context_alignment is not supported; use --arch bart_*")
        return super().extract_features(
            prev_output_tokens, encoder_out, incremental_state,
            alignment_layer=alignment_layer, alignment_heads=alignment_heads,
        )


def build_sdpa_encoder(args, src_dict, embed_tokens):
    """A fairseq BART encoder with SDPA attention layers (for any BART-based model)."""
    cfg = TransformerConfig.from_namespace(args)
    if cfg.encoder.xformers_att_config:
        raise ValueError("SDPA attention: xformers attention is not supported")
    return SdpaTransformerEncoder(cfg, src_dict, embed_tokens)


def build_sdpa_decoder(args, tgt_dict, embed_tokens):
    """A fairseq BART decoder with SDPA attention layers (for any BART-based model)."""
    cfg = TransformerConfig.from_namespace(args)
    return SdpaTransformerDecoder(cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention)


@register_model("biobart")
class BioBartModel(BARTModel):
    """fairseq's BART, same parameters, with SDPA attention (see the module docstring)."""

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        return build_sdpa_encoder(args, src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        return build_sdpa_decoder(args, tgt_dict, embed_tokens)

    def prepare_for_inference_(self, cfg):
        """fairseq-generate / -interactive call this with their own config; with ``--bf16`` the
        model then really runs in bfloat16 (fairseq 0.12 casts only for ``--fp16``; compat.py)."""
        compat.cast_for_bf16_inference(self, cfg)
        super().prepare_for_inference_(cfg)


@register_model_architecture("biobart", "biobart_base")
def biobart_base_architecture(args):
    bart_base_architecture(args)


@register_model_architecture("biobart", "biobart_large")
def biobart_large_architecture(args):
    bart_large_architecture(args)
