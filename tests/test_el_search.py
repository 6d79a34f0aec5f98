"""Entity-linking decoding has GenBioEL's beam semantics, checked against an independent beam
search on a model trained here on the real NCBI-disease corpus.

The fixture builds a small linking set from ../shared/data/ncbi_disease without the
preparation command (word-level tokens, the KB = every MEDIC name of the concepts the corpus
uses, ±8 context words): that keeps the whole module within seconds, and the decoder does not
care how the ids were made.  A tiny BART trained for 300 updates links a good share of the
test mentions (checked), so beams compete on real scores.

The independent search (:func:`reference_search`) is a plain loop over one mention at a time,
re-running the decoder on the whole prefix (no incremental state) and walking the trie from
the root: each step takes the ``beam`` best expansions of the live hypotheses; an ``</s>``
among the first ``beam - finished`` of them finishes a name, a lower one is dropped; every
other expansion stays live; the mention is done when ``beam`` names have finished (or none is
live).  That is what GenBioEL's vendored fairseq search does with ``beam`` candidates per
step.  With ``cands=2 * beam`` and fairseq's usual refill rule it gives the search this
project used before, so the test also shows that the two differ on this model.
"""

import math
import random
import re
from argparse import Namespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fairseq import options
from fairseq.data import Dictionary, LanguagePairDataset, indexed_dataset
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.search import PrefixConstrainedBeamSearch
from fairseq.sequence_generator import SequenceGenerator
from fairseq.tasks.translation import TranslationTask

from biobart_fairseq.data.el_dataset import EntityLinkingDataset
from biobart_fairseq.decoding.trie import Trie
from biobart_fairseq.tasks.entity_linking import EntityLinkingConfig, EntityLinkingTask
from conftest import SHARED_DATA, TINY_BART

NCBI = SHARED_DATA / "ncbi_disease"
BEAM = 5
N_TEST = 120  # test mentions decoded by every method
WORD = re.compile(r"[a-z0-9]+")


# --- a small linking set from the real corpus --------------------------------------------------
def words(text):
    return WORD.findall(text.lower())


