"""biobart-strip-checkpoint: drop the optimizer state from a finished run's checkpoint.

    python -m biobart_fairseq.cli.strip_checkpoint SAVE/checkpoint_best.pt [-o OUT.pt]

The model, its settings and the training history stay: the checkpoint decodes, scores, exports
and starts a new fine-tuning as before, at a third of the size for Adam (BART-base: 1.7 GB ->
0.56 GB); only resuming the same training from it is no longer possible (see
biobart_fairseq/checkpoints.py).  The recipes run it on the checkpoint they keep once training
has ended.  Exit status: 0 done (or nothing to strip); 2 not a checkpoint.
"""

import argparse
import pickle
import sys

from .. import errors

PROG = "biobart-strip-checkpoint"


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a fairseq checkpoint (.pt)")
    p.add_argument("-o", "--output", help="write the stripped checkpoint here (default: replace CHECKPOINT, atomically)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from ..checkpoints import strip_optimizer_state

    try:
        before, after = strip_optimizer_state(args.checkpoint, args.output)
    except FileNotFoundError:
        return errors.fail(PROG, errors.missing(args.checkpoint))
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:  # not a torch file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return errors.fail(PROG, reason if reason.startswith(args.checkpoint) else f"{args.checkpoint}: {reason}")
    out = args.output or args.checkpoint
    if before == after and not args.output:
        print(f"{PROG}: {out}: no optimizer state ({after / 1e6:,.1f} MB)", file=sys.stderr)
    else:
        print(f"{PROG}: {out}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB (optimizer state removed)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
