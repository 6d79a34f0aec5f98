"""biobart-prepare-seq2seq: the paper's dialogue / summarization datasets -> parallel text.

Writes ``OUT/{train,valid,test}.{source,target}`` (one example per line, whitespace
normalised; a newline inside an example is written as the two characters ``\\n`` and a
backslash as ``\\\\`` -- ``biobart_fairseq.data.seq2seq_readers.unescape_newlines`` undoes it,
and ``biobart-score`` does so by default) and ``OUT/stats.json``.  Records that cannot be used
(missing fields, empty text) are skipped, counted and reported as ``FILE:LINE: reason``
(``FILE:row 12`` in a spreadsheet, a JSON record by its key; biobart_fairseq/errors.py) on
stderr and in stats.json; the exit status is then 3, as for the other preparation commands.
"""

import argparse
import json
import os
import sys
import time

from .. import errors as E
from ..data import seq2seq_readers as R
from ..data.atomic import run_staged

PROG = "biobart-prepare-seq2seq"

EXPECTED = {
    "covid_dialog": "COVID-Dialogue-Dataset-English.txt (github.com/UCSD-AI4H/COVID-Dialogue)",
    "icliniq": "MedDialog-EN iCliniq dialogue .txt file(s) in the id=/Description/Dialogue format",
    "healthcaremagic": "MedDialog-EN HealthCareMagic .txt file(s) or their folder",
    "meqsum": "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx (github.com/abachaa/MeQSum)",
    "mediqa_qs": "MeQSum .xlsx (train) + MEDIQA2021-Task1-*ValidationSet*.xlsx + *TestSet*.xlsx (github.com/abachaa/MEDIQA2021 Task1)",
    "mediqa_mas": "MEDIQA2021 Task2 Validation/ and Test/ folders (questions, summaries, answers .xlsx) "
                  "+ optionally question_driven_answer_summarization_primary_dataset.json (MEDIQA-AnS, train)",
    "mediqa_ans": "bioasq_abs2summ_training_data_with_question.json (train), medinfo_section2answer_validation_data_with_question.json "
                  "(valid), question_driven_answer_summarization_primary_dataset.json (test)",
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG,
        description="Turn a BioBART fine-tuning dataset, in the format its authors publish it, into "
        "{train,valid,test}.{source,target} + stats.json for biobart-binarize-seq2seq.",
        epilog="Expected inputs per dataset:\n" + "\n".join(f"  {k}: {v}" for k, v in EXPECTED.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, choices=sorted(R.READERS), help="which dataset the inputs are")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="input files or folders (searched recursively). Each file's role (train/valid/test ...) is "
                   "recognised from its upstream name; force one with ROLE=PATH, e.g. train=my_meqsum.xlsx")
    p.add_argument("-o", "--out-dir", required=True, help="folder for the {split}.source/.target files and stats.json")
    p.add_argument("--newlines", choices=["escape", "space"], default="escape",
                   help="newlines inside an example: 'escape' writes \\n (backslash as \\\\), 'space' joins lines "
                   "with a space as BioBART's own scripts did (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None,
                   help="shuffle seed for datasets split here (covid_dialog: 11111 as upstream; icliniq / "
                   "healthcaremagic: 1)")
    p.add_argument("--mas-summary", choices=["abstractive", "extractive"], default="abstractive",
                   help="mediqa_mas: which reference summaries to use for valid/test (default: %(default)s)")
    p.add_argument("--ans-test-source", choices=["article", "section"], default="article",
                   help="mediqa_ans test input: the full page ('article', the paper's 'Pages') or the answer "
                   "section (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="keep only the first N examples of each split (smoke tests)")
    p.add_argument("--max-problems-shown", type=int, default=20, help="bad records printed to stderr (all are in stats.json)")
    return p.parse_args(argv)


def _files(path):
    if os.path.isdir(path):
        for root, _, names in sorted(os.walk(path)):
            for n in sorted(names):
                if not n.startswith("."):
                    yield os.path.join(root, n)
    else:
        yield path


def collect_inputs(dataset, specs, mas_summary):
    """{role: [paths]} from --input; raises ValueError naming any file that fits no role."""
    roles = {}
    for spec in specs:
        role = None
        if "=" in spec and not os.path.exists(spec):
            role, spec = spec.split("=", 1)
        if not os.path.exists(spec):
            raise ValueError(f"{spec}: no such file or folder")
        for path in _files(spec):
            r = role or R.classify(dataset, path, mas_summary)
            if r is None:
                if os.path.isdir(spec):
                    continue  # folders may hold README/SOURCE files
                raise ValueError(f"{path}: not an input of {dataset}; expected {EXPECTED[dataset]}")
            if r != "ignored":
                roles.setdefault(r, []).append(path)
    if not roles:
        raise ValueError(f"no input files for {dataset}; expected {EXPECTED[dataset]}")
    return roles


def main(argv=None):
    # OUT is written as OUT.incomplete and replaces OUT only when complete (data/atomic.py)
    return run_staged(PROG, parse_args(argv), prepare, ("stats.json",))


def prepare(args):
    t0 = time.time()
    problems = R.Problems(PROG, shown=args.max_problems_shown)
    try:
        inputs = collect_inputs(args.dataset, args.input, args.mas_summary)
        splits = read_splits(args, inputs, problems)
    except (ValueError, OSError) as e:
        return E.fail(PROG, str(e))
    os.makedirs(args.out_dir, exist_ok=True)
    counts = R.write_splits(args.out_dir, splits, args.newlines, args.limit)
    stats = write_stats(args, inputs, counts, problems)
    summarise(args, stats, problems, time.time() - t0)
    return problems.status()


def read_splits(args, inputs, problems):
    """{split: [Example]} by the dataset's reader; its bad records go to ``problems``."""
    kwargs = {"ans_test_source": args.ans_test_source}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    return R.READERS[args.dataset](inputs, problems, **kwargs)


def write_stats(args, inputs, counts, problems):
    """``OUT/stats.json``: inputs, counts against Table 1, bad records and filters."""
    table = R.TABLE1[args.dataset]
    stats = {
        "dataset": args.dataset,
        "inputs": {k: [os.path.abspath(p) for p in v] for k, v in sorted(inputs.items())},
        "counts": counts,
        "table1": dict(zip(R.SPLITS, table)),
        "missing_splits": [s for s, n in zip(R.SPLITS, table) if n is not None and s not in counts],
        "newlines": args.newlines,
        "skipped": len(problems),
        "filtered": problems.filtered,
        "bad_records": problems.to_json(),
    }
    with open(os.path.join(args.out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2)
    return stats


def summarise(args, stats, problems, seconds):
    """Counts against Table 1, filters, then the bad records (errors.BadRecords' one form)."""
    def say(msg):
        print(f"[prepare-seq2seq] {msg}", file=sys.stderr)

    for why, n in problems.filtered.items():
        say(f"filtered {n}: {why}")
    for split in R.SPLITS:
        paper, got = stats["table1"][split], stats["counts"].get(split, "-")
        note = "" if paper is None or got == paper else f"   (Table 1: {paper})"
        say(f"{args.dataset} {split}: {got}{note}")
    if stats["missing_splits"]:
        say(f"no input for split(s) {', '.join(stats['missing_splits'])}; expected {EXPECTED[args.dataset]}")
    say(f"wrote {args.final_out_dir} in {seconds:.1f}s")
    problems.report(os.path.join(args.final_out_dir, "stats.json"))


if __name__ == "__main__":
    sys.exit(main())
