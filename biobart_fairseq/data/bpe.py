"""Everything about BPEs, in one place: the ``bpe.json`` record, the BPE files of a data folder,
fairseq's BPE object, the multi-process encoder and the one call of ``fairseq-preprocess``.

Every command that applies a BPE (``biobart-binarize``, ``biobart-binarize-seq2seq``,
``biobart-prepare-el``, ``biobart-prepare-ner``) and every reader of one (the tasks,
:func:`biobart_fairseq.from_pretrained`) goes through this module.

The record.  A data folder a BPE was applied to holds the BPE's files under fixed names and
``bpe.json`` naming them *relative to the folder*::

    {"type": "sentencepiece", "model": "spm.model"}
    {"type": "gpt2", "encoder_json": "encoder.json", "vocab_bpe": "vocab.bpe"}

so the folder can be moved or copied to another machine as it is.  (Records written before
this with absolute paths still read: an absolute path is kept as it is.)

Without ``bpe.json`` the tasks take fairseq's own flags instead, as fairseq's BART recipe
passes them (``--bpe gpt2 --gpt2-encoder-json F --gpt2-vocab-bpe F`` or ``--bpe
sentencepiece --sentencepiece-model F``, local files), so data binarized with plain
``fairseq-preprocess`` works too (:func:`resolve_info`).

No torch or fairseq at module level: the preparation commands start without them.
"""

import collections
import contextlib
import functools
import itertools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys

BPE_JSON = "bpe.json"
#: record key -> file name in the data folder, per BPE type
FILES = {"sentencepiece": {"model": "spm.model"}, "gpt2": {"encoder_json": "encoder.json", "vocab_bpe": "vocab.bpe"}}
CHUNK = 2000  # lines per encoder task: large enough to amortise IPC, small for a smooth bar


class BpeError(ValueError):
    """A BPE that cannot be set up or read; the message is one line naming the file."""


# --- the record -----------------------------------------------------------------------------
def read_info(path):
    """``bpe.json`` -> record with the file paths made absolute (relative to its folder)."""
    if not os.path.isfile(path):
        raise BpeError(
            f"{path}: not found. The BPE the data was binarized with is needed: binarize with a "
            "biobart-* command (which writes it), pass --bpe-info, give fairseq's --bpe flags "
            "(--bpe gpt2 --gpt2-encoder-json --gpt2-vocab-bpe, or --bpe sentencepiece "
            "--sentencepiece-model), or use --mask-length subword."
        )
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BpeError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or info.get("type") not in FILES:
        got = info.get("type") if isinstance(info, dict) else info
        raise BpeError(f"{path}: 'type' must be 'sentencepiece' or 'gpt2', got {got!r}")
    base = os.path.dirname(os.path.abspath(path))
    for key in FILES[info["type"]]:
        if not info.get(key):
            raise BpeError(f"{path}: a {info['type']} record needs {key!r}")
        info[key] = os.path.join(base, info[key])
    return info


