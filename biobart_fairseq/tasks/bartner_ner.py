"""``bartner_ner``: nested, flat and discontinuous NER as BARTNER pointer generation.

::

    fairseq-train DATA --user-dir biobart_fairseq --task bartner_ner --target-type word \\
        --arch bartner_base --criterion bartner_loss --finetune-from-model biobart/model.pt ...

``DATA`` is what ``biobart-prepare-ner`` writes: ``<split>.jsonl`` (canonical NER JSONL),
``ner.json`` (the entity types, in index order), ``dict.txt`` and ``bpe.json`` with its BPE
files.  Sentences are BPE-encoded word by word when a split is loaded (GPT-2 words with a
leading space, as BART's tokenizer with ``add_prefix_space=True``), so the same data folder
serves every target type.  The dictionary gets ``<mask>`` (so it matches a
denoising-pretrained checkpoint row for row) and one ``<<type>>`` token per entity type.

Validation also decodes (greedy unless ``--eval-beam``) and logs ``ner_f1``, micro F1 counted
as BARTNER's evaluation counts it (``--eval-metric bartner``, the default: index tuples, see
:mod:`biobart_fairseq.metrics.bartner_f1`) or by entities (``--eval-metric entity``: same type
and same words), so ``--best-checkpoint-metric ner_f1 --maximize-best-checkpoint-metric`` keeps
the best dev epoch, as BARTNER reports.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq import metrics, utils
from fairseq.data import Dictionary
from fairseq.data.encoders.gpt2_bpe import DEFAULT_ENCODER_JSON, DEFAULT_VOCAB_BPE
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from ..criterions import bartner_loss  # noqa: F401  (fairseq only auto-imports tasks/ and models/)
from ..data.ner_dataset import NerDataset, encode_sentence, word_encoder
from ..data.ner_formats import read_jsonl
from ..data.ner_targets import TARGET_TYPES, decode_target
from ..data.bpe import resolve_info
from ..metrics.bartner_f1 import BartnerCounts, gold_tuples, predicted_tuples
from ..metrics.entity_f1 import EntityCounts

NER_METRICS = ("bartner", "entity")

logger = logging.getLogger(__name__)


@dataclass
class BartNerConfig(FairseqDataclass):
    data: str = field(default="", metadata={"help": "folder written by biobart-prepare-ner (SPLIT.jsonl, ner.json, dict.txt, bpe.json)"})
    target_type: ChoiceEnum(TARGET_TYPES) = field(
        default="word",
        metadata={"help": "pointers per entity: word = first BPE of each word (paper), span = first/last BPE "
                          "of each fragment (BARTNER's GENIA setting), bpe = every BPE"},
    )
    bpe_info: str = field(default="", metadata={"help": "bpe.json of the BPE (default: DATA/bpe.json)"})
    # fairseq's own BPE flags (same names, so they share fairseq's options): used when DATA has no bpe.json
    bpe: Optional[str] = field(default=None, metadata={"help": "gpt2 or sentencepiece, with the file flags below"})
    # (fairseq's defaults: these options are shared, whichever defines them first; URLs are refused, not fetched)
    gpt2_encoder_json: str = field(default=DEFAULT_ENCODER_JSON, metadata={"help": "--bpe gpt2: local encoder.json"})
    gpt2_vocab_bpe: str = field(default=DEFAULT_VOCAB_BPE, metadata={"help": "--bpe gpt2: local vocab.bpe"})
    sentencepiece_model: Optional[str] = field(default=None, metadata={"help": "--bpe sentencepiece: local model"})
    max_source_positions: int = field(default=1024, metadata={"help": "longest source in BPE tokens incl. <s> </s>; longer sentences are cut"})
    max_target_positions: int = field(default=1024, metadata={"help": "longest target (indices incl. eos)"})
    eval_f1: bool = field(default=True, metadata={"help": "decode the validation set and log ner_f1"})
    eval_beam: int = field(default=1, metadata={"help": "beam size of the validation decoding (BARTNER: greedy)"})
    eval_metric: ChoiceEnum(NER_METRICS) = field(
        default="bartner",
        metadata={"help": "ner_f1 of the validation: bartner = BARTNER's counting of index tuples (compare with "
                          "the paper), entity = same type and same words"},
    )
    max_len_a: float = field(
        default=0.6,
        metadata={"help": "as BARTNER's generator: a hypothesis, sos and eos counted, has at most max_len_b + "
                          "int(max_len_a * source length) indices, the last a forced eos"},
    )
    max_len_b: int = field(default=10, metadata={"help": "see --max-len-a (BARTNER's max_length)"})


def type_token(name):
    return f"<<{name}>>"


@register_task("bartner_ner", dataclass=BartNerConfig)
class BartNerTask(FairseqTask):
    cfg: BartNerConfig

    def __init__(self, cfg, dictionary, types, bpe):
        super().__init__(cfg)
        self.dictionary = dictionary
        self.types = list(types)
        self.type_index = {t: i for i, t in enumerate(self.types)}
        self.bpe = bpe
        self.encode_word = word_encoder(bpe, bpe.kind, dictionary)
        self.type_token_ids = [dictionary.index(type_token(t)) for t in self.types]
        # the type token's embedding starts as the mean of its name's BPE ("cell_type" -> "cell type")
        self.type_name_ids = [[i for w in t.replace("_", " ").replace("-", " ").split() for i in self.encode_word(w)]
                              for t in self.types]

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        data = utils.split_paths(cfg.data)[0] if cfg.data else ""
        meta_path = os.path.join(data, "ner.json")
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{meta_path}: not found; write the data folder with biobart-prepare-ner")
        with open(meta_path, encoding="utf-8") as f:
            types = json.load(f)["types"]
        dict_path = os.path.join(data, "dict.txt")
        if not os.path.isfile(dict_path):
            raise FileNotFoundError(f"{dict_path}: not found; give biobart-prepare-ner the model's BPE (--bpe ... or --bpe-dir)")
        dictionary = Dictionary.load(dict_path)
        dictionary.add_symbol("<mask>")
        for t in types:
            dictionary.add_symbol(type_token(t))
        from ..data.bpe import build as build_bpe

        bpe_info, _ = resolve_info(data, cfg.bpe_info or None, cfg)  # DATA/bpe.json, else fairseq's --bpe flags
        bpe = build_bpe(bpe_info)
        bpe.kind = bpe_info["type"]
        logger.info(f"dictionary: {len(dictionary)} symbols incl. {len(types)} type tokens; bpe {bpe_info['type']}")
        return cls(cfg, dictionary, types, bpe)

    def encode(self, sentences):
        return [encode_sentence(s, self.encode_word, self.dictionary, self.type_index, self.cfg.target_type,
                                self.cfg.max_source_positions) for s in sentences]

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        path = os.path.join(utils.split_paths(self.cfg.data)[0], f"{split}.jsonl")
        if not os.path.isfile(path):
            hint = " (biobart-prepare-ner names splits after the input files: e.g. --valid-subset dev)" if split == "valid" else ""
            raise FileNotFoundError(f"{path}: not found (split {split!r}){hint}")
        sentences = read_jsonl(path)
        unknown = sorted({e["type"] for s in sentences for e in s["entities"]} - set(self.types))
        if unknown:
            raise ValueError(f"{path}: entity types {unknown} are not in ner.json {self.types}")
        examples = self.encode(sentences)
        cut = sum(e["truncated_entities"] for e in examples)
        if cut:
            logger.warning(f"{path}: {cut} entities beyond --max-source-positions {self.cfg.max_source_positions} dropped")
        self.datasets[split] = NerDataset(examples, self.dictionary.pad())
        logger.info(f"{path}: {len(examples)} sentences")

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    # ------------------------------------------------------------------ decoding

    def generate_batch(self, model, sample, beam=None, max_len_a=None, max_len_b=None):
        """Predicted index sequences (after sos, eos-ended) for the sentences of a collated batch."""
        net = sample["net_input"]
        return model.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                              target_type=self.cfg.target_type, beam=beam or self.cfg.eval_beam,
                              max_len_a=self.cfg.max_len_a if max_len_a is None else max_len_a,
                              max_len_b=self.cfg.max_len_b if max_len_b is None else max_len_b)

    def decode_batch(self, model, sample, examples, beam=None, max_len_a=None, max_len_b=None):
        """Predicted entities (canonical dicts) for the sentences of a collated batch."""
        seqs = self.generate_batch(model, sample, beam, max_len_a, max_len_b)
        return [decode_target(seq, ex["wp"], self.types, self.cfg.target_type) for seq, ex in zip(seqs, examples)]

    def decode_examples(self, model, examples, beam=None, max_len_a=None, max_len_b=None, batch_size=32,
                        progress=None):
        """The one decoding path (``biobart-ner-score --checkpoint``, :class:`~biobart_fairseq.inference.
        tagger.Tagger`): predicted index sequences of encoded examples, in input order, decoded in
        batches of similar length; ``progress`` (a :class:`biobart_fairseq.progress.Progress`) is
        advanced by the sentences of each batch."""
        import torch

        model.eval()
        dataset = NerDataset(examples, self.dictionary.pad())
        device = next(model.parameters()).device
        seqs = [None] * len(examples)
        order = dataset.ordered_indices()
        for i in range(0, len(order), batch_size):
            ids = order[i: i + batch_size].tolist()
            sample = dataset.collater([dataset[j] for j in ids])
            if device.type == "cuda":
                sample = utils.move_to_cuda(sample, device=device)
            with torch.no_grad():
                for j, seq in zip(ids, self.generate_batch(model, sample, beam, max_len_a, max_len_b)):
                    seqs[j] = seq
            if progress is not None:
                progress.update(len(ids))
        return seqs

    def predict(self, model, sentences, beam=None, max_len_a=None, max_len_b=None, batch_size=32, progress=None):
        """Canonical sentences with their ``entities`` replaced by the model's predictions and
        ``bartner`` = {"target_type", "seq": the predicted index sequence} for BARTNER's counting."""
        examples = self.encode(sentences)
        seqs = self.decode_examples(model, examples, beam, max_len_a, max_len_b, batch_size, progress)
        return [{**sent, "entities": decode_target(seq, ex["wp"], self.types, self.cfg.target_type),
                 "bartner": {"target_type": str(self.cfg.target_type), "seq": seq}}
                for sent, ex, seq in zip(sentences, examples, seqs)]

    def count_bartner(self, counts, examples, seqs):
        """Add a batch to :class:`BartnerCounts`: gold tuples from the encoded targets."""
        n_types = len(self.types)
        for ex, seq in zip(examples, seqs):
            pred = predicted_tuples(seq, n_types, self.cfg.target_type)
            counts.add_sentence(gold_tuples(ex["target"], n_types), pred, ex.get("truncated_entities", 0))

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if self.cfg.eval_f1:
            examples = sample["ner_examples"]
            seqs = self.generate_batch(model, sample)
            if self.cfg.eval_metric == "bartner":
                counts = BartnerCounts(self.types)
                self.count_bartner(counts, examples, seqs)
                tp, pred, gold = counts.totals()
            else:
                counts = EntityCounts()
                for ex, seq in zip(examples, seqs):
                    counts.add_sentence(ex["entities"], decode_target(seq, ex["wp"], self.types, self.cfg.target_type))
                tp, pred, gold = (sum(c.values()) for c in (counts.tp, counts.pred, counts.gold))
            logging_output.update(_ner_tp=tp, _ner_pred=pred, _ner_gold=gold)
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if not self.cfg.eval_f1 or not any("_ner_gold" in log for log in logging_outputs):
            return
        for key in ("_ner_tp", "_ner_pred", "_ner_gold"):
            metrics.log_scalar_sum(key, sum(log.get(key, 0) for log in logging_outputs))

        def f1(meters):
            tp, pred, gold = (meters[k].sum for k in ("_ner_tp", "_ner_pred", "_ner_gold"))
            return round(2 * tp / (pred + gold), 4) if pred + gold else 0.0

        metrics.log_derived("ner_f1", f1)