def read_pubtator(path):
    """(text, start, end, mention, first gold id) of each annotation of a PubTator file."""
    texts, out = {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if "|t|" in line[:20] or "|a|" in line[:20]:
            pmid, _, body = line.split("|", 2)
            texts[pmid] = (texts[pmid] + " " + body) if pmid in texts else body
            continue
        cols = line.split("\t")
        if len(cols) == 6:
            cui = re.split(r"[|+]", cols[5])[0].strip().replace("MESH:", "")
            out.append((texts[cols[0]], int(cols[1]), int(cols[2]), cols[3], cui))
    return out


def read_medic(path):
    """concept id -> names (MEDIC ``ids||names``; an OMIM number is ``OMIM:n``)."""
    kb = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        ids, _, names = line.partition("||")
        for i in ids.split("|"):
            kb.setdefault(i if i[:1] in "CD" else f"OMIM:{i}", []).extend(names.split("|"))
    return kb


def sample_of(d, record, kb):
    text, start, end, mention, cui = record
    left, right = words(text[:start])[-8:], words(text[end:])[:8]
    m = words(mention)
    names = [tuple(words(n)) for n in kb[cui]]
    name = tuple(m) if tuple(m) in names else names[0]
    src = [d.index(w) for w in left + ["START"] + m + ["END"] + right] + [d.eos()]
    tgt = [d.index(w) for w in m + ["is"] + list(name)] + [d.eos()]
    return torch.tensor(src), torch.tensor(tgt), len(m) + 1


@pytest.fixture(scope="module")
def linking():
    """(dictionary, trie, name -> concept, train dataset, test dataset, test gold ids)."""
    if not NCBI.is_dir():
        pytest.skip(f"NCBI-disease corpus not found at {NCBI}")
    train = read_pubtator(NCBI / "train" / "NCBItrainset_corpus.txt")
    test = read_pubtator(NCBI / "test" / "NCBItestset_corpus.txt")
    medic = read_medic(NCBI / "dictionary" / "medic_06Jul2012.txt")
    train = [r for r in train if r[4] in medic and words(r[3])]
    test = [r for r in test if r[4] in medic and words(r[3])][:N_TEST]
    # the KB: up to 4 names (of at most 5 words) of each concept the corpus uses; a small
    # vocabulary (KB and mention words; other context words are <unk>) keeps training quick
    kb = {c: [n for n in medic[c] if 0 < len(words(n)) <= 5][:4] or medic[c][:1]
          for c in sorted({r[4] for r in train + test})}
    name_cui = {}
    for c, names in kb.items():
        for n in names:
            if words(n):
                name_cui.setdefault(tuple(words(n)), c)
    d = Dictionary()
    for w in ["START", "END", "is"] + sorted({w for n in name_cui for w in n} | {w for r in train + test for w in words(r[3])}):
        d.add_symbol(w)
    trie = Trie([[d.index(w) for w in n] + [d.eos()] for n in name_cui])

    def dataset(records):
        src, tgt, plen = zip(*(sample_of(d, r, kb) for r in records))
        pair = LanguagePairDataset(list(src), np.array([len(s) for s in src]), d, list(tgt),
                                   np.array([len(t) for t in tgt]), d, left_pad_target=False)
        return EntityLinkingDataset(pair, np.array(plen))

    names = {tuple(d.index(w) for w in n): c for n, c in name_cui.items()}
    return d, trie, names, dataset(train), dataset(test), [r[4] for r in test]


@pytest.fixture(scope="module")
def model(linking):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared 2-core machine: one thread is fastest
    yield train_model(linking)
    torch.set_num_threads(threads)


def train_model(linking):
    d, _, _, train, _, _ = linking
    args = options.parse_args_and_arch(options.get_training_parser(), [
        "/nonexistent", "--task", "translation", *TINY_BART, "--share-all-embeddings", "--dropout", "0"])
    torch.manual_seed(0)
    m = ARCH_MODEL_REGISTRY["bart_base"].build_model(args, TranslationTask(args, d, d))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    order = np.random.RandomState(0).permutation(len(train))
    for update in range(300):
        batch = train.collater([train[int(i)] for i in order[(update * 32) % len(order):][:32]])
        logits = m(**batch["net_input"])[0]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), batch["target"].view(-1), ignore_index=d.pad())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


# --- the independent search -----------------------------------------------------------------
@torch.no_grad()
def reference_search(model, src, prefix, trie, eos, beam=BEAM, cands=None, len_penalty=1.0):
    """Beam search over the trie for one mention, as described in the module docstring:
    -> [(name ids, name score)] best first.  ``cands=2 * beam``: fairseq's default rule
    (finished names leave the beam, which is refilled from the other candidates; done when
    ``beam`` names have finished)."""
    genbioel = cands is None
    cands = beam if genbioel else cands
    model.set_beam_size(1)  # one row per hypothesis here (a generator sets its beam on the model)
    enc = model.encoder(src.unsqueeze(0), src_lengths=torch.tensor([len(src)]))

    def next_lprobs(seqs):
        out = model.encoder.reorder_encoder_out(enc, torch.zeros(len(seqs), dtype=torch.long))
        logits = model.decoder(torch.tensor(seqs), encoder_out=out)[0][:, -1, :]
        lp = torch.log_softmax(logits.float(), dim=-1)
        lp[:, model.decoder.dictionary.pad()] = -math.inf  # as fairseq's generator
        return lp.tolist()

    start = [eos] + list(prefix)
    lp_prefix = sum(next_lprobs([start[:i + 1]])[0][t] for i, t in enumerate(prefix))
    live = [(lp_prefix, start, [])]  # (cumulative score, tokens, name log-probs)
    done = []
    while live and len(done) < beam:
        expansions = []
        for (score, seq, name_lp), lp in zip(live, next_lprobs([s for _, s, _ in live])):
            for t in trie.get(seq[1 + len(prefix):]):
                expansions.append((score + lp[t], seq + [t], name_lp + [lp[t]]))
        expansions.sort(key=lambda e: -e[0])  # stable: ties keep the hypothesis order
        eligible = beam - len(done) if genbioel else beam
        live = []
        for rank, (score, seq, name_lp) in enumerate(expansions[:cands]):
            if seq[-1] != eos:
                if genbioel or len(live) < beam:
                    live.append((score, seq, name_lp))
            elif rank < eligible and len(done) < beam:
                done.append((tuple(seq[1 + len(prefix):-1]), sum(name_lp) / len(name_lp) ** len_penalty))
    return sorted(done, key=lambda x: -x[1])


