"""biobart-prepare-el: entity-linking corpora -> canonical JSONL/KB -> fairseq model inputs.

Step 1 (always): read the published files of a dataset and write, in ``-o OUT``,
``<split>.jsonl`` (one mention a line: doc_id, text, start, end, mention, cuis) and, when
``--kb`` is given, ``kb.tsv`` (``cui<TAB>name``).  AskAPatient writes ``OUT/fold<i>/``.

Step 2 (with ``--bpe``): the model inputs in ``OUT/bin`` (``OUT/fold<i>/bin``), as GenBioEL:

* source: the lower-cased context, at most ``--max-context-words`` words centred on the
  mention, with ``START`` / ``END`` around the mention;
* target: ``<mention> is`` + the gold concept's name most similar to the mention (TF-IDF
  character n-grams, cosine); ``<split>.prefix_len.npy`` says how many target tokens are the
  prefix (not trained on);
* ``trie.npz`` over the token ids of every KB name + ``</s>``, ``kb_names.tsv`` (name, CUIs,
  ids), ``<split>.meta.jsonl`` (gold CUIs of each sample, in dataset order);
* sentencepiece (trained here, or ``--spm-model``) or GPT-2 BPE (``--encoder-json
  --vocab-bpe --dict``: BART/BioBART's files), then ``fairseq-preprocess``.

``--style genbioel`` (NCBI, BC5CDR) prepares the mentions and the dictionary as the data
behind the paper's Table 4 was prepared (BioSyn's and GenBioEL's scripts: abbreviations
expanded, composite mentions resolved, their normalisation, train/dev mentions added to
the NCBI dictionary; see docs/entity_linking.md); ``--style raw`` (default) links the
mentions as written, with every punctuation mark removed from names.

``--dataset jsonl --input DIR`` runs step 2 on canonical files written before.
Exit status: 0 ok, 2 usage error or unusable input (not UTF-8, empty; file and line
named), 3 written but some records were bad (see OUT/report.json).  Mentions without a
concept (BC5CDR id -1) are counted in the report, not errors.
"""

import argparse
import glob
import html
import json
import os
import sys
import tempfile
import time
from collections import Counter

import numpy as np
from tqdm import tqdm

from .. import errors
from ..data import el_biosyn as B
from ..data import el_formats as F
from ..data.atomic import run_staged
from ..data import bpe
from ..data.bpe import add_gpt2_arguments, add_sentencepiece_arguments, missing_gpt2_arguments

PROG = "biobart-prepare-el"
SPLITS = ("train", "dev", "test")
FAIRSEQ_SPLIT = {"train": "train", "dev": "valid", "test": "test"}


def log(msg):
    tqdm.write(f"[{PROG}] {msg}", file=sys.stderr)


def fail(msg):
    return errors.fail(PROG, msg)  # exit 2, one line (biobart_fairseq/errors.py)


def _one(pattern_dir, patterns, what):
    for pat in patterns:
        hits = sorted(h for h in glob.glob(os.path.join(pattern_dir, "**", pat), recursive=True) if os.path.isfile(h))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{pattern_dir}: no {what} file ({' or '.join(patterns)})")


