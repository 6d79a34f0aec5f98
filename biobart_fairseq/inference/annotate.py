"""Documents -> NER -> linking -> annotated documents, in resumable shards (``biobart-annotate``).

:class:`Annotator` is the model part: a :class:`~biobart_fairseq.inference.tagger.Tagger` and,
optionally, linkers by entity type (``Annotator(tagger, [(("Disease",), linker), ...])``; tests
inject small fakes there; :meth:`Annotator.from_paths` loads the real ones).  :func:`run` is the
corpus part:

* **Documents** are read with :func:`biobart_fairseq.inference.formats.read` from every input
  in the order given; bad records are skipped and reported in the one error form.  Entities
  already in the input are replaced by the model's (``keep_input_entities``: kept beside).
* **Sharding** (``shard=(I, N)``) needs no coordination: with ``shard_by="document"`` (the
  default) document *i* (counted over all inputs, bad records not counted) is job *I*'s when
  ``i mod N == I``: every job reads all inputs (cheap next to the models) and the jobs get
  equal shares even of a single file; ``shard_by="file"``: input file *j* is job *I*'s when
  ``j mod N == I`` (the job reads its files only: for thousands of PubMed files).  A bad
  record is reported by the job owning the document read next (by file: the file's job), so
  each is reported by one job.
* **Chunks**: a job's documents in order, ``chunk_size`` at a time, chunk *c* to
  ``OUT/PREFIX part-CCCCCC.EXT`` (PREFIX ``shard-I-of-N.`` when N > 1, so all jobs may share one
  OUT).  A chunk's file is written under ``.partial`` and renamed when whole, then its
  ``.done`` record (the run's settings and a digest of the chunk's documents).
* **Resuming**: a run started again after a crash or SIGKILL with the same settings keeps the
  chunks whose ``.done`` matches and annotates the others; since a chunk depends only on its
  documents and the models, the output bytes are those of an uninterrupted run.  Chunk files
  left by an earlier run beyond the last chunk are removed.
* **Workers** (CPU): ``workers`` processes, each loading the models once, annotate whole chunks
  (the output does not depend on the number of workers); at most 2 x workers chunks in flight.
  On a GPU one process decodes batches of ``batch_size``.

``OUT/PREFIX report.json`` holds the counts, the bad records and the rate (documents/s of this
run's annotation, resumed chunks not counted).
"""

import hashlib
import json
import multiprocessing
import os
import re
from dataclasses import asdict, dataclass, field

from .. import errors, progress
from . import formats

RUN_FORMAT = 1  # bumped when what a chunk holds changes: a resumed run then redoes all chunks
_ANNOTATOR = None  # the Annotator of this (worker) process


class Annotator:
    """NER, then linking of the entities whose type a linker serves.  ``linkers``: a list of
    ``(types, linker)``, ``types`` a tuple of entity types or None (every entity)."""

    def __init__(self, tagger, linkers=()):
        self.tagger, self.linkers = tagger, list(linkers)

    @classmethod
    def from_paths(cls, ner, links=(), ner_data=None, device="cpu", batch_size=32, beam=None, link_beam=5,
                   topk=5):
        """``ner``: the NER checkpoint (or its folder); ``links``: ``[(types, checkpoint)]`` as
        :func:`parse_links` gives them (one Linker per checkpoint however many types it serves)."""
        from .linker import Linker
        from .tagger import Tagger

        tagger = Tagger.from_path(ner, data_dir=ner_data, device=device, beam=beam, batch_size=batch_size)
        linkers = [(types, Linker.from_path(path, device=device, beam=link_beam, topk=topk, batch_size=batch_size))
                   for types, path in links]
        return cls(tagger, linkers)

    def annotate(self, docs, keep_input_entities=False):
        """Tag then link ``docs`` in place; -> ``docs``."""
        if not keep_input_entities:
            for doc in docs:
                doc.entities = []
        self.tagger.tag(docs)
        for types, linker in self.linkers:
            linker.link(docs, types=None if types is None else set(types))
        return docs


def parse_links(specs):
    """``["Disease=ckpt_ncbi", "Chemical,Drug=ckpt_bc5cdr", "ckpt"]`` -> ``[(types, path)]``
    (no ``TYPE=``: every entity); errors.Unusable for a type given twice."""
    by_path, seen = {}, {}  # checkpoint -> its types (None: all); type -> checkpoint
    for spec in specs:
        types, sep, path = spec.partition("=") if "=" in spec else ("", "", spec)
        names = tuple(t.strip() for t in types.split(",") if t.strip()) if sep else None
        for name in names or ("*",):
            if name in seen:
                raise errors.Unusable(f"--link {spec}: type {name!r} is linked by {seen[name]} already")
            seen[name] = path
        by_path[path] = None if names is None else by_path.get(path, ()) + names
    if "*" in seen and len(seen) > 1:
        raise errors.Unusable("--link: a model for every type (no TYPE=) and models for some types")
    return [(types, path) for path, types in by_path.items()]


