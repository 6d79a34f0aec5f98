"""``biomed_translation``: fairseq's ``translation`` task for seq2seq fine-tuning, with a
working ``--no-repeat-ngram-size`` on CPU.

Everything (data loading, flags, ``--truncate-source``, BLEU validation) is fairseq's
``translation``; only ``build_generator`` differs: it swaps fairseq's n-gram blocker, whose CPU
fallback never bans anything, for :class:`biobart_fairseq.decoding.ngram_block.StepAwareNGramBlocker`
(see that module).  Checkpoints fine-tuned with ``--task translation`` can be decoded with
``--task biomed_translation`` and vice versa.
"""

from dataclasses import dataclass

from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from ..decoding.ngram_block import fix_generator


@dataclass
class BiomedTranslationConfig(TranslationConfig):
    """No new options: the translation task's, registered under our own name so that the
    fixed ``build_generator`` is picked by ``--task biomed_translation``."""


@register_task("biomed_translation", dataclass=BiomedTranslationConfig)
class BiomedTranslationTask(TranslationTask):
    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, **kwargs):
        generator = super().build_generator(
            models, args, seq_gen_cls=seq_gen_cls, extra_gen_cls_kwargs=extra_gen_cls_kwargs, **kwargs
        )
        return fix_generator(generator)
