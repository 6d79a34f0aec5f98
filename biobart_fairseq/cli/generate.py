"""biobart-generate: questions / dialogue histories -> summaries / replies, with a model
fine-tuned by a seq2seq recipe (examples/<dataset>/run.sh), decoded as the recipe decoded its
test set (the settings of its results.json, fairseq's SequenceGenerator).

    biobart-generate questions.txt --model work/meqsum-base -o summaries.jsonl
    biobart-generate dialogues.jsonl --model work/covid_dialog-base/checkpoints/checkpoint_best.pt
    biobart-generate --model work/meqsum-base --text "I have had a cough for 3 weeks. Should I get an x-ray?"
    biobart-generate work/meqsum-base/prep/test.source --model work/meqsum-base --output-format lines

Input (files, '-' for stdin, or --text):
  lines  one text a line, as biobart-prepare-seq2seq writes its .source files: a line break
         inside a text written as the two characters \\n (and a backslash as \\\\), so a
         recipe's PREP/test.source can be given as it is;
  jsonl  one object a line: {"id": ..., "text": "..."} (real line breaks) or, for a dialogue
         history, {"id": ..., "turns": [["Patient", "..."], ["Doctor", "..."], ...]} (or
         [{"speaker": ..., "text": ...}]), formatted "Patient: ...\\nDoctor: ..." as the
         CovidDialog recipe formatted its sources; "id" defaults to the line number.
  (--format auto: jsonl for *.jsonl / *.json, lines otherwise.)

Output (-o, default stdout):
  jsonl  (default) the input record (lines: {"id": LINE, "text": ...}) plus "output" (line
         breaks real), "score" (fairseq-generate's: mean log2-probability of the output
         tokens) and, when the input had to be cut, "notes";
  lines  one output a line, line breaks as \\n, in input order (fairseq-generate's D- texts,
         i.e. the recipe's hyp.txt); a bad input line gets an empty line, so lines stay aligned.

Over-long input is cut as the recipes cut it at training and test time (--truncate-source: the
first max_source_positions - 1 tokens), never silently: the record's "notes" and a line on
stderr say where.

Exit status: 0 ok; 2 unusable input (a missing file, a model of another task, no data folder,
no usable text: one line naming FILE[:LINE]); 3 bad records (empty lines, lines that are not
UTF-8, not JSON, without text): skipped, listed as FILE:LINE: reason, the rest generated.
"""

import argparse
import json
import os
import sys
from dataclasses import asdict

from .. import errors, progress

PROG = "biobart-generate"
CHUNK = 512  # texts read, decoded and written at a time: output appears as it is made


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="*", help="input file(s) ('-' = stdin; default: stdin unless --text is given)")
    p.add_argument("--model", required=True,
                   help="checkpoint, or a folder holding checkpoint_best.pt (a recipe's WORK or WORK/checkpoints)")
    p.add_argument("--data", help="the model's binarized data folder (default: the one it was trained on, or the "
                                  "recipe's WORK/data-bin beside its checkpoints)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT",
                   help="a text to answer given on the command line (real line breaks; repeatable)")
    p.add_argument("--format", choices=["auto", "lines", "jsonl"], default="auto",
                   help="input format (default: jsonl for *.jsonl/*.json, lines otherwise)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--output-format", choices=["jsonl", "lines"], default="jsonl",
                   help="jsonl records (default) or one output a line")
    g = p.add_argument_group("decoding (default: the recipe's, from the results.json beside the checkpoint)")
    g.add_argument("--results", help="take the decoding settings from this results.json")
    g.add_argument("--beam", type=int, help="beam size")
    g.add_argument("--lenpen", type=float, help="length penalty (1.0 = none)")
    g.add_argument("--min-len", type=int, help="fewest output tokens")
    g.add_argument("--max-len-b", type=int, help="most output tokens")
    g.add_argument("--no-repeat-ngram-size", type=int, help="no repeated n-gram of this size (0 = off)")
    p.add_argument("--batch-size", type=int, default=16, help="texts per batch (default: %(default)s)")
    p.add_argument("--gpu", action="store_true", help="decode on CUDA (default: CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--report", help="also write the settings, counts, bad records and rate here (JSON)")
    progress.add_argument(p)
    args = p.parse_args(argv)
    if not args.input and not args.text:
        args.input = ["-"]
    return args


