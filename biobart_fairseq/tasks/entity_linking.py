"""``biomed_entity_linking``: generative biomedical entity linking (GenBioEL, BioBART §4.3).

The encoder reads the lower-cased context with the mention between ``START``/``END``; the
decoder writes ``<mention> is <synonym>``, where ``<mention> is`` is given (forced at
decoding, padding in the training target) and the synonym is decoded under a trie of
every KB name, so each output is a KB entry.  Data comes from ``biobart-prepare-el``:

    DATA/{train,valid,test}.source-target.{source,target}.{bin,idx}, dict.{source,target}.txt
    DATA/{split}.prefix_len.npy   prefix length (tokens) of each target
    DATA/trie.npz                 trie of ``name + </s>`` token ids of all KB names
    DATA/kb_names.tsv             name, its CUIs, its token ids (for the metric)

Train with the stock ``--criterion label_smoothed_cross_entropy``.  Data loading is
``translation``'s (so its flags, e.g. ``--truncate-source``, work as there) plus the prefix
lengths.  Decoding (``fairseq-generate --task biomed_entity_linking``, ``biobart-el-eval``, or
``task.inference_step``) uses
:class:`~biobart_fairseq.decoding.el_generator.EntityLinkingSequenceGenerator`: each
sample's prefix forced, the rest constrained by the trie, GenBioEL's beam semantics, beams
ranked by the synonym's score.
"""

import logging
import os
from dataclasses import dataclass, field

import numpy as np
from fairseq import utils
from fairseq.data import indexed_dataset
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from ..data.el_dataset import EntityLinkingDataset
from ..decoding.el_generator import EntityLinkingSequenceGenerator
from ..decoding.trie import Trie

logger = logging.getLogger(__name__)

# GenerationConfig flags that choose another search or output than a beam over KB names
_UNSUPPORTED_GENERATION = {
    "sampling": "--sampling", "diverse_beam_groups": "--diverse-beam-groups", "match_source_len": "--match-source-len",
    "diversity_rate": "--diversity-rate", "constraints": "--constraints", "print_alignment": "--print-alignment",
    "prefix_size": "--prefix-size",
}


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


@register_task("biomed_entity_linking", dataclass=EntityLinkingConfig)
class EntityLinkingTask(TranslationTask):
    cfg: EntityLinkingConfig

    def __init__(self, cfg, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        if cfg.left_pad_target:
            raise ValueError("biomed_entity_linking needs --left-pad-target False (the prefix is masked from the left)")
        self._trie = None

    # -- data -----------------------------------------------------------------------------------
    def _split_path(self, split, epoch):
        """The data folder TranslationTask.load_dataset reads ``split`` from."""
        paths = utils.split_paths(self.cfg.data)
        if split != self.cfg.train_subset:
            paths = paths[:1]
        return paths[(epoch - 1) % len(paths)]

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        """``translation``'s language-pair dataset, wrapped to pad the prefix in the target."""
        data_path = self._split_path(split, epoch)
        if self.cfg.load_alignments:
            # translation silently loads no alignments when the file is missing
            align = os.path.join(data_path, f"{split}.align.{self.cfg.source_lang}-{self.cfg.target_lang}")
            if not indexed_dataset.dataset_exists(align, impl=self.cfg.dataset_impl):
                raise FileNotFoundError(f"--load-alignments: {align}.{{bin,idx}} not found (binarize alignments "
                                        "with fairseq-preprocess --align-suffix; biobart-prepare-el writes none)")
        plen_path = os.path.join(data_path, f"{split}.prefix_len.npy")
        if not os.path.isfile(plen_path):
            raise FileNotFoundError(f"{plen_path}: missing (written by biobart-prepare-el next to the binarized {split})")
        super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        self.datasets[split] = EntityLinkingDataset(self.datasets[split], np.load(plen_path, allow_pickle=False))

    # -- decoding ---------------------------------------------------------------------------------
    @property
    def trie(self) -> Trie:
        if self._trie is None:
            path = self.cfg.trie or os.path.join(utils.split_paths(self.cfg.data)[0], "trie.npz")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no KB trie (biobart-prepare-el writes DATA/trie.npz; or pass --trie)")
            trie = Trie.load(path)
            if trie.end_token not in (-1, self.tgt_dict.eos()):
                raise ValueError(f"{path}: names end with token {trie.end_token}, not eos {self.tgt_dict.eos()}")
            if len(trie) == 0:
                raise ValueError(f"{path}: the KB trie holds no names")
            logger.info(f"loaded KB trie {path}: {len(trie)} names, {trie.nbytes / 2**20:.1f} MiB")
            self._trie = trie
        return self._trie

    def max_output_length(self, split: str) -> int:
        """Decoder steps the longest prefix of ``split`` + the longest KB name + ``</s>`` need:
        the ``--max-len-b`` (with ``--max-len-a 0``) that cuts no name and runs no step more."""
        from ..decoding.el_decode import output_length

        return output_length(self, self.dataset(split))

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, prefix_allowed_tokens_fn=None):
        if getattr(args, "score_reference", False):
            return super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs)
        if prefix_allowed_tokens_fn is not None or getattr(args, "prefix_allowed_tokens_fn", None):
            raise ValueError("biomed_entity_linking constrains decoding with its KB trie; "
                             "prefix_allowed_tokens_fn is not supported")
        for key, flag in _UNSUPPORTED_GENERATION.items():
            value = getattr(args, key, None)
            if value not in (None, False, -1, 0, -1.0):
                raise ValueError(f"{flag} is not supported by biomed_entity_linking: it decodes KB names by beam "
                                 "search over the trie, each mention's prefix forced")
        extra = dict(extra_gen_cls_kwargs or {}, trie=self.trie, rerank=self.cfg.el_rerank)
        return super().build_generator(models, args, seq_gen_cls or EntityLinkingSequenceGenerator, extra)
