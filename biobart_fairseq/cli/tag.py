"""biobart-tag: raw text -> named entities with character offsets, with a trained BARTNER model.

    biobart-tag abstracts.txt --model checkpoints/ner_genia -o tagged.jsonl
    biobart-tag corpus.pubtator --model ckpt.pt --output-format pubtator -o tagged.pubtator
    biobart-tag docs.bioc.xml --model ckpt.pt --data data-ner/genia --output-format bioc-xml -o out.xml

Input: plain text (one document per block of non-blank lines; ``--format text-file``: the
whole file is one document), JSONL (``{"id": ..., "text": ...}``), PubTator (title + " " +
abstract), BioC XML/JSON or PubMed XML; the format is read from the file name unless
``--format`` gives it.  Entities already in the input (e.g. gold annotations) are replaced by
the model's, unless ``--keep-input-entities``.

Each passage is split into sentences by the project's splitter, each sentence into words as
the NER corpora tokenise them, and the words go through the same encoding and decoding as
``biobart-ner-score --checkpoint`` (on a prepared split both find the same entities).  Output:
the documents with their entities -- ``start``/``end`` character offsets (end exclusive),
``text``, ``type``, and for a discontinuous entity its ``fragments``; nested entities are
separate, overlapping entities.  JSONL by default (``-o -``: stdout), or PubTator / BioC
(``--output-format``; PubTator writes each fragment of a discontinuous entity as a line).
A sentence longer than the model's positions after BPE is tagged in parts, never cut: the
document's ``notes`` say where.

Exit status: 0 ok; 2 unusable input (a missing or unreadable file, a checkpoint that is not
an NER model, no data folder: one line naming file[:line]); 3 some records were bad (empty
documents, lines that are not UTF-8, ...): they are skipped, listed as ``FILE:LINE: reason``,
the rest is tagged.
"""

import argparse
import json
import sys

from .. import errors, progress

PROG = "biobart-tag"


def parse_args(argv):
    from ..inference import formats

    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="+", help="input file(s): plain text, JSONL, PubTator, BioC XML/JSON or PubMed XML")
    p.add_argument("--model", required=True,
                   help="NER checkpoint (a bartner_ner model, .pt) or a folder holding checkpoint_best.pt")
    p.add_argument("--data", help="the model's biobart-prepare-ner folder (ner.json, dict.txt, bpe.json; default: "
                                  "the folder the model was trained on)")
    p.add_argument("--format", choices=formats.FORMATS, help="input format (default: from the file name)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--output-format", choices=formats.WRITE_FORMATS, default="jsonl",
                   help="output format (default: %(default)s)")
    p.add_argument("--keep-input-entities", action="store_true",
                   help="keep the entities of the input beside the predicted ones (default: replace them)")
    p.add_argument("--beam", type=int, help="beam size (default: the model's validation beam, --eval-beam)")
    p.add_argument("--max-len-a", type=float, help="output length limit, as biobart-ner-score's (default: the "
                                                   "model's training setting)")
    p.add_argument("--max-len-b", type=int, help="see --max-len-a (default: the model's training setting)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per decoding batch (default: %(default)s)")
    p.add_argument("--gpu", action="store_true", help="decode on CUDA when available (default: CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--report", help="also write the counts, bad records, notes and rate here (JSON)")
    progress.add_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    progress.quiet_libraries()
    bad = errors.BadRecords(PROG)
    try:
        docs = read_documents(args, bad)
        tagger = load_tagger(args)
    except errors.Unusable as e:
        bad.show()
        return errors.fail(PROG, e)
    if not args.keep_input_entities:
        for doc in docs:
            doc.entities = []
    inputs = tagger.inputs(docs)
    with progress.bar(len(inputs), "tag", "sentence", args.quiet) as bar:
        tagger.tag(docs, progress=bar, inputs=inputs)
    try:
        write(docs, args)
    except OSError as e:
        return errors.fail(PROG, errors.os_error(e))
    counts = {"documents": len(docs), "sentences": len(inputs), "entities": sum(len(d.entities) for d in docs),
              "notes": sum(len(d.notes) for d in docs)}
    print(f"[tag] {counts['documents']} documents, {counts['sentences']} sentences, {counts['entities']} entities "
          f"({bar.summary()['items_per_s']} sentences/s)", file=sys.stderr)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump({**counts, "bad_records": bad.to_json(), "speed": bar.summary()}, f, indent=1)
    bad.report(args.report)
    return bad.status()


def read_documents(args, bad):
    from ..inference import formats

    return formats.read_all(args.input, args.format, bad)


def load_tagger(args):
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from ..inference.tagger import Tagger

    return Tagger.from_path(args.model, data_dir=args.data, device="cuda" if args.gpu and torch.cuda.is_available()
                            else "cpu", beam=args.beam, batch_size=args.batch_size, max_len_a=args.max_len_a,
                            max_len_b=args.max_len_b)


def write(docs, args):
    from ..inference import formats

    formats.write_output(docs, args.output, args.output_format)


if __name__ == "__main__":
    sys.exit(main())
