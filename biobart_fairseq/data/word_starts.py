"""Which dictionary entries begin a word, from local BPE files (never a URL).

Whole-word masking needs, for every id in ``dict.txt``, whether that token starts a new
word.  fairseq's stock denoising task builds this table from the *name* of the BPE with
its default settings, which means downloading GPT-2's files or failing for sentencepiece.
The data folder's ``bpe.json`` (or fairseq's ``--bpe`` flags, see
:func:`biobart_fairseq.data.bpe.resolve_info`) names the BPE; this module reads its files:

* ``{"type": "sentencepiece", ...}``: dictionary symbols are the pieces themselves, so a
  symbol starting with U+2581 (the sentencepiece space) starts a word; byte-fallback
  pieces (``<0xE2>``) continue one.
* ``{"type": "gpt2", "encoder_json": "encoder.json", ...}``: dictionary symbols are GPT-2
  ids; a token starts a word when its byte-level string begins with ``Ġ`` (a space).

Special symbols (``<s>``, ``<pad>``, ``</s>``, ``<unk>``, ``<mask>``) and fairseq's
``madeupword`` fillers count as word starts so they are never glued to a neighbour.
"""

import json
import os
import re

from .bpe import BpeError as BpeInfoError  # noqa: F401  (the record is data/bpe.py's)
from .bpe import read_info as load_bpe_info  # noqa: F401

SPM_SPACE = "\u2581"
SPM_BYTE = re.compile(r"<0x[0-9A-F]{2}>")
GPT2_SPACE = "\u0120"  # 'Ġ': the byte-level BPE's stand-in for a leading space


def word_start_table(dictionary, bpe_info):
    """BoolTensor of len(dictionary): True where the symbol begins a word."""
    import torch

    kind = bpe_info["type"]
    if kind == "gpt2":
        enc_path = bpe_info.get("encoder_json")
        if not enc_path or not os.path.isfile(enc_path):
            raise BpeInfoError(f"gpt2 word boundaries need encoder.json; not found: {enc_path}")
        with open(enc_path, encoding="utf-8") as f:
            id_to_token = {v: k for k, v in json.load(f).items()}

    table = torch.ones(len(dictionary), dtype=torch.bool)
    for idx in range(dictionary.nspecial, len(dictionary)):
        sym = dictionary[idx]
        if kind == "sentencepiece" and SPM_BYTE.fullmatch(sym):
            table[idx] = False  # byte-fallback piece: part of the word it spells
            continue
        if sym.startswith("<") and sym.endswith(">"):
            continue  # e.g. <mask>
        if sym.startswith("madeupword"):
            continue
        if kind == "sentencepiece":
            table[idx] = sym.startswith(SPM_SPACE)
        else:
            try:
                token = id_to_token[int(sym)]
            except (ValueError, KeyError):
                continue  # not a GPT-2 id: leave it a word of its own
            table[idx] = token.startswith(GPT2_SPACE)
    return table
