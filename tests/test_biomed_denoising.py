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


# --- --noise-style biobart-code: the released pretraining code's noise ----------------------
P, LAM = 0.1, 3.0
Q0 = math.exp(-LAM)  # P(K = 0): a zero-length span, i.e. an inserted <mask>
CODE_SAMPLES = 400


def poisson_pmf(k, lam=LAM):
    return math.exp(-lam) * lam ** k / math.factorial(k)


def expected_masked(n_max, p=P, lam=LAM, kmax=60):
    """E[masked subwords] of one sentence of n = 0..n_max subwords, by the walk's recursion.

    With n subwords left at the cursor: tails (1 - p) or a zero-length span (p e^-λ) keep one
    subword and leave n - 1; a span of length k >= 1 (p P(k)) masks min(k, n) and leaves
    n - min(k, n).  So M(0) = 0 and
        M(n) = (1 - p + p e^-λ) M(n-1) + p Σ_{k>=1} P(k) [min(k, n) + M(n - min(k, n))].
    """
    pmf = [poisson_pmf(k, lam) for k in range(kmax)]
    m = [0.0] * (n_max + 1)
    for n in range(1, n_max + 1):
        total = (1 - p + p * pmf[0]) * m[n - 1]
        for k in range(1, kmax):
            c = min(k, n)
            total += p * pmf[k] * (c + m[n - c])
        m[n] = total
    return m


def explain(source, sentences, mask):
    """Explain a noised body as the released code's walk could have produced it.

    Returns one (start, length) per <mask> in target positions (length 0 = inserted after the
    subword at start - 1), or None when no explanation exists with every span inside one
    sentence and every insertion right after a kept subword.  Dynamic programming over
    (source position, target position); where repeated subwords allow several
    explanations, one of them.
    """
    target = [t for s in sentences for t in s]
    sent_end = [e for s, e in zip(sentences, np.cumsum([len(s) for s in sentences])) for _ in s]
    states = {0: None}  # target position -> (previous target position, span) for the path
    history = []
    for i, tok in enumerate(source):
        nxt = {}
        for j in sorted(states):
            if tok != mask:
                if j < len(target) and target[j] == tok:
                    nxt.setdefault(j + 1, (j, None))
                continue
            if i > 0 and source[i - 1] != mask and j > 0:
                nxt.setdefault(j, (j, (j, 0)))  # inserted after the kept target[j - 1]
            for end in range(j + 1, (sent_end[j] if j < len(target) else j) + 1):
                nxt.setdefault(end, (j, (j, end - j)))
        history.append(nxt)
        states = nxt
        if not states:
            return None
    if len(target) not in states:
        return None
    spans, j = [], len(target)
    for nxt in reversed(history):
        j, span = nxt[j]
        if span is not None:
            spans.append(span)
    return spans[::-1]


@pytest.fixture(scope="module")
def code_samples(pubmed_bin):
    task, _ = make_task(pubmed_bin, "--noise-style", "biobart-code")
    task.load_dataset("train")
    ds = task.datasets["train"]
    assert len(ds) >= CODE_SAMPLES
    out = []
    for i in range(CODE_SAMPLES):
        s = ds[i]
        sents = line_sentences(ds, i)
        assert s["target"][1:-1].tolist() == sum(sents, []), f"sample {i}: target is not the block's text"
        assert s["source"][0] == task.dictionary.bos() and s["source"][-1] == task.dictionary.eos()
        out.append((s["source"][1:-1].tolist(), sents))
    return task, ds, out


