"""``biobart-prepare-ner``: published NER formats -> a data folder for the ``bartner_ner`` task.

::

    biobart-prepare-ner --format genia --input genia/train.jsonlines genia/dev.jsonlines genia/test.jsonlines \\
        -o data-ner/genia --target-type span --bpe gpt2 --encoder-json bart/encoder.json \\
        --vocab-bpe bart/vocab.bpe --dict bart/dict.txt --check

Writes, in ``OUT``:

* ``<input stem>.jsonl`` per input, in the canonical form (``tokens`` + ``entities`` with
  ``[start, end)`` spans); name the inputs ``train``/``dev``/``test`` for the task's splits;
* ``ner.json``: the entity types in index order (types already listed there keep their place,
  so folders prepared split by split stay consistent) and the target type;
* with a BPE: ``dict.txt``, ``bpe.json`` and the BPE files (the task reads them from ``OUT``).

``--check`` encodes every sentence's entities into BARTNER targets and decodes them back,
counting, per input, entities that do not come back.  Entities identical (same type and
words) to another of the same sentence come back once and are counted apart as duplicates;
entities cut by ``--max-source-positions`` are counted apart as truncated.

Fragments are kept as written (sorted by start), as BARTNER reads them; entities whose
fragments overlap or touch are counted and reported.  Input must be UTF-8; a Dai sentence line
must separate words by single spaces (BARTNER's split); a ``jsonl`` record needs ``entities``.
A bad record (a sentence, a Dai block, a GENIA line) is skipped, named on stderr as
``FILE:LINE: reason``, counted and listed in ``OUT/report.json``.

Exit status (biobart_fairseq/errors.py): 0 written (and, with ``--check``, every entity
round-trips); 3 written from the usable records, some records were bad; 1 written, no bad
record, but some entities do not round-trip; 2 bad arguments or an unusable input (missing,
not UTF-8, empty, no usable sentence: nothing written; the message names the file and line).
"""

import argparse
import json
import os
import shutil
import sys

from .. import errors
from ..data import ner_formats
from ..data.atomic import run_staged
from ..data import bpe
from ..data.bpe import add_gpt2_arguments, add_sentencepiece_arguments, missing_gpt2_arguments
from ..data.ner_formats import NerFormatError, atomic_write_text, entity_key
from ..data.ner_targets import TARGET_TYPES, decode_target


PROG = "biobart-prepare-ner"


class Unusable(Exception):
    """An input or argument the command cannot use: exit 2 with this one-line message."""


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__.split("\n\n")[0].strip("`: "),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=sorted(ner_formats.READERS),
                   help="input format: dai = 3-line blocks of Dai et al. 2020 (CADEC, ShARe13/14), genia = GENIA "
                        "JSON lines (5 coarse types of Lin et al. 2019), jsonl = canonical NER JSONL")
    p.add_argument("--input", required=True, nargs="+", help="input files; each gives OUT/<stem>.jsonl")
    p.add_argument("-o", "--out-dir", required=True, help="destination data folder")
    p.add_argument("--target-type", choices=TARGET_TYPES, default="word",
                   help="BARTNER target type recorded in ner.json and used by --check (default: %(default)s, the paper's)")
    p.add_argument("--check", action="store_true",
                   help="decode every target back and report entities that do not round-trip (needs a BPE)")
    p.add_argument("--max-source-positions", type=int, default=1024,
                   help="longest source in BPE tokens incl. <s> and </s>, as the task's flag (default: %(default)s)")
    g = p.add_argument_group("BPE (copied into OUT for the task)")
    g.add_argument("--bpe", choices=["gpt2", "sentencepiece"], help="BPE of the model to fine-tune")
    g.add_argument("--bpe-dir", help="take dict.txt, bpe.json and its files from this folder (e.g. biobart-binarize output)")
    add_gpt2_arguments(g, dict_help="the model's dict.txt (for sentencepiece: made from the model when absent)")
    add_sentencepiece_arguments(g)  # as biobart-binarize / -prepare-el: reuse --spm-model or train one on the inputs
    return p.parse_args(argv)


def say(msg):
    print(f"[prepare-ner] {msg}", file=sys.stderr)