# --- helpers -------------------------------------------------------------------------------------
def el_task(d, trie, tmp_path, **cfg):
    trie.save(tmp_path / "trie.npz")
    # the fields fairseq fills from the dataset config when it builds the task from flags
    cfg = dict(dict(dataset_impl="mmap", train_subset="train", required_seq_len_multiple=1), **cfg)
    return EntityLinkingTask(EntityLinkingConfig(data=str(tmp_path), trie=str(tmp_path / "trie.npz"), **cfg), d, d)


def generation(beam=BEAM, **kw):
    return Namespace(**dict(dict(beam=beam, nbest=beam, max_len_a=0, max_len_b=200, min_len=1, lenpen=1.0), **kw))


def decode(task, gen, model, ds, ids, batch_size):
    out = {}
    for k in range(0, len(ids), batch_size):
        sample = ds.collater([ds[i] for i in ids[k:k + batch_size]])
        for sid, hypos in zip(sample["id"].tolist(), task.inference_step(gen, [model], sample)):
            out[sid] = [(tuple(h["name_tokens"].tolist()), h["score"]) for h in hypos]
    return out


def assert_same(ours, ref, tol=1e-4):
    assert [n for n, _ in ours] == [n for n, _ in ref]
    assert all(abs(a - b) < tol for (_, a), (_, b) in zip(ours, ref))


# --- tests -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ours(linking, model, tmp_path_factory):
    """Our decoder through the task (batches of 32 in a shuffled order) on N_TEST mentions."""
    d, trie, _, _, test, _ = linking
    task = el_task(d, trie, tmp_path_factory.mktemp("el_task"))
    ids = list(range(len(test)))
    random.Random(0).shuffle(ids)
    return decode(task, task.build_generator([model], generation()), model, test, ids, 32)


def test_model_links_a_good_share_and_outputs_are_kb_names(linking, ours):
    _, _, names, _, test, gold = linking
    assert all(len(hs) == BEAM and all(n in names for n, _ in hs) for hs in ours.values())
    r1 = np.mean([names[ours[i][0][0]] == gold[i] for i in range(len(test))])
    top1 = {ours[i][0][0] for i in range(len(test))}
    assert r1 > 0.3 and len(top1) > 15, (r1, len(top1))  # a model that links, not a constant


def test_same_names_and_scores_as_an_independent_genbioel_search(linking, model, ours):
    d, trie, _, _, test, _ = linking
    differs_with_refill = 0
    for i in range(len(test)):
        src, tgt = test[i]["source"], test[i]["target"]
        prefix = tgt[: test.prefix_lens[i]].tolist()
        ref = reference_search(model, src, prefix, trie, d.eos())
        assert_same(ours[i], ref)
        if i < 40:
            refill = reference_search(model, src, prefix, trie, d.eos(), cands=2 * BEAM)
            differs_with_refill += [n for n, _ in refill] != [n for n, _ in ref]
    # the semantics matter on this model: fairseq's refill rule ranks other names
    assert differs_with_refill > 0


