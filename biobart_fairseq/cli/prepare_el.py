"""biobart-prepare-el: entity-linking corpora -> canonical JSONL/KB -> fairseq model inputs.

Step 1 (always): read the published files of a dataset and write, in ``-o OUT``,
``<split>.jsonl`` (one mention a line: doc_id, text, start, end, mention, cuis) and, when
``--kb`` is given, ``kb.tsv`` (``cui<TAB>name``).  AskAPatient writes ``OUT/fold<i>/``.

Step 2 (with ``--bpe``): the model inputs in ``OUT/bin`` (``OUT/fold<i>/bin``), as GenBioEL:

* source: the lower-cased context, at most ``--max-context-words`` words centred on the
  mention, with ``START`` / ``END`` around the mention;
* target: ``<mention> is`` + the gold concept's name most similar to the mention (TF-IDF
  character n-grams, cosine); ``<split>.prefix_len.npy`` says how many target tokens are the
  prefix (not trained on);
* ``trie.npz`` over the token ids of every KB name + ``</s>``, ``kb_names.tsv`` (name, CUIs,
  ids), ``<split>.meta.jsonl`` (gold CUIs of each sample, in dataset order);
* sentencepiece (trained here, or ``--spm-model``) or GPT-2 BPE (``--encoder-json
  --vocab-bpe --dict``: BART/BioBART's files), then ``fairseq-preprocess``.

``--style genbioel`` (NCBI, BC5CDR) prepares the mentions and the dictionary as the data
behind the paper's Table 4 was prepared (BioSyn's and GenBioEL's scripts: abbreviations
expanded, composite mentions resolved, their normalisation, train/dev mentions added to
the NCBI dictionary; see docs/entity_linking.md); ``--style raw`` (default) links the
mentions as written, with every punctuation mark removed from names.

``--dataset jsonl --input DIR`` runs step 2 on canonical files written before.
Exit status: 0 ok, 2 usage error or unusable input (not UTF-8, empty; file and line
named), 3 written but some records were bad (see OUT/report.json).  Mentions without a
concept (BC5CDR id -1) are counted in the report, not errors.
"""

import argparse
import json
import os
import sys

from tqdm import tqdm

from .. import errors
from ..data import el_formats as F
from ..data.atomic import run_staged
from ..data.bpe import add_gpt2_arguments, add_sentencepiece_arguments, missing_gpt2_arguments
from ..data.el_prepare import Context, kb_from_data, prepare_model_inputs, read_inputs, save_state

PROG = "biobart-prepare-el"


def log(msg):
    tqdm.write(f"[{PROG}] {msg}", file=sys.stderr)


