"""Entity-linking preparation: the work behind ``biobart-prepare-el`` (the command line,
messages, report and exit status are in :mod:`biobart_fairseq.cli.prepare_el`, whose
docstring describes the outputs).

Step 1 reads a dataset's published files into canonical mentions (:func:`read_inputs`);
step 2 turns them into model inputs (:func:`prepare_model_inputs`): GenBioEL's source window
and ``<mention> is`` prefix, the gold concept's name most similar to the mention as target,
BPE, ``fairseq-preprocess`` and the trie over the KB names.

The functions take the command's parsed arguments (``args``) and a :class:`Context` that
collects what reading leaves for step 2 and the report.  Light: torch and fairseq are
imported by step 2 only.
"""

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

from . import bpe
from . import el_biosyn as B
from . import el_formats as F

SPLITS = ("train", "dev", "test")
FAIRSEQ_SPLIT = {"train": "train", "dev": "valid", "test": "test"}
# file name patterns of each split, first match wins
NCBI_FILES = {"train": ["*trainset*", "*train*.txt"], "dev": ["*developset*", "*dev*.txt"],
              "test": ["*testset*", "*test*.txt"]}
BC5CDR_FILES = {"train": ["*Training*", "*train*"], "dev": ["*Development*", "*dev*"], "test": ["*Test*", "*test*"]}
BC5CDR_NAMES = {"train": "training", "dev": "development", "test": "test"}  # the corpus's own split names
STATE = "genbioel.json"  # --style genbioel facts that `--dataset jsonl` needs in step 2
STYLE_JSON = "el_style.json"  # how the model's inputs are built (bin/; biobart-link reads it)


def _stderr(msg):
    tqdm.write(msg, file=sys.stderr)


class Context:
    """What reading leaves for step 2 and the report."""

    def __init__(self, log=_stderr):
        self.log = log               # one-line messages (the command prefixes its name)
        self.bad = []                # BadRecord (and RepeatedDocument / NoConcept) items
        self.counts = Counter()      # per-split counts of what preparation dropped or changed
        self.kb_ids = None           # --style genbioel: ids of the KB (mentions outside it are dropped)
        self.synonyms = None         # {split: [(cui, name)]} added to that split's dictionary
        self.origin = {}             # id(mention) -> split whose dictionary its target comes from
        self.train_origins = None    # --dataset jsonl: that split per train mention, from genbioel.json

    def keep(self, records):
        """The mentions of ``records``; its bad records go to ``self.bad``."""
        out = []
        for r in records:
            (self.bad.append(r) if isinstance(r, F.BadRecord) else out.append(r))
        return out


def find_file(folder, patterns, what):
    """The first file under ``folder`` (recursively) matching the first pattern that matches."""
    for pat in patterns:
        hits = sorted(h for h in glob.glob(os.path.join(folder, "**", pat), recursive=True) if os.path.isfile(h))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{folder}: no {what} file ({' or '.join(patterns)})")


# --- step 1: published files -> canonical mentions ------------------------------------------------
def read_inputs(args, ctx):
    """-> ({out_subdir: {split: [Mention]}}, kb pairs or None); raises FileNotFoundError /
    F.UnusableInput."""
    kb_pairs = read_kb_pairs(args, ctx)
    if args.style == "genbioel" and kb_pairs:
        ctx.kb_ids = {c for c, _ in kb_pairs}
    if args.dataset == "jsonl":
        load_state(args, ctx)
    _default_ambiguous_names(args)
    datasets = read_dataset(args, ctx)
    train = datasets.get("", {}).get("train", [])
    if ctx.train_origins and len(ctx.train_origins) == len(train):
        ctx.origin = {id(m): o for m, o in zip(train, ctx.train_origins)}
    for sub, splits in datasets.items():
        for split, mentions in splits.items():
            if not mentions:
                raise F.UnusableInput(os.path.join(args.input, sub), 0, f"no mentions read for the {split} split")
    return datasets, kb_pairs


def _default_ambiguous_names(args):
    # GenBioEL's BC5CDR KB keeps an ambiguous name for the concept with the fewest names only
    if args.ambiguous_names is None:
        fewest = args.genbioel_dataset == "bc5cdr" and args.style == "genbioel"
        args.ambiguous_names = "fewest" if fewest else "keep"


