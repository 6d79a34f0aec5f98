"""Converters between Hugging Face BART checkpoints and fairseq BART checkpoints.

See :mod:`biobart_fairseq.convert.hf_bart` and the ``biobart-convert`` command.
"""

from .hf_bart import ConversionError, FairseqMaxLength, fairseq_to_hf, hf_to_fairseq

__all__ = ["ConversionError", "FairseqMaxLength", "fairseq_to_hf", "hf_to_fairseq"]
