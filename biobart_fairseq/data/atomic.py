"""Output folders that appear complete or not at all, and a Ctrl-C that exits in one line.

A preparation command (``biobart-prepare-*``, ``biobart-binarize*``) runs through
:func:`run_staged`: its body writes into ``OUT.incomplete`` beside ``OUT`` and the folder
replaces ``OUT`` only when the body succeeds (exit status 0, or 3 = "written, some records
skipped").  So an interrupted or failed run never mixes new files (a new ``spm.model``,
``dict.txt``) with the old binarized data, and never leaves a 0-byte file where a complete
one was.

* success: ``OUT`` is replaced whole (the old one is renamed away first, then removed);
* failure (any other status): ``OUT`` is left as it was; what the body wrote stays in
  ``OUT.incomplete`` for inspection (its logs are named in the error) and is removed by the
  next run;
* Ctrl-C: ``OUT.incomplete`` is removed, ``OUT`` left as it was, one line on stderr, exit 130
  (an unexpected exception also removes it, and propagates).

A folder that exists, is not empty and holds none of the command's own files is refused
rather than replaced (``-o`` pointing at a folder of other things would otherwise be lost).
"""

import os
import shutil
import sys
from typing import Callable, Iterable

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
STAGING_SUFFIX = ".incomplete"


class OutputDirError(ValueError):
    """The output folder cannot be used (one line, naming it)."""


def staging_dir(final: str) -> str:
    return os.path.abspath(final).rstrip(os.sep) + STAGING_SUFFIX


def check_replaceable(final: str, markers: Iterable[str]) -> None:
    """Refuse a non-empty folder that holds none of ``markers`` (files this command writes)."""
    if not os.path.exists(final):
        return
    if not os.path.isdir(final):
        raise OutputDirError(f"{final}: exists and is not a folder")
    names = set(os.listdir(final))
    if names and not names.intersection(markers):
        raise OutputDirError(f"{final}: not empty and holds no output of this command (none of "
                             f"{', '.join(sorted(markers))}); give a new or empty folder")


def replace_dir(staging: str, final: str) -> None:
    """Put ``staging`` where ``final`` is; the old folder is renamed away before, removed after."""
    old = None
    if os.path.exists(final):
        old = final.rstrip(os.sep) + ".previous"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(staging, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def interrupted(prog: str, what: str = "") -> int:
    """The one line a command prints on Ctrl-C; returns the exit status to use."""
    print(f"{prog}: interrupted{'; ' + what if what else ''}", file=sys.stderr)
    return EXIT_INTERRUPTED


def run_staged(prog: str, args, body: Callable, markers: Iterable[str], attr: str = "out_dir",
               ok=(0, 3), carry_over: bool = False) -> int:
    """Run ``body(args)`` with ``args.<attr>`` pointing at the staging folder of the real one
    (see the module docstring); returns the body's exit status, or 2 / 130.  ``ok``: the
    statuses after which the output is complete.  ``carry_over``: the staging folder starts as
    a copy of the existing one (commands that add files to a folder run after run)."""
    final = os.path.abspath(getattr(args, attr))
    staging = staging_dir(final)
    try:
        check_replaceable(final, set(markers))
    except OutputDirError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    shutil.rmtree(staging, ignore_errors=True)  # left by an earlier failed run
    if carry_over and os.path.isdir(final):
        shutil.copytree(final, staging, symlinks=True)
    else:
        os.makedirs(staging)
    setattr(args, attr, staging)
    args.final_out_dir = final  # for messages that name where the output ends up
    try:
        rc = body(args)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        return interrupted(prog, f"{final} left as it was")
    except BaseException:  # a bug: the traceback is wanted, the half-written folder is not
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        setattr(args, attr, final)
    if rc in ok:
        replace_dir(staging, final)
    elif not os.listdir(staging):
        os.rmdir(staging)
    return rc


def quiet_worker(initializer=None, *initargs) -> None:
    """Pool initializer: workers ignore Ctrl-C (the parent stops them), so that it does not print
    one traceback per worker; then runs the pool's own ``initializer``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
