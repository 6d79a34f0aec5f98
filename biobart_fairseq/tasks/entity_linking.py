"""``biomed_entity_linking``: generative biomedical entity linking (GenBioEL, BioBART §4.3).

The encoder reads the lower-cased context with the mention between ``START``/``END``; the
decoder writes ``<mention> is <synonym>``, where ``<mention> is`` is given (forced at
decoding, padding in the training target) and the synonym is decoded under a trie of
every KB name, so each output is a KB entry.  Data comes from ``biobart-prepare-el``:

    DATA/{train,valid,test}.source-target.{source,target}.{bin,idx}, dict.{source,target}.txt
    DATA/{split}.prefix_len.npy   prefix length (tokens) of each target
    DATA/trie.npz                 trie of ``name + </s>`` token ids of all KB names
    DATA/kb_names.tsv             name, its CUIs, its token ids (for the metric)

Train with the stock ``--criterion label_smoothed_cross_entropy``.  Decoding
(``fairseq-generate --task biomed_entity_linking`` or ``biobart-el-eval``) forces each
sample's prefix, constrains the rest with the trie and ranks the beams by the synonym's
score (see :mod:`biobart_fairseq.decoding.prefix_constraint`).
"""

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from fairseq import utils
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask, load_langpair_dataset

from ..data.el_dataset import EntityLinkingDataset
from ..decoding.prefix_constraint import (
    EntityLinkingConstraint,
    TrieConstrainedBeamSearch,
    drop_alignment_attention,
    rerank,
    skip_within_sentence_reorders,
)
from ..decoding.trie import Trie

logger = logging.getLogger(__name__)


@dataclass
class EntityLinkingConfig(TranslationConfig):
    source_lang: str = field(default="source", metadata={"help": "source language suffix of the binarized files"})
    target_lang: str = field(default="target", metadata={"help": "target language suffix of the binarized files"})
    trie: str = field(
        default="", metadata={"help": "trie of the KB names (Trie.save format); default DATA/trie.npz"}
    )
    el_rerank: bool = field(
        default=True,
        metadata={"help": "rank the beams by the score of the generated synonym alone (GenBioEL); "
                          "off: fairseq's score of the whole sequence"},
    )
    el_stock_search: bool = field(
        default=False,
        metadata={"help": "use fairseq's own PrefixConstrainedBeamSearch (slower, keeps fewer live "
                          "beams after an eos) instead of TrieConstrainedBeamSearch"},
    )


@register_task("biomed_entity_linking", dataclass=EntityLinkingConfig)
class EntityLinkingTask(TranslationTask):
    cfg: EntityLinkingConfig

    def __init__(self, cfg, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        if cfg.left_pad_target:
            raise ValueError("biomed_entity_linking needs --left-pad-target False (the prefix is masked from the left)")
        self._trie = None
        self._constraint = None

    # -- data -----------------------------------------------------------------------------------
    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        data_path = paths[(epoch - 1) % len(paths)] if split == self.cfg.train_subset else paths[0]
        base = load_langpair_dataset(
            data_path, split, self.cfg.source_lang, self.src_dict, self.cfg.target_lang, self.tgt_dict,
            combine=combine, dataset_impl=self.cfg.dataset_impl, upsample_primary=self.cfg.upsample_primary,
            left_pad_source=self.cfg.left_pad_source, left_pad_target=False,
            max_source_positions=self.cfg.max_source_positions, max_target_positions=self.cfg.max_target_positions,
            truncate_source=self.cfg.truncate_source, num_buckets=self.cfg.num_batch_buckets,
            shuffle=(split != "test"), pad_to_multiple=self.cfg.required_seq_len_multiple,
        )
        plen_path = os.path.join(data_path, f"{split}.prefix_len.npy")
        if not os.path.isfile(plen_path):
            raise FileNotFoundError(f"{plen_path}: missing (written by biobart-prepare-el next to the binarized {split})")
        self.datasets[split] = EntityLinkingDataset(base, np.load(plen_path, allow_pickle=False))

    # -- decoding ---------------------------------------------------------------------------------
    @property
    def trie(self) -> Trie:
        if self._trie is None:
            path = self.cfg.trie or os.path.join(utils.split_paths(self.cfg.data)[0], "trie.npz")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no KB trie (biobart-prepare-el writes DATA/trie.npz; or pass --trie)")
            self._trie = Trie.load(path)
            if self._trie.end_token not in (-1, self.tgt_dict.eos()):
                raise ValueError(f"{path}: names end with token {self._trie.end_token}, not eos {self.tgt_dict.eos()}")
            logger.info(f"loaded KB trie {path}: {len(self._trie)} names, {self._trie.nbytes / 2**20:.1f} MiB")
        return self._trie

    @property
    def constraint(self) -> EntityLinkingConstraint:
        if self._constraint is None:
            self._constraint = EntityLinkingConstraint(self.trie)
        return self._constraint

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, prefix_allowed_tokens_fn=None):
        if getattr(args, "score_reference", False):
            return super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs)
        fn = prefix_allowed_tokens_fn or self.constraint
        gen = super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs, prefix_allowed_tokens_fn=fn)
        if not self.cfg.el_stock_search and isinstance(fn, EntityLinkingConstraint):
            gen.search = TrieConstrainedBeamSearch(self.target_dictionary, fn)
        if hasattr(gen, "model") and hasattr(gen.model, "reorder_encoder_out"):
            skip_within_sentence_reorders(gen, getattr(args, "beam", 5))
            if not getattr(args, "print_alignment", None):
                drop_alignment_attention(gen)
        gen.el_len_penalty = getattr(args, "lenpen", 1.0)
        return gen

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        """Generate with each sample's own prefix forced, then rank by the synonym's score."""
        if "prefix_lens" not in sample:
            raise KeyError("the batch has no prefix_lens: build it with an EntityLinkingDataset")
        ids = sample["id"].tolist()
        plens = sample["prefix_lens"].tolist()
        prev = sample["net_input"]["prev_output_tokens"].tolist()
        # prev_output_tokens = </s> + prefix + name: the prefix is prev[1 : 1 + plen]
        fn = getattr(generator.search, "prefix_allowed_tokens_fn", None)
        if isinstance(fn, EntityLinkingConstraint):
            fn.set_prefixes(ids, [p[1:1 + n] for p, n in zip(prev, plens)])
        if isinstance(fn, EntityLinkingConstraint):
            # Room for the longest prefix + the longest KB name + </s>, and no more: a longer
            # limit only costs time (fairseq's buffers and the stragglers' steps), a shorter
            # one would force </s> inside a name.
            generator.max_len_a = 0
            generator.max_len_b = max(plens) + max(1, self.trie.max_length)
        with torch.no_grad():
            hypos = generator.generate(models, sample, prefix_tokens=prefix_tokens, constraints=constraints)
        if self.cfg.el_rerank:
            lp = getattr(generator, "el_len_penalty", 1.0)
            hypos = [rerank(h, n, lp) for h, n in zip(hypos, plens)]
            for hs in hypos:
                for h in hs:
                    h["score"] = h["el_score"]
        return hypos