def read_dataset(args, ctx):
    """-> {out_subdir: {split: [Mention]}}; bad records are appended to ``ctx.bad``."""
    if args.style == "genbioel" and args.dataset in ("ncbi", "bc5cdr"):
        return {"": _GENBIOEL_READERS[args.dataset](args, ctx)}
    return _READERS[args.dataset](args, ctx)


def _read_ncbi_files(args, ctx):
    splits = {s: ctx.keep(F.read_pubtator(find_file(args.input, pats, f"NCBI {s}"))) for s, pats in NCBI_FILES.items()}
    for ms in splits.values():
        for m in ms:
            m.cuis = F.drop_omim_if_mixed(m.cuis)
    return splits


def _train_on_train_and_dev(splits):
    # BioSyn/GenBioEL: train on train+dev; composite mentions (several ids) are dropped from
    # training only -- dev and test keep them (a hit on any id counts).
    splits["train"] = [m for m in splits["train"] + splits["dev"] if len(m.cuis) == 1]


def _read_ncbi(args, ctx):
    splits = _read_ncbi_files(args, ctx)
    if args.ncbi_train == "traindev":
        _train_on_train_and_dev(splits)
    return {"": splits}


def _read_bc5cdr(args, ctx):
    return {"": {s: ctx.keep(F.read_pubtator(find_file(args.input, pats, f"BC5CDR {BC5CDR_NAMES[s]}")))
                 for s, pats in BC5CDR_FILES.items()}}


def _read_medmentions(args, ctx):
    inp = args.input
    corpus = inp if os.path.isfile(inp) else find_file(inp, ["corpus_pubtator.txt*"], "MedMentions corpus")
    pmid_dir = args.split_pmids or (inp if os.path.isdir(inp) else os.path.dirname(inp))
    out = {}
    for split, name in (("train", "trng"), ("dev", "dev"), ("test", "test")):
        ids = F.read_pmid_list(os.path.join(pmid_dir, f"corpus_pubtator_pmids_{name}.txt"))
        out[split] = ctx.keep(F.read_pubtator(corpus, doc_ids=ids))
    return {"": out}


def _read_cometa(args, ctx):
    return {"": {s: ctx.keep(F.read_cometa(find_file(args.input, [f"{s}.csv", f"{s}.tsv"], f"COMETA {s}")))
                 for s in SPLITS}}


def _read_askapatient(args, ctx):
    names = (("train", "train"), ("dev", "validation"), ("test", "test"))
    return {f"fold{i}": {s: ctx.keep(F.read_askapatient(find_file(
        args.input, [f"AskAPatient.fold-{i}.{name}.txt"], f"AskAPatient fold {i} {s}"))) for s, name in names}
        for i in range(args.folds)}


def _read_jsonl(args, ctx):
    paths = {s: os.path.join(args.input, f"{s}.jsonl") for s in SPLITS}
    return {"": {s: ctx.keep(F.read_jsonl(p)) for s, p in paths.items() if os.path.isfile(p)}}


def _read_bc5cdr_genbioel(args, ctx):
    """GenBioEL's BC5CDR reader (``data/el_biosyn.py``)."""
    return {s: B.genbioel_bc5cdr(ctx.keep(F.read_pubtator(find_file(args.input, pats, f"BC5CDR {BC5CDR_NAMES[s]}"),
                                                          with_columns=True)), ctx.kb_ids, ctx.counts, s)
            for s, pats in BC5CDR_FILES.items()}


def _read_ncbi_genbioel(args, ctx):
    """NCBI through BioSyn's query preprocessing; sets ``ctx.synonyms`` (the mentions BioSyn
    adds to the dev and test dictionaries) and ``ctx.origin`` (mention -> the split whose
    dictionary its target synonym comes from)."""
    text = B.BiosynText(B.read_typos(args.typo_file) if args.typo_file else None, keep="|")
    splits = {s: B.biosyn_queries(ms, text, ctx.kb_ids, ctx.counts, s) for s, ms in _read_ncbi_files(args, ctx).items()}
    # BioSyn: dev dictionary = KB + train mentions, test dictionary = + dev mentions
    syn_train, syn_dev = B.mention_synonyms(splits["train"]), B.mention_synonyms(splits["dev"])
    ctx.synonyms = {"train": [], "dev": syn_train, "test": syn_train + syn_dev}
    ctx.origin = {id(m): s for s, ms in splits.items() for m in ms}
    if args.ncbi_train == "traindev":
        _train_on_train_and_dev(splits)
    return splits


