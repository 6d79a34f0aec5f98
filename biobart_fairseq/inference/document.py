"""The one in-memory form of an annotated document, shared by every reader, model and writer.

Offsets are character offsets into :attr:`Document.text`, end exclusive (Python slices), as
PubTator and BioC count them.  A document made of passages (a PubMed title and abstract,
BioC passages) keeps each passage at its offset: ``doc.text[p.offset:p.end] == p.text``; the
gap between two passages is filled with spaces (PubTator: title, one space, abstract).

An :class:`Entity` has one span, or several for a discontinuous entity (CADEC's "muscle ...
pain"); nested entities are simply entities whose spans overlap.  ``concepts`` are the
linker's ranked ``(cui, name, score)`` candidates, best first.

``notes`` carry what a user must be told about the document, e.g. that it was split into
several model inputs because it was longer than the model's positions (never truncated
silently).

Light: no torch or fairseq.
"""

from dataclasses import dataclass, field


@dataclass
class Concept:
    cui: str
    name: str
    score: float

    def to_json(self):
        return {"cui": self.cui, "name": self.name, "score": round(float(self.score), 6)}


@dataclass
class Entity:
    spans: list  # [(start, end), ...] in document characters, sorted; > 1: discontinuous
    type: str = None
    text: str = ""  # the covered text, fragments joined by a space
    concepts: list = field(default_factory=list)  # [Concept], best first
    id: str = None  # a concept id given with the input (gold), kept as it was

    @property
    def start(self):
        return self.spans[0][0]

    @property
    def end(self):
        return self.spans[-1][1]

    def to_json(self):
        out = {"start": self.start, "end": self.end, "text": self.text}
        if len(self.spans) > 1:
            out["fragments"] = [list(s) for s in self.spans]
        if self.type is not None:
            out["type"] = self.type
        if self.id is not None:
            out["id"] = self.id
        if self.concepts:
            out["concepts"] = [c.to_json() for c in self.concepts]
        return out


@dataclass
class Passage:
    offset: int
    text: str
    kind: str = None  # "title", "abstract", a BioC passage type, ...

    @property
    def end(self):
        return self.offset + len(self.text)


@dataclass
class Document:
    id: str
    text: str
    passages: list = field(default_factory=list)  # [Passage]; empty: one passage, the whole text
    entities: list = field(default_factory=list)  # [Entity]
    notes: list = field(default_factory=list)  # [str] what the user must be told
    source: str = None  # "FILE:LINE" where the document was read, for messages

    @classmethod
    def from_passages(cls, doc_id, passages, source=None):
        """A document whose text holds each ``Passage`` at its offset (gaps: spaces)."""
        parts, pos = [], 0
        for p in sorted(passages, key=lambda p: p.offset):
            if p.offset < pos:
                raise ValueError(f"passage at offset {p.offset} overlaps the one before (ends at {pos})")
            parts.append(" " * (p.offset - pos))
            parts.append(p.text)
            pos = p.end
        return cls(id=str(doc_id), text="".join(parts), passages=sorted(passages, key=lambda p: p.offset),
                   source=source)

    def all_passages(self):
        return self.passages or [Passage(0, self.text)]

    def entity(self, spans, **kw):
        """A new :class:`Entity` over ``spans`` with its text taken from the document."""
        spans = sorted((int(s), int(e)) for s, e in spans)
        for s, e in spans:
            if not 0 <= s < e <= len(self.text):
                raise ValueError(f"span {s}-{e} outside the text (0-{len(self.text)})")
        return Entity(spans=spans, text=" ".join(self.text[s:e] for s, e in spans), **kw)

    def to_json(self):
        out = {"id": self.id, "text": self.text}
        if self.passages:
            out["passages"] = [{"offset": p.offset, "text": p.text, **({"type": p.kind} if p.kind else {})}
                               for p in self.passages]
        out["entities"] = [e.to_json() for e in self.entities]
        if self.notes:
            out["notes"] = list(self.notes)
        return out