# --- step 1: published files -> canonical mentions ------------------------------------------------
def read_dataset(args, ctx):
    """-> {out_subdir: {split: [Mention]}}; bad records are appended to ``ctx.bad``."""

    def keep(records):
        out = []
        for r in records:
            (ctx.bad.append(r) if isinstance(r, F.BadRecord) else out.append(r))
        return out

    d, inp = args.dataset, args.input
    if args.style == "genbioel" and d in ("ncbi", "bc5cdr"):
        return read_genbioel(args, keep, ctx)
    if d == "ncbi":
        train = keep(F.read_pubtator(_one(inp, ["*trainset*", "*train*.txt"], "NCBI train")))
        dev = keep(F.read_pubtator(_one(inp, ["*developset*", "*dev*.txt"], "NCBI dev")))
        test = keep(F.read_pubtator(_one(inp, ["*testset*", "*test*.txt"], "NCBI test")))
        for m in train + dev + test:
            m.cuis = F.drop_omim_if_mixed(m.cuis)
        if args.ncbi_train == "traindev":
            # BioSyn/GenBioEL: train on train+dev; composite mentions (several ids) are
            # dropped from training only — dev and test keep them (a hit on any id counts).
            train = [m for m in train + dev if len(m.cuis) == 1]
        return {"": {"train": train, "dev": dev, "test": test}}
    if d == "bc5cdr":
        return {"": {
            "train": keep(F.read_pubtator(_one(inp, ["*Training*", "*train*"], "BC5CDR training"))),
            "dev": keep(F.read_pubtator(_one(inp, ["*Development*", "*dev*"], "BC5CDR development"))),
            "test": keep(F.read_pubtator(_one(inp, ["*Test*", "*test*"], "BC5CDR test"))),
        }}
    if d == "medmentions":
        corpus = inp if os.path.isfile(inp) else _one(inp, ["corpus_pubtator.txt*"], "MedMentions corpus")
        pmid_dir = args.split_pmids or (inp if os.path.isdir(inp) else os.path.dirname(inp))
        out = {}
        for split, name in (("train", "trng"), ("dev", "dev"), ("test", "test")):
            ids = F.read_pmid_list(os.path.join(pmid_dir, f"corpus_pubtator_pmids_{name}.txt"))
            out[split] = keep(F.read_pubtator(corpus, doc_ids=ids))
        return {"": out}
    if d == "cometa":
        return {"": {s: keep(F.read_cometa(_one(inp, [f"{s}.csv", f"{s}.tsv"], f"COMETA {s}"))) for s in SPLITS}}
    if d == "askapatient":
        folds = {}
        for i in range(args.folds):
            folds[f"fold{i}"] = {
                s: keep(F.read_askapatient(_one(inp, [f"AskAPatient.fold-{i}.{name}.txt"], f"AskAPatient fold {i} {s}")))
                for s, name in (("train", "train"), ("dev", "validation"), ("test", "test"))}
        return folds
    if d == "jsonl":
        return {"": {s: keep(F.read_jsonl(os.path.join(inp, f"{s}.jsonl")))
                     for s in SPLITS if os.path.isfile(os.path.join(inp, f"{s}.jsonl"))}}
    raise ValueError(d)


def read_genbioel(args, keep, ctx):
    """``--style genbioel``: NCBI through BioSyn's query preprocessing, BC5CDR through
    GenBioEL's reader (``data/el_biosyn.py``); sets ``ctx.synonyms`` (NCBI: the mentions
    BioSyn adds to the dev and test dictionaries) and ``ctx.origin`` (mention -> the split
    whose dictionary its target synonym comes from)."""
    inp, counts = args.input, ctx.counts
    if args.dataset == "bc5cdr":
        files = {"train": ["*Training*", "*train*"], "dev": ["*Development*", "*dev*"], "test": ["*Test*", "*test*"]}
        return {"": {s: B.genbioel_bc5cdr(keep(F.read_pubtator(_one(inp, pats, f"BC5CDR {s}"), with_columns=True)),
                                          ctx.kb_ids, counts, s) for s, pats in files.items()}}
    text = B.BiosynText(B.read_typos(args.typo_file) if args.typo_file else None, keep="|")
    raw = {s: keep(F.read_pubtator(_one(inp, pats, f"NCBI {s}"))) for s, pats in
           (("train", ["*trainset*", "*train*.txt"]), ("dev", ["*developset*", "*dev*.txt"]),
            ("test", ["*testset*", "*test*.txt"]))}
    splits = {}
    for s, ms in raw.items():
        for m in ms:
            m.cuis = F.drop_omim_if_mixed(m.cuis)
        splits[s] = B.biosyn_queries(ms, text, ctx.kb_ids, counts, s)
    # BioSyn: dev dictionary = KB + train mentions, test dictionary = + dev mentions
    syn_train, syn_dev = B.mention_synonyms(splits["train"]), B.mention_synonyms(splits["dev"])
    ctx.synonyms = {"train": [], "dev": syn_train, "test": syn_train + syn_dev}
    ctx.origin = {id(m): s for s, ms in splits.items() for m in ms}
    if args.ncbi_train == "traindev":  # GenBioEL: train + dev, composite mentions dropped
        splits["train"] = [m for m in splits["train"] + splits["dev"] if len(m.cuis) == 1]
    return {"": splits}