_READERS = {"ncbi": _read_ncbi, "bc5cdr": _read_bc5cdr, "medmentions": _read_medmentions, "cometa": _read_cometa,
            "askapatient": _read_askapatient, "jsonl": _read_jsonl}
_GENBIOEL_READERS = {"ncbi": _read_ncbi_genbioel, "bc5cdr": _read_bc5cdr_genbioel}


def read_kb_pairs(args, ctx):
    """(cui, name) pairs of ``--kb``, or of the dataset where it has its own; None: no KB."""
    if args.kb:
        return ctx.keep(tqdm(F.read_kb(args.kb, args.kb_format), desc="KB", unit=" names", mininterval=1,
                             disable=None))
    if args.dataset == "askapatient":
        files = sorted(glob.glob(os.path.join(args.input, "**", "AskAPatient.fold-*.txt"), recursive=True))
        ctx.log(f"no --kb: the AskAPatient KB is the (cui, label) pairs of its {len(files)} fold files")
        return F.askapatient_labels(files)
    if args.dataset == "jsonl" and os.path.isfile(os.path.join(args.input, "kb.tsv")):
        return [r for r in F.read_kb(os.path.join(args.input, "kb.tsv"), "tsv") if not isinstance(r, F.BadRecord)]
    return None


def kb_from_data(datasets):
    """The (concept, mention) pairs of the dataset: ``--kb-from-data``'s stand-in KB."""
    return sorted({(c, " ".join(m.mention.split())) for splits in datasets.values()
                   for ms in splits.values() for m in ms for c in m.cuis})


def save_state(args, out, ctx, splits):
    # train_origins: NCBI's train = train + dev, and a dev mention's target comes from the
    # dev dictionary; the canonical JSONL does not say which is which
    origins = [ctx.origin.get(id(m), "train") for m in splits.get("train", [])]
    with open(os.path.join(out, STATE), "w", encoding="utf-8") as f:
        json.dump({"dataset": args.genbioel_dataset, "synonyms": ctx.synonyms, "train_origins": origins}, f,
                  ensure_ascii=False)


