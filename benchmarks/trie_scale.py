"""Trie scale benchmark: our CSR ``Trie`` against a GENRE-style nested-dict trie.

For each size (default 0.1 M, 1 M, 3 M synthetic KB names) prints bytes per name, build
seconds and ``get()`` calls per second on the same random prefixes of stored names.

Synthetic names imitate BPE-encoded KB names: a 30k-word vocabulary drawn Zipf-like, each
word 1-3 subword ids out of 50k, 1-8 words per name, then ``eos`` (2) — so, as in a real
KB, names share their first words.  Memory: for our trie the arrays' ``nbytes`` (what
``Trie.load`` holds); for the dict trie the growth of the process RSS while building it
(each size in a fresh child process, so the numbers do not leak into each other).

    python benchmarks/trie_scale.py                       # 0.1M, 1M, 3M
    python benchmarks/trie_scale.py --sizes 100000 --dict-max 100000
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import time

import numpy as np

from biobart_fairseq.decoding.trie import Trie
from nested_dict_trie import dict_get, dict_trie  # noqa: E402

EOS = 2


def synthetic_names(n, seed=0):
    rng = np.random.default_rng(seed)
    n_words = 30_000
    word_len = rng.integers(1, 4, n_words)
    word_tok = [rng.integers(4, 50_000, k).tolist() for k in word_len]
    # Zipf-like word frequencies: a few words ("disease", "syndrome", ...) start many names
    p = 1.0 / np.arange(1, n_words + 1) ** 1.1
    p /= p.sum()
    n_w = rng.integers(1, 9, n)
    words = rng.choice(n_words, size=int(n_w.sum()), p=p)
    out, k = [], 0
    for m in n_w.tolist():
        seq = []
        for w in words[k:k + m].tolist():
            seq.extend(word_tok[w])
        k += m
        out.append(seq + [EOS])
    return out


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def prefixes(seqs, n, seed=1):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        s = seqs[rnd.randrange(len(seqs))]
        out.append(s[: rnd.randrange(len(s))])
    return out


def time_gets(get, queries, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for q in queries:
            get(q)
        best = min(best, time.perf_counter() - t0)
    return len(queries) / best


def measure(kind, n, n_queries, q):
    seqs = synthetic_names(n)
    queries = prefixes(seqs, n_queries)
    if kind == "ours":
        t0 = time.perf_counter()
        trie = Trie(seqs)
        build = time.perf_counter() - t0
        del seqs
        # check on the same queries that both tries agree before timing
        res = dict(kind=kind, n=n, bytes_per_name=trie.nbytes / n, build_s=build,
                   nodes_per_name=trie.num_nodes / n, gets_per_s=time_gets(trie.get, queries),
                   answers=[len(trie.get(x)) for x in queries[:200]])
    else:
        base = rss_bytes()
        t0 = time.perf_counter()
        root = dict_trie(seqs)
        build = time.perf_counter() - t0
        mem = rss_bytes() - base
        del seqs
        res = dict(kind=kind, n=n, bytes_per_name=mem / n, build_s=build,
                   gets_per_s=time_gets(lambda x: dict_get(root, x), queries),
                   answers=[len(dict_get(root, x)) for x in queries[:200]])
    q.put(res)


def run_child(kind, n, n_queries):
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=measure, args=(kind, n, n_queries, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000],
                    help="numbers of synthetic names (default: %(default)s)")
    ap.add_argument("--dict-max", type=int, default=3_000_000,
                    help="largest size also built as a nested-dict trie (~1.4 kB/name of RAM; default: %(default)s)")
    ap.add_argument("--queries", type=int, default=50_000, help="get() calls timed per size (default: %(default)s)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'names':>9} {'trie':>6} {'bytes/name':>11} {'build s':>8} {'get()/s':>10} {'nodes/name':>10}")
    for n in args.sizes:
        ours = run_child("ours", n, args.queries)
        rows.append(ours)
        print(f"{n:>9} {'ours':>6} {ours['bytes_per_name']:>11.1f} {ours['build_s']:>8.1f} "
              f"{ours['gets_per_s']:>10.0f} {ours['nodes_per_name']:>10.2f}", flush=True)
        if n <= args.dict_max:
            ref = run_child("dict", n, args.queries)
            rows.append(ref)
            assert ref["answers"] == ours["answers"], "the two tries disagree"
            print(f"{n:>9} {'dict':>6} {ref['bytes_per_name']:>11.1f} {ref['build_s']:>8.1f} {ref['gets_per_s']:>10.0f}"
                  f"   -> ours {ref['bytes_per_name'] / ours['bytes_per_name']:.0f}x smaller, "
                  f"get {ours['gets_per_s'] / ref['gets_per_s']:.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "answers"} for r in rows], f, indent=1)


if __name__ == "__main__":
    main()