@dataclass
class RunConfig:
    inputs: list = field(metadata={"help": "input files, read in this order"})
    out_dir: str = field(metadata={"help": "output folder (shared by all jobs of a sharded run)"})
    input_format: str = field(default=None, metadata={"help": "input format (None: from each file name)"})
    output_format: str = field(default="pubtator", metadata={"help": "one of formats.WRITE_FORMATS"})
    chunk_size: int = field(default=256, metadata={"help": "documents per output file (the unit of resuming)"})
    shard: tuple = field(default=(0, 1), metadata={"help": "(I, N): this job is job I of N"})
    shard_by: str = field(default="document", metadata={"help": "'document' (i mod N) or 'file' (j mod N)"})
    workers: int = field(default=1, metadata={"help": "CPU processes, each with its own models"})
    keep_input_entities: bool = field(default=False, metadata={"help": "keep the input's entities"})
    models: dict = field(default_factory=dict, metadata={"help": "what identifies the models (for resuming)"})
    quiet: bool = field(default=False, metadata={"help": "no progress bar"})

    @property
    def prefix(self):
        i, n = self.shard
        return f"shard-{i}-of-{n}." if n > 1 else ""

    def part(self, chunk):
        return os.path.join(self.out_dir, f"{self.prefix}part-{chunk:06d}{formats.EXTENSIONS[self.output_format]}")

    def identity(self):
        """What a chunk depends on besides its documents; a ``.done`` of other settings is stale."""
        inputs = []
        for path in self.inputs:
            try:
                st = os.stat(path)
                inputs.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
            except OSError:
                inputs.append([os.path.abspath(path), None, None])
        keep = {k: v for k, v in asdict(self).items() if k not in ("inputs", "out_dir", "workers", "quiet")}
        # as JSON reads it back (tuples -> lists), to compare with a .done file
        return json.loads(json.dumps({"format": RUN_FORMAT, "inputs": inputs, **keep}))


def model_identity(*paths):
    """(path, size, mtime) of each model file, for :attr:`RunConfig.models`."""
    out = {}
    for path in paths:
        target = path
        if os.path.isdir(path):
            target = next((os.path.join(path, n) for n in ("checkpoint_best.pt", "checkpoint_last.pt")
                           if os.path.isfile(os.path.join(path, n))), path)
        st = os.stat(target) if os.path.exists(target) else None
        out[path] = [os.path.abspath(target), st.st_size if st else None, st.st_mtime_ns if st else None]
    return out


# --------------------------------------------------------------------------------------------
# reading: this job's documents, in chunks


def _items(paths, fmt, shard_by, shard):
    """(file number, Document | bad-record text) of every input this job reads."""
    i, n = shard
    for j, path in enumerate(paths):
        if shard_by == "file" and j % n != i:
            continue
        try:
            for item in formats.read(path, fmt):
                yield j, (item if isinstance(item, formats.Document) else str(item))
        except errors.Unusable as e:
            yield j, str(e)


def owned_documents(cfg, bad, counts):
    """This job's documents (module docstring: sharding); bad records it owns go to ``bad``."""
    i, n = cfg.shard
    index, pending = 0, []
    for _, item in _items(cfg.inputs, cfg.input_format, cfg.shard_by, cfg.shard):
        if isinstance(item, str):
            pending.append(item)
            continue
        mine = cfg.shard_by == "file" or index % n == i
        if mine:
            for message in pending:
                bad.add_located(message)
        pending = []
        index += 1
        if mine:
            yield item
    counts["documents_read"] = index
    if cfg.shard_by == "file" or index % n == i:
        for message in pending:
            bad.add_located(message)