def read_kb_pairs(args, bad):
    if args.kb:
        pairs = []
        for r in tqdm(F.read_kb(args.kb, args.kb_format), desc="KB", unit=" names", mininterval=1, disable=None):
            (bad.append(r) if isinstance(r, F.BadRecord) else pairs.append(r))
        return pairs
    if args.dataset == "askapatient":
        files = sorted(glob.glob(os.path.join(args.input, "**", "AskAPatient.fold-*.txt"), recursive=True))
        log(f"no --kb: the AskAPatient KB is the (cui, label) pairs of its {len(files)} fold files")
        return F.askapatient_labels(files)
    if args.dataset == "jsonl" and os.path.isfile(os.path.join(args.input, "kb.tsv")):
        return [r for r in F.read_kb(os.path.join(args.input, "kb.tsv"), "tsv") if not isinstance(r, F.BadRecord)]
    return None


# --- step 2: canonical mentions -> model inputs -------------------------------------------------------
def mention_words(m: F.Mention) -> str:
    """The mention as the model reads and writes it: ``--style genbioel``'s processed query
    (its first phrase for a resolved composite, as GenBioEL), else the text, lower-cased."""
    if m.query is not None:
        return " ".join(m.query.split("|")[0].split())
    return " ".join(html.unescape(m.mention).lower().split())


def make_source(m: F.Mention, max_words: int) -> str:
    """Lower-cased context, ``max_words`` words at most, centred on the marked mention."""
    left = html.unescape(m.text[: m.start]).lower().split()
    ment = mention_words(m).split()
    right = html.unescape(m.text[m.end:]).lower().split()
    budget = max(0, max_words - len(ment) - 2)
    n_left = min(len(left), budget // 2)
    n_right = min(len(right), budget - n_left)
    n_left = min(len(left), budget - n_right)  # give the left what the right did not use
    return " ".join(left[len(left) - n_left:] + ["START"] + ment + ["END"] + right[:n_right])


def make_source_genbioel(m: F.Mention, max_words: int) -> str:
    """GenBioEL's window: the whole text when it has at most ``max_words`` words; else the
    shorter side whole and the other side filled up to ``max_words`` context words; else
    ``max_words // 2`` words each side (the mention and markers are not counted)."""
    left = m.text[: m.start].lower().split()
    right = m.text[m.end:].lower().split()
    half = max_words // 2
    if len(m.text.split()) > max_words:
        if len(left) <= half:
            right = right[: max_words - len(left)]
        elif len(right) <= half:
            left = left[len(left) - (max_words - len(right)):]
        else:
            left, right = left[len(left) - half:], right[:half]
    return html.unescape(" ".join(left + ["START", mention_words(m), "END"] + right))


def make_prefix(m: F.Mention) -> str:
    return mention_words(m) + " is"


def name_normaliser(args):
    """Names of the KB and targets: ``--style raw``: :func:`F.conv_name`; genbioel NCBI:
    BioSyn's dictionary processing (all ASCII punctuation) then GenBioEL's conv; genbioel
    BC5CDR: GenBioEL's conv (23 characters)."""
    lowercase = not args.keep_case
    if args.style != "genbioel":
        return lambda n: F.conv_name(n, lowercase)
    if args.genbioel_dataset == "ncbi":
        biosyn = B.BiosynText()
        return lambda n: B.genbioel_conv(biosyn(n), lowercase)
    return lambda n: B.genbioel_conv(n, lowercase)


class SynonymPicker:
    """The gold concept's name most similar to the mention (TF-IDF cosine, GenBioEL)."""

    def __init__(self, names):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), lowercase=True, dtype=np.float32)
        self.mat = self.vec.fit_transform(self.names)  # rows l2-normalised: dot = cosine

    def pick(self, mention: str, candidates):
        if len(candidates) == 1:
            return candidates[0]
        rows = [self.index[c] for c in candidates]
        sims = (self.mat[rows] @ self.vec.transform([mention]).T).toarray().ravel()
        return candidates[int(np.argmax(sims))]  # ties: the first name in KB order


class Encoder:
    """GenBioEL's BPE call: sentencepiece pieces of the text, or the GPT-2 ids of ' ' + text.
    The BPE's files and bpe.json go into ``out`` (data/bpe.py), so the folder is relocatable."""

    def __init__(self, args, out, train_text):
        self.info = bpe.setup_from_args(args, out, train_text, args.workers, spm_max_sentences=2_000_000, log=log)
        self.kind = self.info["type"]
        self._encode = bpe.token_encoder(self.info)

    def __call__(self, text):
        return self._encode(text if self.kind == "sentencepiece" else " " + text)  # GenBioEL: BPE(' ' + x)


