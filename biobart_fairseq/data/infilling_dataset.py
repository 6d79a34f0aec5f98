"""BART noising over sentence-aligned blocks: text infilling and sentence permutation.

Why not fairseq's ``DenoisingDataset`` as it is:

* **Sentence permutation** there finds sentence ends by looking for the GPT-2 id of "."
  (``bpe == "gpt2"`` only); with any other BPE it looks for ``</s>``, which the stock
  task strips, so ``--permute-sentences`` silently does nothing (fairseq #3803).  Here
  sentence boundaries come from the data itself: ``biobart-prepare-pubmed`` writes one
  sentence per line, ``fairseq-preprocess`` ends every line with ``</s>``, and we keep
  those markers through ``TokenBlockDataset`` and take them out only here.
* **Span masking** there places spans independently, so they overlap and merge; asking
  for 30 % masks about a quarter of the words, and one ``<mask>`` can stand for two
  spans.  Here spans are laid out without overlap and with at least one kept word between
  two spans, so exactly ``mask`` of the words are masked and every span (of Poisson
  length) becomes exactly one ``<mask>`` (``--replace-length 1``).  Zero-length spans
  become an inserted ``<mask>``, as in the BART paper.
* **Reproducibility**: the stock noise draws from torch's global RNG, so it depends on
  the data-loader workers and is not replayed after a resume.  All randomness here comes
  from numpy seeded with ``(seed, epoch, index)``: a sample's noise is a pure function
  of those three numbers.

* **Released-code noise** (``noise_style="biobart-code"``): the noise BioBART's released
  checkpoints were actually trained with, see :mod:`biobart_fairseq.data.biobart_code_noise`;
  it replaces all of the above (no permutation, rotation or insertion).

Everything else (batching, collation, rotation) is fairseq's.
"""

import math

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, DenoisingDataset, data_utils

from .biobart_code_noise import biobart_code_noise


def poisson_span_lengths(rng, budget, lam, max_len=128):
    """Sample span lengths from Poisson(lam) (capped at ``max_len``) until they cover
    ``budget`` words; the last one is shortened so the lengths sum to ``budget``."""
    lengths = []
    total = 0
    while total < budget:
        draw = np.minimum(rng.poisson(lam, size=max(8, budget)), max_len)
        for x in draw:
            x = int(x)
            if total + x >= budget:
                lengths.append(budget - total)
                total = budget
                break
            lengths.append(x)
            total += x
    return np.asarray(lengths, dtype=np.int64)


class DropLastTokenDataset(BaseWrapperDataset):
    """Lines without their final ``</s>``, with exact sizes.

    fairseq's ``StripTokenDataset`` reports the unstripped sizes, which ``TokenBlockDataset``
    would then slice by; here the sizes are one less, as the items are.
    """

    def __getitem__(self, index):
        return self.dataset[index][:-1]

    @property
    def sizes(self):
        return self.dataset.sizes - 1

    def num_tokens(self, index):
        return self.dataset.num_tokens(index) - 1

    def size(self, index):
        return self.dataset.size(index) - 1


