"""``bartner_loss``: cross-entropy over BARTNER's index space (sos/eos/types/pointers).

BARTNER trains with plain cross-entropy, no label smoothing.  fairseq's stock criterions
cannot be used: they take log-probabilities over the dictionary from
``model.get_normalized_probs`` and gather the target there, while our targets index a space
whose size depends on the source length.  Padding (``IDX_PAD`` = -1) is ignored.  The loss
is logged in bits per target index, like fairseq's cross_entropy.
"""

import math
from dataclasses import dataclass

import torch.nn.functional as F
from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..data.ner_dataset import IDX_PAD


@dataclass
class BartNerLossConfig(FairseqDataclass):
    pass  # BARTNER's loss has no settings


@register_criterion("bartner_loss", dataclass=BartNerLossConfig)
class BartNerLoss(FairseqCriterion):
    def forward(self, model, sample, reduce=True):
        logits, _ = model(**sample["net_input"])
        target = sample["target"]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target.view(-1), ignore_index=IDX_PAD,
                               reduction="sum" if reduce else "none")
        ntokens = sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "ntokens": ntokens,
            "nsentences": sample["nsentences"],
            "sample_size": ntokens,
        }
        return loss, ntokens, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs):
        loss = utils.item(sum(log.get("loss", 0) for log in logging_outputs))
        size = utils.item(sum(log.get("sample_size", 0) for log in logging_outputs))
        metrics.log_scalar("loss", loss / max(size, 1) / math.log(2), size, round=3)
        metrics.log_derived("ppl", lambda m: utils.get_perplexity(m["loss"].avg))

    @staticmethod
    def logging_outputs_can_be_summed():
        return True