def fail(msg):
    return errors.fail(PROG, msg)  # exit 2, one line (biobart_fairseq/errors.py)


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=["ncbi", "bc5cdr", "medmentions", "cometa", "askapatient", "jsonl"],
                   help="which published format --input is in (jsonl: our own canonical files, for step 2 only)")
    p.add_argument("--input", required=True,
                   help="ncbi: folder with NCBI{train,develop,test}set_corpus.txt; bc5cdr: folder with "
                        "CDR_{Training,Development,Test}Set.PubTator.txt; medmentions: corpus_pubtator.txt[.gz] "
                        "(or its folder); cometa: folder with {train,dev,test}.csv (e.g. splits/stratified_general); "
                        "askapatient: folder with AskAPatient.fold-<i>.{train,validation,test}.txt; jsonl: a folder "
                        "written by this command")
    p.add_argument("-o", "--out-dir", required=True, help="destination folder")
    p.add_argument("--kb", help="knowledge base file (MEDIC/BioSyn 'ids||names', 'cui<TAB>name', or UMLS MRCONSO.RRF); "
                                "written as OUT/kb.tsv; needed for --bpe except for askapatient")
    p.add_argument("--kb-format", choices=["auto", "tsv", "biosyn", "mrconso"], default="auto",
                   help="format of --kb (default: guessed from its first line)")
    p.add_argument("--kb-from-data", action="store_true",
                   help="without --kb: the KB is the (concept, mention) pairs of the dataset itself -- a stand-in "
                        "when the real KB is not at hand (the recipes' SMALL=1 tries), never for results")
    p.add_argument("--limit", type=int, metavar="N",
                   help="keep the first N mentions of each split (quick tries, e.g. the recipes' SMALL=1)")
    p.add_argument("--ncbi-train", choices=["traindev", "train"], default="traindev",
                   help="NCBI training split: traindev = train+dev without composite mentions (BioSyn/GenBioEL, "
                        "default), train = the train file as is")
    p.add_argument("--style", choices=["raw", "genbioel"], default="raw",
                   help="raw (default): mentions as written, names without any punctuation; genbioel (ncbi, "
                        "bc5cdr; what the paper's Table 4 used): BioSyn/GenBioEL's preparation — abbreviations "
                        "expanded (Schwartz & Hearst, offline), composite mentions resolved, their normalisation, "
                        "NCBI train/dev mentions added to the dictionary (docs/entity_linking.md)")
    p.add_argument("--typo-file", help="ncbi --style genbioel: BioSyn's spelling corrections "
                                       "('typo||correction' lines, e.g. ncbi-spell-check.txt)")
    p.add_argument("--split-pmids", help="medmentions: folder with corpus_pubtator_pmids_{trng,dev,test}.txt "
                                         "(default: the folder of --input)")
    p.add_argument("--folds", type=int, default=10, help="askapatient: number of folds (default: %(default)s)")
    g = p.add_argument_group("step 2: model inputs (only with --bpe)")
    g.add_argument("--bpe", choices=["sentencepiece", "gpt2"], help="also write fairseq inputs in OUT/bin with this BPE")
    add_sentencepiece_arguments(g)
    add_gpt2_arguments(g)
    g.add_argument("--max-context-words", type=int, default=384,
                   help="context words kept around the mention (GenBioEL: 384; 128 for MedMentions)")
    g.add_argument("--keep-case", action="store_true", help="do not lower-case KB names and targets")
    g.add_argument("--ambiguous-names", choices=["keep", "fewest"], default=None,
                   help="a name of several concepts: keep it for all, or only for the one with the fewest names "
                        "(default: fewest for bc5cdr --style genbioel, as GenBioEL's BC5CDR KB; keep otherwise)")
    g.add_argument("--workers", type=int, default=1, help="processes for sentencepiece and fairseq-preprocess")
    args = p.parse_args(argv)
    if args.bpe == "gpt2" and missing_gpt2_arguments(args):
        p.error("--bpe gpt2 needs " + ", ".join(missing_gpt2_arguments(args)))
    if args.style == "genbioel" and args.dataset not in ("ncbi", "bc5cdr", "jsonl"):
        p.error("--style genbioel is for ncbi and bc5cdr (the datasets GenBioEL prepared this way)")
    if args.typo_file and not (args.style == "genbioel" and args.dataset == "ncbi"):
        p.error("--typo-file goes with --dataset ncbi --style genbioel")
    args.genbioel_dataset = args.dataset
    return args



def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    return run_staged(PROG, parse_args(argv), prepare, ("report.json", "kb.tsv"))


def prepare(args):
    missing = _missing_input(args)
    if missing:
        return fail(missing)
    os.makedirs(args.out_dir, exist_ok=True)
    ctx = Context(log)
    report = {"dataset": args.dataset, "style": args.style, "mentions": {}, "samples": {}, "kb": {}, "counts": {},
              "bad_records": []}
    try:
        datasets, kb_pairs = read_inputs(args, ctx)
    except (FileNotFoundError, F.UnusableInput) as e:
        return fail(str(e))
    if args.kb_from_data and kb_pairs is None:
        kb_pairs = kb_from_data(datasets)
        log(f"--kb-from-data: {len(kb_pairs)} (concept, mention) pairs of the dataset stand in for a KB")
    if args.limit is not None:
        datasets = {sub: {split: ms[: args.limit] for split, ms in splits.items()} for sub, splits in datasets.items()}
    if args.bpe and kb_pairs is None:
        return fail("--bpe needs a KB: give --kb (or --kb-from-data for a quick try)")
    if args.kb and not kb_pairs:
        return fail(f"{args.kb}: no KB names read (expected lines 'ids||names', 'cui<TAB>name' or MRCONSO.RRF)")
    for sub, splits in datasets.items():
        try:
            write_folder(args, sub, splits, kb_pairs, report, ctx)
        except ValueError as e:
            return fail(str(e))
    return write_report(args, report, ctx)