def install(folder, kind, **sources):
    """Copy the BPE's files into ``folder`` under their fixed names and write its ``bpe.json``.

    ``sources`` maps the record keys of ``kind`` (``model``; ``encoder_json``, ``vocab_bpe``) to
    the files to copy; a file already in place is kept.  Returns the record as :func:`read_info`
    gives it."""
    if kind not in FILES:
        raise BpeError(f"unknown BPE type {kind!r} (sentencepiece or gpt2)")
    for key, name in FILES[kind].items():
        src, dst = sources.get(key), os.path.join(folder, name)
        if not src or not os.path.isfile(src):
            raise BpeError(f"{src}: no such file" if src else f"{kind} BPE needs its {name}")
        if os.path.abspath(src) != os.path.abspath(dst):
            shutil.copyfile(src, dst + ".part")
            os.replace(dst + ".part", dst)
    record = {"type": kind, **FILES[kind]}
    with open(os.path.join(folder, BPE_JSON + ".part"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(folder, BPE_JSON + ".part"), os.path.join(folder, BPE_JSON))
    return read_info(os.path.join(folder, BPE_JSON))


def copy(info, folder):
    """Install the BPE of a record (e.g. another data folder's) into ``folder``."""
    return install(folder, info["type"], **{k: info[k] for k in FILES[info["type"]]})


def info_from_fairseq_args(cfg):
    """The record fairseq's own BPE flags describe, or None when ``--bpe`` names no BPE here."""
    kind = getattr(cfg, "bpe", None)
    if kind == "gpt2":
        paths = {"encoder_json": getattr(cfg, "gpt2_encoder_json", None),
                 "vocab_bpe": getattr(cfg, "gpt2_vocab_bpe", None)}
    elif kind == "sentencepiece":
        paths = {"model": getattr(cfg, "sentencepiece_model", None)}
    else:
        return None
    for key, path in paths.items():
        flag = {"encoder_json": "--gpt2-encoder-json", "vocab_bpe": "--gpt2-vocab-bpe",
                "model": "--sentencepiece-model"}[key]
        if not path or "://" in str(path) or not os.path.isfile(path):
            raise BpeError(f"--bpe {kind} without a bpe.json in the data folder needs {flag} naming a local "
                           f"file (got {path!r})")
        paths[key] = os.path.abspath(path)
    return {"type": kind, **paths}


def resolve_info(data_dir, bpe_info=None, cfg=None):
    """(record, where it came from) for a data folder: ``bpe_info`` (an explicit bpe.json) first,
    then ``DATA/bpe.json``, then fairseq's ``--bpe`` flags in ``cfg``; BpeError when none."""
    path = bpe_info or os.path.join(data_dir, BPE_JSON)
    if bpe_info or os.path.isfile(path) or cfg is None:
        return read_info(path), path
    info = info_from_fairseq_args(cfg)
    if info is None:
        read_info(path)  # raises the not-found error that lists every way to name the BPE
    return info, f"--bpe {info['type']}"


# --- applying it --------------------------------------------------------------------------
def build(info):
    """fairseq's BPE object for a record (local files only)."""
    from argparse import Namespace

    from fairseq.data import encoders

    if info["type"] == "sentencepiece":
        args = Namespace(bpe="sentencepiece", sentencepiece_model=info["model"],
                         sentencepiece_enable_sampling=False, sentencepiece_alpha=None)
    else:
        args = Namespace(bpe="gpt2", gpt2_encoder_json=info["encoder_json"], gpt2_vocab_bpe=info["vocab_bpe"])
    return encoders.build_bpe(args)


def token_encoder(info):
    """``text -> [dictionary symbols]``: sentencepiece pieces, or GPT-2 ids as strings (the symbols
    of a BART ``dict.txt``, exactly fairseq's GPT-2 encoder's: :class:`GPT2Encoder`)."""
    if info["type"] == "sentencepiece":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=info["model"])
        return lambda text: sp.encode(text, out_type=str)
    enc = GPT2Encoder(info["encoder_json"], info["vocab_bpe"])
    return lambda text: enc.encode(text).split()


# --- GPT-2: fairseq's encoder, fast ---------------------------------------------------------
# fairseq.data.encoders.gpt2_bpe_utils.Encoder's pre-tokenisation (tests/test_bpe_fast.py: equal)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
CACHE_MAX = 1 << 20  # cached words per encoder; then the cache starts again (bounded memory)