def main(argv=None):
    args = parse_args(argv)
    bad = errors.BadRecords(PROG)
    try:
        items = read_inputs(args, bad)
        if not items:
            raise errors.Unusable(f"{(args.input or ['--text'])[0]}: no usable text")
        generator = load_generator(args)
        out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    except errors.Unusable as e:
        bad.show()
        return errors.fail(PROG, e)
    except OSError as e:
        return errors.fail(PROG, errors.os_error(e))
    try:
        with progress.bar(sum(1 for it in items if it["text"] is not None), "generate", "text", args.quiet) as bar:
            cut = generate(generator, items, out, args.output_format, bar)
    finally:
        if out is not sys.stdout:
            out.close()
    summary = bar.summary()
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump({"checkpoint": os.path.abspath(generator.checkpoint), "settings": asdict(generator.settings),
                       "texts": summary["items"], "cut": cut, "bad_records": bad.to_json(), "speed": summary},
                      f, indent=1)
    if not args.quiet:
        print(f"{PROG}: {summary['items']} text(s) in {summary['seconds']:.1f} s "
              f"({summary['items_per_s']} texts/s; settings: {generator.settings.source})", file=sys.stderr)
    bad.report(args.report)
    return bad.status()


def load_generator(args):
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    progress.quiet_libraries()
    from ..inference.generator import Generator

    overrides = {k: getattr(args, k) for k in ("beam", "lenpen", "min_len", "max_len_b", "no_repeat_ngram_size")
                 if getattr(args, k) is not None}
    return Generator.from_path(args.model, data_dir=args.data, device="cuda" if args.gpu else "cpu",
                               settings=args.results, batch_size=args.batch_size, **overrides)


def generate(generator, items, out, fmt, bar):
    """Decode and write ``items`` chunk by chunk; -> the number of inputs that had to be cut."""
    cut = 0
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        good = [it for it in chunk if it["text"] is not None]
        results = iter(generator.run([it["text"] for it in good], progress=bar))
        for it in chunk:
            g = next(results) if it["text"] is not None else None
            for note in g.notes if g else ():
                bar.write(f"{PROG}: note: {it['where']}: {note}")
                cut += 1
            if g is not None or fmt == "lines":  # jsonl: a bad record is reported, not written
                out.write(format_output(it, g, fmt) + "\n")
        out.flush()
    return cut


def format_output(item, g, fmt):
    from ..data.seq2seq_readers import escape_newlines

    if fmt == "lines":
        return escape_newlines(g.text) if g else ""
    record = dict(item["record"]) if item["record"] is not None else {"id": item["id"], "text": item["text"]}
    record.update(output=g.text, score=round(g.score, 6))
    if g.notes:
        record["notes"] = g.notes
    return json.dumps(record, ensure_ascii=False)


# --- reading ---------------------------------------------------------------------------------------
def read_inputs(args, bad):
    """[{"id", "text" (str, turns, or None for a bad line kept for alignment), "record", "where"}]."""
    items = [{"id": f"text-{i}", "text": t, "record": None, "where": f"--text {i}"}
             for i, t in enumerate(args.text, start=1) if _usable(t, f"--text {i}", bad)]
    for path in args.input:
        fmt = args.format
        if fmt == "auto":
            fmt = "jsonl" if path.lower().endswith((".jsonl", ".json")) else "lines"
        items += _read_file(path, fmt, bad)
    return items if any(it["text"] is not None for it in items) else []


def _usable(text, where, bad):
    if not text.strip():
        bad.add(where, None, "empty text")
        return False
    return True


def _raw_lines(path):
    """(line number, text or None, reason) of a file read as bytes (stdin: '-')."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for number, raw in enumerate(stream, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n"), None
            except UnicodeDecodeError as e:
                yield number, None, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _read_file(path, fmt, bad):
    from ..data.seq2seq_readers import unescape_newlines

    name = "<stdin>" if path == "-" else path
    items = []
    try:
        for number, line, reason in _raw_lines(path):
            text, record = None, None
            if reason is None and not line.strip():
                reason = "empty line"
            elif reason is None and fmt == "jsonl":
                record, text, reason = _json_record(line)
            elif reason is None:
                text = unescape_newlines(line)
            if reason is not None:
                bad.add(name, number, reason)
                text, record = None, None
            if text is not None or fmt == "lines":  # a bad line of lines input keeps its (empty) output line
                rid = record.get("id", number) if record is not None else number
                items.append({"id": rid, "text": text, "record": record, "where": f"{name}:{number}"})
    except OSError as e:
        raise errors.Unusable(errors.os_error(e)) from None
    return items


def _json_record(line):
    """-> (record, text or turns, reason)."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        return None, None, f"not valid JSON ({e.msg})"
    if not isinstance(rec, dict):
        return None, None, "not a JSON object"
    if isinstance(rec.get("text"), str) and rec["text"].strip():
        return rec, rec["text"], None
    turns = rec.get("turns")
    if isinstance(turns, list) and turns:
        pairs = [(t.get("speaker"), t.get("text")) if isinstance(t, dict) else tuple(t) if isinstance(t, list) else ()
                 for t in turns]
        if all(len(p) == 2 and all(isinstance(x, str) and x.strip() for x in p) for p in pairs):
            return rec, pairs, None
        return None, None, "'turns' must be [speaker, text] pairs (or {\"speaker\", \"text\"}) with text"
    return None, None, "no 'text' (a non-empty string) or 'turns'"


if __name__ == "__main__":
    sys.exit(main())