def bpe_files(args):
    """(record of the BPE to install in OUT, the dict.txt to copy or None), from the BPE arguments
    (None, None: no BPE).  The files themselves are checked and copied by data/bpe.py."""
    if args.bpe_dir:
        return bpe.read_info(os.path.join(args.bpe_dir, "bpe.json")), os.path.join(args.bpe_dir, "dict.txt")
    if args.bpe == "gpt2":
        if missing_gpt2_arguments(args):
            raise Unusable("--bpe gpt2 needs " + ", ".join(missing_gpt2_arguments(args)))
        return {"type": "gpt2", "encoder_json": args.encoder_json, "vocab_bpe": args.vocab_bpe}, args.dict
    if args.bpe == "sentencepiece":
        return {"type": "sentencepiece", "model": args.spm_model}, args.dict  # model None: trained in prepare()
    return None, None


def read_notes(st):
    """What the reader counted, as a sentence tail for the report line."""
    notes = []
    if st.get("dropped_types"):
        notes.append(f"{st['dropped_types']} outside the 5 GENIA types dropped")
    if st.get("overlapping_fragments"):
        notes.append(f"{st['overlapping_fragments']} with overlapping fragments, kept as written (BARTNER's "
                     "targets then repeat pointers: no decoder output can match them)")
    if st.get("touching_fragments"):
        notes.append(f"{st['touching_fragments']} with touching fragments, kept as written")
    return f" ({'; '.join(notes)})" if notes else ""


def check_round_trip(sentences, encode_word, dictionary, types, target_type, max_source_positions):
    """Counts of entities that come back / do not come back through encode + decode."""
    from ..data.ner_dataset import encode_sentence

    type_index = {t: i for i, t in enumerate(types)}
    counts = {"sentences": len(sentences), "entities": 0, "round_trip": 0, "duplicates": 0,
              "truncated": 0, "not_round_trip": 0, "spurious": 0}
    examples = []
    for n, sent in enumerate(sentences):
        ex = encode_sentence(sent, encode_word, dictionary, type_index, target_type, max_source_positions)
        decoded = {entity_key(e) for e in decode_target(ex["target"].tolist(), ex["wp"], types, target_type)}
        seen = set()
        counts["entities"] += len(sent["entities"])
        counts["truncated"] += ex["truncated_entities"]
        kept = len(ex["wp"].first)  # words that fit in the source
        for e in sent["entities"]:
            key = entity_key(e)
            if key in seen:
                counts["duplicates"] += 1
            elif max(b for _, b in e["spans"]) > kept:
                pass  # counted as truncated
            elif key in decoded:
                counts["round_trip"] += 1
            else:
                counts["not_round_trip"] += 1
                if len(examples) < 5:
                    examples.append({"sentence": n, "entity": e})
            seen.add(key)
        counts["spurious"] += len(decoded - seen)
    counts["examples"] = examples
    return counts


def main(argv=None):
    # OUT is written as OUT.incomplete (a copy of OUT: inputs of earlier runs stay) and replaces
    # OUT only when complete (data/atomic.py); status 1 = written, --check found entities that
    # do not round-trip; 3 = written, some records were bad
    return run_staged(PROG, parse_args(argv), prepare, ("ner.json",), ok=(0, 1, 3), carry_over=True)


def prepare(args):
    # everything is read and checked first: an unusable input stops the run before anything is written
    records = errors.BadRecords(PROG)
    try:
        data, stats, bad = read_inputs(args, records)
        info, dict_src = checked_bpe_files(args)
        os.makedirs(args.out_dir, exist_ok=True)
        types = entity_types(args.out_dir, data)
        install_bpe(args, info, dict_src, data)
    except Unusable as e:
        records.show()  # the bad records the message may point to
        return errors.fail(PROG, str(e))
    write_outputs(args, data, stats, types)
    write_report(args, data, bad, records)
    not_round_trip = args.check and check(args, data, stats, types)
    records.report(os.path.join(args.final_out_dir, "report.json"))
    if records:
        return records.status()
    return 1 if not_round_trip else errors.EXIT_OK


def read_inputs(args, records):
    """-> ({stem: sentences}, {stem: reader counts}, {stem: bad records}); each bad record is
    also added to ``records``.  Unusable: a missing file, a repeated stem, an unusable file."""
    data, stats, bad = {}, {}, {}
    for path in args.input:
        if not os.path.isfile(path):
            raise Unusable(errors.missing(path))
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in data:
            raise Unusable(f"{path}: a second input with stem {stem!r} would overwrite OUT/{stem}.jsonl")
        stats[stem], bad[stem] = {}, []
        try:
            data[stem] = ner_formats.read(path, args.format, stats[stem], bad=bad[stem])
        except NerFormatError as e:
            raise Unusable(str(e)) from None
        for record in bad[stem]:
            records.add_located(record)  # the readers write "FILE:LINE: reason"
        if not data[stem]:
            raise Unusable(f"{path}: no usable sentence ({len(bad[stem])} bad record(s), named above)")
    return data, stats, bad


