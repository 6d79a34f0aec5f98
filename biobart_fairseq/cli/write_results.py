"""biobart-results: write a run's SAVE_DIR/results.json (the recipes call it as their last step).

    biobart-results --kind seq2seq --dataset covid_dialog --scores OUT/scores.json \\
        --bertscore-model roberta-large --model bart/model.pt --checkpoint ckpt/checkpoint_best.pt \\
        --decoding beam=5 lenpen=1.0 --setting lr=5e-5 --command "bash examples/covid_dialog/run.sh" \\
        -o ckpt/results.json

--scores is the scorer's own output: biobart-score --json (seq2seq), biobart-el-eval --results
(el; several files = folds, averaged as the paper does for AskAPatient), biobart-ner-score
--output-json (ner).  A pretraining run (--kind pretrain) has no scorer: its validation loss is
read from --checkpoint.  Metrics are stored in the paper's units (see biobart_fairseq/results.py).
The decoding rate goes into the record too: from --generate-log (fairseq-generate's output) for
seq2seq, else from the scorer's own "speed"; --binarize-stats adds the truncation counts of
biobart-binarize-seq2seq, and a test split with over-long inputs is named in one line.
Exit status: 0 written; 2 unusable input (the message names the file).
"""

import argparse
import sys

from .. import errors as E
from .. import results as R

PROG = "biobart-results"


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", required=True, choices=R.KINDS, help="which scorer produced --scores")
    p.add_argument("--dataset", required=True, help="dataset key as in the paper tables (covid_dialog, ncbi, cadec, ...)")
    p.add_argument("--split", default="test", help="the split scored (default: %(default)s)")
    p.add_argument("--scores", nargs="+", default=[], metavar="FILE", help="the scorer's output file(s)")
    p.add_argument("--bertscore-model", help="the model BERTScore used (recorded with the metric)")
    p.add_argument("--scorer-args", default="",
                   help="the arguments given to biobart-score, e.g. '--bertscore-model roberta-large' "
                        "(the BERTScore model is read from them)")
    p.add_argument("--model", help="the weights the run started from (hashed with sha256)")
    p.add_argument("--checkpoint", help="the checkpoint scored (hashed; its training settings are recorded)")
    p.add_argument("--paper-row", default=None,
                   help=f"the paper row this run stands for: {', '.join(R.PAPER_ROWS)} (default: from the starting "
                        "model's own pretraining results.json, else its folder name, else none)")
    p.add_argument("--decoding", nargs="*", default=[], metavar="KEY=VALUE", help="decoding settings (beam=5 ...)")
    p.add_argument("--setting", nargs="*", default=[], metavar="KEY=VALUE", help="other recipe settings to record")
    p.add_argument("--generate-log", metavar="FILE",
                   help="fairseq-generate's output: the rate of its closing 'Translated N sentences ... in S s' line "
                        "is recorded as speed")
    p.add_argument("--binarize-stats", metavar="FILE",
                   help="biobart-binarize-seq2seq's stats.json: its counts of over-long sources/targets are recorded "
                        "as truncated, and an affected test split is named on stderr")
    p.add_argument("--command", default="", help="the command line that ran the recipe")
    p.add_argument("-o", "--output", required=True, help="where to write the record (SAVE_DIR/results.json)")
    p.add_argument("--quiet", action="store_true", help="do not print the record")
    return p.parse_args(argv)


def bertscore_model(args):
    if args.bertscore_model:
        return args.bertscore_model
    words = args.scorer_args.split()
    if "--bertscore-model" in words[:-1]:
        return words[words.index("--bertscore-model") + 1]
    return "roberta-large" if "--no-bertscore" not in words else None  # biobart-score's default


def metrics_for(args):
    if args.kind == "pretrain":
        info = R.checkpoint_info(args.checkpoint)
        if "best_valid" not in info:  # trained without validation: a record of what was run, no metric
            return {}, {"note": "no validation loss in the checkpoint"}
        return {"valid_loss": float(info["best_valid"])}, {"metric": info.get("best_metric", "loss"), "best": True}
    if not args.scores:
        raise R.ResultsError(f"--kind {args.kind} needs --scores")
    if args.kind == "seq2seq":
        return R.seq2seq_metrics(args.scores[0], bertscore_model(args))
    if args.kind == "el":
        return R.el_metrics(args.scores)
    return R.ner_metrics(args.scores[0])


def speed_for(args):
    if args.generate_log:
        return R.generate_speed(args.generate_log)
    return R.scorer_speed(args.scores[0]) if args.scores and args.kind in ("el", "ner") else None


def main(argv=None):
    args = parse_args(argv)
    try:
        metrics, details = metrics_for(args)
        truncated = R.truncation(args.binarize_stats) if args.binarize_stats else None
        rec = R.build_record(
            args.kind, args.dataset, args.split, metrics, details, model=args.model, checkpoint=args.checkpoint,
            paper_row=args.paper_row, decoding=R.parse_pairs(args.decoding, "--decoding"),
            settings=R.parse_pairs(args.setting, "--setting"), command=args.command, scores_files=args.scores,
            speed=speed_for(args), truncated=truncated)
        R.write(args.output, rec)
    except R.ResultsError as e:
        return E.fail(PROG, e)
    note = R.truncation_note(truncated, args.split)
    if note:
        print(f"{PROG}: {note} (counts in {args.binarize_stats})", file=sys.stderr)
    shown = {k: rec[k] for k in ("kind", "dataset", "split", "paper_row", "metrics")}
    if not args.quiet:
        print(f"{PROG}: wrote {args.output}: {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