def gpt2_byte_table():
    """GPT-2's byte -> printable character map (gpt2_bpe_utils.bytes_to_unicode), as a
    ``str.translate`` table over the latin-1 decoding of the bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    moved = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + n) for n, b in enumerate(moved)}}


def read_gpt2_files(encoder_json, vocab_bpe):
    """(token -> id, merges) read as fairseq's ``get_encoder`` reads them: vocab.bpe's first
    line (``#version``) and its last (after the final newline) dropped, each merge the tuple of
    its whitespace-separated fields."""
    with open(encoder_json, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(vocab_bpe, encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:-1]]
    return vocab, merges


def tokenizers_problem(vocab, merges):
    """None when HF ``tokenizers``' BPE merges exactly as fairseq's ``Encoder.bpe`` does with these
    files, else the reason it might not.

    fairseq merges the lowest-ranked pair at every place in a word, then looks again;
    tokenizers pops (rank, position) from a heap and pushes the pairs each merge creates, so a
    pair that a merge creates can go before the remaining places of the current pair.  The two
    agree when each merge joins only bytes or results of lower-ranked merges (a created pair then
    ranks after the merge that made it), as every learnt BPE's merges do.  Also needed: every
    byte and every merge result is a token (else tokenizers drops or refuses text fairseq would
    fail on), and no merge is listed twice (fairseq keeps the later rank)."""
    table = gpt2_byte_table()
    made, seen = set(table.values()), set()
    missing = [c for c in made if c not in vocab]
    if missing:
        return f"byte symbol {missing[0]!r} is not in encoder.json"
    later = {a + b for m in merges if len(m) == 2 for a, b in [m]}
    for rank, merge in enumerate(merges):
        if len(merge) != 2:
            return f"vocab.bpe merge {rank + 1} has {len(merge)} fields: {' '.join(merge)!r}"
        if merge in seen:
            return f"vocab.bpe merge {' '.join(merge)!r} is listed twice"
        a, b = merge
        for part in (a, b):
            if part not in made and part in later:
                return f"vocab.bpe merge {rank + 1} ({a} {b}) uses {part!r} before the merge that makes it"
        if a + b not in vocab:
            return f"vocab.bpe merge {rank + 1} makes {a + b!r}, which encoder.json lacks"
        seen.add(merge)
        made.add(a + b)
    return None


class GPT2Encoder:
    """fairseq's GPT-2 BPE (``gpt2_bpe_utils.Encoder.encode``), ids as a space-separated string.

    fairseq's ``regex`` pattern splits text into words, each word's UTF-8 bytes are mapped to
    GPT-2's characters and merged by HF ``tokenizers``' BPE -- or by fairseq's own ``Encoder``
    when :func:`tokenizers_problem` finds a reason they could differ (``engine`` then says
    ``fairseq`` and ``problem`` why).  Results are cached per word.

    Lines whose only whitespace is single spaces (what the binarize commands read, after
    ``" ".join(line.split())``) are cut at the spaces instead of running the regex: no word of
    the pattern crosses a single space except as its first character, and every regex ``\\s``
    character is ``str.isspace`` (tested), so the words of ``"a b"`` are those of ``"a"`` followed
    by those of ``" b"``, and a line costs one ``split`` and a dict lookup per space-separated
    word."""

    def __init__(self, encoder_json, vocab_bpe, engine="auto"):
        import regex

        vocab, merges = read_gpt2_files(encoder_json, vocab_bpe)
        self.problem = "fairseq's engine asked for" if engine == "fairseq" else tokenizers_problem(vocab, merges)
        self._bpe = None
        if self.problem is None:
            from tokenizers import Tokenizer, models

            try:  # no normalizer, pre-tokenizer or post-processor: only the merges
                self._bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges))
            except Exception as e:  # noqa: BLE001  (tokenizers raises plain Exceptions)
                self.problem = f"tokenizers refuses the files ({e})"
        if self._bpe is None:
            from fairseq.data.encoders.gpt2_bpe_utils import Encoder

            self._fairseq = Encoder(vocab, merges)
        self.engine = "fairseq" if self._bpe is None else "tokenizers"
        self._words = regex.compile(GPT2_PATTERN).findall
        self._bytes = gpt2_byte_table()
        self._str = {i: str(i) for i in vocab.values()}
        self._cache = ({}, {}, {})  # line-initial word, word after a space, regex word -> ids

    def _ids(self, text, split=True):
        """The ids of ``text`` (one regex word when not ``split``), uncached, as fairseq's
        ``Encoder.encode`` gives them: its words' bytes as GPT-2 characters, then the merges."""
        words = [w.encode("utf-8").decode("latin-1").translate(self._bytes)
                 for w in (self._words(text) if split else [text])]
        if self._bpe is not None:
            ids = self._bpe.encode(words, is_pretokenized=True, add_special_tokens=False).ids
        else:  # the body of fairseq's Encoder.encode
            fs = self._fairseq
            ids = [fs.encoder[token] for word in words for token in fs.bpe(word).split(" ")]
        return " ".join([self._str[i] for i in ids])

    def _miss(self, cache, word, text, split=True):
        if len(cache) >= CACHE_MAX:
            cache.clear()
        ids = cache[word] = self._ids(text, split)
        return ids

    def encode_line(self, line, lead=False):
        """ids of a line with no whitespace but single spaces between words (``" ".join(raw.split())``),
        with GPT-2's leading space when ``lead``; "" for an empty line."""
        if not line:
            return ""
        words = line.split(" ")
        after = self._cache[1]
        if lead:
            ids = list(map(after.get, words))  # a C loop: all but new words hit the cache
        else:
            first = self._cache[0]
            ids = [first.get(words[0]), *map(after.get, words[1:])]
        if None in ids:
            for i, w in enumerate(words):
                if ids[i] is None:
                    if lead or i:  # (a word new to the cache may come twice in a line)
                        ids[i] = after.get(w) or self._miss(after, w, " " + w)
                    else:
                        ids[i] = self._miss(first, w, w)
        return " ".join(ids)

    def encode(self, text):
        """ids of any text, exactly as fairseq's encoder (the regex runs where whitespace is not
        single spaces)."""
        lead = text[:1] == " "
        body = text[1:] if lead else text
        if body and " ".join(body.split()) == body:
            return self.encode_line(body, lead)
        words = self._cache[2]
        return " ".join([words.get(w) or self._miss(words, w, w, split=False) for w in self._words(text)])


# --- the encoder pool: one BPE load per worker for a whole command ------------------------------
CHUNK_BYTES = 1 << 16  # and at most this much text per task, so a small file still feeds every worker
_ENCODER = None  # this process's line encoder: (line, lead) -> encoded line
_LOADS = collections.Counter()  # pool id -> BPE loads for that pool in this process (1 per worker)
_POOL = None  # the id of the pool this process's encoder was loaded for
_POOL_IDS = itertools.count()


def line_encoder(info):
    """``(line, lead) -> encoded line`` for whitespace-normalised lines: GPT-2 ids or pieces.
    ``info["engine"] = "fairseq"`` makes a GPT-2 encoder merge with fairseq's code (tests)."""
    if info["type"] == "sentencepiece":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=info["model"])
        return lambda line, lead: " ".join(sp.encode((" " + line) if lead else line, out_type=str)) if line else ""
    return GPT2Encoder(info["encoder_json"], info["vocab_bpe"], info.get("engine", "auto")).encode_line


