"""Applying a trained model to a user's own text: documents in, entities / concepts / texts out.

``document``  the one in-memory form every reader writes and every writer reads
``formats``   JSONL, PubTator and BioC readers and writers of documents
``linker``    mentions in context -> top-k concepts (the trie-constrained generative linker)
``tagger``    raw text -> entities with character offsets (BARTNER, nested / discontinuous)
``generator`` questions / dialogue histories -> summaries / replies
``api``       :func:`biobart_fairseq.load`: one object with ``link``/``tag``/``generate``

The commands (``biobart-link``, ``biobart-tag``, ``biobart-annotate``, ``biobart-generate``)
are thin wrappers in :mod:`biobart_fairseq.cli` over these modules.
"""