def test_same_as_fairseqs_prefix_constrained_search(linking, model, ours):
    """fairseq's own PrefixConstrainedBeamSearch (``beam`` candidates, a Python allowed-tokens
    function walking the trie from the root: the previous ``--el-stock-search``) gives the
    same names and scores; beam 1 gives the independent search's greedy names."""
    d, trie, _, _, test, _ = linking
    ids = list(range(60))
    prefixes = {i: test[i]["target"][: test.prefix_lens[i]].tolist() for i in ids}

    def allowed(batch_id, sent):
        prefix, toks = prefixes[int(batch_id)], sent.tolist()
        return [prefix[len(toks) - 1]] if len(toks) - 1 < len(prefix) else trie.get(toks[1 + len(prefix):])

    from biobart_fairseq.decoding.el_generator import rerank_batch

    gen = SequenceGenerator([model], d, beam_size=BEAM, max_len_b=200, search_strategy=PrefixConstrainedBeamSearch(d, allowed))
    for k in range(0, len(ids), 20):
        sample = test.collater([test[i] for i in ids[k:k + 20]])
        with torch.no_grad():
            hypos = rerank_batch(gen.generate([model], sample), sample["prefix_lens"].tolist())
        for sid, hs in zip(sample["id"].tolist(), hypos):
            assert_same(ours[sid], [(tuple(h["name_tokens"].tolist()), h["score"]) for h in hs], tol=1e-5)


def test_beam_one_is_greedy(linking, model, tmp_path):
    d, trie, _, _, test, _ = linking
    task = el_task(d, trie, tmp_path)
    got = decode(task, task.build_generator([model], generation(beam=1)), model, test, list(range(30)), 30)
    for i in range(30):
        prefix = test[i]["target"][: test.prefix_lens[i]].tolist()
        assert_same(got[i], reference_search(model, test[i]["source"], prefix, trie, d.eos(), beam=1))


def test_small_kb_ends_without_running_to_the_length_limit(linking, model, tmp_path):
    """A KB with fewer names than the beam: every name is found, and the mention ends when
    none can be added (GenBioEL runs on to max_len with -inf scores and finds the same)."""
    d, _, _, _, test, _ = linking
    names = [[d.index(w) for w in n.split()] for n in ("breast cancer", "cancer", "ovarian cancer")]
    assert d.unk() not in sum(names, [])
    small = Trie([n + [d.eos()] for n in names])
    task = el_task(d, small, tmp_path)
    gen = task.build_generator([model], generation(max_len_b=400))
    steps = []
    hook = model.decoder.register_forward_hook(lambda *_: steps.append(1))
    try:
        got = decode(task, gen, model, test, [0, 1, 2], 3)
    finally:
        hook.remove()
    for i in range(3):
        prefix = test[i]["target"][: test.prefix_lens[i]].tolist()
        ref = reference_search(model, test[i]["source"], prefix, small, d.eos())
        assert len(ref) == 3
        assert_same(got[i], ref)
    assert len(steps) < 20  # decoder steps for the batch; the limit is 400


def test_refuses_generation_flags_it_cannot_honour(linking, model, tmp_path):
    d, trie, _, _, test, _ = linking
    task = el_task(d, trie, tmp_path)
    for flag in ({"sampling": True}, {"diverse_beam_groups": 2}, {"print_alignment": "hard"}, {"prefix_size": 1}):
        with pytest.raises(ValueError, match="not supported"):
            task.build_generator([model], generation(**flag))
    gen = task.build_generator([model], generation())
    sample = test.collater([test[0]])
    with pytest.raises(ValueError, match="prefix"):
        task.inference_step(gen, [model], sample, prefix_tokens=sample["target"][:, :1])


# --- data loading: translation's loader, its flags work or are refused --------------------------
def write_split(folder, d, ds, split, n, align=False):
    for lang, key in (("source", "source"), ("target", "target")):
        prefix = str(folder / f"{split}.source-target.{lang}")
        builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap", vocab_size=len(d))
        for i in range(n):
            builder.add_item(ds[i][key])
        builder.finalize(prefix + ".idx")
    np.save(folder / f"{split}.prefix_len.npy", ds.prefix_lens[:n])
    if align:  # one source-target word pair per sample: (0, 0)
        prefix = str(folder / f"{split}.align.source-target")
        builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap")
        for _ in range(n):
            builder.add_item(torch.IntTensor([0, 0]))
        builder.finalize(prefix + ".idx")