def load_state(args, ctx):
    if args.style != "genbioel":
        return
    path = os.path.join(args.input, STATE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (write it with --style genbioel --dataset ncbi|bc5cdr)")
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    args.genbioel_dataset, ctx.synonyms = state["dataset"], state["synonyms"]
    ctx.train_origins = state.get("train_origins")


# --- step 2: canonical mentions -> model inputs -------------------------------------------------------
class ModelStyle:
    """How a linking model's inputs are built from a mention in its text, and how KB names are
    normalised: what ``biobart-prepare-el`` did for the model's data, recorded in
    ``bin/el_style.json`` so that ``biobart-link`` builds the very same inputs (training and
    inference cannot drift).  Both call :meth:`source`, :meth:`normaliser` and, for raw text,
    :meth:`queries` (``--style genbioel``'s mention processing)."""

    FIELDS = ("style", "dataset", "max_context_words", "keep_case", "ambiguous_names", "typos")

    def __init__(self, style="raw", dataset=None, max_context_words=384, keep_case=False, ambiguous_names="keep",
                 typos=None):
        self.style, self.dataset, self.max_context_words = style, dataset, int(max_context_words)
        self.keep_case, self.ambiguous_names, self.typos = bool(keep_case), ambiguous_names or "keep", typos

    @classmethod
    def from_args(cls, args):
        typo_file = getattr(args, "typo_file", None)
        return cls(args.style, args.genbioel_dataset, args.max_context_words, args.keep_case, args.ambiguous_names,
                   B.read_typos(typo_file) if typo_file else None)

    def to_json(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    def save(self, folder):
        with open(os.path.join(folder, STYLE_JSON), "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, folder):
        """The record of ``folder``; errors.Unusable when it is missing or broken."""
        from .. import errors

        path = os.path.join(folder, STYLE_JSON)
        if not os.path.isfile(path):
            raise errors.Unusable(f"{path}: missing (biobart-prepare-el --bpe writes it; prepare the data again "
                                  "with this version to link with the model)")
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
            return cls(**{k: rec[k] for k in cls.FIELDS if k in rec})
        except (ValueError, TypeError) as e:
            raise errors.Unusable(f"{path}: not a style record ({e})") from None

    def normaliser(self):
        """Names of the KB and targets: ``raw``: :func:`F.conv_name`; genbioel NCBI: BioSyn's
        dictionary processing (all ASCII punctuation) then GenBioEL's conv; genbioel BC5CDR:
        GenBioEL's conv (23 characters)."""
        lowercase = not self.keep_case
        if self.style != "genbioel":
            return lambda n: F.conv_name(n, lowercase)
        if self.dataset == "ncbi":
            biosyn = B.BiosynText()
            return lambda n: B.genbioel_conv(biosyn(n), lowercase)
        return lambda n: B.genbioel_conv(n, lowercase)

    def source(self, m: F.Mention, max_words=None) -> str:
        make = make_source_genbioel if self.style == "genbioel" else make_source
        return make(m, self.max_context_words if max_words is None else max_words)

    def queries(self, mentions):
        """Sets ``query`` of mentions read from raw text as preparation set it for the model's
        data (genbioel: abbreviations expanded from the mention's own text, BioSyn's / GenBioEL's
        normalisation), through the same functions; raw style: nothing to do.  The number of
        concepts of a mention is not known here, so a composite mention is not resolved into
        phrases (preparation resolves the gold ones, and the model reads the first phrase)."""
        mentions = list(mentions)
        if self.style != "genbioel":
            return mentions
        if self.dataset == "ncbi":
            text = B.BiosynText(self.typos, keep="|")
            done = B.biosyn_queries([_one_concept(m) for m in mentions], text, None, Counter(), "link")
        else:
            done = B.genbioel_bc5cdr([(_one_concept(m), "-", None) for m in mentions], None, Counter(), "link")
        for m, d in zip(mentions, done):
            m.query = d.query
        return mentions


def _one_concept(m):
    # preparation reads the gold ids; at inference a mention stands for one unknown concept
    return F.Mention(m.doc_id, m.text, m.start, m.end, m.mention, ["-"])


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
    """:meth:`ModelStyle.normaliser` of the command's arguments."""
    return ModelStyle(args.style, args.genbioel_dataset, keep_case=args.keep_case).normaliser()


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
    """GenBioEL's BPE call: sentencepiece pieces of the text, or the GPT-2 ids of ' ' + text,
    for the BPE of a ``bpe.json`` record (preparation and ``biobart-link`` alike)."""

    def __init__(self, info):
        self.info = info
        self.kind = info["type"]
        self._encode = bpe.token_encoder(info)

    @classmethod
    def install(cls, args, out, train_text, log=None):
        """The BPE the flags ask for, its files and bpe.json put into ``out`` (data/bpe.py), so
        the folder is relocatable."""
        return cls(bpe.setup_from_args(args, out, train_text, args.workers, spm_max_sentences=2_000_000, log=log))

    def __call__(self, text):
        return self._encode(text if self.kind == "sentencepiece" else " " + text)  # GenBioEL: BPE(' ' + x)


def kb_name_index(kb_pairs, style: ModelStyle):
    """name -> cuis of a KB's (cui, name) pairs, names normalised as the model's style does."""
    return F.build_name_index(kb_pairs, ambiguous=style.ambiguous_names, normalise=style.normaliser())[1]


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


def model_input(m: F.Mention, style: ModelStyle):
    """(source, prefix) of a mention: what the model reads and the decoder is given."""
    return style.source(m), make_prefix(m)


def make_rows(args, splits, ctx, name_cuis, split_names, counts):
    """(source, prefix, target synonym, meta) per mention and split."""
    style = ModelStyle.from_args(args)
    norm = style.normaliser()
    picker = SynonymPicker(list(name_cuis))
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
            rows[split].append((*model_input(m, style), target,
                                {"doc_id": m.doc_id, "mention": m.mention, "cuis": m.cuis, "target": target, "in_kb": in_kb}))
    return rows


def prepare_model_inputs(args, out, splits, kb_pairs, ctx):
    """Step 2 for one output folder: ``out/bin``.  -> (samples per split, KB facts, counts of
    what targets could not be found) for the report; ValueError: no usable KB names."""
    name_cuis, split_names = dictionaries(args, kb_pairs, ctx)
    if not name_cuis:
        raise ValueError(f"{args.kb or 'the KB'}: no usable names (lines 'ids||names', 'cui<TAB>name' or MRCONSO.RRF)")
    bin_dir = os.path.join(out, "bin")
    os.makedirs(os.path.join(bin_dir, "text"), exist_ok=True)
    counts = Counter()
    rows = make_rows(args, splits, ctx, name_cuis, split_names, counts)
    enc = _train_encoder(args, bin_dir, rows, name_cuis, ctx.log)
    tok_counts, prefixes = _write_encoded(bin_dir, rows, enc)
    dict_path = os.path.join(bin_dir, "dict.txt")
    _write_dictionary(args, enc, tok_counts, dict_path)
    bpe.preprocess(bin_dir, dict_path, prefixes, args.workers, langs=("source", "target"))
    kb = write_trie(bin_dir, os.path.join(bin_dir, "dict.target.txt"), name_cuis, enc, ctx.log)
    kb["concepts"] = len(split_names["test"])
    ModelStyle.from_args(args).save(bin_dir)
    return {split: len(items) for split, items in rows.items()}, kb, counts


def _train_encoder(args, bin_dir, rows, name_cuis, log):
    """The BPE, trained (sentencepiece) on what it will encode: train sources/targets and KB names."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        train_text = f.name
        for src, pre, tgt, _ in rows.get("train") or next(iter(rows.values())):
            f.write(f"{src}\n{pre} {tgt}\n")
        for n in list(name_cuis)[:500_000]:
            f.write(n + "\n")
    try:
        return Encoder.install(args, bin_dir, train_text, log)
    finally:
        os.unlink(train_text)


def _write_encoded(bin_dir, rows, enc):
    """``text/<split>.{source,target}`` in BPE tokens, ``<split>.meta.jsonl`` and
    ``<split>.prefix_len.npy``; -> (token counts, fairseq-preprocess prefixes)."""
    tok_counts, prefixes = Counter(), {}
    for split, items in rows.items():
        fs = FAIRSEQ_SPLIT[split]
        prefixes[fs] = os.path.join(bin_dir, "text", fs)
        plens = []
        with open(prefixes[fs] + ".source", "w", encoding="utf-8") as fsrc, \
                open(prefixes[fs] + ".target", "w", encoding="utf-8") as ftgt, \
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
    return tok_counts, prefixes


def _write_dictionary(args, enc, tok_counts, dict_path):
    # sentencepiece: every piece (KB names may use pieces unseen in the data); GPT-2: the model's
    if args.bpe == "sentencepiece":
        bpe.write_spm_dict(enc.info["model"], tok_counts, dict_path)
    else:
        import shutil

        shutil.copyfile(args.dict, dict_path)


def write_trie(folder, dict_path, name_cuis, enc, log):
    """KB names -> token ids (of the dictionary ``dict_path``) -> ``folder/trie.npz``;
    ``folder/kb_names.tsv`` maps generated ids back to CUIs.  -> facts for the report."""
    from fairseq.data import Dictionary

    from ..decoding.trie import Trie

    d = Dictionary.load(dict_path)
    seqs, n_unk = [], 0
    with open(os.path.join(folder, "kb_names.tsv"), "w", encoding="utf-8") as fkb:
        for name, cuis in tqdm(name_cuis.items(), desc="KB names", unit=" names", mininterval=1, disable=None):
            ids = [d.index(t) for t in enc(name)]
            n_unk += ids.count(d.unk())
            seqs.append(ids + [d.eos()])
            fkb.write(f"{name}\t{'|'.join(cuis)}\t{' '.join(map(str, ids))}\n")
    if n_unk:
        log(f"warning: {n_unk} KB-name tokens are <unk> in the dictionary")
    t0 = time.time()
    trie = Trie(seqs)
    trie.save(os.path.join(folder, "trie.npz"))
    return {"names": len(name_cuis), "trie_nodes": trie.num_nodes, "trie_bytes": trie.nbytes,
            "trie_build_s": round(time.time() - t0, 2), "unk_tokens": n_unk}
