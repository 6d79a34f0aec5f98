"""The CSR token trie against a brute-force set-of-prefixes reference, its persistence
without pickle, and its memory per name next to a GENRE-style nested-dict trie."""

import random
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from biobart_fairseq.decoding.trie import DONE, ROOT, Trie

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from nested_dict_trie import dict_get, dict_trie  # noqa: E402  (the baseline, shared with the benchmarks)


def reference(seqs):
    """prefix tuple -> set of next tokens (the brute-force definition of a trie)."""
    ref = {}
    for s in seqs:
        for i in range(len(s)):
            ref.setdefault(tuple(s[:i]), set()).add(s[i])
    return ref


def random_seqs(rnd, n, vocab, max_len, eos=None):
    out = []
    for _ in range(n):
        s = [rnd.randrange(3, vocab) for _ in range(rnd.randrange(0, max_len))]
        out.append(s + [eos] if eos is not None else s)
    return out


@pytest.mark.parametrize("eos", [None, 2])
def test_get_matches_brute_force_on_random_sequences(eos):
    rnd = random.Random(0 if eos is None else 1)
    for trial in range(150):
        # small vocabularies: many shared prefixes, duplicates, sequences that are prefixes
        # of others, empty sequences
        seqs = random_seqs(rnd, rnd.randrange(0, 40), rnd.choice([4, 6, 30]), 7, eos)
        trie = Trie(seqs)
        ref = reference(seqs)
        for p, nxt in ref.items():
            assert trie.get(list(p)) == sorted(nxt), (seqs, p)
        for _ in range(30):  # random prefixes, most of them not in the trie
            p = tuple(rnd.randrange(2, 8) for _ in range(rnd.randrange(0, 6)))
            assert trie.get(list(p)) == sorted(ref.get(p, ())), (seqs, p)
        assert len(trie) == len({tuple(s) for s in seqs if s})
        if eos is not None:
            assert trie.end_token == (eos if seqs else -1)
            assert sorted(map(tuple, trie.sequences())) == sorted({tuple(s) for s in seqs})
            for s in seqs:
                assert s in trie
                assert trie.node_for(s) == DONE


def test_cursor_api_agrees_with_get():
    rnd = random.Random(5)
    seqs = random_seqs(rnd, 300, 50, 9, eos=2)
    trie = Trie(seqs)
    for s in seqs[:100]:
        node = ROOT
        for i, t in enumerate(s):
            assert trie.children(node) == trie.get(s[:i])
            node = trie.child(node, t)
            assert node != -1
        assert node == DONE and trie.children(node) == []
    assert trie.child(ROOT, 10**6) == -1 and trie.children(-1) == []
    # a long common prefix: more than WIDE children at one node exercises the dict path
    wide = Trie([[7, t, 2] for t in range(3, 500)])
    assert wide.get([7]) == list(range(3, 500)) and wide.get([7, 42]) == [2] and wide.get([7, 600]) == []


@pytest.mark.parametrize("eos", [None, 2])
def test_children_many_agrees_with_the_brute_force_trie(eos):
    """The vectorised lookup the beam search uses: every node's (token, child) pairs at once,
    for nodes anywhere in the trie, dead ends (-1, DONE) and duplicates included."""
    rnd = random.Random(7)
    for trial in range(40):
        seqs = random_seqs(rnd, rnd.randrange(1, 60), rnd.choice([5, 30, 300]), 7, eos)
        trie = Trie(seqs)
        ref = reference(seqs)
        prefixes = [list(p) for p in ref] + [[99999]]
        nodes = np.array([trie.node_for(p) for p in prefixes] + [DONE, -1, ROOT])
        owner, toks, kids = trie.children_many(nodes)
        for i, p in enumerate(prefixes + [None, None, []]):
            mine = sorted(zip(toks[owner == i].tolist(), kids[owner == i].tolist()))
            expected = sorted(ref.get(tuple(p), ())) if p is not None else []
            assert [t for t, _ in mine] == expected, (seqs, p)
            # each token leads where walking the prefix + token leads
            assert all(k == trie.node_for(p + [t]) for t, k in mine), (seqs, p)


def test_save_load_round_trip_without_pickle(tmp_path):
    rnd = random.Random(3)
    seqs = random_seqs(rnd, 2000, 70000, 12, eos=2)  # ids above 65535: int32 token storage
    trie = Trie(seqs)
    assert trie.tokens.dtype == np.int32
    path = tmp_path / "trie.npz"
    trie.save(path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                header = f.read(128)
            assert b"'descr': '|O'" not in header, f"{name} is an object array (would need pickle)"
    back = Trie.load(path)  # np.load(..., allow_pickle=False) inside
    assert len(back) == len(trie) and back.max_length == trie.max_length == max(map(len, seqs))
    for s in seqs[:300]:
        for i in range(len(s)):
            assert back.get(s[:i]) == trie.get(s[:i])


def test_rejects_negative_ids():
    with pytest.raises(ValueError):
        Trie([[1, -3, 2]])


def synthetic_kb(n, seed=0):
    """KB-like names: Zipf-distributed words of 1-3 subwords, 1-8 words, then eos."""
    rng = np.random.default_rng(seed)
    word_tok = [rng.integers(4, 50_000, k).tolist() for k in rng.integers(1, 4, 30_000)]
    p = 1.0 / np.arange(1, 30_001) ** 1.1
    words = rng.choice(30_000, size=n * 8, p=p / p.sum()).tolist()
    out = []
    for i, m in enumerate(rng.integers(1, 9, n).tolist()):
        out.append([t for w in words[i * 8:i * 8 + m] for t in word_tok[w]] + [2])
    return out


def test_memory_per_name_against_nested_dict():
    """<= 40 bytes per name once loaded, with the same answers as a GENRE-style nested-dict
    trie.  Speed (build time, get() calls/s against the dict) is measured by
    benchmarks/trie_scale.py at 0.1 M-3 M names, not here: tests are not timed."""
    seqs = synthetic_kb(200_000)
    trie = Trie(seqs)
    assert trie.nbytes / len(seqs) <= 40, trie.nbytes / len(seqs)
    ref = dict_trie(seqs)
    rnd = random.Random(0)
    for s in rnd.sample(seqs, 2000):
        q = s[:rnd.randrange(len(s))]
        assert trie.get(q) == sorted(dict_get(ref, q))