def dictionaries(args, kb_pairs, ctx):
    """-> (name -> cuis of the dictionary the trie uses, {split: cui -> names} the target
    synonyms are picked from).  Without mention synonyms every split uses the KB; with
    them (genbioel NCBI) each split has BioSyn's dictionary for it."""
    norm = name_normaliser(args)
    index = lambda extra: F.build_name_index(list(kb_pairs) + extra, ambiguous=args.ambiguous_names, normalise=norm)
    syn = ctx.synonyms or {}
    cui_names, name_cuis = index(syn.get("test", []))
    split_names = {s: cui_names for s in SPLITS}
    for s in ("train", "dev"):
        if s in syn:
            split_names[s] = index(syn[s])[0]
    return name_cuis, split_names


def make_rows(args, splits, ctx, name_cuis, split_names, counts):
    """(source, prefix, target synonym, meta) per mention and split."""
    norm = name_normaliser(args)
    picker = SynonymPicker(list(name_cuis))
    source = make_source_genbioel if args.style == "genbioel" else make_source
    rows = {}
    for split, mentions in splits.items():
        rows[split] = []
        for m in tqdm(mentions, desc=f"targets {split}", unit=" mentions", mininterval=1, disable=None):
            cui_names = split_names[ctx.origin.get(id(m), split)]
            cands = list(dict.fromkeys(n for c in m.cuis for n in cui_names.get(c, [])))
            said = norm(mention_words(m))
            if not cands:
                counts[f"{split}_gold_not_in_kb"] += 1
                if split == "train":
                    continue  # nothing to learn from; eval splits keep it (it counts as a miss)
                target, in_kb = said, False
            else:
                target, in_kb = picker.pick(said, cands), True
            rows[split].append((source(m, args.max_context_words), make_prefix(m), target,
                                {"doc_id": m.doc_id, "mention": m.mention, "cuis": m.cuis, "target": target, "in_kb": in_kb}))
    return rows