class SentenceInfillingDataset(DenoisingDataset):
    """Noised BART samples from blocks that still carry one ``</s>`` per sentence.

    Args (beyond :class:`fairseq.data.DenoisingDataset`'s):
        blocks: a ``TokenBlockDataset`` over the raw lines, built with a sentence-aligned
            break mode (``complete_doc``, ``complete`` or ``eos``), so every block is a run
            of whole lines each ending in ``</s>``.
        word_start (BoolTensor | None): per vocabulary id, whether the token starts a
            word (whole-word masking); ``None`` masks subwords.  The first token of every
            sentence always counts as a word start.
        max_tokens: maximum sample length including ``<s>`` and ``</s>``
            (``--tokens-per-sample``); longer single sentences are truncated.
        noise_style: ``"paper"`` (BART text infilling and the options above) or
            ``"biobart-code"`` (the released pretraining code's noise, with
            ``token_noising_prob`` and ``poisson_lambda``; the other noise options unused).
    """

    def __init__(
        self,
        blocks,
        vocab,
        mask_idx,
        word_start,
        *,
        seed,
        max_tokens,
        mask,
        mask_random,
        insert,
        rotate,
        permute_sentences,
        replace_length,
        mask_length,
        poisson_lambda,
        shuffle=True,
        noise_style="paper",
        token_noising_prob=0.1,
    ):
        self.max_content = max_tokens - 2
        sizes = self._exact_sizes(blocks, self.max_content)
        super().__init__(
            blocks,
            sizes,
            vocab,
            mask_idx,
            word_start,
            shuffle=shuffle,
            seed=seed,
            mask=mask,
            mask_random=mask_random,
            insert=insert,
            rotate=rotate,
            permute_sentences=permute_sentences,
            bpe=None,
            replace_length=replace_length,
            mask_length=mask_length,
            poisson_lambda=poisson_lambda,
        )
        self.span_poisson = mask_length == "span-poisson"
        self.poisson_lambda = poisson_lambda
        if noise_style not in ("paper", "biobart-code"):
            raise ValueError(f"noise_style must be 'paper' or 'biobart-code', got {noise_style!r}")
        self.noise_style = noise_style
        self.token_noising_prob = token_noising_prob

    @staticmethod
    def _exact_sizes(blocks, max_content):
        # Blocks start at a line start and end at a line end, so a block built from
        # lines start..end holds (end - start + 1) sentence markers that we remove.
        index = np.asarray(blocks.block_to_dataset_index)
        if np.any(index[:, 1] != 0):
            raise ValueError("blocks must be sentence-aligned (break mode complete_doc, complete or eos)")
        markers = index[:, 2] - index[:, 0] + 1
        content = np.asarray(blocks.sizes, dtype=np.int64) - markers
        return np.minimum(content, max_content) + 2

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        # TokenBlockDataset does not pass the epoch on; --shorten-method random_crop needs it
        lines = getattr(self.dataset, "dataset", None)
        if hasattr(lines, "set_epoch"):
            lines.set_epoch(epoch)

    # -- sample construction --------------------------------------------------------
    def sentences(self, index):
        """The block's sentences (LongTensors without markers), truncated to fit."""
        block = self.dataset[index]
        ends = (block == self.eos).nonzero(as_tuple=False).view(-1).tolist()
        out, start, room = [], 0, self.max_content
        for end in ends:
            if end > start and room > 0:
                sent = block[start:end][:room]
                out.append(sent)
                room -= len(sent)
            start = end + 1
        return out

    def __getitem__(self, index):
        with data_utils.numpy_seed(self.seed, self.epoch, index):
            rng = np.random
            sents = self.sentences(index)
            bos = torch.tensor([self.vocab.bos()])
            eos = torch.tensor([self.eos])
            target = torch.cat([bos] + sents + [eos])
            if self.noise_style == "biobart-code":
                body = biobart_code_noise(rng, sents, self.mask_idx, self.token_noising_prob, self.poisson_lambda)
                source = torch.cat([bos, body, eos])
            else:
                source = self._paper_noise(rng, sents, bos, eos)
        return {"id": index, "source": source, "target": target}

    def _paper_noise(self, rng, sents, bos, eos):
        order = list(range(len(sents)))
        if self.permute_sentence_ratio > 0 and len(sents) > 1:
            order = self._permuted_order(rng, len(sents), self.permute_sentence_ratio)
        body = torch.cat([sents[i] for i in order]) if sents else torch.zeros(0, dtype=torch.long)
        starts = self._word_starts(body, [len(sents[i]) for i in order])

        if self.mask_ratio > 0 and len(body) > 0:
            body = self._infill(rng, body, starts)
        if self.insert_ratio > 0:
            body = self._insert(rng, body, self.insert_ratio)
        source = torch.cat([bos, body, eos])
        if self.rotate_ratio > 0.0 and rng.random() < self.rotate_ratio:
            source = self.add_rolling_noise(source)  # fairseq's; draws from numpy
        return source

    @staticmethod
    def _permuted_order(rng, n, p):
        # Same semantics as fairseq: a fraction p of the sentences swap places.
        k = math.ceil(n * p)
        chosen = rng.permutation(n)[:k]
        order = np.arange(n)
        order[chosen] = chosen[rng.permutation(k)]
        return order.tolist()

    def _word_starts(self, body, sentence_lengths):
        if self.mask_whole_word is not None:
            starts = self.mask_whole_word[body].bool().clone()
        else:
            starts = torch.ones(len(body), dtype=torch.bool)
        pos = 0
        for n in sentence_lengths:  # a sentence never continues the previous word
            if n:
                starts[pos] = True
            pos += n
        return starts

    def _infill(self, rng, body, starts):
        word_begin = starts.nonzero(as_tuple=False).view(-1).tolist()
        if not word_begin or word_begin[0] != 0:
            word_begin = [0] + word_begin
        bounds = word_begin + [len(body)]
        words = [body[bounds[i]:bounds[i + 1]] for i in range(len(word_begin))]
        n = len(words)
        budget = int(round(n * self.mask_ratio))
        if budget == 0:
            return body
        if self.span_poisson:
            lengths = poisson_span_lengths(rng, budget, self.poisson_lambda)
        else:  # "word" / "subword": spans of one unit
            lengths = np.ones(budget, dtype=np.int64)
        spans = [int(x) for x in rng.permutation(lengths)]
        inserts = sum(1 for x in spans if x == 0)
        spans = [x for x in spans if x > 0]
        kept = n - budget
        gaps = kept + 1  # places between kept words (and both ends)
        while len(spans) > gaps:  # only with mask ratios near 1: merge two spans
            a = spans.pop()
            spans[int(rng.randint(len(spans)))] += a
        inserts = min(inserts, gaps - len(spans))
        slots = rng.permutation(gaps)[: len(spans) + inserts]
        span_at = dict(zip(slots[: len(spans)].tolist(), spans))
        insert_at = set(slots[len(spans):].tolist())

        out, w = [], 0
        for gap in range(gaps):
            if gap in span_at:
                length = span_at[gap]
                covered = torch.cat(words[w:w + length])
                w += length
                out.append(self._replacement(rng, covered))
            elif gap in insert_at:
                out.append(self._replacement(rng, covered=None))
            if gap < kept:
                out.append(words[w])
                w += 1
        assert w == n
        return torch.cat(out) if out else body[:0]

    def _replacement(self, rng, covered):
        if covered is None:  # a zero-length span: insert one mask
            return self._mask_tokens(rng, 1)
        if self.replace_length == 0:
            return torch.zeros(0, dtype=torch.long)
        return self._mask_tokens(rng, 1 if self.replace_length == 1 else len(covered))

    def _mask_tokens(self, rng, n):
        """n <mask> tokens, each replaced by a random word with probability --mask-random."""
        out = torch.full((n,), self.mask_idx, dtype=torch.long)
        if self.random_ratio > 0:
            rand = torch.from_numpy(rng.random_sample(n) < self.random_ratio)
            if rand.any():
                ids = rng.randint(self.vocab.nspecial, len(self.vocab), size=int(rand.sum()))
                out[rand] = torch.from_numpy(ids).long()
        return out

    def _insert(self, rng, body, p):
        # Random insertion noise (--insert), drawn from numpy like everything else here.
        n = len(body)
        k = int(math.ceil(n * p))
        if k == 0:
            return body
        total = n + k
        is_new = torch.zeros(total, dtype=torch.bool)
        is_new[torch.from_numpy(rng.permutation(total)[:k])] = True
        out = torch.empty(total, dtype=torch.long)
        out[~is_new] = body
        out[is_new] = self._mask_tokens(rng, k)
        return out
