"""``biomed_denoising``: BioBART's continued-pretraining objective.

The paper (§3, §5.1, Table 6) pretrains with text infilling only: 30 % of the words
masked in spans of Poisson(λ=3) length, each span replaced by one ``<mask>``, inputs
truncated to 512 tokens, no sentence permutation (it hurt every downstream task in the
ablation), no rotation, no insertion.  Those are this task's defaults; every stock
``denoising`` flag is still accepted, so ``--permute-sentences 1`` gives the TI+SP
ablation arm.

Differences from fairseq's ``denoising`` task (why this task exists):

* whole-word masking is built from the BPE recorded in ``DATA/bpe.json`` by
  ``biobart-binarize`` (local files; the stock task can only fetch GPT-2 files by URL);
* sentence permutation uses the sentence lines of the data and therefore works for any
  BPE (the stock one is a no-op unless the BPE is GPT-2, fairseq #3803);
* spans do not overlap, so ``--mask 0.3`` really masks 30 % of the words;
* the noise of a sample depends only on (seed, epoch, index), which makes resumed runs
  replay exactly;
* ``--noise-style biobart-code`` gives the noise BioBART's released checkpoints were
  actually trained with (:mod:`biobart_fairseq.data.biobart_code_noise`), for continuing
  pretraining exactly as they were.

Only the split loader (``_load_dataset_split``) and the dataset class differ from the stock
task; the stock flags keep their meaning (``--shorten-method``/``--shorten-data-split-list``
shorten long lines, ``--dataset-impl``, several ``DATA`` paths rotated by epoch), and a flag
that would do nothing is refused with a message instead of being ignored.

See :mod:`biobart_fairseq.data.infilling_dataset` for the details.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq import utils
from fairseq.data import AppendTokenDataset, TokenBlockDataset, data_utils
from fairseq.data.encoders.gpt2_bpe import DEFAULT_ENCODER_JSON, DEFAULT_VOCAB_BPE
from fairseq.data.shorten_dataset import maybe_shorten_dataset
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.denoising import MASK_LENGTH_CHOICES, DenoisingConfig, DenoisingTask

from ..data.infilling_dataset import DropLastTokenDataset, SentenceInfillingDataset
from ..data.word_starts import BpeInfoError, word_start_table

logger = logging.getLogger(__name__)

SENTENCE_ALIGNED_BREAK_MODES = ("complete_doc", "complete", "eos")
NOISE_STYLE_CHOICES = ChoiceEnum(["paper", "biobart-code"])
# Noise options that --noise-style biobart-code does not use (it has its own rate,
# --token-noising-prob, and shares only --poisson-lambda): setting one is an error.
PAPER_ONLY_OPTIONS = ("mask", "mask_length", "mask_random", "replace_length", "insert", "rotate", "permute_sentences")


@dataclass
class BiomedDenoisingConfig(DenoisingConfig):
    # Paper defaults (BioBART §5.1) where the stock task differs.
    mask: float = field(default=0.3, metadata={"help": "fraction of words to mask (paper: 0.3)"})
    mask_length: MASK_LENGTH_CHOICES = field(
        default="span-poisson",
        metadata={"help": "span length distribution: span-poisson (paper), word or subword"},
    )
    poisson_lambda: float = field(
        default=3.0, metadata={"help": "mean span length λ for span-poisson (paper: 3; BART's release used 3.5)"}
    )
    replace_length: int = field(
        default=1,
        metadata={"help": "tokens that replace a masked span: 1 = one <mask> per span (paper), 0 = delete, -1 = one per token"},
    )
    rotate: float = field(default=0.0, metadata={"help": "probability of rotating a document (paper: 0)"})
    insert: float = field(default=0.0, metadata={"help": "fraction of random <mask> insertions (paper: 0)"})
    permute_sentences: int = field(
        default=0,
        metadata={
            "help": "fraction of sentences to shuffle (an int in fairseq: 0 = off, the paper's "
            "text-infilling-only setting; 1 = shuffle all, the TI+SP ablation)"
        },
    )
    tokens_per_sample: int = field(
        default=512, metadata={"help": "maximum tokens per sample incl. <s> and </s> (paper: 512)"}
    )
    noise_style: NOISE_STYLE_CHOICES = field(
        default="paper",
        metadata={
            "help": "paper: BART text infilling as the paper describes it (--mask of the words in "
            "Poisson(--poisson-lambda) spans); biobart-code: the noise BioBART's released checkpoints "
            "were trained with (GanjinZero/BioBART pretrain_src/dataloader.py): each subword of a "
            "sentence starts, with probability --token-noising-prob, a Poisson(--poisson-lambda) span "
            "replaced by one <mask> (length 0: a <mask> inserted after it), spans end at the sentence end"
        },
    )
    token_noising_prob: float = field(
        default=0.1,
        metadata={
            "help": "--noise-style biobart-code: probability that a visited subword starts a span "
            "(the released code's --token_nosing_prob, run with 0.1)"
        },
    )
    bpe_info: str = field(
        default="",
        metadata={
            "help": "bpe.json describing the BPE the data was binarized with (default: "
            "DATA/bpe.json, written by biobart-binarize); needed for whole-word masking"
        },
    )
    # Without DATA/bpe.json (data from plain fairseq-preprocess): fairseq's own BPE file flags, as its
    # BART recipe passes them.  Same names as fairseq's options, so they share them (and fairseq's
    # defaults); URLs are refused, not fetched (data/bpe.py).
    gpt2_encoder_json: str = field(default=DEFAULT_ENCODER_JSON, metadata={"help": "--bpe gpt2: local encoder.json"})
    gpt2_vocab_bpe: str = field(default=DEFAULT_VOCAB_BPE, metadata={"help": "--bpe gpt2: local vocab.bpe"})
    sentencepiece_model: Optional[str] = field(default=None, metadata={"help": "--bpe sentencepiece: local model"})


@register_task("biomed_denoising", dataclass=BiomedDenoisingConfig)
class BiomedDenoisingTask(DenoisingTask):
    """Text infilling (and optional sentence permutation) on sentence-per-line data, as the
    paper describes it or (``--noise-style biobart-code``) as the released code did it."""

    cfg: BiomedDenoisingConfig

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        self._word_starts = None
        check_noise_options(cfg)

    def word_starts(self):
        if self.cfg.mask_length == "subword" or self.cfg.noise_style == "biobart-code":
            return None  # both work on subwords: no BPE record needed
        if self._word_starts is None:
            from ..data.bpe import resolve_info

            # DATA/bpe.json, else fairseq's own --bpe gpt2/sentencepiece file flags (plain fairseq-preprocess data)
            info, path = resolve_info(utils.split_paths(self.cfg.data)[0], self.cfg.bpe_info or None, self.cfg)
            if self.cfg.bpe and self.cfg.bpe != info["type"]:
                # --bpe would otherwise be accepted and ignored: the record decides the word table
                raise BpeInfoError(f"--bpe {self.cfg.bpe} given, but {path} records that the data was "
                                   f"binarized with {info['type']}: drop --bpe or fix the record")
            self._word_starts = word_start_table(self.dictionary, info)
            logger.info(
                "whole-word masking from %s (%s): %d of %d symbols start a word",
                path, info["type"], int(self._word_starts.sum()), len(self.dictionary),
            )
        return self._word_starts

    def _load_dataset_split(self, split, epoch, combine):
        """Sentence-aligned blocks of raw lines, each line still ending in its ``</s>``.

        The stock loader strips every ``</s>`` and packs blocks without regard to lines; here
        the ``</s>`` marks the sentence end (an empty line, just ``</s>``, separates
        documents).  ``--shorten-method`` applies, as in the stock loader, to single lines
        before blocking, but shortens a line's text to ``--tokens-per-sample - 2`` (what a
        sample holds besides ``<s>`` and ``</s>``) and keeps its ``</s>``.
        """
        if self.cfg.sample_break_mode not in SENTENCE_ALIGNED_BREAK_MODES:
            raise ValueError(
                f"biomed_denoising needs sentence-aligned blocks; --sample-break-mode must be "
                f"one of {', '.join(SENTENCE_ALIGNED_BREAK_MODES)}, got {self.cfg.sample_break_mode!r}"
            )
        paths = utils.split_paths(self.cfg.data)
        split_path = os.path.join(paths[(epoch - 1) % len(paths)], split)
        lines = data_utils.load_indexed_dataset(split_path, self.dictionary, self.cfg.dataset_impl, combine=combine)
        if lines is None:
            raise FileNotFoundError(f"Dataset not found: {split} ({split_path}.bin/.idx)")
        n_lines = len(lines)
        shortened = maybe_shorten_dataset(
            DropLastTokenDataset(lines), split, self.cfg.shorten_data_split_list,
            self.cfg.shorten_method, self.cfg.tokens_per_sample - 2, self.cfg.seed,
        )
        if not isinstance(shortened, DropLastTokenDataset):  # this split is shortened
            lines = AppendTokenDataset(shortened, self.dictionary.eos())
        blocks = TokenBlockDataset(
            lines,
            lines.sizes,
            self.cfg.tokens_per_sample - 2,
            pad=self.dictionary.pad(),
            eos=self.dictionary.eos(),
            break_mode=self.cfg.sample_break_mode,
            document_sep_len=1,
        )
        logger.info("%s: %d blocks from %d lines (%s)", split, len(blocks), n_lines, split_path)
        return blocks

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        blocks = self._load_dataset_split(split, epoch, combine)
        self.datasets[split] = SentenceInfillingDataset(
            blocks,
            self.dictionary,
            self.mask_idx,
            self.word_starts(),
            seed=self.cfg.seed,
            max_tokens=self.cfg.tokens_per_sample,
            mask=self.cfg.mask,
            mask_random=self.cfg.mask_random,
            insert=self.cfg.insert,
            rotate=self.cfg.rotate,
            permute_sentences=self.cfg.permute_sentences,
            replace_length=self.cfg.replace_length,
            mask_length=self.cfg.mask_length,
            poisson_lambda=self.cfg.poisson_lambda,
            shuffle=bool(self.cfg.shuffle_instance),
            noise_style=self.cfg.noise_style,
            token_noising_prob=self.cfg.token_noising_prob,
        )


def _flag(name):
    return "--" + name.replace("_", "-")


def check_noise_options(cfg):
    """Refuse options that would be accepted and silently do nothing."""
    if cfg.permute:
        # DenoisingConfig declares --permute, but no fairseq dataset reads it
        raise ValueError("--permute (subword permutation) is not implemented by fairseq's denoising data; "
                         "use --permute-sentences for sentence permutation")
    if not 0.0 <= cfg.token_noising_prob <= 1.0:
        raise ValueError(f"--token-noising-prob must be in [0, 1], got {cfg.token_noising_prob}")
    if cfg.noise_style != "biobart-code":
        return
    defaults = {f.name: f.default for f in dataclasses.fields(BiomedDenoisingConfig)}
    changed = [name for name in PAPER_ONLY_OPTIONS if getattr(cfg, name) != defaults[name]]
    if changed:
        raise ValueError(
            f"{_flag(changed[0])} has no effect with --noise-style biobart-code, which draws its noise "
            "from --token-noising-prob and --poisson-lambda only; remove it or use --noise-style paper"
        )