def prepare_model_inputs(args, out, splits, kb_pairs, report, ctx):
    from fairseq.data import Dictionary

    from ..decoding.trie import Trie

    name_cuis, split_names = dictionaries(args, kb_pairs, ctx)
    if not name_cuis:
        raise ValueError(f"{args.kb or 'the KB'}: no usable names (lines 'ids||names', 'cui<TAB>name' or MRCONSO.RRF)")
    bin_dir = os.path.join(out, "bin")
    text_dir = os.path.join(bin_dir, "text")
    os.makedirs(text_dir, exist_ok=True)
    counts = Counter()
    rows = make_rows(args, splits, ctx, name_cuis, split_names, counts)
    # BPE model: trained on what it will encode (train sources/targets and the KB names)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        train_text = f.name
        for src, pre, tgt, _ in rows.get("train") or next(iter(rows.values())):
            f.write(f"{src}\n{pre} {tgt}\n")
        for n in list(name_cuis)[:500_000]:
            f.write(n + "\n")
    try:
        enc = Encoder(args, bin_dir, train_text)
    finally:
        os.unlink(train_text)
    tok_counts = Counter()
    prefs = {}
    for split, items in rows.items():
        fs = FAIRSEQ_SPLIT[split]
        plens = []
        with open(os.path.join(text_dir, f"{fs}.source"), "w", encoding="utf-8") as fsrc, \
                open(os.path.join(text_dir, f"{fs}.target"), "w", encoding="utf-8") as ftgt, \
                open(os.path.join(bin_dir, f"{fs}.meta.jsonl"), "w", encoding="utf-8") as fmeta:
            for src, pre, tgt, meta in tqdm(items, desc=f"BPE {split}", unit=" mentions", mininterval=1, disable=None):
                s, p, t = enc(src), enc(pre), enc(tgt)
                tok_counts.update(s)
                tok_counts.update(p)
                tok_counts.update(t)
                fsrc.write(" ".join(s) + "\n")
                ftgt.write(" ".join(p + t) + "\n")
                fmeta.write(json.dumps(meta, ensure_ascii=False) + "\n")
                plens.append(len(p))
        np.save(os.path.join(bin_dir, f"{fs}.prefix_len.npy"), np.array(plens, dtype=np.int64))
        prefs[fs] = os.path.join(text_dir, fs)
        report["samples"][f"{out}:{split}"] = len(items)
    # dictionary: every sentencepiece piece (KB names may use pieces unseen in the data)
    dict_path = os.path.join(bin_dir, "dict.txt")
    if args.bpe == "sentencepiece":
        bpe.write_spm_dict(enc.info["model"], tok_counts, dict_path)
    else:
        import shutil

        shutil.copyfile(args.dict, dict_path)
    bpe.preprocess(bin_dir, dict_path, prefs, args.workers, langs=("source", "target"))
    # KB names -> token ids -> trie; kb_names.tsv maps generated ids back to CUIs
    d = Dictionary.load(os.path.join(bin_dir, "dict.target.txt"))
    seqs = []
    n_unk = 0
    with open(os.path.join(bin_dir, "kb_names.tsv"), "w", encoding="utf-8") as fkb:
        for name, cuis in tqdm(name_cuis.items(), desc="KB names", unit=" names", mininterval=1, disable=None):
            ids = [d.index(t) for t in enc(name)]
            n_unk += ids.count(d.unk())
            seqs.append(ids + [d.eos()])
            fkb.write(f"{name}\t{'|'.join(cuis)}\t{' '.join(map(str, ids))}\n")
    if n_unk:
        log(f"warning: {n_unk} KB-name tokens are <unk> in the dictionary")
    t0 = time.time()
    trie = Trie(seqs)
    trie.save(os.path.join(bin_dir, "trie.npz"))
    # the report names the folder where the output ends up, not the staging one it is written in
    final = getattr(args, "final_out_dir", None)
    shown = final + out[len(args.out_dir):] if final and out.startswith(args.out_dir) else out
    report["kb"][shown] = {"concepts": len(split_names["test"]), "names": len(name_cuis), "trie_nodes": trie.num_nodes,
                           "trie_bytes": trie.nbytes, "trie_build_s": round(time.time() - t0, 2), "unk_tokens": n_unk}
    report["counts"].update({f"{shown}:{k}": v for k, v in counts.items()})
    log(f"model inputs in {shown}/bin: {report['kb'][shown]['names']} KB names, trie {trie.nbytes / 2**20:.1f} MiB")


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=["ncbi", "bc5cdr", "medmentions", "cometa", "askapatient", "jsonl"],
                   help="which published format --input is in (jsonl: our own canonical files, for step 2 only)")
    p.add_argument("--input", required=True,
                   help="ncbi: folder with NCBI{train,develop,test}set_corpus.txt; bc5cdr: folder with "
                        "CDR_{Training,Development,Test}Set.PubTator.txt; medmentions: corpus_pubtator.txt[.gz] "
                        "(or its folder); cometa: folder with {train,dev,test}.csv (e.g. splits/stratified_general); "
                        "askapatient: folder with AskAPatient.fold-<i>.{train,validation,test}.txt; jsonl: a folder "
                        "written by this command")
    p.add_argument("-o", "--out-dir", required=True, help="destination folder")
    p.add_argument("--kb", help="knowledge base file (MEDIC/BioSyn 'ids||names', 'cui<TAB>name', or UMLS MRCONSO.RRF); "
                                "written as OUT/kb.tsv; needed for --bpe except for askapatient")
    p.add_argument("--kb-format", choices=["auto", "tsv", "biosyn", "mrconso"], default="auto",
                   help="format of --kb (default: guessed from its first line)")
    p.add_argument("--kb-from-data", action="store_true",
                   help="without --kb: the KB is the (concept, mention) pairs of the dataset itself -- a stand-in "
                        "when the real KB is not at hand (the recipes' SMALL=1 tries), never for results")
    p.add_argument("--limit", type=int, metavar="N",
                   help="keep the first N mentions of each split (quick tries, e.g. the recipes' SMALL=1)")
    p.add_argument("--ncbi-train", choices=["traindev", "train"], default="traindev",
                   help="NCBI training split: traindev = train+dev without composite mentions (BioSyn/GenBioEL, "
                        "default), train = the train file as is")
    p.add_argument("--style", choices=["raw", "genbioel"], default="raw",
                   help="raw (default): mentions as written, names without any punctuation; genbioel (ncbi, "
                        "bc5cdr; what the paper's Table 4 used): BioSyn/GenBioEL's preparation — abbreviations "
                        "expanded (Schwartz & Hearst, offline), composite mentions resolved, their normalisation, "
                        "NCBI train/dev mentions added to the dictionary (docs/entity_linking.md)")
    p.add_argument("--typo-file", help="ncbi --style genbioel: BioSyn's spelling corrections "
                                       "('typo||correction' lines, e.g. ncbi-spell-check.txt)")
    p.add_argument("--split-pmids", help="medmentions: folder with corpus_pubtator_pmids_{trng,dev,test}.txt "
                                         "(default: the folder of --input)")
    p.add_argument("--folds", type=int, default=10, help="askapatient: number of folds (default: %(default)s)")
    g = p.add_argument_group("step 2: model inputs (only with --bpe)")
    g.add_argument("--bpe", choices=["sentencepiece", "gpt2"], help="also write fairseq inputs in OUT/bin with this BPE")
    add_sentencepiece_arguments(g)
    add_gpt2_arguments(g)
    g.add_argument("--max-context-words", type=int, default=384,
                   help="context words kept around the mention (GenBioEL: 384; 128 for MedMentions)")
    g.add_argument("--keep-case", action="store_true", help="do not lower-case KB names and targets")
    g.add_argument("--ambiguous-names", choices=["keep", "fewest"], default=None,
                   help="a name of several concepts: keep it for all, or only for the one with the fewest names "
                        "(default: fewest for bc5cdr --style genbioel, as GenBioEL's BC5CDR KB; keep otherwise)")
    g.add_argument("--workers", type=int, default=1, help="processes for sentencepiece and fairseq-preprocess")
    args = p.parse_args(argv)
    if args.bpe == "gpt2" and missing_gpt2_arguments(args):
        p.error("--bpe gpt2 needs " + ", ".join(missing_gpt2_arguments(args)))
    if args.style == "genbioel" and args.dataset not in ("ncbi", "bc5cdr", "jsonl"):
        p.error("--style genbioel is for ncbi and bc5cdr (the datasets GenBioEL prepared this way)")
    if args.typo_file and not (args.style == "genbioel" and args.dataset == "ncbi"):
        p.error("--typo-file goes with --dataset ncbi --style genbioel")
    args.genbioel_dataset = args.dataset
    return args


