"""Language-pair dataset for generative entity linking with an untrained decoder prefix.

The binarized target of a mention is ``<mention> is <name> </s>`` and ``DATA/<split>.prefix_len.npy``
holds how many of its leading tokens are the prefix ``<mention> is``.  Batches are the usual
translation batches (``prev_output_tokens = </s> + prefix + name``) except that the target's
prefix positions are set to padding, so fairseq's (label-smoothed) cross-entropy, which
ignores padding, trains on ``name </s>`` only — the prefix is context, as in GenBioEL
(labels ``-100`` on the prefix).  The batch also carries ``prefix_lens`` for decoding.
"""

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, LanguagePairDataset


class EntityLinkingDataset(BaseWrapperDataset):
    def __init__(self, dataset: LanguagePairDataset, prefix_lens: np.ndarray):
        super().__init__(dataset)
        if len(prefix_lens) != len(dataset):
            raise ValueError(f"{len(prefix_lens)} prefix lengths for {len(dataset)} samples")
        tgt_sizes = dataset.tgt_sizes
        too_long = np.flatnonzero(prefix_lens >= tgt_sizes)
        if len(too_long):
            raise ValueError(f"sample {too_long[0]}: prefix of {prefix_lens[too_long[0]]} tokens leaves no name in "
                             f"a target of {tgt_sizes[too_long[0]]} tokens")
        self.prefix_lens = np.asarray(prefix_lens, dtype=np.int64)

    def prefix_tokens(self, index: int):
        """The prefix (``<mention> is``) token ids of a sample."""
        return self.dataset.tgt[index][: self.prefix_lens[index]].tolist()

    def collater(self, samples, pad_to_length=None):
        batch = self.dataset.collater(samples, pad_to_length=pad_to_length)
        if not batch:
            return batch
        plen = torch.from_numpy(self.prefix_lens[batch["id"].numpy()])
        target = batch["target"]
        # targets are right-padded: positions < prefix length are the prefix
        positions = torch.arange(target.size(1)).unsqueeze(0)
        target = target.masked_fill(positions < plen.unsqueeze(1), self.dataset.tgt_dict.pad())
        batch["target"] = target
        batch["ntokens"] = int(target.ne(self.dataset.tgt_dict.pad()).sum())
        batch["prefix_lens"] = plen
        return batch
