"""Entity-linking decoding speed: the current default (GenBioEL's beam semantics,
``EntityLinkingSequenceGenerator``) against the former default of commit be39048
(``TrieConstrainedBeamSearch``: ``2 x beam`` candidates, a mention done once any ``beam``
names finished).

The former search is not in the tree any more: it is read from git history at run time
(``git show be39048:biobart_fairseq/decoding/{prefix_constraint,trie}.py`` into a temporary
package) and set up the way be39048's ``EntityLinkingTask.build_generator`` /
``inference_step`` did.  Both decode the same batches (sorted by source length, as fairseq's
iterator makes them) with the same model; the two alternate batch by batch, the first of each
pair alternating too, for several rounds, so that load from other jobs on a shared machine
hits both alike.  Prints each round's mentions/s and ratio, and the medians.

Without --data/--checkpoint it builds them as ``el_decode.py`` does (real NCBI-disease
corpus, tiny BART; ``--updates`` training updates).

    python benchmarks/el_search_vs_former.py                  # 20-update model, all 960 test mentions
    python benchmarks/el_search_vs_former.py --updates 300 --rounds 5
    python benchmarks/el_search_vs_former.py --data OUT/bin --checkpoint ckpt.pt --dump out.json
"""

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from el_decode import REPO, build  # noqa: E402

FORMER_FILES = ("prefix_constraint.py", "trie.py")


def former_module(commit: str, tmp: str):
    """be39048's ``prefix_constraint`` (with its own trie), imported from a temporary package."""
    pkg = Path(tmp) / "former_el_search"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in FORMER_FILES:
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:biobart_fairseq/decoding/{name}"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / name).write_text(src)
    sys.path.insert(0, tmp)
    return importlib.import_module("former_el_search.prefix_constraint"), importlib.import_module("former_el_search.trie")


class FormerDecoder:
    """be39048's default: TranslationTask's generator with the trie constraint as
    ``prefix_allowed_tokens_fn``, its search replaced by ``TrieConstrainedBeamSearch``, the
    encoder-copy and alignment-buffer patches, a per-batch length limit, name-score ranking."""

    def __init__(self, pc, trie_mod, task, models, beam, trie_path):
        from fairseq.dataclass.configs import GenerationConfig
        from fairseq.tasks.translation import TranslationTask

        self.pc, self.task, self.models = pc, task, models
        self.trie = trie_mod.Trie.load(trie_path)
        self.constraint = pc.EntityLinkingConstraint(self.trie)
        gcfg = GenerationConfig(beam=beam, nbest=beam, max_len_a=0, min_len=1)
        gen = TranslationTask.build_generator(task, models, gcfg, prefix_allowed_tokens_fn=self.constraint)
        gen.search = pc.TrieConstrainedBeamSearch(task.target_dictionary, self.constraint)
        pc.skip_within_sentence_reorders(gen, beam)
        pc.drop_alignment_attention(gen)
        self.gen = gen

    def __call__(self, sample):
        plens = sample["prefix_lens"].tolist()
        prev = sample["net_input"]["prev_output_tokens"].tolist()
        self.constraint.set_prefixes(sample["id"].tolist(), [p[1:1 + n] for p, n in zip(prev, plens)])
        self.gen.max_len_a, self.gen.max_len_b = 0, max(plens) + max(1, self.trie.max_length)
        with torch.no_grad():
            hypos = self.gen.generate(self.models, sample)
        hypos = [self.pc.rerank(h, n, 1.0) for h, n in zip(hypos, plens)]
        return [[(h["name_tokens"].tolist(), h["el_score"]) for h in hs] for hs in hypos]


class CurrentDecoder:
    """The task's own generator and ``inference_step``, as ``biobart-el-eval`` builds it."""

    def __init__(self, task, models, beam, split):
        from biobart_fairseq.cli import el_eval

        self.task, self.models = task, models
        self.gen = el_eval.build_generator(task, models, beam=beam, split=split)

    def __call__(self, sample):
        hypos = self.task.inference_step(self.gen, self.models, sample)
        return [[(h["name_tokens"].tolist(), h["score"]) for h in hs] for hs in hypos]