class Context:
    """What reading leaves for step 2 and the report."""

    def __init__(self):
        self.bad = []                # BadRecord (and RepeatedDocument / NoConcept) items
        self.counts = Counter()      # per-split counts of what preparation dropped or changed
        self.kb_ids = None           # --style genbioel: ids of the KB (mentions outside it are dropped)
        self.synonyms = None         # {split: [(cui, name)]} added to that split's dictionary
        self.origin = {}             # id(mention) -> split whose dictionary its target comes from
        self.train_origins = None    # --dataset jsonl: that split per train mention, from genbioel.json


STATE = "genbioel.json"  # --style genbioel facts that `--dataset jsonl` needs in step 2


def save_state(args, out, ctx, splits):
    # train_origins: NCBI's train = train + dev, and a dev mention's target comes from the
    # dev dictionary; the canonical JSONL does not say which is which
    origins = [ctx.origin.get(id(m), "train") for m in splits.get("train", [])]
    with open(os.path.join(out, STATE), "w", encoding="utf-8") as f:
        json.dump({"dataset": args.genbioel_dataset, "synonyms": ctx.synonyms, "train_origins": origins}, f,
                  ensure_ascii=False)


def load_state(args, ctx):
    path = os.path.join(args.input, STATE)
    if args.style == "genbioel":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing (write it with --style genbioel --dataset ncbi|bc5cdr)")
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        args.genbioel_dataset, ctx.synonyms = state["dataset"], state["synonyms"]
        ctx.train_origins = state.get("train_origins")
    if args.ambiguous_names is None:
        args.ambiguous_names = "fewest" if args.genbioel_dataset == "bc5cdr" and args.style == "genbioel" else "keep"


def read_inputs(args, ctx):
    """-> (datasets, kb pairs); raises FileNotFoundError / F.UnusableInput."""
    kb_pairs = read_kb_pairs(args, ctx.bad)
    if args.style == "genbioel" and kb_pairs:
        ctx.kb_ids = {c for c, _ in kb_pairs}
    if args.dataset == "jsonl":
        load_state(args, ctx)
    elif args.ambiguous_names is None:
        args.ambiguous_names = "fewest" if args.dataset == "bc5cdr" and args.style == "genbioel" else "keep"
    datasets = read_dataset(args, ctx)
    train = datasets.get("", {}).get("train", [])
    if ctx.train_origins and len(ctx.train_origins) == len(train):
        ctx.origin = {id(m): o for m, o in zip(train, ctx.train_origins)}
    for sub, splits in datasets.items():
        for split, mentions in splits.items():
            if not mentions:
                raise F.UnusableInput(os.path.join(args.input, sub), 0, f"no mentions read for the {split} split")
    return datasets, kb_pairs


