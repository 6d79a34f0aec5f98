"""biobart-link: mentions in context -> top-k concepts, with a trained generative linker.

    biobart-link docs.jsonl --model checkpoints/el_ncbi -o linked.jsonl
    biobart-link corpus.pubtator --model ckpt.pt --data data/el_ncbi/bin --format pubtator -o out.jsonl
    biobart-link docs.jsonl --model ckpt.pt --kb my_kb.tsv --topk 3

Input: JSONL (``{"text": ..., "mentions": [{"start": s, "end": e}, ...]}``, character offsets,
end exclusive; optional "id", "type"), PubTator (the annotation lines are the mentions; their
ids are kept as the input ``id``) or BioC XML/JSON (its annotations).  Output: the same
documents, every mention with its top-k ``concepts`` (``cui``, ``name``, ``score``: the
name's mean log-probability, best first) -- JSONL by default (``-o -``: stdout), or PubTator /
BioC (``--output-format``; PubTator keeps the best CUI only).

Each mention is turned into the model's input by the same functions biobart-prepare-el used
for its training data (the data folder's el_style.json), and decoded as biobart-el-eval
decodes (trie of KB names, GenBioEL's beam): on a prepared split both give the same names.
The KB is the model's own (trie.npz, kb_names.tsv of the data folder) or ``--kb`` (built once,
cached beside the file).  A context the model cannot read whole is narrowed, never cut
silently: the document's "notes" say so.

Exit status: 0 ok; 2 unusable input (missing or unreadable file, a model of another task,
no data folder: one line naming file[:line]); 3 some records were bad (empty lines, offsets
outside the text, text that does not match its offsets, lines that are not UTF-8): they
are skipped, listed as ``FILE:LINE: reason``, the rest is linked.
"""

import argparse
import json
import sys

from .. import errors, progress

PROG = "biobart-link"


def parse_args(argv):
    from ..inference import formats

    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="+", help="input file(s): JSONL, PubTator or BioC XML/JSON")
    p.add_argument("--model", required=True,
                   help="entity-linking checkpoint (.pt) or a folder holding checkpoint_best.pt (else checkpoint_last.pt)")
    p.add_argument("--data", help="the biobart-prepare-el model-input folder (OUT/bin) of the model (default: the "
                                  "checkpoint's folder if it is one, else the folder the model was trained on)")
    p.add_argument("--kb", help="link to this KB instead of the model's own ('ids||names', 'cui<TAB>name' or "
                                "MRCONSO.RRF); its trie is built once and cached in KB.biobart-trie/")
    p.add_argument("--kb-format", choices=["auto", "tsv", "biosyn", "mrconso"], default="auto",
                   help="format of --kb (default: guessed from its first line)")
    p.add_argument("--format", choices=formats.FORMATS, help="input format (default: from the file name)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--output-format", choices=formats.WRITE_FORMATS, default="jsonl",
                   help="output format (default: %(default)s; pubtator keeps the best CUI only)")
    p.add_argument("--types", help="link only mentions of these types (comma-separated, e.g. Disease,Chemical)")
    p.add_argument("--beam", type=int, default=5, help="beam size = names ranked per mention (default: %(default)s)")
    p.add_argument("--topk", type=int, default=5, help="concepts kept per mention, at most --beam (default: %(default)s)")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty of the name score (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="mentions per batch (default: %(default)s)")
    p.add_argument("--gpu", action="store_true", help="decode on CUDA when available (default: CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--report", help="also write the counts, bad records and rate here (JSON)")
    progress.add_argument(p)
    args = p.parse_args(argv)
    if args.topk > args.beam:
        p.error(f"--topk {args.topk} > --beam {args.beam}: the beam ranks at most --beam names")
    return args


def main(argv=None):
    args = parse_args(argv)
    bad = errors.BadRecords(PROG)
    try:
        docs = read_documents(args, bad)
        linker = load_linker(args)
    except errors.Unusable as e:
        bad.show()
        return errors.fail(PROG, e)
    for line in linker.kb_bad_lines:
        bad.add_located(line)
    types = set(args.types.split(",")) if args.types else None
    n = sum(1 for d in docs for e in d.entities if types is None or e.type in types)
    with progress.bar(n, "link", "mention", args.quiet) as bar:
        linker.link(docs, progress=bar, types=types)
    try:
        write(docs, args)
    except OSError as e:
        return errors.fail(PROG, errors.os_error(e))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump({"documents": len(docs), "mentions": n, "bad_records": bad.to_json(), "speed": bar.summary()},
                      f, indent=1)
    bad.report(args.report)
    return bad.status()


def read_documents(args, bad):
    from ..inference import formats

    return formats.read_all(args.input, args.format, bad)


def load_linker(args):
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from ..inference.linker import Linker

    progress.quiet_libraries()

    return Linker.from_path(args.model, data_dir=args.data, kb=args.kb, kb_format=args.kb_format,
                            device="cuda" if args.gpu else "cpu", beam=args.beam, topk=args.topk,
                            batch_size=args.batch_size, lenpen=args.lenpen)


def write(docs, args):
    from ..inference import formats

    formats.write_output(docs, args.output, args.output_format)


if __name__ == "__main__":
    sys.exit(main())
