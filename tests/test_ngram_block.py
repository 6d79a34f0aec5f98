"""--no-repeat-ngram-size on CPU: fairseq's stock blocker bans nothing, ours works.

The generator test uses a deterministic toy model whose greedy continuation cycles
"a b c a b c ..." (the second choice is always "d"), so any working trigram blocker must break
the cycle after "a b c a b" and a broken one repeats "a b c".
"""

from argparse import Namespace

import pytest
import torch
from fairseq.data import Dictionary
from fairseq.models import FairseqDecoder, FairseqEncoder, FairseqEncoderDecoderModel
from fairseq.ngram_repeat_block import NGramRepeatBlock
from fairseq.tasks.translation import TranslationTask

from biobart_fairseq.decoding.ngram_block import StepAwareNGramBlocker, fix_generator
from biobart_fairseq.tasks.biomed_translation import BiomedTranslationConfig, BiomedTranslationTask


def _dictionary():
    d = Dictionary()
    for w in "abcd":
        d.add_symbol(w)
    return d


class _Encoder(FairseqEncoder):
    def forward(self, src_tokens, src_lengths=None, **kwargs):
        return {"encoder_out": [src_tokens.new_zeros(src_tokens.size(1), src_tokens.size(0), 1).float()]}

    def reorder_encoder_out(self, encoder_out, new_order):
        return {"encoder_out": [encoder_out["encoder_out"][0].index_select(1, new_order)]}


class _CyclingDecoder(FairseqDecoder):
    """Next token after x: a after bos/c/d, b after a, c after b; 'd' is the runner-up."""

    def __init__(self, d):
        super().__init__(d)
        self.nxt = {d.eos(): d.index("a"), d.index("a"): d.index("b"), d.index("b"): d.index("c"),
                    d.index("c"): d.index("a"), d.index("d"): d.index("a")}

    def forward(self, prev_output_tokens, encoder_out=None, **kwargs):
        bsz, t = prev_output_tokens.shape
        logits = torch.full((bsz, t, len(self.dictionary)), -10.0)
        logits[:, :, self.dictionary.index("d")] = 0.0
        logits[:, :, self.dictionary.eos()] = -5.0
        for i in range(bsz):
            for j in range(t):
                logits[i, j, self.nxt.get(int(prev_output_tokens[i, j]), self.dictionary.index("a"))] = 5.0
        return logits, {"attn": [None]}

    def max_positions(self):
        return 1024


def _generate(task_cls, d):
    task = task_cls(BiomedTranslationConfig(), d, d)
    model = FairseqEncoderDecoderModel(_Encoder(d), _CyclingDecoder(d)).eval()
    gen = task.build_generator([model], Namespace(beam=2, max_len_a=0, max_len_b=10, min_len=1, no_repeat_ngram_size=3))
    sample = {"net_input": {"src_tokens": torch.tensor([[d.index("a"), d.eos()]]), "src_lengths": torch.tensor([2])}}
    hyp = task.inference_step(gen, [model], sample)[0][0]["tokens"]
    return d.string(hyp).split()


def _has_repeated_trigram(words):
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return len(grams) != len(set(grams))


def test_stock_translation_task_repeats_trigrams_on_cpu():
    words = _generate(TranslationTask, _dictionary())
    assert _has_repeated_trigram(words), words  # the upstream bug this plugin fixes


def test_biomed_translation_blocks_repeated_trigrams_on_cpu():
    words = _generate(BiomedTranslationTask, _dictionary())
    assert len(words) >= 6 and not _has_repeated_trigram(words), words
    assert words[:5] == ["a", "b", "c", "a", "b"]  # the blocker bans only what it must


def test_stock_blocker_with_full_buffer_bans_nothing_ours_bans():
    # buffer of 1 hypothesis: bos a b c a b <pad> <pad> ...; step 5 -> next token must not be c
    tokens = torch.tensor([[2, 4, 5, 6, 4, 5] + [1] * 6])
    stock = NGramRepeatBlock(3, use_extension=False)(tokens, torch.zeros(1, 8), 1, 1, 5)
    assert torch.isfinite(stock).all()
    ours = StepAwareNGramBlocker(3)(tokens, torch.zeros(1, 8), 1, 1, 5)
    assert torch.isinf(ours[0, 6]) and torch.isfinite(ours).sum() == 7


@pytest.mark.parametrize("n", [2, 3, 4])  # n=1: fairseq's slice [-0:] never matches
def test_matches_reference_algorithm_on_sliced_tokens(n):
    """Same bans as fairseq's own CPU algorithm when that is given only the generated tokens."""
    g = torch.Generator().manual_seed(n)
    bsz, beam, vocab = 3, 2, 9
    for step in range(0, 12):
        tokens = torch.randint(4, vocab, (bsz * beam, 14), generator=g)
        tokens[:, step + 1:] = 1  # padding after the current step, as in the generator's buffer
        ref = NGramRepeatBlock(n, use_extension=False)._no_repeat_ngram(tokens[:, : step + 1], torch.zeros(bsz * beam, vocab), bsz, beam, step)
        ours = StepAwareNGramBlocker(n)(tokens, torch.zeros(bsz * beam, vocab), bsz, beam, step)
        assert torch.equal(torch.isinf(ref), torch.isinf(ours)), (n, step)


def test_fix_generator_leaves_generators_without_blocking_alone():
    class G:
        repeat_ngram_blocker = None

    assert fix_generator(G()).repeat_ngram_blocker is None