def _init_worker(info, pool_id=None):
    # counted per pool: a forked worker inherits its parent's counts, and one process may run
    # several pools (tests, the in-process pool), so a bare counter would count loads of others
    global _ENCODER, _POOL
    _ENCODER = line_encoder(info)
    _POOL = pool_id
    _LOADS[pool_id] += 1


def _encode_chunk(chunk, count=False):
    """chunk: list of (line, leading_space); blank lines stay blank.  Returns (encoded lines,
    input bytes, token counts or None, (pid, BPE loads of this process)): counting happens in
    the worker, the parent only writes."""
    nbytes = sum(len(line.encode("utf-8")) + 1 for line, _ in chunk)
    out = [_ENCODER(line, lead) for line, lead in chunk]
    counts = None
    if count:
        counts = collections.Counter()
        for line in out:
            counts.update(line.split())
    return out, nbytes, counts, (os.getpid(), _LOADS[_POOL])


class _InProcess:
    """A one-worker "pool" in this process (no fork): ``apply_async(f, args).get()``."""

    def __init__(self, info, pool_id):
        _init_worker(info, pool_id)

    def apply_async(self, func, args):
        return _Done(func(*args))


class _Done:
    def __init__(self, result):
        self.result = result

    def get(self):
        return self.result


class EncoderPool:
    """The BPE workers of one command, shared by all its files: each loads the BPE once.
    ``loads`` maps each worker that did some work to its BPE loads (1 each)."""

    def __init__(self, workers, info):
        self.workers, self.info, self.loads = max(1, workers), info, {}

    def __enter__(self):
        from .atomic import quiet_worker

        pool_id = next(_POOL_IDS)
        if self.workers == 1:
            self._pool = _InProcess(self.info, pool_id)
        else:
            self._pool = multiprocessing.get_context("fork").Pool(self.workers, quiet_worker,
                                                                  (_init_worker, self.info, pool_id))
        return self

    def __exit__(self, *exc):
        if self.workers > 1:
            self._pool.terminate() if exc[0] else self._pool.close()
            self._pool.join()

    def apply_async(self, func, args):
        return self._pool.apply_async(func, args)