def test_biobart_code_noise_statistics_on_real_abstracts(code_samples):
    """The released code's walk, measured on the output only, against values derived by hand.

    Per visited subword: tails (1 - p = 0.9) keep it; heads (p = 0.1) draw k ~ Poisson(3):
    k = 0 keeps it and inserts a <mask> after it, k >= 1 replaces k subwords (cut at the
    sentence end) by one <mask> and moves the cursor past them.  Hence:

    * share of masked subwords: without sentence ends it would be the renewal ratio
      p λ / (1 - p + p e^-λ + p λ) = 0.3 / 1.20498 = 0.2490; spans cut at a sentence end mask
      less, so the expectation is Σ_sentences M(L) / Σ L with M from ``expected_masked``
      (exact for the real sentence lengths; 0.2441 on these 400 blocks, 133,374 subwords);
    * every kept subword is followed by a <mask> with probability exactly p: it was a head
      with k = 0 (p e^-λ of the visited subwords, 1 - p + p e^-λ of them are kept), or tails
      (1 - p) and the next visited subword is a head with k >= 1 (p (1 - e^-λ)):
      [p e^-λ + (1 - p) p (1 - e^-λ)] / (1 - p + p e^-λ) = p;
    * a <mask> is followed by another with probability p (1 - e^-3) = 0.0950 (the subword
      after a span or insertion is visited and starts a span); one <mask> per subword instead
      of per span would give far more;
    * zero-length spans are e^-3 = 0.0498 of all spans, but "<mask> <mask>" over two subwords
      may be a span of 1 and a span of 1 or an insertion and a span of 2: only a <mask> between
      two kept subwords tells.  Being followed by a kept subword does not depend on k (above);
      being preceded by one is certain for an insertion and has probability 1 - p for a span
      (the subword before it was tails).  So e^-3 / (e^-3 + (1 - e^-3)(1 - p)) = 0.0550 of
      those <mask>s are insertions;
    * such <mask>s with k >= 1 and >= 15 subwords of room (P(K >= 15) < 1e-6): mean length
      E[K | K >= 1] = λ / (1 - e^-λ) = 3.157.
    """
    task, _, samples = code_samples
    mask = task.mask_idx
    m_exp = expected_masked(512)
    words = masks = kept_next = kept_then_mask = followed = not_last = 0
    per_sentence = []  # (masked, expected) per sentence, for the standard error of the share
    isolated = []  # (k, room) of <mask>s between two kept subwords
    for i, (src, sents) in enumerate(samples):
        spans = explain(src, sents, mask)
        assert spans is not None, f"sample {i}: not an in-order noising with spans inside sentences"
        is_mask = [t == mask for t in src]
        assert len(spans) == sum(is_mask)
        masks += sum(is_mask)
        followed += sum(1 for a, b in zip(is_mask, is_mask[1:]) if a and b)
        not_last += sum(is_mask[:-1])
        kept_next += sum(1 for a in is_mask[:-1] if not a)
        kept_then_mask += sum(1 for a, b in zip(is_mask, is_mask[1:]) if not a and b)
        ends = np.cumsum([len(s) for s in sents])
        by_sentence = np.zeros(len(sents))
        mask_pos = [n for n, a in enumerate(is_mask) if a]
        for n, (start, k) in zip(mask_pos, spans):
            if k:
                by_sentence[int(np.searchsorted(ends, start, side="right"))] += k
            if 0 < n < len(src) - 1 and not is_mask[n - 1] and not is_mask[n + 1]:
                room = int(ends[np.searchsorted(ends, start, side="right")]) - start if k else 0
                isolated.append((k, room))
        for s, sent in enumerate(sents):
            per_sentence.append((by_sentence[s], m_exp[len(sent)]))
        words += int(ends[-1]) if len(ends) else 0

    masked = sum(m for m, _ in per_sentence)
    share, expected = masked / words, sum(e for _, e in per_sentence) / words
    se = math.sqrt(sum((m - e) ** 2 for m, e in per_sentence)) / words
    print(f"masked share {share:.4f}, expected {expected:.4f} (no truncation 0.2490), se {se:.4f}; "
          f"{masks} masks over {words} subwords")
    assert abs(share - expected) <= 4 * se, (share, expected, se)

    def near(x, n, p):  # x successes in n trials, within 4 binomial standard deviations
        return abs(x / n - p) <= 4 * math.sqrt(p * (1 - p) / n)

    assert near(kept_then_mask, kept_next, P), (kept_then_mask / kept_next, P)
    assert near(followed, not_last, P * (1 - Q0)), (followed / not_last, P * (1 - Q0))
    inserts = sum(1 for k, _ in isolated if k == 0)
    print(f"kept->mask {kept_then_mask / kept_next:.4f} (0.1), mask->mask {followed / not_last:.4f} (0.0950), "
          f"insertions among isolated masks {inserts / len(isolated):.4f} (0.0550)")
    assert near(inserts, len(isolated), Q0 / (Q0 + (1 - Q0) * (1 - P))), (inserts / len(isolated))
    free = [k for k, room in isolated if k and room >= 15]
    mean_k = LAM / (1 - Q0)
    sd_k = math.sqrt((LAM + LAM ** 2) / (1 - Q0) - mean_k ** 2)
    assert abs(np.mean(free) - mean_k) <= 4 * sd_k / math.sqrt(len(free)), np.mean(free)


