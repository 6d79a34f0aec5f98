"""biobart-binarize: document-format text -> BPE -> fairseq binary data for pretraining.

Input is what ``biobart-prepare-pubmed`` writes: one sentence per line, a blank line
between documents.  Two BPEs:

* ``--bpe gpt2`` -- the byte-level BPE of BART and BioBART, from local ``encoder.json``,
  ``vocab.bpe`` and the model's ``dict.txt`` (e.g. those written by the HF converter).
  Sentences after the first of a document are encoded with a leading space, so a
  document's ids equal what the HF tokenizer gives for the same text on one line.
* ``--bpe sentencepiece`` -- trains a sentencepiece model on the training text (what the
  demo and tests use), or reuses ``--spm-model``.

Then ``fairseq-preprocess --only-source`` writes ``{train,valid}.{bin,idx}`` and
``dict.txt``.  The output folder also gets the BPE files and ``bpe.json``, which the
``biomed_denoising`` task reads for whole-word masking and :func:`biobart_fairseq.from_pretrained`
for encoding text.  Blank lines are kept (they become document separators).
"""

import argparse
import collections
import functools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time

from tqdm import tqdm

CHUNK = 2000  # lines per worker task: large enough to amortise IPC, small for a smooth bar


# --- encoders (one per worker process) ---------------------------------------------------
_ENCODER = None


def _init_spm(model_path):
    global _ENCODER
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model_path)
    _ENCODER = lambda text: sp.encode(text, out_type=str)  # noqa: E731


def _init_gpt2(encoder_json, vocab_bpe):
    global _ENCODER
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    enc = get_encoder(encoder_json, vocab_bpe)
    _ENCODER = lambda text: [str(i) for i in enc.encode(text)]  # noqa: E731


def _encode_chunk(chunk, count=False):
    """chunk: list of (line, leading_space). Blank lines stay blank.

    Returns (encoded lines, input bytes, token counts or None); counting happens here in
    the worker so the parent process only writes."""
    out, nbytes = [], 0
    for line, lead in chunk:
        nbytes += len(line.encode("utf-8")) + 1
        if not line:
            out.append("")
        else:
            out.append(" ".join(_ENCODER((" " + line) if lead else line)))
    counts = collections.Counter(tok for line in out for tok in line.split()) if count else None
    return out, nbytes, counts


def _read_chunks(path, leading_space):
    """Yield chunks of (stripped line, needs leading space) from a document-format file."""
    chunk, first_in_doc = [], True
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = " ".join(raw.split())
            if not line:
                first_in_doc = True
                chunk.append(("", False))
            else:
                chunk.append((line, leading_space and not first_in_doc))
                first_in_doc = False
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def encode_file(src, dst, workers, initializer, initargs, leading_space, counts=None):
    size = os.path.getsize(src)
    n = 0
    with multiprocessing.get_context("fork").Pool(workers, initializer, initargs) as pool, open(
        dst, "w", encoding="utf-8"
    ) as out, tqdm(total=size, unit="B", unit_scale=True, desc=f"BPE {os.path.basename(src)}", file=sys.stderr) as bar:
        worker = functools.partial(_encode_chunk, count=counts is not None)
        for lines, nbytes, chunk_counts in pool.imap(worker, _read_chunks(src, leading_space)):
            out.write("".join(line + "\n" for line in lines))
            if chunk_counts:
                counts.update(chunk_counts)
            n += len(lines)
            bar.update(nbytes)
    return n


# --- sentencepiece training ---------------------------------------------------------------
def train_sentencepiece(train_txt, prefix, vocab_size, model_type, workers, max_sentences):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=train_txt,
        model_prefix=prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        num_threads=workers,
        hard_vocab_limit=False,  # small corpora: shrink instead of failing
        byte_fallback=True,  # characters unseen in training become byte pieces, never <unk>
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        minloglevel=2,
    )
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


GPT2_FILE_ARGS = ("encoder_json", "vocab_bpe", "dict")


def add_gpt2_arguments(group, dict_help="the pretrained model's dict.txt (local path)"):
    """The three local files of BART/BioBART's GPT-2 BPE (e.g. from biobart-convert
    hf-to-fairseq); shared by every command that applies that BPE."""
    group.add_argument("--encoder-json", help="GPT-2 encoder.json (local path)")
    group.add_argument("--vocab-bpe", help="GPT-2 vocab.bpe / HF merges.txt (local path)")
    group.add_argument("--dict", help=dict_help)


def add_sentencepiece_arguments(group):
    """Reuse a sentencepiece model or train one of this size; shared like the GPT-2 flags."""
    group.add_argument("--spm-model", help="use this sentencepiece model instead of training one (local path)")
    group.add_argument("--vocab-size", type=int, default=8000,
                       help="vocabulary size of a new sentencepiece model (default: %(default)s)")


def missing_gpt2_arguments(args):
    """The GPT-2 file flags not given, e.g. ['--vocab-bpe', '--dict'] (empty when complete)."""
    return ["--" + n.replace("_", "-") for n in GPT2_FILE_ARGS if not getattr(args, n, None)]


class BpeSetupError(ValueError):
    pass