def chunks(docs, size):
    chunk = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def digest(docs):
    """What identifies a chunk's input documents (their ids, texts and input entities)."""
    h = hashlib.sha1()
    for doc in docs:
        h.update(json.dumps(doc.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def _done_path(part):
    return part + ".done"


def finished(part, identity, chunk_digest):
    """The counts of a complete chunk of an earlier run with the same settings, else None."""
    try:
        with open(_done_path(part), encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    if done.get("identity") != identity or done.get("digest") != chunk_digest or not os.path.isfile(part):
        return None
    return done["counts"]


# --------------------------------------------------------------------------------------------
# annotating one chunk (in this process or a worker)


def _init_worker(annotator_args, threads):
    global _ANNOTATOR
    import torch

    torch.set_num_threads(threads)
    if annotator_args is not None:  # else inherited through fork (an injected Annotator)
        _ANNOTATOR = Annotator.from_paths(**annotator_args)


def annotate_chunk(task):
    """Annotate one chunk, write its file and then its ``.done``; -> its counts."""
    part, docs, fmt, identity, chunk_digest, keep = task
    _ANNOTATOR.annotate(docs, keep_input_entities=keep)
    formats.write(docs, part + ".partial", fmt)
    os.replace(part + ".partial", part)
    counts = {"documents": len(docs), "entities": sum(len(d.entities) for d in docs),
              "linked": sum(1 for d in docs for e in d.entities if e.concepts),
              "documents_with_notes": sum(1 for d in docs if d.notes)}
    with open(_done_path(part) + ".partial", "w", encoding="utf-8") as f:
        json.dump({"identity": identity, "digest": chunk_digest, "counts": counts}, f)
    os.replace(_done_path(part) + ".partial", _done_path(part))
    return counts


# --------------------------------------------------------------------------------------------
# the run

_OURS = re.compile(r"^(shard-\d+-of-\d+\.)?(part-\d{6}\.|report\.json)")


def check_out_dir(path):
    """Refuse a folder that is not empty and holds nothing of ours (it is no annotate output)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.Unusable(f"{path}: exists and is not a folder")
    names = os.listdir(path) if os.path.isdir(path) else []
    if names and not any(_OURS.match(n) for n in names):
        raise errors.Unusable(f"{path}: not empty and holds no biobart-annotate output; give a new or empty folder")


def _tasks(cfg, identity, bad, counts):
    """The chunks still to annotate; finished ones are counted into ``counts`` as resumed."""
    for c, chunk in enumerate(chunks(owned_documents(cfg, bad, counts), cfg.chunk_size)):
        part, chunk_digest = cfg.part(c), digest(chunk)
        counts["chunks"] = c + 1
        done = finished(part, identity, chunk_digest)
        if done is not None:
            counts["chunks_resumed"] += 1
            for key in ("documents", "entities", "linked", "documents_with_notes"):
                counts[key] += done[key]
            continue
        yield part, chunk, cfg.output_format, identity, chunk_digest, cfg.keep_input_entities


def _local(tasks, annotator_args):
    global _ANNOTATOR
    for task in tasks:
        if _ANNOTATOR is None:  # loaded only when there is something to annotate
            _ANNOTATOR = Annotator.from_paths(**annotator_args)
        yield annotate_chunk(task)


def _results(cfg, tasks, annotator, annotator_args):
    """Counts of each annotated chunk, in chunk order, from this process or ``workers`` ones."""
    global _ANNOTATOR
    _ANNOTATOR = annotator
    if cfg.workers <= 1:
        yield from _local(tasks, annotator_args)
        return
    from ..data.atomic import quiet_worker
    from ..data.bpe import bounded_imap

    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    init_args = (_init_worker, None if annotator is not None else annotator_args, threads)
    with multiprocessing.get_context("fork").Pool(cfg.workers, quiet_worker, init_args) as pool:
        yield from bounded_imap(pool, annotate_chunk, tasks, 2 * cfg.workers)


def _remove_stale(cfg, n_chunks):
    """Chunk files of an earlier run beyond this run's last chunk (its input was longer)."""
    pattern = re.compile(r"^" + re.escape(cfg.prefix) + r"part-(\d{6})\.")
    for name in os.listdir(cfg.out_dir):
        m = pattern.match(name)
        if m and int(m.group(1)) >= n_chunks:
            os.remove(os.path.join(cfg.out_dir, name))


def run(cfg, annotator=None, annotator_args=None, bad=None):
    """Annotate ``cfg.inputs`` into ``cfg.out_dir`` (module docstring) with ``annotator`` (an
    :class:`Annotator`) or one built by ``Annotator.from_paths(**annotator_args)`` in each
    process.  Returns the report (also written to OUT/PREFIX report.json)."""
    bad = bad if bad is not None else errors.BadRecords("biobart-annotate")
    check_out_dir(cfg.out_dir)
    os.makedirs(cfg.out_dir, exist_ok=True)
    identity = cfg.identity()
    counts = {"documents_read": 0, "chunks": 0, "chunks_resumed": 0, "documents": 0, "entities": 0, "linked": 0,
              "documents_with_notes": 0}
    annotated = 0
    with progress.bar(None, "annotate", "document", cfg.quiet) as bar:
        for result in _results(cfg, _tasks(cfg, identity, bad, counts), annotator, annotator_args):
            for key, value in result.items():
                counts[key] += value
            annotated += result["documents"]
            bar.update(result["documents"])
    if counts["documents_read"] == 0 and len(bad):
        raise errors.Unusable(bad.items[0] if len(bad.items) == 1 else f"no usable input ({len(bad)} problems)")
    _remove_stale(cfg, counts["chunks"])
    report = {"inputs": [str(p) for p in cfg.inputs], "output_dir": str(cfg.out_dir),
              "output_format": cfg.output_format, "shard": f"{cfg.shard[0]}/{cfg.shard[1]}", "shard_by": cfg.shard_by,
              "workers": cfg.workers, **counts, "documents_annotated_now": annotated,
              "bad_records": bad.to_json(), "speed": bar.summary(),
              "outputs": [os.path.basename(cfg.part(c)) for c in range(counts["chunks"])]}
    path = os.path.join(cfg.out_dir, f"{cfg.prefix}report.json")
    with open(path + ".partial", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    os.replace(path + ".partial", path)
    return report
