"""Number of updates a fairseq-train command will run, from the batches fairseq builds.

``python -m biobart_fairseq.schedule [--gpus N] -- FAIRSEQ_TRAIN_ARGS...`` prints the total
number of updates of a ``--max-epoch`` run: the training split is loaded by the task and
batched by the task's own ``get_batch_iterator`` with the command's ``--max-tokens``,
``--batch-size``, ``--required-batch-size-multiple`` and positions, split over N GPUs, grouped
by ``--update-freq``, times ``--max-epoch`` (capped by ``--max-update`` when given).

Why: a schedule computed as ``ceil(examples / batch size) x epochs`` is wrong as soon as
``--max-tokens`` cuts batches smaller (one recipe logged ``total_num_update 75`` while 120
updates ran, so ``polynomial_decay`` held the learning rate at 0 for the last 40).  The
recipes pass this number as ``--total-num-update`` (and ``--max-update``), so the learning
rate reaches its end value on the last update, not before.
"""

import argparse
import math
import sys


def updates_per_epoch(train_argv, gpus=1):
    """Updates per epoch of ``fairseq-train train_argv`` on ``gpus`` data-parallel workers."""
    from fairseq import options, tasks, utils

    import biobart_fairseq

    biobart_fairseq.register()  # --user-dir tasks (biomed_translation, ...) must be known
    # the parsed Namespace, not fairseq's omegaconf config: that one requires settings (e.g.
    # --total-num-update) that this very computation is there to provide
    args = options.parse_args_and_arch(options.get_training_parser(), list(train_argv))
    task = tasks.setup_task(args)
    task.load_dataset(args.train_subset, combine=False, epoch=1)
    model_positions = (getattr(args, "max_source_positions", None), getattr(args, "max_target_positions", None))
    max_positions = utils.resolve_max_positions(task.max_positions(), model_positions, args.max_tokens)
    itr = task.get_batch_iterator(
        dataset=task.dataset(args.train_subset), max_tokens=args.max_tokens, max_sentences=args.batch_size,
        max_positions=max_positions, ignore_invalid_inputs=True,
        required_batch_size_multiple=args.required_batch_size_multiple, seed=args.seed,
        num_shards=gpus, shard_id=0, num_workers=0, epoch=1,
        skip_remainder_batch=getattr(args, "skip_remainder_batch", False),
    )
    return math.ceil(len(itr) / args.update_freq[0]), args


def total_updates(train_argv, gpus=1):
    per_epoch, args = updates_per_epoch(train_argv, gpus)
    total = per_epoch * args.max_epoch if args.max_epoch else 0
    if args.max_update:
        total = min(total, args.max_update) if total else args.max_update
    if not total:
        raise ValueError("neither --max-epoch nor --max-update: the run has no end")
    return total, per_epoch


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, train_argv = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else ([], argv)
    p = argparse.ArgumentParser(prog="python -m biobart_fairseq.schedule", allow_abbrev=False,
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--gpus", type=int, default=1, help="data-parallel workers the run will use (default: 1)")
    p.add_argument("--per-epoch", action="store_true", help="print updates per epoch instead of the total")
    args = p.parse_args(ours)
    import logging
    import warnings

    logging.disable(logging.INFO)  # fairseq's data-loading log lines: the recipe prints its own
    warnings.filterwarnings("ignore")
    try:
        total, per_epoch = total_updates(train_argv, max(1, args.gpus))
    except (ValueError, FileNotFoundError) as e:
        print(f"biobart_fairseq.schedule: error: {e}", file=sys.stderr)
        return 2
    print(per_epoch if args.per_epoch else total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
