"""One convention for every command's errors and exit status.

* ``0`` -- done.
* ``2`` -- unusable input: an input the command cannot use at all (missing, unreadable, not in
  the expected format), or no input usable at all.  One line on stderr,
  ``PROG: error: FILE[:LINE]: reason``, no traceback.
* ``3`` -- bad records: the output was written from the usable records; every bad record was
  skipped, counted and reported on stderr as ``FILE:LINE: reason`` (the preparation commands
  also list them in their report.json).
* ``130`` -- interrupted by Ctrl-C (see :mod:`biobart_fairseq.data.atomic`).

Light: no torch or fairseq.
"""

import sys

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_BAD_RECORDS = 3


def fail(prog, error):
    """Report unusable input in the one-line form and return exit status 2."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return EXIT_UNUSABLE


def missing(path, folder_ok=False):
    """The message for an input that does not exist (``folder_ok``: a folder would have done)."""
    return f"{path}: no such file or folder" if folder_ok else f"{path}: no such file"


def os_error(e):
    """``FILE: reason`` for an OSError, worded as :func:`missing` for a missing file."""
    if isinstance(e, FileNotFoundError) and e.filename:
        return missing(e.filename)
    reason = (e.strerror or str(e)).lower()
    return f"{e.filename}: {reason}" if e.filename else reason