def timed(decode, sample):
    t0 = time.perf_counter()
    out = decode(sample)
    return time.perf_counter() - t0, out


def run_rounds(decoders, batches, rounds):
    """Seconds per round per decoder, alternating decoders batch by batch (the first of each
    pair alternates with the batch and the round), and each decoder's outputs by sample id."""
    names = list(decoders)
    seconds = {n: [] for n in names}
    outputs = {n: {} for n in names}
    for r in range(rounds):
        total = dict.fromkeys(names, 0.0)
        for k, sample in enumerate(batches):
            order = names if (k + r) % 2 == 0 else names[::-1]
            for n in order:
                dt, out = timed(decoders[n], sample)
                total[n] += dt
                outputs[n].update(zip(sample["id"].tolist(), out))
        for n in names:
            seconds[n].append(total[n])
        print(f"round {r + 1}: " + ", ".join(f"{n} {total[n]:.2f}s" for n in names)
              + f", current/former speed {total['former'] / total['current']:.3f}x", flush=True)
    return seconds, outputs


def machine(threads):
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), "
            f"torch {torch.__version__}, {threads} thread(s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="biobart-prepare-el output (OUT/bin); default: build from the NCBI corpus")
    ap.add_argument("--checkpoint", help="model checkpoint; default: train a tiny one (--updates)")
    ap.add_argument("--updates", type=int, default=20, help="training updates when building (default: %(default)s)")
    ap.add_argument("--keep", help="build into this folder and keep it (reuse with --data/--checkpoint)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--mentions", type=int, default=0, help="first N mentions (default: all)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--context-words", type=int, default=384)
    ap.add_argument("--former-commit", default="be39048")
    ap.add_argument("--dump", help="write the current decoder's outputs here (JSON, by sample id)")
    ap.add_argument("--profile", help="cProfile the current decoder over one pass into this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data and args.checkpoint:
            data, ckpt = args.data, args.checkpoint
        else:
            where = args.keep or tmp
            os.makedirs(where, exist_ok=True)
            data, ckpt = build(where, args.context_words, updates=args.updates)
            print(f"built data {data}, checkpoint {ckpt}")
        bench(args, data, ckpt, tmp)


def bench(args, data, ckpt, tmp):
    from biobart_fairseq.cli import el_eval

    models, task = el_eval.load(data, ckpt, cpu=True)
    task.load_dataset(args.split)
    ds = task.dataset(args.split)
    n = len(ds) if args.mentions <= 0 else min(args.mentions, len(ds))
    by_len = sorted(range(n), key=lambda i: int(ds.dataset.src_sizes[i]))
    batches = [ds.collater([ds[i] for i in by_len[k:k + args.batch_size]]) for k in range(0, n, args.batch_size)]
    pc, trie_mod = former_module(args.former_commit, tmp)
    decoders = {"former": FormerDecoder(pc, trie_mod, task, models, args.beam, os.path.join(data, "trie.npz")),
                "current": CurrentDecoder(task, models, args.beam, args.split)}
    for d in decoders.values():  # warm-up on the longest sources (first-touch allocations)
        d(batches[-1])
    if args.profile:
        profile(decoders["current"], batches, args.profile)
    print(f"{n} mentions, beam {args.beam}, batch {args.batch_size}, {machine(args.threads)}")
    seconds, outputs = run_rounds(decoders, batches, args.rounds)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    ratios = [f / c for f, c in zip(seconds["former"], seconds["current"])]
    print(f"median over {args.rounds} rounds: former {n / med['former']:.1f} mentions/s, "
          f"current {n / med['current']:.1f} mentions/s; current/former speed: median of per-round ratios "
          f"{statistics.median(ratios):.3f}x (min {min(ratios):.3f}, max {max(ratios):.3f})")
    if args.dump:
        with open(args.dump, "w") as f:
            json.dump({str(k): v for k, v in sorted(outputs["current"].items())}, f)


def profile(decode, batches, path):
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    for sample in batches:
        decode(sample)
    prof.disable()
    prof.dump_stats(path)
    print(f"profile of one pass of the current decoder: {path}")


if __name__ == "__main__":
    main()