def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    return run_staged(PROG, parse_args(argv), prepare, ("report.json", "kb.tsv"))


def prepare(args):
    if not os.path.exists(args.input):
        return fail(f"{args.input}: no such file or folder")
    for f in (args.kb, args.spm_model, args.encoder_json, args.vocab_bpe, args.dict):
        if f and not os.path.isfile(f):
            return fail(f"{f}: no such file")
    os.makedirs(args.out_dir, exist_ok=True)
    ctx = Context()
    report = {"dataset": args.dataset, "style": args.style, "mentions": {}, "samples": {}, "kb": {}, "counts": {},
              "bad_records": []}
    try:
        datasets, kb_pairs = read_inputs(args, ctx)
    except (FileNotFoundError, F.UnusableInput) as e:
        return fail(str(e))
    if args.kb_from_data and kb_pairs is None:
        kb_pairs = sorted({(c, " ".join(m.mention.split())) for splits in datasets.values()
                           for ms in splits.values() for m in ms for c in m.cuis})
        log(f"--kb-from-data: {len(kb_pairs)} (concept, mention) pairs of the dataset stand in for a KB")
    if args.limit is not None:
        datasets = {sub: {split: ms[: args.limit] for split, ms in splits.items()} for sub, splits in datasets.items()}
    if args.bpe and kb_pairs is None:
        return fail("--bpe needs a KB: give --kb (or --kb-from-data for a quick try)")
    if args.kb and not kb_pairs:
        return fail(f"{args.kb}: no KB names read (expected lines 'ids||names', 'cui<TAB>name' or MRCONSO.RRF)")
    for sub, splits in datasets.items():
        out = os.path.join(args.out_dir, sub) if sub else args.out_dir
        os.makedirs(out, exist_ok=True)
        for split, mentions in splits.items():
            F.write_jsonl(os.path.join(out, f"{split}.jsonl"), mentions)
            report["mentions"][os.path.join(sub, split) if sub else split] = len(mentions)
        if kb_pairs is not None:
            F.write_kb(os.path.join(out, "kb.tsv"), kb_pairs)
        if args.style == "genbioel":
            save_state(args, out, ctx, splits)
        if args.bpe:
            try:
                prepare_model_inputs(args, out, splits, kb_pairs, report, ctx)
            except ValueError as e:
                return fail(str(e))
    return write_report(args, report, ctx)


def write_report(args, report, ctx):
    """OUT/report.json and the summary; -> exit status (3 when records were bad)."""
    notes = [b for b in ctx.bad if isinstance(b, (F.RepeatedDocument, F.NoConcept))]
    bad = [b for b in ctx.bad if not isinstance(b, (F.RepeatedDocument, F.NoConcept))]
    no_concept = [b for b in notes if isinstance(b, F.NoConcept)]
    if no_concept:
        ctx.counts["no_concept"] += len(no_concept)
    report["counts"].update(sorted(ctx.counts.items()))
    report["repeated_documents"] = [str(b) for b in notes if isinstance(b, F.RepeatedDocument)]
    report["no_concept_mentions"] = [str(b) for b in no_concept]
    report["bad_records"] = [str(b) for b in bad]
    with open(os.path.join(args.out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    log("mentions: " + ", ".join(f"{k} {v}" for k, v in report["mentions"].items()))
    for r in report["repeated_documents"]:
        log(f"note: {r}")
    if any(k.endswith("no_concept") for k in ctx.counts):
        n = sum(v for k, v in ctx.counts.items() if k.endswith("no_concept"))
        log(f"note: {n} mentions without a concept (id -1) left out (counted in report.json)")
    for b in bad[:20]:
        log(f"skipped {b}")
    if bad:
        log(f"{len(bad)} bad records skipped (all in {os.path.join(args.out_dir, 'report.json')})")
        return errors.EXIT_BAD_RECORDS
    return errors.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
