"""biomed_denoising: defaults, whole-word masking, statistics of the noise on real abstracts.

The statistics are measured from the noised output only (source vs. target tokens), not
from the sampler's internals: a span is what a regular expression that lets each
``<mask>`` stand for zero or more whole target words has to absorb.
"""

import math
import re
from collections import Counter

import numpy as np
import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from biobart_fairseq.data.infilling_dataset import poisson_span_lengths
from biobart_fairseq.data.word_starts import BpeInfoError, word_start_table
from conftest import REPO, TINY_BART

PLUGIN = str(REPO / "biobart_fairseq")
N_SAMPLES = 300


def make_task(data, *extra):
    parser = options.get_training_parser()
    argv = [str(data), "--task", "biomed_denoising", "--user-dir", PLUGIN, *TINY_BART, *extra]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, argv))
    return tasks.setup_task(cfg.task), cfg


def words_of(tokens, starts):
    """Group token ids into words (tuples) using the word-start table."""
    out = []
    for t in tokens.tolist():
        if starts[t] or not out:
            out.append([t])
        else:
            out[-1].append(t)
    return ["_".join(map(str, w)) for w in out]


def align(task, sample):
    """Return (target word count, kept word count, span lengths) or None if the source
    is not 'target with whole-word spans replaced by one <mask> each, order kept'."""
    starts = task.word_starts()
    tgt = words_of(sample["target"][1:-1], starts)
    src = words_of(sample["source"][1:-1], starts)
    mask = str(task.mask_idx)
    pattern = "".join(r"((?:\S+ )*?)" if w == mask else re.escape(w) + " " for w in src)
    m = re.fullmatch(pattern, "".join(w + " " for w in tgt))
    if m is None:
        return None
    return len(tgt), sum(1 for w in src if w != mask), [len(g.split()) for g in m.groups()]


def test_paper_defaults_and_overrides(pubmed_bin):
    task, cfg = make_task(pubmed_bin)
    t = cfg.task
    assert (t.mask, t.mask_length, t.poisson_lambda, t.replace_length) == (0.3, "span-poisson", 3.0, 1)
    assert (t.tokens_per_sample, t.rotate, t.insert, t.permute_sentences) == (512, 0.0, 0.0, 0)
    assert type(task).__name__ == "BiomedDenoisingTask"
    _, cfg = make_task(pubmed_bin, "--mask", "0.15", "--poisson-lambda", "3.5", "--permute-sentences", "1",
                       "--tokens-per-sample", "256", "--mask-length", "word")
    t = cfg.task
    assert (t.mask, t.poisson_lambda, t.permute_sentences, t.tokens_per_sample, t.mask_length) == (
        0.15, 3.5, 1, 256, "word")