def test_load_dataset_honours_translation_flags(linking, tmp_path):
    d, trie, _, _, test, _ = linking
    d.save(str(tmp_path / "dict.source.txt"))
    d.save(str(tmp_path / "dict.target.txt"))
    write_split(tmp_path, d, test, "test", 20)
    task = el_task(d, trie, tmp_path, truncate_source=True, max_source_positions=6)
    task.load_dataset("test")
    batch = task.dataset("test").collater([task.dataset("test")[i] for i in range(20)])
    assert batch["net_input"]["src_tokens"].size(1) == 6  # --truncate-source cut the contexts
    assert (batch["net_input"]["src_tokens"][:, -1] == d.eos()).all()
    assert batch["prefix_lens"].tolist() == test.prefix_lens[batch["id"].numpy()].tolist()
    # --load-alignments: refused with the file's name when there is none (translation would
    # silently load nothing), loaded into the batch when there is
    task = el_task(d, trie, tmp_path, load_alignments=True)
    with pytest.raises(FileNotFoundError, match="test.align.source-target"):
        task.load_dataset("test")
    write_split(tmp_path, d, test, "test", 20, align=True)
    task.load_dataset("test")
    batch = task.dataset("test").collater([task.dataset("test")[i] for i in range(4)])
    assert "alignments" in batch and batch["alignments"].size(0) == 4


def test_same_on_the_fast_architecture(linking, model, ours, tmp_path):
    """The trained weights as --arch biobart_base (SDPA attention): the same names and scores
    through the task's constrained generator."""
    d, trie, _, _, test, _ = linking
    fast_args = ["biobart_base" if a == "bart_base" else a for a in TINY_BART]
    args = options.parse_args_and_arch(options.get_training_parser(), [
        "/nonexistent", "--task", "translation", *fast_args, "--share-all-embeddings", "--dropout", "0"])
    fast = ARCH_MODEL_REGISTRY["biobart_base"].build_model(args, TranslationTask(args, d, d))
    fast.load_state_dict(model.state_dict())
    fast.eval()
    task = el_task(d, trie, tmp_path)
    ids = list(range(min(len(test), 64)))
    got = decode(task, task.build_generator([fast], generation()), fast, test, ids, 32)
    for i in ids:
        assert_same(got[i], ours[i])


def test_decoding_only_live_rows_changes_nothing(linking, model, ours, tmp_path):
    """The ensemble runs the decoder on the live rows only (a sentence's forced prefix has
    one, a finished name's slot none): the same names and scores as decoding every row,
    far fewer decoder rows, and the models' beam setting is left as the generator set it
    (other generators may share the models)."""
    d, trie, _, _, test, _ = linking
    task = el_task(d, trie, tmp_path)
    gen = task.build_generator([model], generation())
    assert gen.model.compact
    full = task.build_generator([model], generation())
    full.model.compact = False  # fairseq's rows, all of them
    rows = []
    hook = model.decoder.register_forward_hook(lambda _m, args, _out: rows.append(args[0].size(0)))
    try:
        ids = list(range(40))
        got_full = decode(task, full, model, test, ids, 20)
        n_full = sum(rows)
        rows.clear()
        got = decode(task, gen, model, test, ids, 20)
    finally:
        hook.remove()
    for i in ids:
        assert_same(got[i], got_full[i], tol=1e-5)
        assert_same(got[i], ours[i], tol=1e-5)
    assert sum(rows) < 0.8 * n_full, (sum(rows), n_full)
    assert all(layer.encoder_attn.beam_size == BEAM for layer in model.decoder.layers)
