"""biobart-annotate: documents -> named entities (NER) -> concepts (linking), at PubMed scale.

    biobart-annotate pubmed25n*.xml.gz --ner ckpt/ner_ncbi --link Disease=ckpt/el_ncbi -o annotated/
    biobart-annotate abstracts.txt --ner ckpt.pt --link Chemical=el_bc5cdr --link Disease=el_ncbi \\
        --output-format bioc-xml -o out/ --workers 8
    sbatch --array=0-99 --wrap 'biobart-annotate pubmed/*.xml.gz --ner ... --device cuda \\
        --shard $SLURM_ARRAY_TASK_ID/100 --shard-by file -o annotated/'

Input: plain text (a document per block of non-blank lines), JSONL, PubTator, BioC XML/JSON or
PubMed XML (title + abstract), the format read from each file name unless --format gives it.
Each document goes through the NER model; each entity whose type has a linking model (--link
TYPE=CHECKPOINT; no TYPE=: every entity) gets the linker's top-k concepts.  Entities already in
the input are replaced by the model's unless --keep-input-entities.

Output: OUT/part-000000.EXT, part-000001.EXT, ... (--chunk-size documents each, in input order;
with --shard I/N: OUT/shard-I-of-N.part-...), and OUT/report.json (shard-I-of-N.report.json):
counts, bad records, the measured rate (documents/s).  PubTator keeps the best concept's CUI
per entity; BioC and JSONL keep the top-k with names and scores.

Resuming: after a crash, Ctrl-C or SIGKILL run the same command again: finished chunks are
kept, the others annotated, and the output is byte-identical to that of an uninterrupted run.

Sharding without coordination: --shard I/N makes this job the I-th of N (0 <= I < N).  With
--shard-by document (default) document i of the inputs (all files counted in order) is job
i mod N's: every job reads all inputs, shares are equal even for one file.  With --shard-by
file, input file j is job j mod N's and each job reads only its own files (many PubMed files).

Exit status: 0 ok; 2 unusable input or model (one line naming file[:line]); 3 some records
were bad (skipped, each named 'FILE:LINE: reason'; the rest annotated).
"""

import argparse
import os
import sys

from .. import errors, progress

PROG = "biobart-annotate"


def _shard(text):
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give I/N, e.g. 3/8") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= I < N")
    return i, n


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def build_parser():
    from ..inference import formats

    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="input files: plain text, JSONL, PubTator, BioC XML/JSON or PubMed XML (.xml, .xml.gz)")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT",
                   help="output folder (created; a resumed or sharded run uses the same one)")
    p.add_argument("--ner", required=True, metavar="CHECKPOINT",
                   help="NER model: a bartner checkpoint (.pt) or a folder holding checkpoint_best.pt")
    p.add_argument("--ner-data", metavar="DIR",
                   help="the NER model's biobart-prepare-ner folder (default: the one it was trained on)")
    p.add_argument("--link", action="append", default=[], metavar="[TYPE[,TYPE]=]CHECKPOINT",
                   help="linking model for entities of TYPE (repeat for other types, e.g. --link Disease=el_ncbi "
                        "--link Chemical=el_bc5cdr); without TYPE= it links every entity. Its data folder and KB "
                        "are found next to the checkpoint (see biobart-link). Default: no linking")
    p.add_argument("--format", choices=formats.FORMATS, help="input format (default: from each file name)")
    p.add_argument("--output-format", choices=formats.WRITE_FORMATS, default="pubtator",
                   help="output format (default: %(default)s)")
    p.add_argument("--keep-input-entities", action="store_true",
                   help="keep the input's entities beside the predicted ones (default: replaced)")
    p.add_argument("--chunk-size", type=_positive, default=256, metavar="DOCS",
                   help="documents per output file, the unit of resuming and of a worker's task "
                        "(default: %(default)s)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                   help="this job is job I of N (0-based), e.g. $SLURM_ARRAY_TASK_ID/100 (default: 0/1)")
    p.add_argument("--shard-by", choices=("document", "file"), default="document",
                   help="what is dealt out to the N jobs: document i to job i mod N, or file j to job j mod N "
                        "(default: %(default)s)")
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="CPU processes, each loading the models once and annotating whole chunks (default: 1; "
                        "the output does not depend on it). With --device cuda: 1")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--batch-size", type=_positive, default=32,
                   help="sentences (NER) / mentions (linking) per decoding batch (default: %(default)s)")
    p.add_argument("--beam", type=_positive, help="NER beam (default: the model's validation beam)")
    p.add_argument("--link-beam", type=_positive, default=5, help="linking beam (default: %(default)s)")
    p.add_argument("--topk", type=_positive, default=5, help="concepts kept per entity (default: %(default)s)")
    progress.add_argument(p)
    return p


def config(args):
    from ..inference import annotate as A

    links = A.parse_links(args.link)
    for path in [args.ner] + [path for _, path in links]:
        if not os.path.exists(path):
            raise errors.Unusable(errors.missing(path, folder_ok=True))
    if args.device != "cpu" and args.workers > 1:
        raise errors.Unusable(f"--workers {args.workers} with --device {args.device}: one process decodes on a GPU")
    cfg = A.RunConfig(inputs=args.inputs, out_dir=args.output_dir, input_format=args.format,
                      output_format=args.output_format, chunk_size=args.chunk_size, shard=args.shard,
                      shard_by=args.shard_by, workers=args.workers, keep_input_entities=args.keep_input_entities,
                      quiet=args.quiet)
    model_args = dict(ner=args.ner, links=links, ner_data=args.ner_data, device=args.device,
                      batch_size=args.batch_size, beam=args.beam, link_beam=args.link_beam, topk=args.topk)
    cfg.models = {"settings": {k: v for k, v in model_args.items() if k not in ("device",)},
                  "files": A.model_identity(args.ner, *[path for _, path in links])}
    return cfg, model_args


def main(argv=None, annotator=None):
    """``annotator``: an :class:`~biobart_fairseq.inference.annotate.Annotator` to use instead of
    loading --ner / --link (for tests and the Python API; --ner is then only recorded)."""
    from ..data.atomic import interrupted
    from ..inference import annotate as A

    args = build_parser().parse_args(argv)
    progress.quiet_libraries()
    bad = errors.BadRecords(PROG)
    try:
        cfg, model_args = config(args)
        report = A.run(cfg, annotator=annotator, annotator_args=model_args, bad=bad)
    except errors.Unusable as e:
        bad.show()
        return errors.fail(PROG, e)
    except KeyboardInterrupt:
        return interrupted(PROG, "finished chunks are kept: run the same command again to resume")
    bad.report(os.path.join(args.output_dir, f"{cfg.prefix}report.json"))
    speed = report["speed"]
    rate = f", {speed['items_per_s']} documents/s" if speed["items_per_s"] else ""
    print(f"{PROG}: {report['documents']} documents ({report['chunks_resumed']} of {report['chunks']} chunks "
          f"resumed), {report['entities']} entities, {report['linked']} linked{rate} -> {args.output_dir}",
          file=sys.stderr)
    return bad.status()


if __name__ == "__main__":
    sys.exit(main())