def test_text_infilling_statistics_on_real_abstracts(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--tokens-per-sample", "512")
    task.load_dataset("train")
    ds = task.datasets["train"]
    assert len(ds) >= N_SAMPLES
    n_words = n_kept = n_masks = 0
    spans = []
    for i in range(N_SAMPLES):
        s = ds[i]
        src = s["source"]
        assert src[0] == task.dictionary.bos() and src[-1] == task.dictionary.eos()
        is_mask = src == task.mask_idx
        # one <mask> per span: masks are never adjacent (spans are kept apart) ...
        assert not (is_mask[1:] & is_mask[:-1]).any(), f"adjacent masks in sample {i}"
        # ... and the rest of the text is the target's, in order, with whole words removed
        res = align(task, s)
        assert res is not None, f"sample {i}: source is not an in-order infilling of the target"
        words, kept, lengths = res
        assert len(lengths) == int(is_mask.sum())
        n_words += words
        n_kept += kept
        n_masks += len(lengths)
        spans += lengths
    share = (n_words - n_kept) / n_words
    assert abs(share - 0.30) <= 0.02, share
    mean = float(np.mean(spans))
    assert abs(mean - 3.0) <= 0.3, mean
    # the distribution, not just the mean: total variation distance to Poisson(3)
    hist = Counter(spans)
    pmf = [math.exp(-3) * 3 ** k / math.factorial(k) for k in range(40)]
    tv = 0.5 * sum(abs(hist.get(k, 0) / len(spans) - pmf[k]) for k in range(40))
    assert tv < 0.06, (tv, sorted(hist.items())[:12])


def test_poisson_sampler_matches_lambda():
    rng = np.random.RandomState(0)
    budget_draws = [poisson_span_lengths(rng, 10_000, 3.0) for _ in range(3)]
    for lengths in budget_draws:
        assert lengths.sum() == 10_000
        body = lengths[:-1]  # the last one is cut to fit the budget
        assert abs(body.mean() - 3.0) < 0.1 and abs(body.var() - 3.0) < 0.25


def line_sentences(ds, index):
    """The sentences of block `index` straight from fairseq's TokenBlockDataset mapping
    (the binarized lines), independent of the dataset's own sentence splitting."""
    start, _, end = ds.dataset.block_to_dataset_index[index]
    lines = ds.dataset.dataset
    out = []
    for j in range(start, end + 1):
        line = lines[j][:-1]  # drop the line's </s>
        if len(line):
            out.append(line.tolist())
    return out


@pytest.mark.parametrize("permute", [0, 1])
def test_sentence_permutation_switch(pubmed_bin, permute):
    task, _ = make_task(pubmed_bin, "--mask", "0", "--permute-sentences", str(permute))
    task.load_dataset("train")
    ds = task.datasets["train"]
    changed = multi = 0
    p_same = []  # chance that a uniformly random order of the block is the identity
    for i in range(200):
        s = ds[i]
        sents = line_sentences(ds, i)
        assert s["target"][1:-1].tolist() == sum(sents, [])
        src = s["source"][1:-1].tolist()
        # peel sentences off the source: it must be a permutation of the block's sentences
        remaining, order = list(range(len(sents))), []
        while src:
            hit = next((k for k in remaining if src[: len(sents[k])] == sents[k]), None)
            assert hit is not None, f"sample {i}: source is not made of the block's sentences"
            order.append(hit)
            remaining.remove(hit)
            src = src[len(sents[hit]):]
        assert not remaining
        if len(sents) > 1:
            multi += 1
            changed += order != sorted(order)
            p_same.append(1 / math.factorial(len(sents)))
    assert multi > 100
    if permute:
        # a uniform shuffle: as many blocks changed as expected, within 4 standard deviations
        expected = sum(1 - p for p in p_same)
        sd = math.sqrt(sum(p * (1 - p) for p in p_same))
        assert abs(changed - expected) <= 4 * sd + 1, (changed, expected, sd)
    else:
        assert changed == 0


def test_masking_with_permutation_still_masks_whole_words(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--permute-sentences", "1")
    task.load_dataset("valid")
    ds = task.datasets["valid"]
    starts = task.word_starts()
    for i in range(len(ds)):
        s = ds[i]
        kept = [w for w in words_of(s["source"][1:-1], starts) if w != str(task.mask_idx)]
        assert Counter(kept) <= Counter(words_of(s["target"][1:-1], starts))


def test_noise_is_a_function_of_seed_epoch_index(pubmed_bin):
    task, _ = make_task(pubmed_bin)
    task.load_dataset("valid")
    ds = task.datasets["valid"]
    a = [ds[i]["source"] for i in range(5)]
    _ = [ds[i] for i in reversed(range(len(ds)))]  # other draws in between change nothing
    torch.manual_seed(1234)
    np.random.seed(99)
    assert all(torch.equal(x, ds[i]["source"]) for i, x in enumerate(a))
    ds.set_epoch(2)
    assert any(not torch.equal(x, ds[i]["source"]) for i, x in enumerate(a))


def test_sizes_are_exact_and_samples_fit(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--tokens-per-sample", "128")
    task.load_dataset("train")
    ds = task.datasets["train"]
    for i in range(len(ds)):
        s = ds[i]
        assert len(s["target"]) == ds.sizes[i] <= 128


def test_whole_word_table_for_sentencepiece(pubmed_bin):
    task, _ = make_task(pubmed_bin)
    d, ws = task.dictionary, task.word_starts()
    for idx in range(d.nspecial, len(d)):
        sym = d[idx]
        if sym == "<mask>":
            assert ws[idx]
        elif re.fullmatch(r"<0x[0-9A-F]{2}>", sym):
            assert not ws[idx], sym  # byte-fallback pieces continue a word
        else:
            assert bool(ws[idx]) == sym.startswith("\u2581"), sym


def test_whole_word_table_for_gpt2(tmp_path):
    from fairseq.data import Dictionary

    (tmp_path / "encoder.json").write_text('{"the": 0, "\\u0120the": 1, "ing": 2, "\\u0120cell": 3}')
    d = Dictionary()
    for sym in ["1", "2", "0", "3"]:
        d.add_symbol(sym)
    d.add_symbol("<mask>")
    table = word_start_table(d, {"type": "gpt2", "encoder_json": str(tmp_path / "encoder.json")})
    assert [bool(table[d.index(s)]) for s in ["1", "2", "0", "3", "<mask>"]] == [True, False, False, True, True]


def test_missing_bpe_info_is_a_clear_error(pubmed_bin, tmp_path):
    for f in pubmed_bin.iterdir():
        if f.name != "bpe.json":
            (tmp_path / f.name).symlink_to(f)
    task, _ = make_task(tmp_path)
    with pytest.raises(BpeInfoError, match="bpe.json: not found"):
        task.load_dataset("valid")
    task, _ = make_task(tmp_path, "--mask-length", "subword")
    task.load_dataset("valid")  # subword masking needs no BPE record


def test_break_mode_none_is_rejected(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--sample-break-mode", "none")
    with pytest.raises(ValueError, match="sentence-aligned"):
        task.load_dataset("valid")


def test_insertion_noise_adds_masks_and_keeps_the_text(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--mask", "0", "--insert", "0.1")
    task.load_dataset("valid")
    ds = task.datasets["valid"]
    for i in range(len(ds)):
        s = ds[i]
        body, src = s["target"][1:-1], s["source"][1:-1]
        is_mask = src == task.mask_idx
        assert int(is_mask.sum()) == math.ceil(0.1 * len(body))  # --insert: that share of new tokens
        assert torch.equal(src[~is_mask], body)  # and nothing else changed