def prepare_bpe(args, out, spm_train_text, workers, spm_type="bpe", spm_max_sentences=5_000_000):
    """Put the BPE's files into ``out`` and return (worker initializer, its arguments,
    ``bpe.json`` record).  ``args`` carries ``bpe``, ``spm_model``, ``vocab_size`` and the GPT-2
    file flags; ``spm_train_text`` is the text to train sentencepiece on when no ``--spm-model``
    is given (None when there is none).  Raises BpeSetupError with a one-line reason."""
    if args.bpe == "sentencepiece":
        if args.spm_model:
            if not os.path.isfile(args.spm_model):
                raise BpeSetupError(f"{args.spm_model}: no such sentencepiece model")
            shutil.copyfile(args.spm_model, os.path.join(out, "spm.model"))
        elif spm_train_text is None:
            raise BpeSetupError("no training text to learn a sentencepiece model from; pass --spm-model")
        else:
            print(f"[binarize] training sentencepiece ({spm_type}, vocab {args.vocab_size}) on {spm_train_text}",
                  file=sys.stderr)
            train_sentencepiece(spm_train_text, os.path.join(out, "spm"), args.vocab_size, spm_type, workers,
                                spm_max_sentences)
        return _init_spm, (os.path.join(out, "spm.model"),), {"type": "sentencepiece", "model": "spm.model"}
    missing = missing_gpt2_arguments(args)
    if missing:
        raise BpeSetupError("--bpe gpt2 needs " + ", ".join(missing))
    for path in (args.encoder_json, args.vocab_bpe, args.dict):
        if not os.path.isfile(path):
            raise BpeSetupError(f"{path}: no such file")
    shutil.copyfile(args.encoder_json, os.path.join(out, "encoder.json"))
    shutil.copyfile(args.vocab_bpe, os.path.join(out, "vocab.bpe"))
    return _init_gpt2, (args.encoder_json, args.vocab_bpe), {"type": "gpt2", "encoder_json": "encoder.json",
                                                              "vocab_bpe": "vocab.bpe"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="biobart-binarize",
        description="Apply a BPE to document-format text (one sentence per line, blank line between "
        "documents) and binarize it with fairseq-preprocess --only-source for biomed_denoising.",
    )
    p.add_argument("--train", required=True, help="training text (e.g. OUT/train.txt from biobart-prepare-pubmed)")
    p.add_argument("--valid", help="validation text (e.g. OUT/valid.txt); skipped when absent or empty")
    p.add_argument("-o", "--out-dir", required=True, help="destination folder for the binarized data")
    p.add_argument("--bpe", choices=["sentencepiece", "gpt2"], default="sentencepiece", help="which BPE (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for BPE and fairseq-preprocess (default: all cores)")
    g = p.add_argument_group("sentencepiece")
    add_sentencepiece_arguments(g)
    g.add_argument("--spm-type", choices=["bpe", "unigram"], default="bpe", help="sentencepiece algorithm (default: %(default)s)")
    g.add_argument("--spm-max-sentences", type=int, default=5_000_000, help="sentences sampled to train it (default: %(default)s)")
    add_gpt2_arguments(p.add_argument_group("gpt2 (BART / BioBART vocabulary)"))
    p.add_argument("--keep-bpe-text", action="store_true", help="keep the intermediate BPE text in OUT/bpe-text/")
    return p.parse_args(argv)


def fail(msg):
    print(f"biobart-binarize: error: {msg}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    for path in [args.train] + ([args.valid] if args.valid else []):
        if not os.path.isfile(path):
            return fail(f"{path}: no such file")
    if os.path.getsize(args.train) == 0:
        return fail(f"{args.train}: empty training file")
    out = os.path.abspath(args.out_dir)
    tmp = os.path.join(out, "bpe-text")
    os.makedirs(tmp, exist_ok=True)
    workers = max(1, args.workers or 1)
    t0 = time.time()

    splits = [("train", args.train)]
    if args.valid and os.path.getsize(args.valid) > 0:
        splits.append(("valid", args.valid))
    elif args.valid:
        print(f"biobart-binarize: {args.valid} is empty; no valid split written", file=sys.stderr)

    counts = collections.Counter()
    try:
        init, initargs, bpe_info = prepare_bpe(args, out, args.train, workers, args.spm_type, args.spm_max_sentences)
    except BpeSetupError as e:
        return fail(str(e))
    lead = args.bpe == "gpt2"  # a document's later sentences get GPT-2's leading space

    for split, path in splits:
        n = encode_file(path, os.path.join(tmp, split + ".bpe"), workers, init, initargs, lead,
                        counts if split == "train" else None)
        print(f"[binarize] {split}: {n} lines encoded", file=sys.stderr)

    if args.bpe == "sentencepiece":
        dict_path = os.path.join(tmp, "dict.txt")
        write_spm_dict(os.path.join(out, "spm.model"), counts, dict_path)
    else:
        dict_path = args.dict
    if os.path.exists(os.path.join(out, "dict.txt")):
        os.remove(os.path.join(out, "dict.txt"))  # fairseq-preprocess refuses to overwrite it

    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--only-source", "--srcdict", dict_path,
           "--destdir", out, "--workers", str(workers), "--dataset-impl", "mmap",
           "--trainpref", os.path.join(tmp, "train.bpe")]
    if len(splits) > 1:
        cmd += ["--validpref", os.path.join(tmp, "valid.bpe")]
    print("[binarize] " + " ".join(cmd[1:]), file=sys.stderr)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(out, "preprocess.log"), "w") as f:
        f.write(proc.stdout)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        return fail(f"fairseq-preprocess failed (exit {proc.returncode}); see {out}/preprocess.log")

    with open(os.path.join(out, "bpe.json"), "w") as f:
        json.dump(bpe_info, f, indent=2)
    if not args.keep_bpe_text:
        shutil.rmtree(tmp)
    print(f"[binarize] wrote {out} ({args.bpe}) in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
