"""``--no-repeat-ngram-size`` that works on CPU.

fairseq 0.12's ``SequenceGenerator`` calls its n-gram blocker with the *whole* token buffer
(``bsz*beam x max_len+2``, pad-filled beyond the current step).  The CUDA kernel is told the
step, but the pure-Python fallback used on CPU takes the last n-1 positions of the buffer as
"the current prefix" -- padding -- so it never bans anything (fairseq issues
#4709, #5206).  :class:`StepAwareNGramBlocker` looks only at the
``step + 1`` tokens generated so far and is installed on a generator by :func:`fix_generator`.
"""

import math

import torch
from torch import nn


class StepAwareNGramBlocker(nn.Module):
    """Ban every token that would complete an n-gram already present in the hypothesis.

    Same call signature as fairseq's ``NGramRepeatBlock``: ``(tokens, lprobs, bsz, beam_size,
    step)`` with ``tokens`` the generator's full buffer and ``lprobs`` the next-token
    log-probabilities of the ``bsz * beam_size`` hypotheses; ``lprobs`` is changed in place and
    returned.
    """

    def __init__(self, no_repeat_ngram_size: int):
        super().__init__()
        if no_repeat_ngram_size < 1:
            raise ValueError("no_repeat_ngram_size must be >= 1")
        self.n = no_repeat_ngram_size

    def forward(self, tokens, lprobs, bsz: int, beam_size: int, step: int):
        n = self.n
        seen = tokens[:, : step + 1]  # the fix: only what has been generated, never the padding
        if seen.size(1) < n:
            return lprobs  # no complete n-gram exists yet
        windows = seen.unfold(1, n, 1)  # (hyps, positions, n): every n-gram of each hypothesis
        # the last n-1 tokens are what the next token extends (empty for n == 1: all match)
        prefix = seen[:, seen.size(1) - (n - 1):]
        match = (windows[:, :, : n - 1] == prefix.unsqueeze(1)).all(dim=2)
        rows, cols = torch.nonzero(match, as_tuple=True)
        if rows.numel():
            lprobs[rows, windows[rows, cols, n - 1]] = -math.inf
        return lprobs


def fix_generator(generator):
    """Replace the generator's n-gram blocker (if ``--no-repeat-ngram-size`` set one) with
    :class:`StepAwareNGramBlocker`; works for ``SequenceGenerator`` and its subclasses and for
    wrappers that keep the real generator in ``.generator``.  Returns the generator."""
    targets = [generator]
    inner = getattr(generator, "generator", None)
    if inner is not None:
        targets.append(inner)
    for g in targets:
        blocker = getattr(g, "repeat_ngram_blocker", None)
        if blocker is not None and not isinstance(blocker, StepAwareNGramBlocker):
            g.repeat_ngram_blocker = StepAwareNGramBlocker(blocker.no_repeat_ngram_size)
    return generator