def _read_chunks(path, leading_space):
    """Chunks of (whitespace-normalised line, needs a leading space): with ``leading_space``, the
    lines after the first of a document (blank line = document break) get GPT-2's space."""
    chunk, size, first_in_doc = [], 0, True
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = " ".join(raw.split())
            chunk.append((line, leading_space and not first_in_doc and bool(line)))
            size += len(line)
            first_in_doc = not line
            if len(chunk) >= CHUNK or size >= CHUNK_BYTES:
                yield chunk
                chunk, size = [], 0
    if chunk:
        yield chunk


def bounded_imap(pool, func, items, window):
    """``pool.imap(func, items)`` with at most ``window`` tasks in flight.

    ``Pool.imap`` reads *all* of ``items`` into its task queue as fast as it can; when the workers
    are slower than reading (BPE always is), the whole corpus ends up in memory.  Here the next
    item is read only when an earlier result has been taken."""
    pending = collections.deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def encode_file(src, dst, workers, info, leading_space=False, counts=None, pool=None):
    """BPE-encode the text file ``src`` into ``dst`` (one line per line) with ``workers``
    processes -- those of ``pool`` (an :class:`EncoderPool`) when given, else a pool for this
    file; ``counts`` (a Counter) gets the token counts.  Returns the number of lines."""
    if pool is None:
        with EncoderPool(workers, info) as pool:
            return encode_file(src, dst, workers, info, leading_space, counts, pool)
    from .. import progress

    n = 0
    with open(dst, "w", encoding="utf-8") as out, \
            progress.bar(total=os.path.getsize(src), desc=f"BPE {os.path.basename(src)}", unit="B") as bar:
        worker = functools.partial(_encode_chunk, count=counts is not None)
        chunks = _read_chunks(src, leading_space)
        for lines, nbytes, chunk_counts, (pid, loads) in bounded_imap(pool, worker, chunks, 4 * pool.workers):
            out.write("".join(line + "\n" for line in lines))
            if chunk_counts:
                counts.update(chunk_counts)
            pool.loads[pid] = loads
            n += len(lines)
            bar.update(nbytes)
    return n


def encode_files(files, workers, info, leading_space=False, counted=(), log=None):
    """:func:`encode_file` for each ``(name, src, dst)`` of ``files``, all with one
    :class:`EncoderPool`; -> the token counts of the files whose name is in ``counted`` (the
    training text: they order a sentencepiece dictionary).  ``log`` gets one line a file and
    one for the pool."""
    counts = collections.Counter()
    with EncoderPool(workers, info) as pool:
        for name, src, dst in files:
            n = encode_file(src, dst, workers, info, leading_space, counts if name in counted else None, pool)
            if log:
                log(f"{name}: {n} lines encoded")
    if log:
        log(f"BPE: {len(files)} files, {pool.workers} workers, {sum(pool.loads.values())} BPE loads")
    return counts


