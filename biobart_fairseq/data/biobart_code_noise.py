"""The noise BioBART's released checkpoints were pretrained with (``--noise-style biobart-code``).

The paper describes BART's text infilling (30 % of the words in Poisson(3) spans); the
code that trained GanjinZero/biobart-base/-large (GanjinZero/BioBART,
``pretrain_src/dataloader.py``, ``create_noised_input``, run with ``--token_nosing_prob
0.1``) does something else.  Read from that code, the process is, per sentence of
subword tokens ``t[0..L)``:

* a cursor ``j`` starts at 0; at every position it visits it flips a coin that comes up
  with probability ``p`` (``--token-noising-prob``, 0.1 there);
* tails: ``t[j]`` is kept, ``j += 1``;
* heads: a span length ``k ~ Poisson(λ)`` is drawn (λ = 3 there);

  - ``k > 0``: one ``<mask>`` replaces ``t[j:j+k]`` and the cursor jumps to ``j + k``; a
    span that would run past the sentence end stops there (the walk is per sentence);
    the token right after a span gets its own coin, so two spans can touch and give two
    adjacent ``<mask>``;
  - ``k = 0``: ``t[j]`` is kept, a ``<mask>`` is inserted after it, ``j += 1``.

The sentences are then concatenated in their order (the shuffle is commented out there):
no sentence permutation, no rotation, no random-token replacement.

Here the coins of all positions are drawn at once and only those of visited positions
are used, and one Poisson length is drawn per visited head; each visited position thus
still gets an independent coin and each span an independent length, the same
distribution as the sequential walk, with a Python loop over heads only (~p of the
tokens) instead of over every token.  The caller seeds ``rng`` with (seed, epoch, index).
"""

import numpy as np
import torch


def biobart_code_noise(rng, sentences, mask_idx, p=0.1, lam=3.0):
    """Noise a list of sentences (1-D LongTensors, no markers) as BioBART's released code did.

    Returns the noised token sequence (LongTensor) of all sentences concatenated.
    """
    lengths = [len(s) for s in sentences]
    if not sentences or sum(lengths) == 0:
        return torch.zeros(0, dtype=torch.long)
    body = torch.cat(sentences).numpy()
    ends = np.cumsum(lengths)
    sentence_end = np.repeat(ends, lengths)  # for each position, where its sentence ends
    heads = np.flatnonzero(rng.random_sample(len(body)) < p)
    spans = rng.poisson(lam, size=len(heads))

    pieces, pos = [], 0  # pos: the next position the walk visits
    for h, k in zip(heads.tolist(), spans.tolist()):
        if h < pos:
            continue  # inside a span: the walk never visits it, its coin is unused
        if k == 0:
            pieces += [body[pos:h + 1], [mask_idx]]
            pos = h + 1
        else:
            pieces += [body[pos:h], [mask_idx]]
            pos = min(h + k, int(sentence_end[h]))  # a span stops at its sentence's end
    pieces.append(body[pos:])
    return torch.from_numpy(np.concatenate([np.asarray(x, dtype=np.int64) for x in pieces]))