def checked_bpe_files(args):
    """:func:`bpe_files`, its files checked to exist."""
    try:
        info, dict_src = bpe_files(args)
    except (ValueError, OSError) as e:
        raise Unusable(str(e)) from None
    if args.check and info is None:
        raise Unusable("--check needs the model's BPE (--bpe ... or --bpe-dir)")
    for src in [info[k] for k in bpe.FILES[info["type"]]] + [dict_src] if info else []:
        if src and not os.path.isfile(src):
            raise Unusable(errors.missing(src))
    return info, dict_src


def entity_types(out, data):
    """The types of ``OUT/ner.json`` in their order, then the new ones of ``data``, sorted."""
    types = []
    meta_path = os.path.join(out, "ner.json")
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            types = json.load(f).get("types", [])
    return types + sorted({e["type"] for sents in data.values() for s in sents for e in s["entities"]} - set(types))


def install_bpe(args, info, dict_src, data):
    """The BPE's files, ``bpe.json`` and ``dict.txt`` into OUT; a sentencepiece model without
    ``--spm-model`` is trained on the words of every input."""
    if not info:
        return
    out = args.out_dir
    if not info.get("model", True):
        info = _train_sentencepiece(args, out, data)
    installed = bpe.copy(info, out)
    tmp = os.path.join(out, ".dict.txt.part")
    if dict_src:
        if os.path.abspath(dict_src) != os.path.abspath(os.path.join(out, "dict.txt")):
            shutil.copyfile(dict_src, tmp)
            os.replace(tmp, os.path.join(out, "dict.txt"))
    else:  # sentencepiece without a dict: every piece of the model
        bpe.write_spm_dict(installed["model"], {}, tmp)
        os.replace(tmp, os.path.join(out, "dict.txt"))


def _train_sentencepiece(args, out, data):
    text = os.path.join(out, ".spm-train.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.writelines(" ".join(s["tokens"]) + "\n" for sents in data.values() for s in sents)
    try:
        return bpe.setup_from_args(args, out, text, log=say)
    except bpe.BpeError as e:  # name the inputs, not the temporary file
        raise Unusable(str(e).replace(text, "the words of " + ", ".join(args.input))) from None
    finally:
        os.remove(text)


def write_outputs(args, data, stats, types):
    out = args.out_dir
    for stem, sents in data.items():
        ner_formats.write(os.path.join(out, f"{stem}.jsonl"), sents, "jsonl")
        n_ent = sum(len(s["entities"]) for s in sents)
        say(f"{stem}: {len(sents)} sentences, {n_ent} entities" + read_notes(stats[stem]))
    atomic_write_text(os.path.join(out, "ner.json"), json.dumps(
        {"types": types, "target_type": args.target_type, "format": args.format}, indent=2) + "\n")


def write_report(args, data, bad, records):
    """``OUT/report.json``: per input, the sentences written and the bad records skipped."""
    report = {"format": args.format, "inputs": {stem: {"sentences": len(sents), "bad_records": len(bad[stem])}
                                                for stem, sents in data.items()},
              "bad_records": records.to_json()}
    atomic_write_text(os.path.join(args.out_dir, "report.json"), json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def check(args, data, stats, types):
    """``--check``: ``check.<target type>.json`` and a summary; -> whether an entity does not round-trip."""
    from fairseq.data import Dictionary

    from ..data.ner_dataset import word_encoder

    out = args.out_dir
    dictionary = Dictionary.load(os.path.join(out, "dict.txt"))
    info = bpe.read_info(os.path.join(out, "bpe.json"))
    encode_word = word_encoder(bpe.build(info), info["type"], dictionary)
    report, bad = {}, 0
    for stem, sents in data.items():
        c = check_round_trip(sents, encode_word, dictionary, types, args.target_type, args.max_source_positions)
        c.update({k: stats[stem].get(k, 0) for k in ("overlapping_fragments", "touching_fragments")})
        report[stem] = c
        bad += c["not_round_trip"] + c["spurious"]
        say(f"check {stem} ({args.target_type}): {c['round_trip']}/{c['entities']} entities round-trip, "
            f"{c['not_round_trip']} do not, {c['duplicates']} duplicates (same type and words as another entity of "
            f"the sentence: one target tuple), {c['truncated']} cut by --max-source-positions")
    atomic_write_text(os.path.join(out, f"check.{args.target_type}.json"), json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: {x: v for x, v in c.items() if x != "examples"} for k, c in report.items()}))
    return bad > 0


if __name__ == "__main__":
    sys.exit(main())