def binarize_dictionary(info, counts, given, folder):
    """The dict.txt to binarize with: ``given`` (the pretrained model's, for GPT-2), or, for a
    sentencepiece model, every piece ordered by ``counts``, written to ``folder/dict.txt``."""
    if info["type"] != "sentencepiece":
        return given
    path = os.path.join(folder, "dict.txt")
    write_spm_dict(info["model"], counts, path)
    return path


# --- sentencepiece ------------------------------------------------------------------------
def train_sentencepiece(train_txt, prefix, vocab_size, model_type="bpe", workers=1, max_sentences=5_000_000):
    """Train ``prefix.model`` on ``train_txt``; BpeError with sentencepiece's reason on failure."""
    import sentencepiece as spm

    try:
        spm.SentencePieceTrainer.train(
            input=train_txt, model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, num_threads=workers,
            hard_vocab_limit=False,  # small corpora: shrink instead of failing
            byte_fallback=True,  # characters unseen in training become byte pieces, never <unk>
            input_sentence_size=max_sentences, shuffle_input_sentence=True, minloglevel=2,
        )
    except RuntimeError as e:  # e.g. a vocabulary smaller than the characters of the text
        reason = str(e).split("] ")[-1].split(" Increase vocab_size")[0]
        raise BpeError(f"{train_txt}: sentencepiece cannot learn a {vocab_size}-piece vocabulary from it: "
                       f"{reason} (choose another --vocab-size)") from None
    return prefix + ".model"


def write_spm_dict(model_path, counts, dict_path):
    """fairseq dict.txt with every sentencepiece piece (seen ones by frequency first)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model_path)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    ordered = sorted(pieces, key=lambda p: -counts.get(p, 0))  # stable: ties keep model order
    with open(dict_path, "w", encoding="utf-8") as f:
        for p in ordered:
            f.write(f"{p} {counts.get(p, 0)}\n")


# --- command-line flags shared by the commands that apply a BPE ------------------------------
GPT2_FILE_ARGS = ("encoder_json", "vocab_bpe", "dict")


def add_gpt2_arguments(group, dict_help="the pretrained model's dict.txt (local path)"):
    """The three local files of BART/BioBART's GPT-2 BPE (e.g. from biobart-convert hf-to-fairseq)."""
    group.add_argument("--encoder-json", help="GPT-2 encoder.json (local path)")
    group.add_argument("--vocab-bpe", help="GPT-2 vocab.bpe / HF merges.txt (local path)")
    group.add_argument("--dict", help=dict_help)


def add_sentencepiece_arguments(group):
    """Reuse a sentencepiece model or train one of this size."""
    group.add_argument("--spm-model", help="use this sentencepiece model instead of training one (local path)")
    group.add_argument("--vocab-size", type=int, default=8000,
                       help="vocabulary size of a new sentencepiece model (default: %(default)s)")


def missing_gpt2_arguments(args):
    """The GPT-2 file flags not given, e.g. ['--vocab-bpe', '--dict'] (empty when complete)."""
    return ["--" + n.replace("_", "-") for n in GPT2_FILE_ARGS if not getattr(args, n, None)]


