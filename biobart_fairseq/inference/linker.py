"""Mentions in context -> top-k concepts, with a trained generative linker (``biobart-link``).

A mention of a :class:`~biobart_fairseq.inference.document.Document` becomes the model's input
exactly as ``biobart-prepare-el`` made the training data (:class:`~biobart_fairseq.data.el_prepare.ModelStyle`,
recorded in the data folder's ``el_style.json``: the same window, lower-casing, ``START``/``END``,
``<mention> is`` prefix, genbioel's abbreviation expansion), is encoded with the folder's BPE and
dictionary, and is decoded by the one decoding path of ``biobart-el-eval``
(:mod:`biobart_fairseq.decoding.el_decode`): beam search over the KB trie, names ranked by their
score, mapped to CUIs by ``kb_names.tsv``.

The KB is the model's own (``trie.npz`` and ``kb_names.tsv`` of the data folder) or a user's
(``kb=``, any format ``biobart-prepare-el --kb`` reads): its names are normalised as the model's
style does, encoded, and the trie is built once and cached beside the KB file
(``KB.biobart-trie/<key>/``), keyed by the KB's bytes, the dictionary, the BPE and the style, so a
changed KB (or another model's vocabulary) builds a new one.

A source longer than the model's positions is never truncated silently: the context window is
narrowed until it fits and the document's ``notes`` say so.
"""

import hashlib
import json
import os

from .. import errors, hub
from ..data import bpe
from ..data import el_formats as F
from ..data import el_prepare as P
from ..decoding import el_decode as D
from .document import Concept

CACHE_VERSION = 1  # bump when the cached trie's layout changes


def find_data_dir(checkpoint, trained, data_dir=None):
    """The prepare-el model-input folder: ``data_dir``, else the checkpoint's folder when it is
    one, else the folder the model was trained on (its ``--data``)."""
    if data_dir:
        if not D.is_el_data(data_dir):
            raise errors.Unusable(f"{data_dir}: not a biobart-prepare-el model-input folder (OUT/bin: "
                                  "kb_names.tsv, dict.source.txt, el_style.json)")
        return data_dir
    tried = [os.path.dirname(os.path.abspath(checkpoint))]
    if trained:  # the --data it was trained on
        tried.append(str(trained).split(os.pathsep)[0])
    for folder in tried:
        if D.is_el_data(folder):
            return folder
    raise errors.Unusable(f"{checkpoint}: no prepare-el data folder found (looked in {', '.join(tried)}); "
                          "give it with --data")


