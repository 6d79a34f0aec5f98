"""``bartner_loss``: cross-entropy over BARTNER's index space (sos/eos/types/pointers).

BARTNER trains with plain cross-entropy, no label smoothing.  The loss itself cannot be
fairseq's ``cross_entropy``: that one takes log-probabilities over the dictionary from
``model.get_normalized_probs`` and gathers the target there, while our targets index a space
whose size depends on the source length.  So only :meth:`forward` is ours; the logging
(loss in bits per target index, perplexity) is :class:`CrossEntropyCriterion`'s.  Padding
(``IDX_PAD`` = -1) is ignored.
"""

from dataclasses import dataclass

import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.criterions.cross_entropy import CrossEntropyCriterion, CrossEntropyCriterionConfig

from ..data.ner_dataset import IDX_PAD


@dataclass
class BartNerLossConfig(CrossEntropyCriterionConfig):
    pass  # BARTNER's loss has no settings of its own (sentence_avg comes from --sentence-avg)


@register_criterion("bartner_loss", dataclass=BartNerLossConfig)
class BartNerLoss(CrossEntropyCriterion):
    def forward(self, model, sample, reduce=True):
        logits, _ = model(**sample["net_input"])
        target = sample["target"]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target.view(-1), ignore_index=IDX_PAD,
                               reduction="sum" if reduce else "none")
        sample_size = sample["nsentences"] if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }
        return loss, sample_size, logging_output
