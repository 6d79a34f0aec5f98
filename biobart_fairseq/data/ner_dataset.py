"""fairseq dataset of BARTNER examples: BPE source ids + pointer/type target indices.

Targets live in BARTNER's index space (see :mod:`ner_targets`), not in the dictionary, so
the collater builds batches itself: sources are padded on the *right* (pointer j must be
source position j in every row; fairseq's translation collater pads sources on the left),
targets and decoder inputs are padded with ``IDX_PAD`` (-1), which the criterion ignores
and the model maps to ``<pad>`` so the decoder masks those positions.
"""

import numpy as np
import torch
from fairseq.data import FairseqDataset

from .ner_targets import SOS, WordPositions, encode_entities

IDX_PAD = -1


def word_encoder(bpe, kind, dictionary):
    """``word -> [dictionary ids]`` for BARTNER sources: each word is encoded on its own.

    GPT-2 words get a leading space (BART's tokenizer with ``add_prefix_space=True``, as in
    BARTNER), so every word starts with a word-initial token; sentencepiece adds its ``▁``
    itself.  ``kind`` is ``bpe.json``'s ``type``.
    """

    def encode(word):
        text = word if kind == "sentencepiece" else " " + word
        return dictionary.encode_line(bpe.encode(text), add_if_not_exist=False, append_eos=False).tolist()

    return encode


def encode_sentence(sent, encode_word, dictionary, type_index, target_type, max_source_positions=1024):
    """One canonical sentence -> example dict (source ids, target indices, word positions).

    Words that do not fit in ``max_source_positions`` are cut, with the entities that touch
    them (counted in ``example["truncated_entities"]``).
    """
    pieces = [encode_word(w) or [dictionary.unk()] for w in sent["tokens"]]
    budget, keep = max_source_positions - 2, 0
    for p in pieces:
        if budget < len(p):
            break
        budget -= len(p)
        keep += 1
    pieces = pieces[:keep]
    ents = [e for e in sent["entities"] if max(b for _, b in e["spans"]) <= keep]
    wp = WordPositions([len(p) for p in pieces])
    src = [dictionary.bos()] + [i for p in pieces for i in p] + [dictionary.eos()]
    target = encode_entities(ents, wp, type_index, target_type)
    return {
        "source": torch.LongTensor(src),
        "target": torch.LongTensor(target),
        "wp": wp,
        "entities": sent["entities"],
        "tokens": sent["tokens"],
        "truncated_entities": len(sent["entities"]) - len(ents),
    }


def word_boundary_masks(examples, width):
    """(first, last) BoolTensors (B, width): source positions that begin / end a word."""
    first = torch.zeros(len(examples), width, dtype=torch.bool)
    last = torch.zeros(len(examples), width, dtype=torch.bool)
    for i, ex in enumerate(examples):
        first[i, ex["wp"].first] = True
        last[i, ex["wp"].last] = True
    return first, last


class NerDataset(FairseqDataset):
    def __init__(self, examples, pad_idx):
        self.examples = examples
        self.pad_idx = pad_idx
        self.src_sizes = np.array([len(e["source"]) for e in examples], dtype=np.int64)
        self.tgt_sizes = np.array([len(e["target"]) + 1 for e in examples], dtype=np.int64)

    def __getitem__(self, index):
        ex = self.examples[index]
        return {"id": index, "source": ex["source"], "target": ex["target"]}

    def __len__(self):
        return len(self.examples)

    def num_tokens(self, index):
        return max(self.src_sizes[index], self.tgt_sizes[index])

    def num_tokens_vec(self, indices):
        return np.maximum(self.src_sizes[indices], self.tgt_sizes[indices])

    def size(self, index):
        return (self.src_sizes[index], self.tgt_sizes[index])

    @property
    def sizes(self):
        return np.maximum(self.src_sizes, self.tgt_sizes)

    def ordered_indices(self):
        # by target then source length, like fairseq's LanguagePairDataset: less padding
        order = np.argsort(self.tgt_sizes, kind="mergesort")
        return order[np.argsort(self.src_sizes[order], kind="mergesort")]

    @property
    def supports_prefetch(self):
        return False

    def collater(self, samples):
        if not samples:
            return {}
        n, s = len(samples), max(len(x["source"]) for x in samples)
        t = max(len(x["target"]) for x in samples)
        src = torch.full((n, s), self.pad_idx, dtype=torch.long)
        tgt = torch.full((n, t), IDX_PAD, dtype=torch.long)
        prev = torch.full((n, t), IDX_PAD, dtype=torch.long)
        for i, x in enumerate(samples):
            src[i, : len(x["source"])] = x["source"]
            tgt[i, : len(x["target"])] = x["target"]
            prev[i, 0] = SOS  # teacher forcing: sos, then the target shifted right
            prev[i, 1 : len(x["target"])] = x["target"][:-1]
        examples = [self.examples[x["id"]] for x in samples]
        first, last = word_boundary_masks(examples, s)
        return {
            "id": torch.LongTensor([x["id"] for x in samples]),
            "nsentences": n,
            "ntokens": int((tgt != IDX_PAD).sum()),
            "net_input": {
                "src_tokens": src,
                "src_lengths": torch.LongTensor([len(x["source"]) for x in samples]),
                "prev_output_tokens": prev,
            },
            "target": tgt,
            "word_first": first,
            "word_last": last,
            # what validation needs to score decoded output: word positions, gold entities, and for
            # BARTNER's counting the gold target and the entities cut by --max-source-positions
            "ner_examples": [{k: ex[k] for k in ("wp", "entities", "target", "truncated_entities")} for ex in examples],
        }


def folder_encoder(data_dir, target_type, max_source_positions=1024):
    """``(types, sentences -> examples)`` from a ``biobart-prepare-ner`` folder (``ner.json``,
    ``dict.txt``, ``bpe.json``): the targets the ``bartner_ner`` task would train on."""
    import json
    import os

    from fairseq.data import Dictionary

    from .bpe import build as build_bpe
    from .bpe import read_info as load_bpe_info

    with open(os.path.join(data_dir, "ner.json"), encoding="utf-8") as f:
        types = json.load(f)["types"]
    dictionary = Dictionary.load(os.path.join(data_dir, "dict.txt"))
    info = load_bpe_info(os.path.join(data_dir, "bpe.json"))
    encode_word = word_encoder(build_bpe(info), info["type"], dictionary)
    type_index = {t: i for i, t in enumerate(types)}

    def encode(sentences):
        return [encode_sentence(s, encode_word, dictionary, type_index, target_type, max_source_positions)
                for s in sentences]

    return types, encode
