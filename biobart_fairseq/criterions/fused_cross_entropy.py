"""``--criterion fused_cross_entropy``: fairseq's (label-smoothed) cross-entropy, computed
without materialising fp32 log-probabilities over the vocabulary.

Same values and logged metrics as ``label_smoothed_cross_entropy`` (and, with the default
``--label-smoothing 0``, as ``cross_entropy``): the decoder returns its features, the
non-padding positions are selected, and :func:`linear_cross_entropy` projects them a chunk
at a time (see :mod:`biobart_fairseq.modules.linear_cross_entropy` for why and how).

Models whose output layer is not a bias-free linear projection (adaptive softmax, a pointer
head), and ``--report-accuracy`` or unreduced losses, fall back to the stock computation,
with one log line saying so.
"""

import logging
from dataclasses import dataclass, field

import torch.nn as nn
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)

from ..modules.linear_cross_entropy import linear_cross_entropy

logger = logging.getLogger(__name__)


@dataclass
class FusedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    chunk_rows: int = field(
        default=4096,
        metadata={"help": "target positions projected to the vocabulary at a time (memory: rows × vocab × 4 bytes)"},
    )


@register_criterion("fused_cross_entropy", dataclass=FusedCrossEntropyConfig)
class FusedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(self, task, sentence_avg, label_smoothing=0.0, ignore_prefix_size=0, report_accuracy=False,
                 chunk_rows=4096):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        self.chunk_rows = chunk_rows
        self._warned = False

    def forward(self, model, sample, reduce=True):
        projection = self._projection(model)
        if projection is None or not reduce or self.report_accuracy:
            self._warn_fallback(projection is None, reduce)
            return super().forward(model, sample, reduce)
        features, extra = model(**sample["net_input"], features_only=True)
        target = model.get_targets(sample, (features, extra))
        if self.ignore_prefix_size > 0:
            features = features[:, self.ignore_prefix_size:]
            target = target[:, self.ignore_prefix_size:]
        keep = target.ne(self.padding_idx)
        loss, nll_loss = linear_cross_entropy(
            features[keep], projection.weight, target[keep], self.eps, self.chunk_rows
        )
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        return loss, sample_size, logging_output

    @staticmethod
    def _projection(model):
        decoder = getattr(model, "decoder", None)
        proj = getattr(decoder, "output_projection", None)
        if getattr(decoder, "adaptive_softmax", None) is not None or not isinstance(proj, nn.Linear):
            return None
        return proj if proj.bias is None else None

    def _warn_fallback(self, no_projection, reduce):
        if self._warned:
            return
        self._warned = True
        why = ("the model's output layer is not a bias-free linear projection" if no_projection
               else "--report-accuracy is on" if self.report_accuracy else "an unreduced loss was asked for")
        logger.info("fused_cross_entropy: computing the stock way because %s", why)