def setup_from_args(args, folder, spm_train_text, workers=1, spm_type="bpe", spm_max_sentences=5_000_000, log=None):
    """The BPE the flags ask for (``args.bpe``, ``spm_model``, ``vocab_size``, the GPT-2 files),
    installed into ``folder``; a sentencepiece model is trained on ``spm_train_text`` when no
    ``--spm-model`` is given.  Returns the record; BpeError with a one-line reason."""
    if args.bpe == "sentencepiece":
        model = getattr(args, "spm_model", None)
        if model and not os.path.isfile(model):
            raise BpeError(f"{model}: no such sentencepiece model")
        if not model:
            if spm_train_text is None:
                raise BpeError("no training text to learn a sentencepiece model from; pass --spm-model")
            if log:
                log(f"training sentencepiece ({spm_type}, vocab {args.vocab_size}) on {spm_train_text}")
            model = train_sentencepiece(spm_train_text, os.path.join(folder, "spm"), args.vocab_size, spm_type,
                                        workers, spm_max_sentences)
        return install(folder, "sentencepiece", model=model)
    missing = missing_gpt2_arguments(args)
    if missing:
        raise BpeError("--bpe gpt2 needs " + ", ".join(missing))
    for path in (args.encoder_json, args.vocab_bpe, args.dict):
        if not os.path.isfile(path):
            raise BpeError(f"{path}: no such file")
    return install(folder, "gpt2", encoder_json=args.encoder_json, vocab_bpe=args.vocab_bpe)


# --- binarization -------------------------------------------------------------------------
class PreprocessError(ValueError):
    pass


@contextlib.contextmanager
def encoded_text_folder(out, keep=False):
    """``OUT/bpe-text``: where the binarize commands write BPE-encoded text for
    fairseq-preprocess; removed once the block completes unless ``keep`` (--keep-bpe-text).
    On an error it stays, inside the staged ``OUT.incomplete`` that names the failed run."""
    folder = os.path.join(os.path.abspath(out), "bpe-text")
    os.makedirs(folder, exist_ok=True)
    yield folder
    if not keep:
        shutil.rmtree(folder)


def preprocess(destdir, dict_path, prefixes, workers=1, langs=None, log_name="preprocess.log"):
    """The one call of ``fairseq-preprocess``: binarize ``prefixes`` ({"train": PREFIX, ...}) into
    ``destdir`` with the fixed dictionary ``dict_path``.  ``langs`` = (source, target) suffixes for
    a translation pair, None for ``--only-source``.  Its output goes to ``destdir/log_name``;
    PreprocessError names that log on failure."""
    if langs:
        cmd = ["--source-lang", langs[0], "--target-lang", langs[1], "--srcdict", dict_path, "--tgtdict", dict_path]
        stale = [f"dict.{lang}.txt" for lang in langs]
    else:
        cmd = ["--only-source", "--srcdict", dict_path]
        stale = ["dict.txt"]
    for name in stale:  # fairseq-preprocess refuses to overwrite a dictionary
        path = os.path.join(destdir, name)
        if os.path.exists(path) and os.path.abspath(path) != os.path.abspath(dict_path):
            os.remove(path)
    cmd += ["--destdir", destdir, "--workers", str(workers), "--dataset-impl", "mmap"]
    for split in ("train", "valid", "test"):
        if split in prefixes:
            cmd += [f"--{split}pref", prefixes[split]]
    print("[fairseq-preprocess] " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run([sys.executable, "-m", "fairseq_cli.preprocess", *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log_path = os.path.join(destdir, log_name)
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(proc.stdout)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        raise PreprocessError(f"fairseq-preprocess failed (exit {proc.returncode}); see {log_path}")


def preprocess_splits(destdir, dict_path, prefixes, workers=1, langs=None):
    """:func:`preprocess` for a folder that may have no train split (an evaluation-only one,
    e.g. MEDIQA-MAS valid/test): fairseq-preprocess always binarizes a train split, so the
    first split given stands in for it and its train files are removed afterwards."""
    if "train" in prefixes:
        return preprocess(destdir, dict_path, prefixes, workers, langs)
    preprocess(destdir, dict_path, {"train": next(iter(prefixes.values())), **prefixes}, workers, langs)
    # fairseq-preprocess's names for the train split
    stems = [f"train.{langs[0]}-{langs[1]}.{lang}" for lang in langs] if langs else ["train"]
    for stem in stems:
        for ext in ("bin", "idx"):
            path = os.path.join(destdir, f"{stem}.{ext}")
            if os.path.exists(path):
                os.remove(path)  # a stand-in, not training data
