"""Raw text -> entities with character offsets, with a BARTNER model (``bartner_ner`` task).

The steps, each the one the training data went through:

1. every passage of a :class:`~biobart_fairseq.inference.document.Document` is split into
   sentences by the project's splitter (:func:`biobart_fairseq.data.sentences.split_sentences`),
   each sentence found again at its characters of the original text;
2. a sentence is split into words as the NER corpora tokenise them
   (:func:`biobart_fairseq.data.ner_formats.text_words`), each word kept with its characters;
3. words are BPE-encoded one by one as the task encodes a training sentence
   (:func:`biobart_fairseq.data.ner_dataset.encode_sentence`) and decoded by the one decoding
   path, :meth:`BartNerTask.decode_examples` (what ``biobart-ner-score --checkpoint`` runs);
4. each decoded entity (word runs: several for a discontinuous entity; entities may nest) becomes
   an :class:`~biobart_fairseq.inference.document.Entity` whose spans run from its first word's
   first character to its last word's last character, fragment by fragment.

A sentence longer than the model's positions after BPE is tagged in consecutive parts that fit,
never cut; the document's ``notes`` say where (an entity across a split cannot be found).

    tagger = Tagger.from_path("checkpoints/ner_genia/checkpoint_best.pt")
    docs = tagger.tag([Document("1", "IL-2 gene expression requires NF-kappa B.")])
"""

import os

from .. import errors, hub
from .document import Document


def task_name(state):
    """The task a fairseq checkpoint was trained with (``cfg.task._name``, or old ``args.task``)."""
    if state.get("cfg") is not None:
        return state["cfg"]["task"].get("_name")
    return getattr(state.get("args"), "task", None)


def load_bartner(path, data_dir=None, device="cpu"):
    """``(model, task)`` of a ``bartner_ner`` checkpoint, the model on ``device`` in eval mode.

    ``data_dir``: the ``biobart-prepare-ner`` folder (ner.json, dict.txt, bpe.json); default the
    one the checkpoint was trained on.  errors.Unusable names the file for a missing or unreadable
    checkpoint, a checkpoint of another task, or a missing data folder."""
    from fairseq import checkpoint_utils

    from .. import register

    register()  # bartner task/model/criterion and the weights_only workaround for fairseq checkpoints
    path = hub.find_checkpoint(os.fspath(path))  # fairseq wants str paths
    data_dir = os.fspath(data_dir) if data_dir else None
    overrides = {"data": os.path.abspath(data_dir)} if data_dir else None
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, overrides)
        name = task_name(state)
    except Exception as e:  # torch.load's errors of a file that is not a checkpoint vary by version
        raise errors.Unusable(f"{path}: not a fairseq checkpoint ({type(e).__name__}: {e})") from None
    if name != "bartner_ner":
        raise hub.wrong_task(path, name, "NER (--task bartner_ner)")
    data = data_dir or state["cfg"]["task"]["data"]
    if not os.path.isfile(os.path.join(data, "ner.json")):
        raise errors.Unusable(f"{os.path.join(data, 'ner.json')}: not found; the checkpoint's data folder is "
                              "not there: give the biobart-prepare-ner folder (--data)")
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([path], state=state)
    return models[0].to(device).eval(), task


def sentence_spans(text):
    """``[(start, end)]`` of the splitter's sentences in ``text``: the splitter normalises
    whitespace, so each sentence is found again by its non-space characters."""
    from ..data.sentences import split_sentences

    spans, pos = [], 0
    for sentence in split_sentences(text):
        start = None
        for ch in sentence:
            if ch.isspace():
                continue
            while text[pos].isspace():
                pos += 1
            if text[pos] != ch:  # the splitter only ever changes whitespace
                raise AssertionError(f"sentence {sentence[:40]!r} not found at character {pos}")
            start = pos if start is None else start
            pos += 1
        spans.append((start, pos))
    return spans


CACHE_MAX = 1 << 20  # words whose BPE ids are kept (bounded memory in a long annotate run)


class _Input:
    """One model input: the words of a sentence (or of a part of an over-long one)."""

    def __init__(self, doc, words, tokens):
        self.doc, self.words, self.tokens = doc, words, tokens  # words: [(start, end)] of the document