def _missing_input(args):
    """The message for the first input file that does not exist, else None."""
    if not os.path.exists(args.input):
        return errors.missing(args.input, folder_ok=True)
    for f in (args.kb, args.spm_model, args.encoder_json, args.vocab_bpe, args.dict):
        if f and not os.path.isfile(f):
            return errors.missing(f)
    return None


def write_folder(args, sub, splits, kb_pairs, report, ctx):
    """The canonical files (step 1) and, with --bpe, the model inputs (step 2) of one output
    folder (AskAPatient: one a fold); ValueError: no usable KB names."""
    out = os.path.join(args.out_dir, sub) if sub else args.out_dir
    os.makedirs(out, exist_ok=True)
    for split, mentions in splits.items():
        F.write_jsonl(os.path.join(out, f"{split}.jsonl"), mentions)
        report["mentions"][os.path.join(sub, split) if sub else split] = len(mentions)
    if kb_pairs is not None:
        F.write_kb(os.path.join(out, "kb.tsv"), kb_pairs)
    if args.style == "genbioel":
        save_state(args, out, ctx, splits)
    if args.bpe:
        samples, kb, counts = prepare_model_inputs(args, out, splits, kb_pairs, ctx)
        _report_model_inputs(args, out, report, samples, kb, counts)


def _report_model_inputs(args, out, report, samples, kb, counts):
    # the report names the folder where the output ends up, not the staging one it is written in
    final = getattr(args, "final_out_dir", None)
    shown = final + out[len(args.out_dir):] if final and out.startswith(args.out_dir) else out
    report["samples"].update({f"{shown}:{split}": n for split, n in samples.items()})
    report["kb"][shown] = {"concepts": kb.pop("concepts"), **kb}
    report["counts"].update({f"{shown}:{k}": v for k, v in counts.items()})
    log(f"model inputs in {shown}/bin: {kb['names']} KB names, trie {kb['trie_bytes'] / 2**20:.1f} MiB")


def write_report(args, report, ctx):
    """OUT/report.json and the summary; -> exit status (3 when records were bad)."""
    notes = [b for b in ctx.bad if isinstance(b, (F.RepeatedDocument, F.NoConcept))]
    bad = [b for b in ctx.bad if not isinstance(b, (F.RepeatedDocument, F.NoConcept))]
    no_concept = [b for b in notes if isinstance(b, F.NoConcept)]
    if no_concept:
        ctx.counts["no_concept"] += len(no_concept)
    report["counts"].update(sorted(ctx.counts.items()))
    report["repeated_documents"] = [str(b) for b in notes if isinstance(b, F.RepeatedDocument)]
    report["no_concept_mentions"] = [str(b) for b in no_concept]
    records = errors.BadRecords(PROG)
    for b in bad:
        records.add(b.path, b.line, b.reason)
    report["bad_records"] = records.to_json()
    with open(os.path.join(args.out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    log("mentions: " + ", ".join(f"{k} {v}" for k, v in report["mentions"].items()))
    for r in report["repeated_documents"]:
        log(f"note: {r}")
    if any(k.endswith("no_concept") for k in ctx.counts):
        n = sum(v for k, v in ctx.counts.items() if k.endswith("no_concept"))
        log(f"note: {n} mentions without a concept (id -1) left out (counted in report.json)")
    # the report is named where it ends up, not in the staging folder it is written in
    records.report(os.path.join(getattr(args, "final_out_dir", None) or args.out_dir, "report.json"))
    return records.status()


if __name__ == "__main__":
    sys.exit(main())
