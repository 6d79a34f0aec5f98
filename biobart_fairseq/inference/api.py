"""``biobart_fairseq.load(path)``: a trained model for the user's own text, in Python.

    import biobart_fairseq
    m = biobart_fairseq.load("work/meqsum-base")          # a seq2seq recipe's model
    m.generate(["I have had a cough for 3 weeks. Should I get an x-ray?"])   # -> [summary]
    ner = biobart_fairseq.load("checkpoints/ner_genia-small")
    ner.tag(["IL-2 gene expression requires NF-kappa B."])  # -> [Document] with entities

The checkpoint's task (read from its cfg, the model not built for that) says what it can do:

=========================  ===========  ==================================================
task                       method       engine (the same one its command uses)
=========================  ===========  ==================================================
biomed_entity_linking      ``link``     :class:`~biobart_fairseq.inference.linker.Linker`
bartner_ner                ``tag``      :class:`~biobart_fairseq.inference.tagger.Tagger`
translation,               ``generate`` :class:`~biobart_fairseq.inference.generator.Generator`
biomed_translation
=========================  ===========  ==================================================

Calling a method the model's task does not support raises :class:`errors.Unusable` saying
what the model can do; a checkpoint of another task (e.g. a pretraining one) fails in
:func:`load`.  ``**kw`` go to the engine's ``from_path`` (``data_dir``, ``device``,
``batch_size``; ``kb`` for a linker; ``settings`` and decoding values for a generator).

Inputs: ``generate`` takes texts (real line breaks) or dialogue turns ``[(speaker, text), ...]``
and returns one output text each; ``link`` / ``tag`` take strings (a document each), records
in biobart-link's JSONL form (``{"id", "text", "mentions": [{"start", "end"}]}``, read by the
same reader as the command's JSONL) or :class:`~biobart_fairseq.inference.document.Document`
objects, and return Documents.  A single string (or record) instead of a list gives a single
result.
"""

import json

from .. import errors, hub

#: task -> (method, engine module, engine class)
ENGINES = {
    "biomed_entity_linking": ("link", "linker", "Linker"),
    "bartner_ner": ("tag", "tagger", "Tagger"),
    "translation": ("generate", "generator", "Generator"),
    "biomed_translation": ("generate", "generator", "Generator"),
}


def load(path, **kw):
    """The model at ``path`` (a checkpoint, or a folder with checkpoint_best.pt) ready for
    :meth:`Model.link`, :meth:`Model.tag` or :meth:`Model.generate`, as its task allows."""
    checkpoint = hub.find_checkpoint(str(path))
    task, _ = hub.checkpoint_task(checkpoint)
    if task not in ENGINES:
        raise errors.Unusable(f"{checkpoint}: its task {task} has no inference here (link: biomed_entity_linking, "
                              "tag: bartner_ner, generate: translation / biomed_translation models)")
    method, module, name = ENGINES[task]
    import importlib

    engine = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return Model(checkpoint, task, method, engine.from_path(checkpoint, **kw))


class Model:
    """A loaded model: ``engine`` is its Linker, Tagger or Generator; ``can`` the one method
    its task supports."""

    def __init__(self, checkpoint, task, can, engine):
        self.checkpoint, self.task, self.can, self.engine = checkpoint, task, can, engine

    def __repr__(self):
        return f"<biobart_fairseq model {self.checkpoint} ({self.task}: .{self.can}())>"

    def _check(self, method):
        if method != self.can:
            raise errors.Unusable(f"{self.checkpoint}: a {self.task} model cannot {method}; it can "
                                  f"{self.can}() (use a {_task_for(method)} model to {method})")

    def generate(self, texts, progress=None):
        """Texts (or dialogue turns) -> output texts, one each (see the module docstring)."""
        self._check("generate")
        single = isinstance(texts, str)
        out = self.engine.generate([texts] if single else list(texts), progress=progress)
        return out[0] if single else out

    def tag(self, docs, progress=None):
        """Strings / records / Documents -> Documents with the predicted entities appended."""
        self._check("tag")
        single, docs = _documents(docs)
        out = self.engine.tag(docs, progress=progress)
        return out[0] if single else out

    def link(self, docs, progress=None, types=None):
        """Records / Documents with mentions -> Documents, each mention with its top-k concepts."""
        self._check("link")
        single, docs = _documents(docs)
        out = self.engine.link(docs, progress=progress, types=types)
        return out[0] if single else out


def _task_for(method):
    return " / ".join(t for t, (m, _, _) in ENGINES.items() if m == method)


def _documents(items):
    """-> (a single item was given, [Document]); records go through the JSONL reader's path."""
    from . import formats
    from .document import Document

    single = isinstance(items, (str, dict, Document))
    docs = []
    for i, item in enumerate([items] if single else items, start=1):
        if isinstance(item, Document):
            docs.append(item)
        elif isinstance(item, str):
            if not item.strip():
                raise errors.Unusable(f"text {i}: empty")
            docs.append(Document(id=str(i), text=item))
        elif isinstance(item, dict):
            read = list(formats.jsonl_record("record", i, json.dumps({"id": str(i), **item}), "record"))
            bad = [r for r in read if isinstance(r, formats.BadRecord)]
            if bad:
                raise errors.Unusable(str(bad[0]))
            docs.append(read[-1])
        else:
            raise errors.Unusable(f"item {i}: a {type(item).__name__}; expected a string, a record (dict) or a Document")
    return single, docs