def _digest(h, path):
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def kb_cache_key(kb, kb_format, data_dir, style, info):
    """What the cached trie depends on: the KB's bytes, the dictionary, the BPE's files, the
    names' normalisation."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, kb_format, style.style, style.dataset, style.keep_case,
                                   style.ambiguous_names]).encode())
    for path in [kb, os.path.join(data_dir, "dict.target.txt")] + [info[k] for k in sorted(bpe.FILES[info["type"]])]:
        _digest(h, path)
    return h.hexdigest()[:16]


def cached_kb(kb, kb_format, data_dir, style, encoder, log=None):
    """-> (folder with the KB's ``trie.npz`` / ``kb_names.tsv``, the KB's bad lines) — built
    now or found in the cache beside ``kb``."""
    if not os.path.isfile(kb):
        raise errors.Unusable(errors.missing(kb))
    key = kb_cache_key(kb, kb_format, data_dir, style, encoder.info)
    folder = os.path.join(f"{kb}.biobart-trie", key)
    done = os.path.join(folder, "kb.json")
    if os.path.isfile(done):
        with open(done, encoding="utf-8") as f:
            return folder, json.load(f)["bad_lines"]
    pairs, bad = [], []
    try:
        for r in F.read_kb(kb, kb_format):
            (bad.append(str(r)) if isinstance(r, F.BadRecord) else pairs.append(r))
    except F.UnusableInput as e:
        raise errors.Unusable(str(e)) from None
    name_cuis = P.kb_name_index(pairs, style)
    if not name_cuis:
        raise errors.Unusable(f"{kb}: no usable KB names (lines 'ids||names', 'cui<TAB>name' or MRCONSO.RRF)")
    tmp = f"{folder}.tmp{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    facts = P.write_trie(tmp, os.path.join(data_dir, "dict.target.txt"), name_cuis, encoder, log or (lambda m: None))
    with open(os.path.join(tmp, "kb.json"), "w", encoding="utf-8") as f:
        json.dump({"kb": os.path.abspath(kb), "bad_lines": bad, **facts}, f, indent=1)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process cached it first: theirs is the same
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return folder, bad


def mentions_of(items, style):
    """One canonical mention per (document, entity) of ``items``, ``query`` set as preparation
    sets it (genbioel: abbreviations defined in the mention's document expanded)."""
    by_doc = {}
    for doc, e in items:
        by_doc.setdefault(id(doc), []).append(F.Mention(doc.id, doc.text, e.start, e.end, e.text, []))
    done = {k: iter(style.queries(ms)) for k, ms in by_doc.items()}
    return [next(done[id(doc)]) for doc, _ in items]


class Linker:
    """See the module docstring; build with :meth:`from_path`."""

    def __init__(self, models, task, style, encoder, kb_names, beam=5, topk=5, batch_size=64, max_tokens=None,
                 lenpen=1.0, kb_bad_lines=()):
        from fairseq import utils

        self.models, self.task, self.style, self.encoder, self.kb_names = models, task, style, encoder, kb_names
        self.beam, self.topk, self.batch_size, self.max_tokens, self.lenpen = beam, topk, batch_size, max_tokens, lenpen
        self.kb_bad_lines = list(kb_bad_lines)
        self.max_source = utils.resolve_max_positions(task.max_positions(), *[m.max_positions() for m in models])[0]

    @classmethod
    def from_path(cls, path, data_dir=None, kb=None, device="cpu", beam=5, topk=5, batch_size=64, kb_format="auto",
                  max_tokens=None, lenpen=1.0, log=None, **kw):
        """``path``: a checkpoint or a folder with checkpoint_best.pt (:func:`hub.find_checkpoint`);
        ``data_dir``: its prepare-el folder (default: found, see :func:`find_data_dir`); ``kb``: a user KB file.
        errors.Unusable for a model of another task or a folder that cannot serve."""
        if topk > beam:
            raise errors.Unusable(f"top-k {topk} > beam {beam}: the beam ranks at most {beam} names")
        checkpoint = hub.find_checkpoint(str(path))
        task_name, trained = hub.checkpoint_task(checkpoint)
        D.check_task(checkpoint, task_name)
        data_dir = find_data_dir(checkpoint, trained, data_dir)
        style = P.ModelStyle.load(data_dir)
        try:
            encoder = P.Encoder(bpe.read_info(os.path.join(data_dir, bpe.BPE_JSON)))
        except bpe.BpeError as e:
            raise errors.Unusable(str(e)) from None
        kb_dir, bad = (cached_kb(kb, kb_format, data_dir, style, encoder, log) if kb else (data_dir, []))
        try:
            kb_names = D.read_kb_names(os.path.join(kb_dir, "kb_names.tsv"))
        except (ValueError, F.UnusableInput) as e:
            raise errors.Unusable(str(e)) from None
        models, task = D.load(data_dir, checkpoint, cpu=device == "cpu", trie=os.path.join(kb_dir, "trie.npz"),
                              checked=True)
        return cls(models, task, style, encoder, kb_names, beam, topk, batch_size, max_tokens, lenpen, bad)

    # -- linking ------------------------------------------------------------------------------------
    def link(self, docs, progress=None, types=None):
        """Fills ``concepts`` (top-k :class:`Concept`, best first) of every entity of ``docs``
        (or of those whose ``type`` is in ``types``); -> ``docs``."""
        docs = list(docs)
        items = [(doc, e) for doc in docs for e in doc.entities if types is None or e.type in types]
        if not items:
            return docs
        mentions = mentions_of(items, self.style)
        dataset = self._dataset(items, mentions)
        ranked = D.decode(self.task, self.models, dataset, self.beam, self.batch_size, self.max_tokens, self.lenpen,
                          progress)
        for (_, e), hyps in zip(items, ranked):
            e.concepts = [Concept(c, n, s) for c, n, s in D.top_concepts(D.named(hyps, self.kb_names), self.topk)]
        return docs

    def _encode(self, text, dictionary):
        return dictionary.encode_line(" ".join(self.encoder(text)), add_if_not_exist=False, append_eos=True).long()

    def _source(self, doc, m):
        """The source ids of ``m``, the window narrowed (and noted) when the model cannot read it."""
        d = self.task.source_dictionary
        words = self.style.max_context_words
        ids = self._encode(self.style.source(m), d)
        n = len(ids)
        while len(ids) > self.max_source and words > 0:
            words //= 2
            ids = self._encode(self.style.source(m, words), d)
        if len(ids) != n:
            doc.notes.append(f"mention {m.start}-{m.end}: context window narrowed to {words} words (its source had "
                             f"{n} tokens, the model reads {self.max_source})")
        return ids

    def _dataset(self, items, mentions):
        """The mentions as an EntityLinkingDataset: the batches el-eval decodes, target =
        prefix + ``</s>`` (decoding reads only the prefix)."""
        import numpy as np
        import torch
        from fairseq.data import LanguagePairDataset

        from ..data.el_dataset import EntityLinkingDataset

        tgt_dict = self.task.target_dictionary
        src = [self._source(doc, m) for (doc, _), m in zip(items, mentions)]
        prefixes = [self._encode(P.make_prefix(m), tgt_dict) for m in mentions]  # prefix + </s>
        cfg = self.task.cfg
        pair = LanguagePairDataset(src, torch.tensor([len(s) for s in src]), self.task.source_dictionary,
                                   prefixes, torch.tensor([len(t) for t in prefixes]), tgt_dict,
                                   left_pad_source=cfg.left_pad_source, left_pad_target=cfg.left_pad_target)
        return EntityLinkingDataset(pair, np.array([len(t) - 1 for t in prefixes], dtype=np.int64))