class Tagger:
    """A BARTNER model applied to documents; see the module docstring."""

    def __init__(self, model, task, beam=None, batch_size=32, max_len_a=None, max_len_b=None):
        self.model, self.task = model, task
        self.beam, self.batch_size, self.max_len_a, self.max_len_b = beam, batch_size, max_len_a, max_len_b
        # the model's own positions may be fewer than the task's --max-source-positions
        self.limit = min(task.cfg.max_source_positions, model.encoder.max_positions())
        self._pieces = {}  # word -> BPE ids: words repeat, encoding is per word

    @classmethod
    def from_path(cls, path, data_dir=None, device="cpu", beam=None, batch_size=32, **kw):
        """``path``: a checkpoint file or a folder holding checkpoint_best.pt.  ``beam`` (None:
        the beam the model was validated with, ``--eval-beam``), ``max_len_a``/``max_len_b``
        (None: the task's, i.e. training's ``--max-len-a``/``--max-len-b``)."""
        model, task = load_bartner(path, data_dir, device)
        return cls(model, task, beam=beam, batch_size=batch_size, **kw)

    @property
    def types(self):
        return list(self.task.types)

    def encode_word(self, word):
        ids = self._pieces.get(word)
        if ids is None:
            if len(self._pieces) >= CACHE_MAX:  # a PubMed-scale run meets tens of millions of words
                self._pieces.clear()
            ids = self._pieces[word] = self.task.encode_word(word) or [self.task.dictionary.unk()]
        return ids

    def inputs(self, docs):
        """The model inputs of ``docs`` (a list of Documents), over-long sentences split (noted
        in ``doc.notes``); ``len()`` of it is what :meth:`tag` advances ``progress`` by."""
        from ..data.ner_formats import text_words

        out = []
        for d, doc in enumerate(docs):
            for passage in doc.all_passages():
                for s, e in sentence_spans(passage.text):
                    words = [(passage.offset + s + a, passage.offset + s + b)
                             for a, b in text_words(passage.text[s:e])]
                    out.extend(self._fit(d, doc, words))
        return out

    def _fit(self, d, doc, words):
        """One input, or consecutive parts of at most ``limit`` positions with a note."""
        tokens = [doc.text[a:b] for a, b in words]
        lens = [len(self.encode_word(t)) for t in tokens]
        if 2 + sum(lens) <= self.limit:
            return [_Input(d, words, tokens)]
        parts, start, used = [], 0, 0
        for k, n in enumerate(lens):
            if k > start and used + n > self.limit - 2:
                parts.append((start, k))
                start, used = k, 0
            used += n
        parts.append((start, len(lens)))
        at = ", ".join(str(words[a][0]) for a, _ in parts[1:])
        doc.notes.append(f"characters {words[0][0]}-{words[-1][1]}: a sentence of {2 + sum(lens)} BPE positions, "
                         f"more than the model's {self.limit}: tagged in {len(parts)} parts, split before "
                         f"character(s) {at} (an entity across a split cannot be found)")
        for a, b in parts:
            if b - a == 1 and 2 + lens[a] > self.limit:
                doc.notes.append(f"characters {words[a][0]}-{words[a][1]}: one word of {lens[a]} BPE tokens, more "
                                 f"than the model's {self.limit} positions: not tagged")
        return [_Input(d, words[a:b], tokens[a:b]) for a, b in parts]

    def tag(self, docs, progress=None, inputs=None):
        """Append the predicted entities of each document to its ``entities`` (and notes where a
        sentence had to be split); returns ``docs``.  Strings are taken as documents "1", "2", ...

        ``progress`` is advanced by sentences (model inputs) as they are decoded: make its total
        ``len(tagger.inputs(docs))`` and pass those ``inputs`` to skip splitting twice."""
        from ..data.ner_dataset import encode_sentence
        from ..data.ner_targets import decode_target

        docs = [Document(str(i + 1), d) if isinstance(d, str) else d for i, d in enumerate(docs)]
        inputs = self.inputs(docs) if inputs is None else inputs
        task, target_type = self.task, self.task.cfg.target_type
        examples = [encode_sentence({"tokens": x.tokens, "entities": []}, self.encode_word, task.dictionary,
                                    task.type_index, target_type, self.limit) for x in inputs]
        seqs = task.decode_examples(self.model, examples, self.beam, self.max_len_a, self.max_len_b,
                                    self.batch_size, progress)
        for x, ex, seq in zip(inputs, examples, seqs):
            doc = docs[x.doc]
            for ent in decode_target(seq, ex["wp"], task.types, target_type):
                spans = [(x.words[a][0], x.words[b - 1][1]) for a, b in ent["spans"]]
                doc.entities.append(doc.entity(spans, type=ent["type"]))
        return docs