def test_biobart_code_noise_is_a_function_of_seed_epoch_index(code_samples):
    _, ds, samples = code_samples
    again = [ds[i]["source"][1:-1].tolist() for i in reversed(range(20))][::-1]
    assert again == [src for src, _ in samples[:20]]
    ds.set_epoch(2)
    assert any(ds[i]["source"][1:-1].tolist() != samples[i][0] for i in range(20))
    ds.set_epoch(1)


@pytest.mark.parametrize("flag", [["--mask", "0.2"], ["--permute-sentences", "1"]])
def test_biobart_code_refuses_paper_only_options(pubmed_bin, flag):
    with pytest.raises(ValueError, match=flag[0] + " has no effect with --noise-style biobart-code"):
        make_task(pubmed_bin, "--noise-style", "biobart-code", *flag)


def test_biobart_code_needs_no_bpe_record(pubmed_bin, tmp_path):
    for f in pubmed_bin.iterdir():
        if f.name != "bpe.json":
            (tmp_path / f.name).symlink_to(f)
    task, _ = make_task(tmp_path, "--noise-style", "biobart-code", "--token-noising-prob", "0.2")
    task.load_dataset("valid")  # subword noise: no word-start table
    assert len(task.datasets["valid"][0]["source"]) > 2


# --- stock flags: honoured or refused (issue 16) ------------------------------------------
def raw_line(ds, raw, index):
    """The unshortened text of block `index` (break mode eos: one line per block), read with
    fairseq's loader straight from the binarized file, and the block's text."""
    start, _, end = ds.dataset.block_to_dataset_index[index]
    assert start == end
    return raw[start][:-1].tolist(), ds[index]["target"][1:-1].tolist()


def test_shorten_method_random_crop_on_listed_splits_only(pubmed_bin):
    """--shorten-method random_crop crops long lines (a window anywhere in the line) in the
    listed split; other splits keep the head of the line, as without the flag."""
    from fairseq.data import data_utils

    task, _ = make_task(pubmed_bin, "--tokens-per-sample", "24", "--mask", "0", "--sample-break-mode", "eos",
                        "--shorten-method", "random_crop", "--shorten-data-split-list", "train")
    room = 22
    offsets = []
    for split in ("train", "valid"):
        task.load_dataset(split)
        ds, raw = task.datasets[split], data_utils.load_indexed_dataset(str(pubmed_bin / split), task.dictionary)
        for i in range(min(len(ds), 300)):
            line, got = raw_line(ds, raw, i)
            if len(line) <= room:
                assert got == line
            elif split == "valid":
                assert got == line[:room], f"valid sample {i} is not its line's head"
            else:
                starts = [o for o in range(len(line) - room + 1) if line[o:o + room] == got]
                assert starts, f"train sample {i} is not a window of its line"
                offsets.append(starts[0])
    assert len(offsets) > 50 and sum(o > 0 for o in offsets) > 0.8 * len(offsets), offsets[:20]


def test_shorten_method_truncate_and_refused_stock_flags(pubmed_bin):
    """--shorten-method truncate keeps heads; --permute (no fairseq dataset reads it) and a --bpe
    that contradicts the data's bpe.json are refused instead of ignored."""
    from fairseq.data import data_utils

    task, _ = make_task(pubmed_bin, "--tokens-per-sample", "24", "--mask", "0", "--sample-break-mode", "eos",
                        "--shorten-method", "truncate")
    task.load_dataset("valid")
    ds, raw = task.datasets["valid"], data_utils.load_indexed_dataset(str(pubmed_bin / "valid"), task.dictionary)
    for i in range(len(ds)):
        line, got = raw_line(ds, raw, i)
        assert got == line[:22]
    with pytest.raises(ValueError, match="--permute"):
        make_task(pubmed_bin, "--permute", "0.1")
    task, _ = make_task(pubmed_bin, "--bpe", "gpt2")  # the data's bpe.json says sentencepiece
    with pytest.raises(BpeInfoError, match="--bpe gpt2 given"):
        task.load_dataset("valid")
